"""AI City's standby points and move-ups: hand-checked on the ring."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from safety_fixtures import ring

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property, urn
from aicity.domains.safety.const import AMBULANCE_TYPE
from aicity.domains.safety.geo import SafetyMap
from aicity.domains.safety.mexclp import coverage_matrix
from aicity.domains.safety.planners import RelocationParams, relocation_actions
from aicity.domains.safety.planning import standby_points, standby_times

SITES = {"z1": "a", "z2": "b"}


def two_zones() -> SafetyMap:
    """The ring with zone z1 = {a}, z2 = {b, c}; stations a and b."""
    smap: SafetyMap = dataclasses.replace(ring(), zones={"z1": ("a",), "z2": ("b", "c")}, sites=SITES)
    return smap


def units(*rows: tuple[str, str, str]) -> Snapshot:
    """Ambulances (id, status, road segment), all homed at a."""
    now = datetime(2024, 1, 1, 7, tzinfo=UTC)
    ents = [Entity(urn(AMBULANCE_TYPE, uid), AMBULANCE_TYPE, {
        "status": Property(status), "roadSegment": Property(edge), "homeStation": Property("a"),
        "relocatable": Property(False)}) for uid, status, edge in rows]
    return Snapshot(now, 60.0, {e.id: e for e in ents})


def test_standby_points_are_the_stations_and_the_edges_leaving_them() -> None:
    assert standby_points(two_zones()) == ["a", "b", "c"]  # a → b (a station already), b → c


def test_standby_times_count_the_drive_along_the_own_edge() -> None:
    smap = two_zones()
    times = standby_times(smap, ["a"])
    assert times["a"]["a"] == pytest.approx(10.0)  # waiting at a's start: a itself
    assert times["a"]["b"] == pytest.approx(20.0) and times["a"]["c"] == pytest.approx(30.0)


def test_an_idle_unit_moves_up_only_when_idle_moves_are_on() -> None:
    smap = two_zones()
    points = standby_points(smap)
    times = standby_times(smap, points)
    covers = coverage_matrix(times, points, SITES, 90.0)
    prior = {"z1": 1.0, "z2": 3.0}
    snap = units(("A1", "idle", "a"), ("A2", "on_scene", "c"))  # A2 busy: A1 alone at a
    params = RelocationParams(objective="response")
    assert relocation_actions(snap, {}, smap, covers, prior, params, times) == []  # freed units only
    moves = relocation_actions(snap, {}, smap, covers, prior, dataclasses.replace(params, idle_moves=True), times)
    # alone at a: z1 10 s, z2 20 s (to b's end) → 17.5 s; at b: z1 30 s, z2 10 s → 15 s; at c: z1 20, z2 30
    assert len(moves) == 1 and moves[0].target == urn(AMBULANCE_TYPE, "A1") and moves[0].params["station"] == "b"
    assert moves[0].score == pytest.approx(2.5)
    assert "was idle at a" in moves[0].params["explanation"]
