"""Real SUMO runs (libsumo): detectors against SUMO's own counts, the loop, the edge in SUMO, safe state, EVs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aicity.core.domain import Domain, ProposedAction, RunServices, Snapshot, Twin, discover
from aicity.core.errors import UserError
from aicity.domains.mobility import domain
from aicity.domains.mobility.bench import BENCH_KEYS, bench_record, run_episode
from aicity.domains.mobility.scenarios import BUILTIN, require
from aicity.domains.mobility.twin import EV_VTYPE, SumoTwin, TwinConfig

pytest.importorskip("libsumo")
pytestmark = pytest.mark.sumo


def _window(name: str, seconds: float, offset: float = 0.0):  # type: ignore[no-untyped-def]
    scen = require(name)
    return dataclasses.replace(scen, begin_s=scen.begin_s + offset, end_s=scen.begin_s + offset + seconds)


def test_domain_is_discovered() -> None:
    found = discover()
    assert isinstance(found["mobility"], Domain)
    names = {s.name for s in domain.scenarios()}
    assert {"grid3x3", "cologne8", "ingolstadt7", "grid4x4"} <= names


def test_missing_or_broken_scenarios_raise_one_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown mobility scenario 'nowhere'"):
        require("nowhere")
    with pytest.raises(UserError, match="does not exist"):
        domain.resolve(str(tmp_path / "missing.sumocfg"))
    bad = tmp_path / "bad.sumocfg"
    bad.write_text("<configuration><input><net-file value='x.net.xml'/>")
    with pytest.raises(UserError, match="does not parse"):
        domain.resolve(str(bad))
    dangling = tmp_path / "dangling.sumocfg"
    dangling.write_text("<configuration><input><net-file value='x.net.xml'/></input></configuration>")
    with pytest.raises(UserError, match="refers to"):
        domain.resolve(str(dangling))


def test_user_sumocfg_begin_end_honoured(tmp_path: Path) -> None:
    src = BUILTIN["grid3x3"].parent
    cfg = tmp_path / "mine.sumocfg"
    cfg.write_text(
        f"<configuration><input><net-file value='{src / 'grid3x3.net.xml'}'/>"
        f"<route-files value='{src / 'grid3x3.rou.xml'}'/></input>"
        "<time><begin value='100'/><end value='160'/></time></configuration>")
    scen = domain.resolve(str(cfg))
    assert scen is not None and (scen.begin_s, scen.end_s) == (100.0, 160.0)
    twin = domain.open_twin(dataclasses.replace(scen, params={"ev_per_hour": 0}), seed=3, mode="smart",
                            services=RunServices())
    assert isinstance(twin, Twin)
    twin.start()
    while not twin.done():
        twin.advance(twin.decision_interval_s)
    assert twin.elapsed_s() == 60.0
    res = twin.close()
    assert res.extra["sim_s"] == 60.0 and res.extra["counts"]["vehicles"] > 0


def test_detectors_match_sumo_lane_counts() -> None:
    import libsumo

    twin = SumoTwin(_window("grid3x3", 400), seed=1, mode="smart", config=TwinConfig(ev_per_hour=0))
    twin.start()
    assert twin.net is not None
    checked = 0
    try:
        for _ in range(12):
            twin.advance(30)
            ents = {e.id: e for e in twin.observe()}
            for lane, pieces in twin.net.in_groups.items():
                full = all(p.start_pos <= 0.01 and p.end_pos >= twin.net.lanes[p.lane].length - 0.01
                           for p in pieces)
                if not full:
                    continue
                e = ents[f"urn:ngsi-ld:TrafficFlowObserved:in:{lane}"]
                lanes = [p.lane for p in pieces]
                assert e.get("queue") == sum(libsumo.lane.getLastStepHaltingNumber(ln) for ln in lanes)
                count = sum(libsumo.lane.getLastStepVehicleNumber(ln) for ln in lanes)
                # a lane-area detector also sees a vehicle whose tail is still on the lane
                assert count <= e.get("vehicleCount") <= count + len(lanes)
                checked += 1
            assert any(e.get("queue", 0) > 0 for e in ents.values() if e.type == "TrafficFlowObserved")
    finally:
        twin.close()
    assert checked > 100


def test_max_pressure_beats_fixed_time_and_records_decisions() -> None:
    scen = "grid3x3"
    fixed, _ = run_episode(scen, "fixed", 2, duration_s=1500)
    mp, _ = run_episode(scen, "maxpressure", 2, duration_s=1500)
    assert mp.kpis["delay_s"] < 0.8 * fixed.kpis["delay_s"], (mp.kpis["delay_s"], fixed.kpis["delay_s"])
    assert mp.kpis["never_inserted"] == 0
    assert mp.extra["counts"]["actions_applied"] > 100 and fixed.extra["counts"]["actions_applied"] == 0
    rec = bench_record(scen, "maxpressure", 2, mp, 1.0)
    assert tuple(rec) == (*BENCH_KEYS, "groups")
    assert set(rec["groups"]["district"]) == {"east", "north", "south", "west"}      # grid3x3's TAZ
    assert list(rec["groups"]["time_of_day"]) == ["00:00–00:15", "00:15–00:30"]      # 1500 s from 00:00
    assert set(mp.groups) >= {"signal", "district", "time_of_day"}


def test_edge_limits_hold_in_sumo_and_safe_state_returns_to_program() -> None:
    import random

    import libsumo

    twin = SumoTwin(_window("grid3x3", 300), seed=1, mode="ai", config=TwinConfig(ev_per_hour=0))
    twin.start()
    rng = random.Random(5)
    history: list[str] = []
    try:
        for _ in range(150):
            twin.actuate(ProposedAction(target="urn:ngsi-ld:TrafficSignal:B1", action="set_phase",
                                        params={"phase": rng.randrange(2)}))
            twin.advance(1)
            history.append(libsumo.trafficlight.getRedYellowGreenState("B1"))
        twin.safe_state()
        twin.advance(twin.decision_interval_s)
        modes = {e.get("controlMode") for e in twin.observe() if e.type == "TrafficSignal"}
        assert modes == {"fixed"}
        assert libsumo.trafficlight.getProgram("B1") == "0"
    finally:
        twin.close()
    runs: list[list[str | int]] = []
    for s in history:
        if runs and runs[-1][0] == s:
            runs[-1][1] = int(runs[-1][1]) + 1
        else:
            runs.append([s, 1])
    greens = [r for r in runs[1:-1] if "y" not in str(r[0])]
    assert greens, "no phase change happened"
    for i, (state, length) in enumerate(runs[1:-1], start=1):
        if "y" in str(state):
            assert length == 3
        else:
            assert int(length) >= 7
            assert "y" in str(runs[i + 1][0]), "a change without yellow"


def test_emergency_vehicles_same_in_both_modes_and_observable() -> None:
    plans = []
    for mode in ("smart", "ai"):
        twin = SumoTwin(_window("grid3x3", 600), seed=4, mode=mode, config=TwinConfig(ev_per_hour=30))
        twin.start()
        seen = []
        refused = 0
        while not twin.done():
            ents = twin.observe()
            evs = [e for e in ents if e.type == "EmergencyVehicle"]
            seen.extend(evs)
            for ev in evs:
                for nxt in ev.get("nextSignals")[:1]:
                    out = twin.actuate(ProposedAction(target=nxt["signal"], action="preempt",
                                                      params={"phase": nxt["servingPhases"][0]}))
                    refused += out.refused and "fixed_time_mode" in out.bound_by
            snap = Snapshot(twin.now(), twin.elapsed_s(), {e.id: e for e in ents})
            assert snap.of_type("TrafficSignal")
            twin.advance(10)
        res = twin.close()
        plans.append(twin.ev_plan)
        assert seen and all(e.get("remainingRoute") for e in seen)
        if mode == "smart":
            assert refused > 0 and res.extra["counts"]["preemptions"] == 0
        else:
            assert res.extra["counts"]["preemptions"] > 0
        assert res.extra["counts"]["ev_trips"] == 5
    assert plans[0] == plans[1] and len(plans[0]) == 5
    assert max(p["signals"] for p in plans[0]) >= 3


def test_emergency_vehicle_type_and_reported_phases() -> None:
    """EVs are SUMO's vClass emergency at the configured speed factor; the phases they report are consistent."""
    twin = SumoTwin(_window("grid3x3", 400), seed=4, mode="ai", config=TwinConfig(ev_per_hour=40,
                                                                               ev_speed_factor=1.25))
    twin.start()
    try:
        vt = twin._sumo.vehicletype
        assert vt.getVehicleClass(EV_VTYPE) == "emergency"
        assert vt.getSpeedFactor(EV_VTYPE) == 1.25 and vt.getSpeedDeviation(EV_VTYPE) == 0.0
        items = []
        while not twin.done() and len(items) < 20:
            for ev in (e for e in twin.observe() if e.type == "EmergencyVehicle"):
                items.extend(ev.get("nextSignals"))
            twin.advance(5)
    finally:
        twin.close()
    assert items
    for it in items:
        greens = twin.edges[it["signal"].rsplit(":", 1)[1]].greens
        assert set(it["protectedPhases"]) <= set(it["servingPhases"])
        assert set(it["clearingPhases"]) <= set(it["servingPhases"])
        assert all(greens[p][it["linkIndex"]] == "G" for p in it["protectedPhases"])
    assert any(it["clearingPhases"] for it in items)


def test_resco_cologne8_window_max_pressure_below_fixed() -> None:
    # first 15 min of 07:00-08:00: fixed 40.5 s vs max-pressure 21.3 s (seed 1), a large and stable gap
    mp, wall = run_episode("cologne8", "maxpressure", 1, duration_s=900)
    fixed, _ = run_episode("cologne8", "fixed", 1, duration_s=900)
    assert mp.extra["sim_s"] == 900 and mp.extra["counts"]["vehicles"] > 300
    assert set(mp.groups["signal"]) and len(mp.extra["signal_xy"]) == 8
    assert mp.kpis["delay_s"] < 0.8 * fixed.kpis["delay_s"], (mp.kpis["delay_s"], fixed.kpis["delay_s"])
    assert mp.kpis["never_inserted"] == 0
    assert wall < 60


def test_traci_fallback_gives_identical_results() -> None:
    pytest.importorskip("traci")
    scen = _window("grid3x3", 200)
    delays = []
    for use_traci in (False, True):
        twin = SumoTwin(scen, seed=1, mode="smart", config=TwinConfig(ev_per_hour=0, use_traci=use_traci))
        twin.start()
        while not twin.done():
            twin.observe()
            twin.advance(10)
        delays.append(twin.close().kpis["delay_s"])
    assert delays[0] == delays[1] > 0
