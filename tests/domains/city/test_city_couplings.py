"""The built-in city on real SUMO and pandapower: each coupling's cause and effect, orchestration, what-if."""

from __future__ import annotations

from typing import Any

import pytest

from aicity.domains.city.scenarios import event_options
from aicity.runner import bench_run, load_city

CALM = "cologne8-city-calm"


def _at(mode: str, at_s: float, options: dict[str, Any], duration_s: float, seed: int = 1) -> dict[str, Any]:
    """What the twins show at ``at_s`` (a hook on the product's loop), and the episode."""
    seen: dict[str, Any] = {}

    def hook(loop: Any) -> None:
        tw = {p.name: p.twin for p in loop.parts}
        grid, coupler, mob = tw["energy"], tw["city"], tw["mobility"]
        seen["signal_bus"] = dict(coupler.signal_bus)
        seen["feeders"] = grid.feeders()
        seen["supplied"] = {b: grid.supplied(b) for b in grid.bus_districts()}
        seen["rygs"] = {t: mob.host.api.trafficlight.getRedYellowGreenState(t) for t in coupler.signal_bus}
        seen["refusal"] = {t: mob.actuate(_phase(t)).bound_by for t in coupler.signal_bus}

    ep = bench_run(load_city(CALM, options, duration_s), mode=mode, seed=seed, at_s=at_s, hook=hook)
    seen["episode"] = ep
    return seen


def _phase(tls: str) -> Any:
    from aicity.core.domain import ProposedAction

    return ProposedAction(f"urn:ngsi-ld:TrafficSignal:{tls}", "set_phase", {"phase": 0}, action_type="signal_phase")


def test_a_feeder_outage_darkens_exactly_the_signals_it_supplies() -> None:
    seen = _at("smart", 1100.0, event_options("outage"), 1200.0)  # trip at 600 s, battery 300 s, crew at 1800 s
    dead = set(seen["feeders"]["C"])
    on_c = {t for t, b in seen["signal_bus"].items() if b in dead}
    assert on_c and on_c != set(seen["signal_bus"])  # some signals on the dead feeder, some not
    for tls, state in seen["rygs"].items():
        if tls in on_c:
            assert set(state) == {"s"}, f"{tls} should be dark (all-way stop), shows {state}"
            assert "no_power" in seen["refusal"][tls]
        else:
            assert "s" not in set(state) or set(state) != {"s"}
            assert "no_power" not in seen["refusal"][tls]
    mob = seen["episode"].results["mobility"]
    assert mob.kpis["dark_signal_s"] > 0


def test_no_outage_no_dark_signal_and_every_ev_drives_to_its_charger() -> None:
    ep = bench_run(load_city(CALM, {}, None), mode="smart", seed=1)
    city = ep.results["city"]
    assert ep.results["mobility"].kpis["dark_signal_s"] == 0
    assert city.kpis["ev_trips"] > 0  # EV sessions became SUMO trips that arrived and plugged in
    assert city.kpis["ev_late_min"] >= 0
    assert city.extra["ev_trips"] + city.extra["ev_unarrived"] + city.extra["ev_plugged_direct"] > 0


def test_evs_plug_in_when_traffic_brings_them_not_when_planned() -> None:
    """Each EV plugs in at the second SUMO reports its arrival; traffic makes that differ from the plan, and the
    energy twin charges from then (its schedule shift is tested in tests/domains/energy)."""
    ep = bench_run(load_city(CALM, {}, None), mode="smart", seed=2)
    arrivals = ep.results["city"].extra["ev_arrivals"]
    direct = ep.results["city"].extra["ev_plugged_direct"]  # no drivable route found: plugged in as planned
    assert len(arrivals) > direct
    assert ep.results["energy"].extra["counts"]["plugged_in"] == len(arrivals) + direct
    assert any(abs(arrived - planned) >= 30 for _, planned, arrived in arrivals)
    assert all(25200 <= arrived <= 28800 for _, _, arrived in arrivals)


def test_ai_city_settles_conflicts_by_the_policy_and_says_why() -> None:
    opts = {**event_options("outage"), **event_options("incident")}
    ep = bench_run(load_city(CALM, opts, 1800.0), mode="ai", seed=1)
    assert ep.stats.priority_violations == 0
    assert ep.results["city"].kpis["priority_violations"] == 0
    assert ep.stats.by_domain["energy"]["proposals"] > 0 and ep.stats.by_domain["safety"]["proposals"] > 0
    ems = ep.results["city"].groups["district_ems"]  # equity across domains: EMS by the same districts
    assert ems and set(ems) <= {"NE", "NW", "SE", "SW"} and all(v > 0 for v in ems.values())


def test_ai_city_tries_the_dark_feeder_under_the_busiest_junction_and_avoids_its_gridlock() -> None:
    """The C feeder trips at 07:10; its load point Bus C1 feeds the largest junction and its last reading is over
    the tie. The energy planner alone keeps the set it can measure; AI City's stage weighs mobility's estimate of
    what the dark junction costs and takes the planner's trial, which the edge lets through once C1's load fits."""
    seen = {m: _at(m, 1700.0, event_options("outage"), 1800.0) for m in ("ablation", "ai")}
    junction = next(t for t, b in seen["ai"]["signal_bus"].items() if b == "Bus C1")
    assert seen["ablation"]["supplied"]["Bus C1"] is False
    assert seen["ai"]["supplied"]["Bus C1"] is True
    assert "s" not in seen["ai"]["rygs"][junction]  # lit again
    ai, ab = (seen[m]["episode"] for m in ("ai", "ablation"))
    assert ai.stats.substituted > 0 and ab.stats.substituted == 0
    assert ai.results["mobility"].kpis["dark_signal_s"] < ab.results["mobility"].kpis["dark_signal_s"]
    assert ai.stats.priority_violations == 0 < ab.stats.priority_violations  # the ablation kept the costlier need dark


@pytest.mark.parametrize("mode", ["smart", "ablation", "ai"])
def test_every_mode_reports_the_integrated_kpis(mode: str) -> None:
    from aicity.domains.city.meta import KPIS

    ep = bench_run(load_city(CALM, {}, 600.0), mode=mode, seed=3)
    assert set(ep.results["city"].kpis) == {k.name for k in KPIS}
    assert ep.results["city"].kpis["person_delay_s"] == pytest.approx(
        ep.results["mobility"].kpis["person_delay_s"], abs=1e-3)


def test_an_ev_whose_session_ends_drives_off_with_what_it_got() -> None:
    """Departures follow from charging: a session ending inside the window sends its car back into traffic."""
    import dataclasses

    picked: dict[str, Any] = {}

    def shorten(loop: Any) -> None:  # the driver comes back early: the session ends 2 minutes from now
        tw = {p.name: p.twin for p in loop.parts}
        grid, coupler = tw["energy"], tw["city"]
        now = grid.scenario.begin_s + grid.elapsed_s()
        for plug in grid.plugs.values():
            s = plug.session
            if s is not None and s.sid in coupler._dest:
                plug.session = dataclasses.replace(s, departure_s=now + 120.0)
                picked["sid"] = s.sid
                return

    ep = bench_run(load_city(CALM, {}, None), mode="smart", seed=1, at_s=3000.0, hook=shorten)
    leaving = ep.results["city"].extra["ev_departures"]
    assert picked and [d[0] for d in leaving] == [picked["sid"]]
    assert leaving[0][2] > 0  # it left with the energy it was charged


def test_the_coordinator_alone_is_refused_in_one_line() -> None:
    from aicity.core.errors import UserError

    with pytest.raises(UserError, match="does not run alone; run cologne8-city"):
        load_city("cologne8-coupling", {}, None)
