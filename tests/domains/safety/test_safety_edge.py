"""The dispatch edge: hard limits hold whatever a planner asks (property-tested), refusals name the limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aicity.domains.safety.const import AVAILABLE, HANDOVER, IDLE, ON_SCENE, RETURNING, TRANSPORTING
from aicity.domains.safety.edge import DispatchEdge, EdgeLimits

COVERS = {"s1": {"a", "b"}, "s2": {"c"}, "s3": {"a", "b", "c", "d"}}
DEMAND = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}


def make(limits: EdgeLimits | None = None) -> DispatchEdge:
    return DispatchEdge({"A1": IDLE, "A2": IDLE, "A3": IDLE}, {"A1": "s1", "A2": "s2", "A3": "s3"}, COVERS, DEMAND,
                        limits or EdgeLimits(max_relocations_per_hour=3, max_relocations_per_unit_hour=1,
                                             coverage_floor=0.75))


def test_one_assignment_each_way() -> None:
    e = make()
    assert e.dispatch("A1", "I1").ok
    again = e.dispatch("A1", "I2")
    assert again.status == "refused" and again.bound_by == ("one_assignment",)
    other = e.dispatch("A2", "I1")
    assert other.bound_by == ("one_ambulance_per_incident",)


def test_no_dispatch_during_handover_and_unknowns() -> None:
    e = make()
    e.dispatch("A1", "I1")
    e.set_status("A1", HANDOVER)
    v = e.dispatch("A1", "I2")
    assert v.bound_by == ("hospital_handover",) and "handing a patient over" in v.reason
    assert e.dispatch("A9", "I3").bound_by == ("unknown_target",)
    assert e.dispatch("A2", "I4", reported=False).bound_by == ("reported_incidents_only",)
    e.set_status("A1", RETURNING, "s1")
    assert e.dispatch("A1", "I2").ok  # free again; I1 keeps its ambulance
    assert e.dispatch("A3", "I1").bound_by == ("one_ambulance_per_incident",)


def test_relocation_bounds_and_coverage_floor() -> None:
    e = make()
    assert e.covered_share() == 1.0
    v = e.relocate("A3", "s1", 0.0)  # A3 alone covers d: coverage would fall to 0.75, the floor: allowed
    assert v.ok
    w = e.relocate("A2", "s1", 10.0)  # c would be lost: 0.5 < 0.75 floor
    assert w.bound_by == ("coverage_floor",) and "below the floor" in w.reason
    assert e.relocate("A3", "s3", 20.0).bound_by == ("max_relocations_per_unit_hour",)
    assert e.relocate("A3", "s3", 3700.0).ok  # an hour later
    assert e.relocate("A1", "nowhere", 3700.0).bound_by == ("known_station",)


def test_safe_state_refuses_planners_but_not_its_own_dispatch() -> None:
    e = make()
    e.safe = True
    assert e.dispatch("A1", "I1").bound_by == ("safe_state",)
    assert e.relocate("A1", "s3", 0.0).bound_by == ("safe_state",)
    assert e.force_dispatch("A1", "I1").ok and e.safe


OPS = st.lists(st.tuples(st.sampled_from(["dispatch", "relocate", "status"]), st.sampled_from(["A1", "A2", "A3"]),
                         st.sampled_from(["I1", "I2", "I3", "I4", "s1", "s2", "s3"]),
                         st.sampled_from([IDLE, RETURNING, ON_SCENE, TRANSPORTING, HANDOVER]),
                         st.floats(0, 600)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_invariants_hold_under_any_sequence(ops: list[tuple[str, str, str, str, float]]) -> None:
    e = make()
    t = 0.0
    for kind, unit, arg, status, dt in ops:
        t += dt
        before_cov = e.covered_share()
        status_before = e.units[unit]
        if kind == "dispatch":
            v = e.dispatch(unit, arg)
            if v.ok:
                assert status_before in AVAILABLE
            else:
                assert v.bound_by
        elif kind == "relocate":
            v = e.relocate(unit, arg, t)
            if v.ok:
                after = e.covered_share()
                assert after >= e.limits.coverage_floor - 1e-9 or after >= before_cov - 1e-9
        else:
            e.set_status(unit, status, "s1" if status in AVAILABLE else None)
        # one assignment per ambulance and one ambulance per live incident
        live = list(e.assigned.values())
        assert len(live) == len(set(live))
        for u, inc in e.assigned.items():
            assert e.incident_unit[inc] == u
        assert e.relocations_last_hour(t) <= e.limits.max_relocations_per_hour
        for u in e.units:
            assert e.relocations_last_hour(t, u) <= e.limits.max_relocations_per_unit_hour
