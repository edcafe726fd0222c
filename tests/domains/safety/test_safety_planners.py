"""Planners are pure and explain themselves; live estimates change the choice when detectors see a jam."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from safety_fixtures import ring

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property, urn
from aicity.domains.safety.const import AMBULANCE_TYPE, INCIDENT_TYPE, SPEED_TYPE
from aicity.domains.safety.forecast import IncidentForecast
from aicity.domains.safety.mexclp import coverage_matrix
from aicity.domains.safety.planners import FORECAST_KEY, RelocationParams, dispatch_actions, relocation_actions


def snapshot(jam: bool = False, relocatable: bool = False) -> Snapshot:
    now = datetime(2024, 1, 1, 7, tzinfo=UTC)
    ents = [Entity(urn(INCIDENT_TYPE, "I1"), INCIDENT_TYPE, {
                "roadSegment": Property("c"), "zone": Property("z1"), "priority": Property(1),
                "status": Property("reported"), "callTime": Property(5.0)}),
            Entity(urn(AMBULANCE_TYPE, "A1"), AMBULANCE_TYPE, {
                "status": Property("idle"), "roadSegment": Property("a"), "homeStation": Property("a"),
                "relocatable": Property(False)}),
            Entity(urn(AMBULANCE_TYPE, "A2"), AMBULANCE_TYPE, {
                "status": Property("returning"), "roadSegment": Property("b"), "homeStation": Property("a"),
                "destination": Property("a"), "relocatable": Property(relocatable)})]
    if jam:
        ents.append(Entity(urn(SPEED_TYPE, "c"), SPEED_TYPE, {"roadSegment": Property("c"),
                                                               "averageVehicleSpeed": Property(0.5)}))
        ents.append(Entity(urn(SPEED_TYPE, "a"), SPEED_TYPE, {"roadSegment": Property("a"),
                                                               "averageVehicleSpeed": Property(None)}))
    return Snapshot(now, 60.0, {e.id: e for e in ents})


def test_closest_idle_picks_the_nearest_and_explains() -> None:
    smap = ring()
    out = dispatch_actions(snapshot(), smap, live=False, name="t")
    assert len(out) == 1
    p = out[0]
    assert p.target == urn(AMBULANCE_TYPE, "A2") and p.params["incident"] == urn(INCIDENT_TYPE, "I1")
    assert p.params["eta_s"] == 10.0  # b → c
    assert "A2" in p.params["explanation"] and "next closest, A1" in p.params["explanation"]
    assert "20 s" in p.params["explanation"]  # the alternative's time: a → b → c


def test_live_costs_only_from_detectors_and_purity() -> None:
    smap = ring()
    snap = snapshot(jam=True)
    before = {k: e.to_ngsi() for k, e in snap.entities.items()}
    first = dispatch_actions(snap, smap, live=True, name="t")
    assert first == dispatch_actions(snap, smap, live=True, name="t")
    assert {k: e.to_ngsi() for k, e in snap.entities.items()} == before
    assert first[0].params["eta_s"] == 66.7  # 100 m at 1.5 m/s (0.5 m/s seen, floored): c's detector sees a jam
    assert dispatch_actions(snap, smap, live=False, name="t")[0].params["eta_s"] == 10.0


def test_dmexclp_moves_a_freed_ambulance_to_uncovered_demand() -> None:
    smap = dataclasses.replace(ring(), zones={"z1": ("a",), "z2": ("b", "c")}, sites={"z1": "a", "z2": "b"})
    times = {s: smap.times_from(s) for s in ("a", "b")}
    covers = coverage_matrix(times, ["a", "b"], {"z1": "a", "z2": "b"}, 5.0)
    fc = {FORECAST_KEY.format(zone="z1"): {"mean": 1.0}}
    none = relocation_actions(snapshot(relocatable=False), fc, smap, covers, {"z1": 1.0, "z2": 1.0},
                              RelocationParams())
    assert none == []
    moves = relocation_actions(snapshot(relocatable=True), fc, smap, covers, {"z1": 1.0, "z2": 1.0},
                               RelocationParams())
    assert len(moves) == 1 and moves[0].params["station"] == "b"  # A1 already covers z1 at a
    assert "expected coverage" in moves[0].params["explanation"]


def test_incident_forecast_has_intervals() -> None:
    from aicity.domains.mobility.scenarios import read_sumocfg, resolve
    from aicity.domains.safety.geo import load_map

    scen = resolve("cologne8")
    assert scen is not None and scen.path is not None
    smap = load_map(read_sumocfg(scen.path).net, 3, 1)
    fc = IncidentForecast(smap, begin_s=25200, load_multiplier=100.0)
    snap = Snapshot(datetime(2024, 1, 1, 7, tzinfo=UTC), 0.0, {})
    fc.learn(snap)
    out = fc.forecast(snap)
    assert set(out) == {FORECAST_KEY.format(zone=z) for z in smap.zones}
    for v in out.values():
        assert 0 <= v["lo90"] <= v["lo80"] <= v["mean"] <= v["hi80"] <= v["hi90"]
    assert sum(v["mean"] for v in out.values()) > 0
