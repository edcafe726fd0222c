"""The city's response to a held road incident: the pure choice, and the direction on real SUMO."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aicity.core.domain import ProposedAction, Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.city.incident import ACTION, DETOUR_S, HOLD_S, IncidentResponder, options_for
from aicity.domains.city.meta import INCIDENT_TRAFFIC
from aicity.orchestrate.respond import choose

T = datetime(2024, 1, 1, tzinfo=UTC)
INC = "urn:ngsi-ld:TrafficIncident:T1"
ACT = ProposedAction(INC, ACTION, {"edge": "E", "lanes": ["E_1"]}, action_type=INCIDENT_TRAFFIC)


def snap(el: float, *, queue: int = 2, speed: float | None = 0.0, amb: str = "transporting",
         clear_at: float = 2100.0, status: str = "active") -> Snapshot:
    def ent(eid: str, etype: str, **attrs: Any) -> Entity:
        return Entity.trusted(eid, etype, {k: Property(v, T) for k, v in attrs.items()})

    ents = [ent(INC, "TrafficIncident", roadSegment="E", blockedLanes=["E_0"], lanesTotal=2, status=status,
                expectedClearTime=clear_at),
            ent("urn:ngsi-ld:TrafficFlowObserved:in:E_1", "TrafficFlowObserved", queue=queue,
                averageVehicleSpeed=speed),
            ent("urn:ngsi-ld:TrafficFlowObserved:in:E_0", "TrafficFlowObserved", queue=5, averageVehicleSpeed=0.0),
            ent("urn:ngsi-ld:Ambulance:A2", "Ambulance", roadSegment="E", status=amb)]
    return Snapshot(T, el, {e.id: e for e in ents})


def run(r: IncidentResponder, s: Snapshot) -> list[Any]:
    r.update(s)
    return r.occasions(s)


def test_a_queue_standing_on_an_open_lane_longer_than_a_red_is_a_held_incident() -> None:
    r = IncidentResponder()
    assert run(r, snap(1000.0)) == []
    assert run(r, snap(1000.0 + HOLD_S - 10)) == []
    (occ,) = run(r, snap(1000.0 + HOLD_S))
    assert "E_1" in occ.event and "E_0" not in occ.event  # the blocked lane is the incident's, not a held one
    chosen = choose(occ)
    assert chosen is not None and chosen.actions and chosen.actions[0][1].params == {"edge": "E", "lanes": ["E_1"]}
    assert run(r, snap(1000.0 + HOLD_S + 10)) == []  # a new standing queue must build up again


def test_a_response_is_offered_only_on_the_steps_the_coupler_acts() -> None:
    r = IncidentResponder()
    assert run(r, snap(1000.0)) == []
    assert run(r, snap(1000.0 + HOLD_S + 5)) == []  # held long enough, but the coupler is not due
    assert len(run(r, snap(1000.0 + HOLD_S + 10))) == 1


def test_a_moving_queue_or_a_cleared_incident_is_no_occasion() -> None:
    r = IncidentResponder()
    for el in (1000.0, 1100.0, 1200.0):
        assert run(r, snap(el, speed=4.0)) == []
    r = IncidentResponder()
    for el in (1000.0, 1100.0, 1200.0):
        assert run(r, snap(el, status="cleared")) == []
    r = IncidentResponder()  # the queue moved once in between: the clock starts again
    assert run(r, snap(1000.0)) == [] and run(r, snap(1050.0, queue=0)) == [] and run(r, snap(1100.0)) == []


def test_a_held_ambulance_decides_for_directing_the_traffic() -> None:
    nothing, direct = options_for(600.0, 2, 1, ACT)
    assert nothing.outcome["ems_p90_s"] == 600.0 and direct.outcome["ems_p90_s"] == 6.0
    r = IncidentResponder()
    run(r, snap(1000.0, clear_at=1100.0 + HOLD_S))
    (occ,) = run(r, snap(1000.0 + HOLD_S, clear_at=1100.0 + HOLD_S))  # 100 s left: a detour costs more, but
    assert choose(occ) is occ.options[1]  # an ambulance waits for the rest of it unless the queue is released


def test_near_clearance_and_with_no_ambulance_doing_nothing_costs_less() -> None:
    nothing, direct = options_for(DETOUR_S / 2, 3, 0, ACT)
    assert choose_of(nothing, direct) is nothing
    nothing, direct = options_for(DETOUR_S * 4, 3, 0, ACT)
    assert choose_of(nothing, direct) is direct  # a long wait: the held drivers do better on a detour


def choose_of(*opts: Any) -> Any:
    from aicity.domains.city.incident import RANKING
    from aicity.orchestrate.respond import Occasion

    return choose(Occasion("e", tuple(opts), RANKING))


def test_directing_sends_the_driver_standing_at_the_closure_to_an_exit_its_lane_reaches() -> None:
    """cologne8, seed 1: at 07:15 the incident closes the right lane of 186623965#15; a car that needs that lane
    for its right turn stands at the end of the open lane, holding everyone behind it (ambulances included)."""
    from aicity.domains.city.scenarios import event_options
    from aicity.runner import bench_run, load_city

    seen: dict[str, Any] = {}

    def hook(loop: Any) -> None:
        tw = {p.name: p.twin for p in loop.parts}
        rb, coupler = tw["safety"].roadblock, tw["city"]
        api = coupler.host.api
        open_lane = next(ln for ln in rb.lane_ids if ln not in rb.blocked)
        reach = {api.lane.getEdgeID(link[0]) for link in api.lane.getLinks(open_lane)}
        standing = [v for v in api.lane.getLastStepVehicleIDs(open_lane) if api.vehicle.getSpeed(v) < 0.5
                    and api.vehicle.getVehicleClass(v) != "emergency"]

        def next_edge(v: str) -> str:
            route, i = api.vehicle.getRoute(v), api.vehicle.getRouteIndex(v)
            return str(route[i + 1]) if i + 1 < len(route) else ""

        seen["stuck_before"] = [v for v in standing if next_edge(v) not in reach]
        act = ProposedAction(INC, ACTION, {"edge": rb.spec.edge, "lanes": [open_lane]},
                             action_type=INCIDENT_TRAFFIC)
        seen["first"] = coupler.actuate(act)
        seen["stuck_after"] = [v for v in standing if next_edge(v) not in reach]
        seen["again"] = coupler.actuate(act)
        seen["bad"] = coupler.actuate(ProposedAction(INC, ACTION, {"edge": rb.spec.edge, "lanes": ["nowhere_0"]}))

    options = event_options("incident")
    bench_run(load_city("cologne8-city-calm", options, 1020.0), mode="ablation", seed=1, at_s=1010.0, hook=hook)
    assert seen["stuck_before"]  # the lane-change deadlock the incident leaves
    assert seen["first"].status == "applied" and seen["first"].command["redirected"] >= 1
    assert seen["stuck_after"] == []  # every standing driver now leaves by an exit the open lane reaches
    assert seen["again"].refused and seen["again"].bound_by == ("cooldown_s",)
    assert seen["bad"].refused and seen["bad"].bound_by == ("map",)


def test_only_the_ai_city_directs_the_traffic_and_its_record_says_what_was_weighed() -> None:
    from aicity.domains.city.scenarios import event_options
    from aicity.runner import bench_run, load_city

    said: list[str] = []

    def hook(loop: Any) -> None:
        said.extend(str(e.data.get("reason", "")) for e in loop.store.events(type="orchestration"))

    options = event_options("incident")
    eps = {m: bench_run(load_city("cologne8-city-calm", options, 1200.0), mode=m, seed=1, at_s=1190.0,
                        hook=hook if m == "ai" else None) for m in ("ablation", "ai")}
    assert eps["ai"].stats.by_domain["city"]["actuated"] >= 1
    assert eps["ablation"].stats.by_domain.get("city", {}).get("actuated", 0) == 0
    assert any("took 'direct held traffic to other exits'" in s and "beats 'nothing' on ems_p90_s" in s for s in said)
