"""The road incident: it blocks exactly its lanes for its duration and clears after, traffic is routed around it,
its patients' calls bring ambulances; dispatch proposals need the signals on their route, and ambulances en route
report the signals still ahead."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from safety_fixtures import ring

from aicity.core.errors import UserError
from aicity.domains.safety.const import AMBULANCE_TYPE, INCIDENT_TYPE, RESPONDING, TRAFFIC_INCIDENT_TYPE
from aicity.domains.safety.planners import dispatch_actions
from aicity.domains.safety.roadblock import RoadIncidentSpec, arterial_edges, pick_edge, resolve_spec
from aicity.domains.safety.routes import route_signals, shortest_route

AT_S, DURATION_S, WINDOW_S = 30.0, 240.0, 360.0


def _cologne8_map() -> Any:
    from aicity.domains.mobility.scenarios import read_sumocfg, resolve
    from aicity.domains.safety.geo import load_map

    scen = resolve("cologne8")
    if scen is None or scen.path is None:
        pytest.skip("cologne8 is not installed")
    return load_map(read_sumocfg(scen.path).net, 3, 1)


def test_arterials_are_multi_lane_and_the_pick_is_seeded() -> None:
    smap = _cologne8_map()
    arts = arterial_edges(smap)
    assert arts and all(len(smap.lanes[e]) >= 2 for e in arts)
    picks = [pick_edge(smap, np.random.default_rng([s, 7004])) for s in range(6)]
    assert picks == [pick_edge(smap, np.random.default_rng([s, 7004])) for s in range(6)]
    assert set(picks) <= set(arts)
    spec = resolve_spec(RoadIncidentSpec(at_s=0.0), smap, np.random.default_rng(1))
    assert spec.lanes == len(smap.lanes[spec.edge]) - 1  # all but one by default
    with pytest.raises(UserError, match="exceeds"):
        resolve_spec(RoadIncidentSpec(at_s=0.0, edge=spec.edge, lanes=9), smap, np.random.default_rng(1))
    with pytest.raises(UserError, match="not a road segment"):
        resolve_spec(RoadIncidentSpec(at_s=0.0, edge="no-such-road"), smap, np.random.default_rng(1))


def test_incident_options_are_validated() -> None:
    from aicity.core.meta import check_domain_options
    from aicity.domains.safety.meta import META

    with pytest.raises(UserError, match="incident_at_s"):
        check_domain_options("safety", META, {"incident_at_s": 12.5})
    with pytest.raises(UserError, match="needs incident_at_s"):
        check_domain_options("safety", META, {"incident_edge": "x"})
    with pytest.raises(UserError, match="incident_lanes"):
        check_domain_options("safety", META, {"incident_at_s": 10, "incident_lanes": -1})


def test_dispatch_needs_the_signals_on_its_route() -> None:
    from test_safety_planners import snapshot

    smap = dataclasses.replace(ring(), turn_signal={("b", "c"): "J1", ("c", "a"): "J2"})
    assert shortest_route(smap.succ, "a", "c", smap.free_flow_costs()) == ["a", "b", "c"]
    assert route_signals(["a", "b", "c", "a"], smap.turn_signal) == ("urn:ngsi-ld:TrafficSignal:J1",
                                                                      "urn:ngsi-ld:TrafficSignal:J2")
    (p,) = dispatch_actions(snapshot(), smap, live=False, name="t")
    assert p.needs == ("urn:ngsi-ld:TrafficSignal:J1",)  # A2 from b to c crosses J1 only


@pytest.fixture(scope="module")
def run() -> dict[str, Any]:
    """One smart-mode twin with a road incident, driven by its planners; what the test asserts, recorded."""
    pytest.importorskip("libsumo")
    from aicity.core.checks import _snapshot
    from aicity.core.domain import RunServices
    from aicity.domains.mobility.network import load_network
    from aicity.domains.safety import domain

    scen = domain.resolve("cologne8-ems")
    assert scen is not None
    scen = dataclasses.replace(scen, end_s=scen.begin_s + WINDOW_S, params={
        **scen.params, "incident_at_s": AT_S, "incident_duration_s": DURATION_S})
    twin: Any = domain.open_twin(scen, seed=1, mode="smart", services=RunServices())
    twin.start()
    rb = twin.roadblock
    lane = twin.host.api.lane
    rec: dict[str, Any] = {"edge": rb.spec.edge, "lanes": rb.lane_ids, "blocked": rb.blocked, "allowed": {},
                           "proposals": [], "ahead": [], "entities": {}, "crossing": [], "refs": set()}
    try:
        while not twin.done():
            twin.advance(10)
            el = twin.elapsed_s()
            rec["allowed"][el] = {ln: tuple(lane.getAllowed(ln)) for ln in rb.lane_ids}
            snap = _snapshot(twin)
            rec["entities"][el] = [e.to_ngsi() for e in snap.of_type(TRAFFIC_INCIDENT_TYPE)]
            rec["refs"] |= {(e.id, e.get("refTrafficIncident")) for e in snap.of_type(INCIDENT_TYPE)}
            for e in snap.of_type(AMBULANCE_TYPE):
                if e.get("status") == RESPONDING:
                    rec["ahead"].append(tuple(e.get("signalsAhead") or ()))
            if rb.active:
                veh = twin.host.api.vehicle
                rec["crossing"] += [v for v in rb.rerouted if v in veh.getIDList()
                                    and rb.spec.edge in veh.getRoute(v)[veh.getRouteIndex(v) + 1:]]
            for planner in domain.planners(scen, "smart"):
                for p in planner(snap, {}):
                    rec["proposals"].append((p, twin.actuate(p).status))
        rec["units"] = {u.id: u.dest for u in twin.units.values()}
    finally:
        res = twin.close()
    rec["result"] = res
    rec["signals"] = {f"urn:ngsi-ld:TrafficSignal:{s}" for s in load_network(twin.map.net_path).signals}
    return rec


@pytest.mark.sumo
def test_incident_blocks_exactly_its_lanes_for_its_duration(run: dict[str, Any]) -> None:
    before, during, after = run["allowed"][20.0], run["allowed"][AT_S + 10], run["allowed"][AT_S + DURATION_S + 10]
    assert run["blocked"] and len(run["blocked"]) == len(run["lanes"]) - 1
    for ln in run["lanes"]:
        assert "passenger" in before[ln]
        assert during[ln] == (("emergency",) if ln in run["blocked"] else before[ln])
        assert after[ln] == before[ln]  # restored as it was
    for el, allowed in run["allowed"].items():
        closed = any(allowed[ln] == ("emergency",) for ln in run["lanes"])
        assert closed == (AT_S <= el < AT_S + DURATION_S), el
    rec = run["result"].extra["road_incident"]
    assert (rec["started_s"], rec["cleared_s"]) == (AT_S, AT_S + DURATION_S)
    assert rec["blocked_lanes"] == list(run["blocked"]) and rec["edge"] == run["edge"]


@pytest.mark.sumo
def test_traffic_is_routed_around_the_incident(run: dict[str, Any]) -> None:
    assert run["result"].extra["road_incident"]["rerouted_vehicles"] >= 1
    assert run["crossing"] == []  # no rerouted vehicle still plans to cross while it lasts


@pytest.mark.sumo
def test_incident_is_published_while_it_lasts(run: dict[str, Any]) -> None:
    assert run["entities"][20.0] == []
    (active,) = run["entities"][AT_S + 10]
    assert active["status"]["value"] == "active" and active["roadSegment"]["value"] == run["edge"]
    assert active["blockedLanes"]["value"] == list(run["blocked"])
    (cleared,) = run["entities"][WINDOW_S]
    assert cleared["status"]["value"] == "cleared" and cleared["blockedLanes"]["value"] == []
    assert cleared["clearedTime"]["value"] == AT_S + DURATION_S


@pytest.mark.sumo
def test_patients_calls_bring_ambulances_that_need_their_route_signals(run: dict[str, Any]) -> None:
    calls = [i for i in run["result"].extra["incidents"] if i["id"].startswith("T1-")]
    assert len(calls) == 3 and all(c["edge"] == run["edge"] and c["priority"] == 1 for c in calls)
    refs = {i: r for i, r in run["refs"] if r is not None}
    assert refs and all(i.endswith(("T1-P1", "T1-P2", "T1-P3")) for i in refs)
    assert set(refs.values()) == {"urn:ngsi-ld:TrafficIncident:T1"}
    sent = [p for p, status in run["proposals"] if p.action == "dispatch" and status == "applied"
            and "T1-" in p.params["incident"]]
    assert sent, "no ambulance was dispatched to the incident"
    for p in sent:
        assert p.needs and set(p.needs) <= run["signals"]
    assert any(ahead and set(ahead) <= run["signals"] for ahead in run["ahead"])


def test_no_incident_by_default() -> None:
    from aicity.domains.safety import options_of, twin_config
    from aicity.domains.safety.scenarios import resolve

    scen = resolve("cologne8-ems")
    assert scen is not None
    assert not twin_config(options_of(scen)).road_incident.enabled


@pytest.mark.sumo
def test_city_incident_rides_the_shared_sumo_and_gets_ambulances() -> None:
    pytest.importorskip("libsumo")
    from aicity.runner import bench_run, load_city

    city = load_city("cologne8-ems-city", {"safety.incident_at_s": 30, "safety.incident_duration_s": 300}, 480)
    ep = bench_run(city, mode="ai", seed=1)
    res = ep.results["safety"]
    assert res.extra["road_incident"]["started_s"] == 30.0 and res.extra["road_incident"]["cleared_s"] == 330.0
    reached = [i for i in res.extra["incidents"] if i["id"].startswith("T1-") and i["arrival_s"] is not None]
    assert reached, "no ambulance reached the road incident"
    assert ep.results["mobility"].extra["counts"]["preemptions"] > 0
