"""AI City's move-up of idle units and the edge's relocation bounds: hand-checked on the ring."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from safety_fixtures import ring

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property, urn
from aicity.domains.safety.const import AMBULANCE_TYPE
from aicity.domains.safety.geo import SafetyMap
from aicity.domains.safety.mexclp import coverage_matrix, demand_covered
from aicity.domains.safety.planners import FORECAST_KEY, RelocationParams, pooled_demand, relocation_actions
from aicity.domains.safety.planning import site_times

SITES = {"z1": "a", "z2": "b"}
PRIOR = {"z1": 1.0, "z2": 3.0}


def two_zones() -> SafetyMap:
    """The ring with zone z1 = {a}, z2 = {b, c}; stations a and b."""
    smap: SafetyMap = dataclasses.replace(ring(), zones={"z1": ("a",), "z2": ("b", "c")}, sites=SITES)
    return smap


def units(*rows: tuple[str, str, str], moves: dict[str, object] | None = None) -> Snapshot:
    """Ambulances (id, status, road segment), all homed at a; ``moves``: their reported relocations last hour."""
    now = datetime(2024, 1, 1, 7, tzinfo=UTC)
    ents = []
    for uid, status, edge in rows:
        attrs = {"status": Property(status), "roadSegment": Property(edge), "homeStation": Property("a"),
                 "relocatable": Property(False)}
        if moves is not None and moves.get(uid) is not None:
            attrs["relocationsLastHour"] = Property(moves[uid])
        ents.append(Entity(urn(AMBULANCE_TYPE, uid), AMBULANCE_TYPE, attrs))
    return Snapshot(now, 60.0, {e.id: e for e in ents})


def test_an_idle_unit_moves_up_only_when_idle_moves_are_on() -> None:
    smap = two_zones()
    times = site_times(smap)
    covers = coverage_matrix(times, list(SITES.values()), SITES, 90.0)
    snap = units(("A1", "idle", "a"), ("A2", "on_scene", "c"))  # A2 busy: A1 alone at a
    params = RelocationParams(objective="response")
    assert relocation_actions(snap, {}, smap, covers, PRIOR, params, times) == []  # freed units only
    moves = relocation_actions(snap, {}, smap, covers, PRIOR, dataclasses.replace(params, idle_moves=True), times)
    # alone at a: z1 0 s, z2 10 s (a's end to b's end) → (0 + 3·10) / 4 = 7.5 s; at b: z1 20 s, z2 0 s → 5 s
    assert len(moves) == 1 and moves[0].target == urn(AMBULANCE_TYPE, "A1") and moves[0].params["station"] == "b"
    assert moves[0].score == pytest.approx(2.5)
    assert "was idle at a" in moves[0].params["explanation"]


def test_no_move_is_planned_for_a_unit_or_fleet_at_the_edges_bounds() -> None:
    """A unit reporting its hour's moves at the edge's bound is not moved (the edge would refuse it every step)."""
    smap = two_zones()
    times = site_times(smap)
    covers = coverage_matrix(times, list(SITES.values()), SITES, 90.0)
    params = RelocationParams(objective="response", idle_moves=True, max_moves_per_unit_hour=2, max_moves_per_hour=3)

    def plan(a1: object, a2: object = 0) -> int:
        snap = units(("A1", "idle", "a"), ("A2", "on_scene", "c"), moves={"A1": a1, "A2": a2})
        return len(relocation_actions(snap, {}, smap, covers, PRIOR, params, times))

    assert plan(1) == 1
    assert plan(2) == 0  # the unit's bound
    assert plan(1, 2) == 0  # the fleet's bound
    assert plan(-1) == 0 and plan("two") == 0  # implausible reports: no move is planned on them
    assert plan(None) == 1  # not reported: none yet


def test_pooled_demand_spreads_a_sparse_hour_by_the_whole_historys_shares() -> None:
    # one call in z1 at this hour in 28 days, none in z2; the whole history holds z1 : z2 = 1 : 3
    hour = {"z1": 1 / 28, "z2": 0.0}
    pooled = pooled_demand(hour, PRIOR, history_days=28.0, pseudo_calls=20.0)
    assert pooled["z1"] == pytest.approx((1 / 28) * (1 + 20 * 0.25) / 21)
    assert pooled["z2"] == pytest.approx((1 / 28) * (20 * 0.75) / 21)
    assert sum(pooled.values()) == pytest.approx(sum(hour.values()))  # the hour's total is kept
    many = pooled_demand({"z1": 10.0, "z2": 0.0}, PRIOR, history_days=28.0, pseudo_calls=20.0)
    assert many["z1"] / 10.0 == pytest.approx((280 + 5) / 300)  # 280 calls in the cell outweigh 20 pseudo-calls
    assert pooled_demand({"z1": 0.0, "z2": 0.0}, PRIOR, history_days=28.0, pseudo_calls=20.0) == PRIOR


def test_one_call_in_a_month_does_not_draw_an_idle_unit_to_its_zone() -> None:
    smap = two_zones()
    times = site_times(smap)
    covers = coverage_matrix(times, list(SITES.values()), SITES, 90.0)
    snap = units(("A1", "idle", "b"), ("A2", "on_scene", "c"))
    forecasts = {FORECAST_KEY.format(zone="z1"): {"mean": 1 / 28}, FORECAST_KEY.format(zone="z2"): {"mean": 0.0}}
    raw = RelocationParams(objective="response", idle_moves=True)
    moved = relocation_actions(snap, forecasts, smap, covers, PRIOR, raw, times)
    assert [m.params["station"] for m in moved] == ["a"]  # the raw hour: all demand in z1
    # pooled: z1 6/21 of the hour, z2 15/21 → at b 6/21·20 = 5.7 s, at a 15/21·10 = 7.1 s: it stays
    pooled = dataclasses.replace(raw, pooling_calls=20.0)
    assert relocation_actions(snap, forecasts, smap, covers, PRIOR, pooled, times) == []


def test_a_move_the_edge_would_refuse_on_its_coverage_floor_is_not_proposed() -> None:
    """A1 alone at a covers both zones (a made to cover z2 as well); its move to b (2.5 s less expected travel)
    would leave z1 uncovered: coverage 1.0 → 0.75. Below the floor the planner does not propose it."""
    smap = two_zones()
    times = site_times(smap)
    covers = {"a": {"z1", "z2"}, "b": {"z2"}}
    snap = units(("A1", "idle", "a"), ("A2", "on_scene", "c"))
    params = RelocationParams(objective="response", idle_moves=True)

    def stations(floor: float | None) -> list[str]:
        moves = relocation_actions(snap, {}, smap, covers, PRIOR, dataclasses.replace(params, coverage_floor=floor),
                                   times)
        return [a.params["station"] for a in moves]

    assert stations(None) == ["b"] and stations(0.7) == ["b"]
    assert stations(0.8) == []
    assert demand_covered(["b"], covers, PRIOR) == pytest.approx(0.75)
