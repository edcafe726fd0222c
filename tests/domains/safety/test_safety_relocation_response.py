"""Relocation on expected travel (the mean-response objective): hand-checked on the ring."""

from __future__ import annotations

import dataclasses

import pytest
from safety_fixtures import ring
from test_safety_planners import snapshot

from aicity.domains.safety.geo import SafetyMap
from aicity.domains.safety.mexclp import coverage_matrix, expected_response
from aicity.domains.safety.planners import FORECAST_KEY, RelocationParams, relocation_actions
from aicity.domains.safety.planning import site_times

SITES = {"z1": "a", "z2": "b", "z3": "c"}


def three_zones() -> SafetyMap:
    return dataclasses.replace(ring(), zones={"z1": ("a",), "z2": ("b",), "z3": ("c",)}, sites=SITES)


def test_expected_response_by_hand() -> None:
    smap = three_zones()
    times = site_times(smap)
    demand = dict.fromkeys(SITES, 1.0)
    # one unit at a, never busy: 0, 10 and 20 s to the three zones
    assert expected_response(["a"], times, SITES, demand, 0.0) == pytest.approx(10.0)
    # a and b, busy with probability 0.2: z1 (0, 20) 4 s, z2 (0, 10) 2 s, z3 (10, 20) 12 s
    assert expected_response(["a", "b"], times, SITES, demand, 0.2) == pytest.approx(6.0)
    assert expected_response(["a", "a"], times, SITES, demand, 0.2) == pytest.approx(10.0)


def test_response_objective_moves_the_freed_unit_where_coverage_stays_home() -> None:
    smap = three_zones()
    times = site_times(smap)
    covers = coverage_matrix(times, list(SITES.values()), SITES, 90.0)  # every station covers every zone
    fc = {FORECAST_KEY.format(zone="z1"): {"mean": 1.0}}
    prior = dict.fromkeys(SITES, 1.0)
    snap = snapshot(relocatable=True)  # A1 idle at a, A2 freed near b on its way home to a
    assert relocation_actions(snap, fc, smap, covers, prior, RelocationParams(), times) == []  # a tie: stays
    moves = relocation_actions(snap, fc, smap, covers, prior, RelocationParams(objective="response"), times)
    assert len(moves) == 1 and moves[0].params["station"] == "b"  # 6 s expected against 10 s at a (b before c)
    assert "expected travel" in moves[0].params["explanation"] and "6 s" in moves[0].params["explanation"]
    assert moves[0].score == pytest.approx(4.0)


def test_unknown_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="objective"):
        RelocationParams(objective="fastest")
