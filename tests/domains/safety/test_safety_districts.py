"""The EMS of a generated grid city as districts: one layout whole and split, the mutual-aid planner, what a
district's twin refuses at its border (real SUMO, a district's governed loop in this process)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aicity.core.capabilities import Crossing
from aicity.core.domain import DomainResult, Snapshot
from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.domains.safety import domain as safety
from aicity.domains.safety.aid import aid_actions, border_geometry
from aicity.domains.safety.const import AMBULANCE_TYPE, INCIDENT_TYPE
from aicity.domains.safety.layout import block_incidents, block_stations, ems_map, grid_place
from aicity.domains.safety.twin import ambulance_urn, incident_urn

pytest.importorskip("libsumo")
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _split(k: int = 2, districts: int = 2) -> tuple[Any, list[Any]]:
    scen = safety.resolve(f"gridcity-{k}-ems")
    assert scen is not None
    return scen, safety.partition(scen, districts)


def _layout(path: str | None) -> tuple[dict[str, str], list[tuple[str, float, str, str]]]:
    place = grid_place(path)
    assert place is not None
    units, _ = block_stations(place, 2, 1, 2, 500.0, 90.0, 0.3)
    calls = block_incidents(place, 2, 1, begin_s=0.0, duration_s=3600.0, seed=4, load_multiplier=500.0,
                            service_scale=0.25, drill_calls=0, call_processing_s=60.0)
    return units, [(c.id, c.call_s, c.edge, c.zone) for c in calls]


def test_the_city_is_laid_out_the_same_whole_and_as_districts() -> None:
    scen, parts = _split()
    units, calls = _layout(scen.path)
    split_units: dict[str, str] = {}
    split_calls: list[tuple[str, float, str, str]] = []
    for d in parts:
        u, c = _layout(d.scenario.path)
        split_units.update(u)
        split_calls += c
    assert units == split_units and set(units) == {"A1", "A2"}
    assert calls and sorted(calls) == sorted(split_calls)
    assert {d.district: sorted(set(d.borders.values())) for d in parts} == {"d1": ["d2"], "d2": ["d1"]}


def test_only_a_grid_city_splits_and_merges() -> None:
    other = safety.resolve("cologne8-ems")
    if other is not None:
        with pytest.raises(UserError, match="cannot be partitioned"):
            safety.partition(other, 2)
    with pytest.raises(UserError, match="divides"):
        _split(2, 3)
    with pytest.raises(UserError, match="carry no grid record"):
        safety.merge_results({"d1": DomainResult({"response_mean_s": 1.0})})


def _snapshot(d1: Any, own_status: str, foreign_s: float) -> tuple[Snapshot, str, str]:
    """District d1 with one reported call, its unit A1 in ``own_status`` at its station, and d2's A2 available
    ``foreign_s`` seconds from the border into d1."""
    place = grid_place(d1.scenario.path)
    assert place is not None
    from aicity.domains.mobility.scenarios import read_sumocfg

    net = read_sumocfg(str(d1.scenario.path)).net
    smap = ems_map(str(d1.scenario.path), net, 2, 1)
    units, _ = block_stations(place, 2, 1, 2, 500.0, 90.0, 0.3)
    entry = sorted(place.entries)[0]
    call_edge = sorted(smap.zones[sorted(smap.zones)[0]])[0]
    when = NOW
    ents = {
        incident_urn("b1-I1"): Entity.trusted(incident_urn("b1-I1"), INCIDENT_TYPE, {
            "status": Property("reported", when), "roadSegment": Property(call_edge, when),
            "zone": Property("b1.z00", when), "priority": Property(1, when), "callTime": Property(0.0, when)}),
        ambulance_urn("A1"): Entity.trusted(ambulance_urn("A1"), AMBULANCE_TYPE, {
            "status": Property(own_status, when), "roadSegment": Property(units["A1"], when),
            "homeStation": Property(units["A1"]), "destination": Property(None, when),
            "relocatable": Property(False, when)}),
        ambulance_urn("A2"): Entity.trusted(ambulance_urn("A2"), AMBULANCE_TYPE, {
            "status": Property("idle", when), "roadSegment": Property("E1E2", when),
            "homeStation": Property("E1E2"), "district": Property("d2", when),
            "borderTravelTime": Property({entry: foreign_s}, when), "relocatable": Property(False, when)})}
    return Snapshot(NOW, 60.0, ents), net, entry


def test_a_district_asks_a_neighbour_only_when_it_needs_to() -> None:
    _, parts = _split()
    d1 = parts[0]
    place = grid_place(d1.scenario.path)
    assert place is not None

    def plan(own: str, foreign_s: float) -> list[Any]:
        snap, net, _ = _snapshot(d1, own, foreign_s)
        smap = ems_map(str(d1.scenario.path), net, 2, 1)
        geo = border_geometry(net, tuple(sorted(place.out)), tuple(sorted(place.entries)))
        return aid_actions(snap, smap, geo, live=False, name="t", district="d1", margin_s=20.0)

    busy = plan("on_scene", 30.0)
    assert [(a.target, a.params["district"]) for a in busy] == [(ambulance_urn("A2"), "d2")]
    assert busy[0].params["border"] in place.entries and "no unit of this district" in busy[0].params["explanation"]
    far = plan("idle", 10_000.0)
    assert [a.target for a in far] == [ambulance_urn("A1")] and "district" not in far[0].params
    assert plan("on_scene", float("inf")) == []


def test_two_neighbour_units_equally_far_are_ranked_by_id() -> None:
    """Two of d2's units at one station tie on every time: the lower id is asked, nothing compares the units."""
    _, parts = _split()
    d1 = parts[0]
    place = grid_place(d1.scenario.path)
    assert place is not None
    snap, net, _ = _snapshot(d1, "on_scene", 30.0)
    a2 = snap.entities[ambulance_urn("A2")]
    a3 = Entity.trusted(ambulance_urn("A0"), AMBULANCE_TYPE, dict(a2.attrs))
    snap = Snapshot(NOW, 60.0, {**snap.entities, a3.id: a3})
    smap = ems_map(str(d1.scenario.path), net, 2, 1)
    geo = border_geometry(net, tuple(sorted(place.out)), tuple(sorted(place.entries)))
    asked = aid_actions(snap, smap, geo, live=False, name="t", district="d1", margin_s=20.0)
    assert [a.target for a in asked] == [ambulance_urn("A0")]


def test_a_district_refuses_malformed_crossings_and_publishes_its_neighbours_units(tmp_path: Path) -> None:
    from aicity.runner import load_city
    from aicity.scale.district import DistrictLoop, new_key
    from aicity.scale.partition import partition

    d1 = partition(load_city("safety/gridcity-2-ems", None, 120.0), 2)[0]
    loop = DistrictLoop(d1, mode="smart", seed=1, out=str(tmp_path / "d1"), key=new_key())
    loop.open()
    place = grid_place(d1.city.parts[0].scenario.path)
    assert place is not None
    entry = sorted(place.entries)[0]
    report = {"district": "d2", "units": [{"id": "A2", "status": "idle", "edge": "E1E2", "home": "E1E2",
                                           "xy": [900.0, 300.0], "border_s": {entry: 42.0}}]}
    good: Crossing = {"via": entry, "kind": "ems_units", "at_s": 0.0, "payload": report}
    bad: list[Crossing] = [
        {"via": entry, "kind": "parcel", "at_s": 0.0, "payload": {}},  # unknown kind
        {"via": "C0D0", "kind": "ems_units", "at_s": 0.0, "payload": report},  # an outgoing border, not in
        {"via": entry, "kind": "ems_units", "at_s": 0.0, "payload": {"district": "d2", "units": [{"id": "X"}]}},
        {"via": entry, "kind": "ambulance", "at_s": 0.0, "payload": {  # no call waits for it
            "unit": "A2", "status": "responding", "incident": "b1-I9", "to": "d1", "lane": 0, "pos": 10.0,
            "speed": 5.0, "home": "E1E2", "home_district": "d2", "trips": 1, "reloc_km": 0.0}},
        {"via": entry, "kind": "ambulance", "at_s": 0.0, "payload": {  # a lane that does not exist
            "unit": "A2", "status": "returning", "to": "d1", "lane": 7, "pos": 10.0, "speed": 5.0,
            "home": "E1E2", "home_district": "d2", "trips": 1, "reloc_km": 0.0}},
        {"via": entry, "kind": "aid_declined", "at_s": 0.0, "payload": {"unit": "A2", "incident": "b1-I1"}},
        {"via": entry, "kind": "vehicle", "at_s": 0.0, "payload": {"id": "car", "vtype": "nope"}},
    ]
    try:
        loop.propose([("safety", good), *[("safety", b) for b in bad]])
        assert loop.rejected_inbound == len(bad)
        assert loop.store.dead_letter_count == len(bad)
        reasons = [d.reason for d in loop.store.dead_letters()]
        assert any("unknown crossing kind" in r for r in reasons) and any("does not lead into" in r for r in reasons)
        copy = loop.store.get(ambulance_urn("A2"))
        assert copy is not None and copy.get("district") == "d2" and copy.get("borderTravelTime") == {entry: 42.0}
    finally:
        reply = loop.close()
    assert reply["stats"]["rejected_inbound"] == len(bad)


def test_a_districts_coverage_counts_its_neighbours_available_units() -> None:
    from aicity.domains.safety.border import AidEdge

    edge = AidEdge({"A1": "on_scene"}, {"A1": None}, {"s1": {"z1"}}, {"z1": 1.0, "z2": 3.0},
                   neighbour_covers={"s2": {"z2"}, "s3": {"z1", "z2"}})
    assert edge.covered_share() == 0.0
    edge.neighbours = {"A2": "s2"}
    assert edge.covered_share() == 0.75
    edge.set_status("A1", "idle", "s1")
    assert edge.covered_share() == 1.0 and edge.units == {"A1": "idle"} and set(edge.covers) == {"s1"}
    assert edge.check_relocate("A1", "s2", 0.0).bound_by == ("known_station",)  # never to a neighbour's station


def test_a_worker_on_another_machine_finds_its_district_here() -> None:
    import dataclasses

    from aicity.domains.safety.layout import on_this_machine

    _, parts = _split()
    d2 = parts[1].scenario
    elsewhere = dataclasses.replace(d2, path="/another/machine/gridcity-2/districts-2/d2/d2.sumocfg")
    assert on_this_machine(elsewhere).path == d2.path
    assert on_this_machine(d2) is d2
    cologne = safety.resolve("cologne8-ems")
    if cologne is not None:
        assert on_this_machine(cologne) is cologne
