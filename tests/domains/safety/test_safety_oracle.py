"""The oracle on a case small enough to check by hand, and MEXCLP placement."""

from __future__ import annotations

import math

import pytest
from safety_fixtures import ring

from aicity.domains.safety.incidents import Incident
from aicity.domains.safety.mexclp import coverage_matrix, dmexclp_choice, expected_coverage, place
from aicity.domains.safety.oracle import OracleResult, solve

pytest.importorskip("scipy")


def test_oracle_by_hand() -> None:
    # I1 at b, called at 0 s, reported at 60 s: the ambulance at a drives 10 s → 70 s; on scene 100 s, then the
    # nearest node from b is c (10 s). I2 at a, called at 300 s, reported at 360 s: the optimum moves the ambulance
    # back to a beforehand (one relocation of one slot) and reaches I2 at once → 60 s.
    i1 = Incident("I1", 0.0, "b", "z1", 1, 100.0, False, 0.0)
    i2 = Incident("I2", 300.0, "a", "z1", 2, 50.0, False, 0.0)
    res = solve(ring(), [i1, i2], ["a"], horizon_s=600, call_processing_s=60, target_p1_s=90, target_p2_s=120)
    assert res.status == "optimal"
    assert res.responses == {"I1": pytest.approx(70.0), "I2": pytest.approx(60.0)}
    assert res.late == {"I1": False, "I2": False} and res.relocations == 1
    # two calls at once for one ambulance: one of them waits; with a 30 s travel target one is late
    i3 = Incident("I3", 0.0, "c", "z1", 1, 600.0, False, 0.0)
    both = solve(ring(), [i1, i3], ["a"], horizon_s=900, call_processing_s=60, target_p1_s=30, target_p2_s=30)
    assert sorted(both.late.values()) == [False, True] and both.late_frac == 0.5
    assert both.responses["I1"] == pytest.approx(70.0)  # the nearer call first (10 s against 20 s)


def test_mexclp_places_and_dmexclp_ranks() -> None:
    times = {"s1": {"c1": 50.0, "c2": 200.0}, "s2": {"c1": 200.0, "c2": 50.0}}
    covers = coverage_matrix(times, ["s1", "s2"], {"z1": "c1", "z2": "c2"}, 90.0)
    assert covers == {"s1": {"z1"}, "s2": {"z2"}}
    demand = {"z1": 3.0, "z2": 1.0}
    assert sorted(place(["s1", "s2"], covers, demand, 2, 0.3)) == ["s1", "s2"]
    assert place(["s1", "s2"], covers, demand, 3, 0.3).count("s1") == 2  # the busier zone gets the backup
    ranked = dmexclp_choice(["s1"], ["s1", "s2"], covers, demand, 0.3)
    assert ranked[0][0] == "s2"  # z2 is uncovered: the freed ambulance goes there
    assert expected_coverage({"z1": 1}, demand, 0.3) == pytest.approx(3.0 * 0.7)


def test_oracle_answers_a_call_it_defers() -> None:
    # One ambulance at a. I1 at b (priority 2, 1000 s on scene) would keep it away from I2 and I3 at a (priority 1);
    # the optimum lets I1 wait until both are done (one late call) instead of abandoning it. I3 ends at 1010 s; a
    # unit is free from the start of the slot it finishes in (990 s: slots round in the bound's favour), so I1 is
    # reached at 990 + 10 = 1000 s.
    i1 = Incident("I1", 0.0, "b", "z1", 2, 1000.0, False, 0.0)
    i2 = Incident("I2", 200.0, "a", "z1", 1, 50.0, False, 0.0)
    i3 = Incident("I3", 900.0, "a", "z1", 1, 50.0, False, 0.0)
    kw = {"horizon_s": 3000, "call_processing_s": 60, "target_p1_s": 30, "target_p2_s": 30}
    res = solve(ring(), [i1, i2, i3], ["a"], **kw)  # type: ignore[arg-type]
    assert res.late == {"I1": True, "I2": False, "I3": False}
    assert res.responses["I1"] == pytest.approx(1000.0)
    # with waits capped at 20 slots (600 s), answering I1 comes before sparing I3: I1 right after I2, I3 late
    capped = solve(ring(), [i1, i2, i3], ["a"], max_wait_slots=20, **kw)  # type: ignore[arg-type]
    assert capped.responses["I1"] == pytest.approx(310.0) and capped.late == {"I1": True, "I2": False, "I3": True}


def test_dispatch_only_oracle_moves_no_unit_towards_a_call() -> None:
    # One ambulance at home a; I at c (the hospital node), called at 300 s, with a 10 s travel target. Knowing the
    # call, the full optimum moves the unit to c beforehand (one relocation) and is there at once: 60 s, on time.
    # The dispatch-only optimum may only drive home, so the unit leaves from a: 20 s of driving, 80 s, late.
    inc = Incident("I", 300.0, "c", "z1", 1, 50.0, False, 0.0)
    kw = {"horizon_s": 900, "call_processing_s": 60, "target_p1_s": 10, "target_p2_s": 10}
    full = solve(ring(), [inc], ["a"], **kw)  # type: ignore[arg-type]
    assert full.responses == {"I": pytest.approx(60.0)} and not full.late["I"] and full.relocations == 1
    fixed = solve(ring(), [inc], ["a"], relocate=False, **kw)  # type: ignore[arg-type]
    assert fixed.responses == {"I": pytest.approx(80.0)} and fixed.late["I"] and fixed.relocations == 0


def test_an_oracle_day_with_no_call_has_undefined_times_not_zero() -> None:
    none = OracleResult(responses={}, late={}, relocations=0, variables=0, status="optimal")
    assert math.isnan(none.late_frac) and math.isnan(none.mean_response_s) and math.isnan(none.p90_response_s)
    unserved = OracleResult(responses={"c1": None}, late={"c1": True}, relocations=0, variables=1, status="optimal")
    assert unserved.late_frac == 1.0 and math.isnan(unserved.mean_response_s)
