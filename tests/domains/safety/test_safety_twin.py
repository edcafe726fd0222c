"""The EMS twin on real SUMO (short windows): ambulances are SUMO emergency vehicles among the traffic, bad input
is dead-lettered and never acted on, and in a city with mobility the ambulances get signal preemption."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from aicity.core.domain import RunServices
from aicity.domains.safety import domain
from aicity.domains.safety.const import RESPONDING

pytest.importorskip("libsumo")
pytestmark = pytest.mark.sumo


def _scenario(name: str, seconds: float, **params: object):  # type: ignore[no-untyped-def]
    scen = domain.resolve(name)
    assert scen is not None
    return dataclasses.replace(scen, end_s=scen.begin_s + seconds, params={**scen.params, **params})


def test_ambulances_drive_in_sumo_as_emergency_vehicles() -> None:
    scen = _scenario("cologne8-ems-drill", 120)
    twin = domain.open_twin(scen, seed=3, mode="smart", services=RunServices())
    twin.start()
    try:
        twin.advance(10)
        from aicity.core.checks import _snapshot

        snap = _snapshot(twin)
        proposals = [p for planner in domain.planners(scen, "smart") for p in planner(snap, {})]
        assert len(proposals) == 2  # three drill calls waiting, two ambulances
        for p in proposals:
            assert twin.actuate(p).status == "applied"
            assert "closest available unit" in p.params["explanation"]
        twin.advance(10)
        api = twin.host.api  # type: ignore[attr-defined]
        ours = [v for v in api.vehicle.getIDList() if v.startswith("aicity_amb_")]
        assert ours and all(api.vehicle.getVehicleClass(v) == "emergency" for v in ours)
        units: Any = twin.units  # type: ignore[attr-defined]
        assert any(u.status == RESPONDING for u in units.values())
        again = twin.actuate(proposals[0])
        assert again.refused and again.bound_by
    finally:
        res = twin.close()
    assert res.extra["counts"]["calls"] == 3


def test_a_standing_unit_leaves_from_the_end_of_its_edge() -> None:
    # a unit stands where its last trip arrived (the end of its edge, where planners and oracles put it): its next
    # trip starts there, not back at the edge's start
    from aicity.domains.safety.twin import STAND_BACK_M

    scen = _scenario("cologne8-ems-drill", 60)
    twin = domain.open_twin(scen, seed=3, mode="smart", services=RunServices())
    twin.start()
    try:
        twin.advance(10)
        from aicity.core.checks import _snapshot

        snap = _snapshot(twin)
        for p in [p for planner in domain.planners(scen, "smart") for p in planner(snap, {})]:
            assert twin.actuate(p).status == "applied"
        twin.advance(1)
        api = twin.host.api  # type: ignore[attr-defined]
        units: Any = twin.units  # type: ignore[attr-defined]
        length = twin.map.length  # type: ignore[attr-defined]
        starts = [(u.route[0], api.vehicle.getLanePosition(u.vid)) for u in units.values()
                  if u.vid and api.vehicle.getRoadID(u.vid) == u.route[0]]
        assert starts
        for edge, pos in starts:  # one second's drive at most from where it stood
            assert length[edge] - STAND_BACK_M - 20.0 <= pos <= length[edge]
    finally:
        twin.close()


def test_ai_dispatch_drives_its_planned_route_and_records_travel_times() -> None:
    import dataclasses as dc

    scen = _scenario("cologne8-ems-drill", 120, record_travel_times=True)
    twin = domain.open_twin(scen, seed=3, mode="ai", services=RunServices())
    twin.start()
    try:
        twin.advance(10)
        from aicity.core.checks import _snapshot

        snap = _snapshot(twin)
        proposals = [p for p in domain.planners(scen, "ai")[0](snap, {})]
        assert len(proposals) == 2 and all(p.params["route"] for p in proposals)
        first, second = proposals
        # a route that does not start where the ambulance is, is not followed: SUMO's own routing is used
        bad = dc.replace(second, params={**second.params, "route": ["no-such-road", *second.params["route"]]})
        assert twin.actuate(first).status == "applied" and twin.actuate(bad).status == "applied"
        twin.advance(10)
        api = twin.host.api  # type: ignore[attr-defined]
        units: Any = twin.units  # type: ignore[attr-defined]
        routes = {u.id: tuple(api.vehicle.getRoute(u.vid)) for u in units.values() if u.vid}
        unit = first.target.rsplit(":", 1)[-1]
        assert routes[unit] == tuple(first.params["route"])
    finally:
        res = twin.close()
    table = res.extra["travel_times"]
    assert table["bucket_s"] == 60.0
    ff = twin.map.free_flow_costs()  # type: ignore[attr-defined]
    assert set(table["edges"]) == set(ff) and all(len(v) == 1 and v[0] > 0 for v in table["edges"].values())


def test_bad_input_is_dead_lettered_and_never_acted_on() -> None:
    from aicity.core.city import single
    from aicity.runner import bench_run

    scen = _scenario("cologne8-ems", 900, bad_inputs=True, load_multiplier=40.0, service_scale=0.25,
                     drill_calls=1)
    ep = bench_run(single(domain, scen), mode="smart", seed=2)
    res = ep.results["safety"]
    reasons = " | ".join(d["reason"] for d in res.extra["dead_letters"])
    for reason in ("unknown place", "in the future", "off the map", "duplicate report"):
        assert reason in reasons
    acted = {i["id"] for i in res.extra["incidents"] if i["unit"]}
    assert not acted & {"X-unknown", "X-future"}
    assert res.kpis["calls_reached"] >= 1
    # the loop kept them: dead letters in the run's store, counted as rejected input
    assert ep.stats.rejected_observations == len(res.extra["dead_letters"]) >= 4


def test_city_ambulances_get_mobility_preemption() -> None:
    from aicity.runner import bench_run, load_city

    opts = {"safety.load_multiplier": 100.0, "safety.service_scale": 0.25, "safety.drill_calls": 3}
    city = load_city("cologne8-ems-city", opts, 600)
    with_pre = bench_run(city, mode="ai", seed=1)
    assert with_pre.results["mobility"].extra["counts"]["preemptions"] > 0
    assert with_pre.results["mobility"].extra["counts"]["ev_trips"] == 0  # only the safety domain's ambulances
    assert with_pre.results["safety"].kpis["calls_reached"] >= 2


def test_aicity_run_writes_a_report_with_plots(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from aicity.runner import RunSpec, run

    rep = run(RunSpec("cologne8-ems-drill", ("smart", "ai"), 1, tmp_path, duration_s=120.0), jobs=2,
              show_progress=False)
    assert (tmp_path / "report.md").is_file()
    for plot in ("response_distribution.png", "map_zone.png", "series_ambulance_A1_from_home_m.png",
                 "ambulance_positions.png"):
        assert (tmp_path / plot).is_file(), plot
    where = rep["modes"]["ai"]["domains"]["safety"]["extra"]["unit_positions"]
    assert sorted(where) == ["A1", "A2"] and [p[0] for p in where["A1"]] == [60.0, 120.0]  # every minute
    kpis = rep["modes"]["ai"]["domains"]["safety"]["kpis"]
    assert kpis["calls_reached"] >= 2 and kpis["response_mean_s"] > 0
    traffic = rep["modes"]["ai"]["domains"]["safety"]["extra"]["traffic"]  # the background traffic's delay
    assert traffic["vehicles"] > 10 and kpis["traffic_delay_s"] == pytest.approx(
        traffic["time_loss_s"] / traffic["vehicles"], abs=1e-3) and kpis["traffic_delay_s"] > 0


def _held_unit(stuck_bypass_s: float) -> tuple[Any, str, tuple[str, ...], Any]:
    """A drill run in which one responding ambulance is held at a standstill (SUMO ``setSpeed(0)``) for 60 s; the
    roads ahead of it when it was told to stop (it may roll on to the next before it stands)."""
    from aicity.core.checks import _snapshot

    scen = _scenario("cologne8-ems-drill", 240, stuck_bypass_s=stuck_bypass_s)
    twin = domain.open_twin(scen, seed=3, mode="smart", services=RunServices())
    twin.start()
    twin.advance(10)
    for p in [p for planner in domain.planners(scen, "smart") for p in planner(_snapshot(twin), {})]:
        assert twin.actuate(p).status == "applied"
    twin.advance(2)
    api = twin.host.api  # type: ignore[attr-defined]
    units: Any = twin.units  # type: ignore[attr-defined]
    held = max((u for u in units.values() if u.vid and u.status == RESPONDING),
               key=lambda u: len(api.vehicle.getRoute(u.vid)) - api.vehicle.getRouteIndex(u.vid))
    route = tuple(api.vehicle.getRoute(held.vid))
    ahead = route[api.vehicle.getRouteIndex(held.vid) + 1:]
    assert ahead, "the held unit must have a road left ahead of it"
    api.vehicle.setSpeed(held.vid, 0.0)
    twin.advance(60)
    return twin, held.id, ahead, api


def test_an_ambulance_standing_in_a_gridlock_is_moved_on_along_its_route() -> None:
    # SUMO runs with teleporting off, so a gridlock never clears by itself; an ambulance that has stood
    # stuck_bypass_s mid-trip goes on from the next road of its route, and the move is recorded
    twin, uid, ahead, _api = _held_unit(30.0)
    try:
        units: Any = twin.units  # type: ignore[attr-defined]
        (move,) = twin.bypasses  # type: ignore[attr-defined]
        assert move["unit"] == uid and move["to"] in ahead and move["stood_s"] >= 30.0
        assert move["skipped"] == 0  # the next road has room in the drill's light traffic: none passed over
        assert 30.0 <= move["time_s"] - 12.0 <= 50.0  # checked every 10 s once it has stood 30 s
        call = twin.calls[units[uid].incident]  # type: ignore[attr-defined]
        assert call.arrival_s is not None and call.arrival_s >= move["time_s"]  # it went on and reached its call
    finally:
        res = twin.close()
    assert res.extra["counts"]["stuck_bypasses"] == 1 and res.extra["stuck_bypasses"][0]["unit"] == uid


def test_with_the_bypass_off_a_held_ambulance_stays_where_it_stands() -> None:
    twin, uid, _ahead, api = _held_unit(0.0)
    try:
        u: Any = twin.units[uid]  # type: ignore[attr-defined]
        assert twin.bypasses == []  # type: ignore[attr-defined]
        assert api.vehicle.getWaitingTime(u.vid) >= 55.0 and u.status == RESPONDING
    finally:
        res = twin.close()
    assert res.extra["counts"]["stuck_bypasses"] == 0


def test_a_run_with_no_call_reports_its_response_kpis_undefined_not_zero() -> None:
    # cologne8 at base load has about one call a month: a short window has none, and "0 s mean response, 0 % late"
    # would be a measurement nobody made
    import math

    twin = domain.open_twin(_scenario("cologne8-ems", 120), seed=1, mode="ai", services=RunServices())
    twin.start()
    try:
        twin.advance(60)
    finally:
        res = twin.close()
    assert res.extra["counts"]["calls"] == 0
    undefined = {k for k, v in res.kpis.items() if math.isnan(v)}
    assert undefined == {"response_mean_s", "response_p90_s", "late_frac", "within_target_p1", "within_target_p2",
                         "within_15min", "within_nfpa_travel", "zone_p90_worst_s", "zone_p90_best_worst",
                         "relocations_per_call"}
    assert res.kpis["busy_frac"] == 0.0 and res.kpis["calls_reached"] == 0.0 and res.kpis["coverage"] > 0
    assert res.extra["notes"][0].startswith("no call came in this window: 0.0")  # said, with the expected number
