"""AI City's standby points: hand-checked on the ring."""

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


def test_on_cologne8_a_freed_unit_alone_waits_past_its_long_home_edge() -> None:
    from aicity.domains.mobility.scenarios import read_sumocfg, resolve
    from aicity.domains.safety.edge import DispatchEdge
    from aicity.domains.safety.geo import load_map
    from aicity.domains.safety.planning import historical_demand, home_stations

    scen = resolve("cologne8")
    assert scen is not None and scen.path is not None
    smap = load_map(read_sumocfg(scen.path).net, 3, 1)
    demand = historical_demand(smap, 150.0)
    home = home_stations(smap, demand, 2, 90.0, 0.3)[0]
    assert home == "-23648008#3" and smap.length[home] > 170  # both units' station: a 176 m edge
    points = standby_points(smap)
    times = standby_times(smap, points)
    covers = coverage_matrix({p: smap.times_from(p) for p in points}, points, smap.sites, 90.0)
    now = datetime(2024, 1, 1, 7, tzinfo=UTC)
    ents = [Entity(urn(AMBULANCE_TYPE, "A1"), AMBULANCE_TYPE, {
                "status": Property("on_scene"), "roadSegment": Property("22959552#2"), "homeStation": Property(home),
                "relocatable": Property(False)}),
            Entity(urn(AMBULANCE_TYPE, "A2"), AMBULANCE_TYPE, {
                "status": Property("returning"), "roadSegment": Property("22959550#1"), "homeStation": Property(home),
                "destination": Property(home), "relocatable": Property(True)})]
    snap = Snapshot(now, 60.0, {e.id: e for e in ents})
    moves = relocation_actions(snap, {}, smap, covers, demand, RelocationParams(objective="response"), times)
    # alone, it waits at the junction just past the station: ~11 s less expected travel than the station's start
    assert [m.params["station"] for m in moves] == ["-23648008#1"] and "-23648008#1" in smap.succ[home]
    assert (moves[0].score or 0.0) > 5.0
    edge = DispatchEdge({"A1": "on_scene", "A2": "returning"}, {"A1": None, "A2": home}, covers, demand)
    assert edge.check_relocate("A2", "-23648008#1", 0.0).ok  # a standby point is a known station of AI City's edge
    stations_only = coverage_matrix({s: smap.times_from(s) for s in smap.sites.values()},
                                    list(smap.sites.values()), smap.sites, 90.0)
    smart_edge = DispatchEdge({"A1": "on_scene", "A2": "returning"}, {"A1": None, "A2": home}, stations_only, demand)
    assert smart_edge.check_relocate("A2", "-23648008#1", 0.0).bound_by == ("known_station",)
