"""Grid → signals: cabinets on battery backup after mains is lost, dark signals, and their return (real SUMO)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aicity.core.capabilities import EdgeActionData
from aicity.core.domain import Outcome, ProposedAction, RunServices, Snapshot
from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.domains.mobility import domain
from aicity.domains.mobility.ai import ai_planner
from aicity.domains.mobility.kpis import Trip, person_delay, read_occupancy
from aicity.domains.mobility.planners import max_pressure
from aicity.domains.mobility.power import CabinetPower, SignalPowerPort
from aicity.domains.mobility.preemption import preemption_actions
from aicity.domains.mobility.safe_plan import resume_planner
from aicity.domains.mobility.scenarios import require
from aicity.domains.mobility.twin import SumoTwin, signal_urn

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SIG = "urn:ngsi-ld:TrafficSignal:J1"
BACKUP_S = 100.0
CUT_S, RESTORE_S = 60.0, 250.0  # elapsed seconds


# ----- the pure cabinet state machine ---------------------------------------------------------------------
def test_cabinet_runs_on_battery_for_the_backup_then_goes_dark_and_counts_seconds() -> None:
    p = CabinetPower(["A", "B"], backup_s=3.0)
    assert p.all_on_mains and p.source("A") == "mains"
    assert [(c.source, c.previous) for c in p.set_mains("A", False, 10.0)] == [("battery", "mains")]
    assert p.set_mains("A", False, 11.0) == []  # a second loss does not restart the battery clock
    seen = []
    for now in range(10, 16):
        seen += [(c.source, c.time) for c in p.tick(float(now))]
        p.count(1.0)
    assert seen == [("none", 13.0)] and p.dark == ["A"] and p.source("B") == "mains"
    assert (p.battery_s, p.dark_s) == (3.0, 3.0)
    assert [(c.source, c.previous) for c in p.set_mains("A", True, 16.0)] == [("mains", "none")]
    assert p.all_on_mains and p.set_mains("A", True, 17.0) == []
    with pytest.raises(KeyError):
        p.set_mains("nowhere", False, 0.0)


def test_zero_backup_or_an_old_outage_goes_dark_at_once() -> None:
    assert [c.source for c in CabinetPower(["A"], 0.0).set_mains("A", False, 5.0)] == ["battery", "none"]
    assert [c.source for c in CabinetPower(["A"], 300.0).set_mains("A", False, 500.0, lost_at=100.0)] == [
        "battery", "none"]


# ----- planners never command a dark signal ---------------------------------------------------------------
def _flow(lane: str, direction: str, queue: int) -> Entity:
    return Entity(f"urn:ngsi-ld:TrafficFlowObserved:{direction}:{lane}", "TrafficFlowObserved", {
        "queue": Property(queue), "vehicleCount": Property(queue), "laneCount": Property(1)})


def _signal(power: str, mode: str = "controlled", safe_hold: bool = False) -> Entity:
    phases = [{"index": 0, "state": "GGrr", "serves": [
                  {"lane": "ns_0", "to": ["s_0"], "detector": "urn:ngsi-ld:TrafficFlowObserved:in:ns_0"}]},
              {"index": 1, "state": "rrGG", "serves": [
                  {"lane": "ew_0", "to": ["w_0"], "detector": "urn:ngsi-ld:TrafficFlowObserved:in:ew_0"}]}]
    return Entity(SIG, "TrafficSignal", {
        "currentPhase": Property(0), "phaseKind": Property("green"), "nextPhase": Property(None),
        "timeInPhase": Property(20.0), "controlMode": Property(mode), "phases": Property(phases),
        "preemptPhase": Property(None), "preemptCooldownUntil": Property(None), "safeHold": Property(safe_hold),
        "limits": Property({"yellow_s": 3.0, "min_green_s": 7.0, "max_green_s": 60.0, "all_red_s": 0.0,
                            "max_hold_s": 40.0, "cooldown_s": 30.0}),
        "powerSource": Property(power)})


def _ev() -> Entity:
    ahead = [{"signal": SIG, "linkIndex": 2, "distance": 50.0, "state": "r", "servingPhases": [1]}]
    return Entity("urn:ngsi-ld:EmergencyVehicle:ev0", "EmergencyVehicle", {
        "position": Property([0.0, 0.0]), "speed": Property(10.0), "nextSignals": Property(ahead)})


@pytest.mark.parametrize("planner", [ai_planner, max_pressure, preemption_actions, resume_planner])
def test_planners_propose_nothing_for_a_dark_signal(planner: object) -> None:
    def run(power: str) -> list[ProposedAction]:
        safe = planner is resume_planner
        ents = [_signal(power, "fixed" if safe else "controlled", safe), _ev(), _flow("ns_0", "in", 1),
                _flow("ew_0", "in", 12), _flow("s_0", "out", 0), _flow("w_0", "out", 0)]
        snap = Snapshot(T0, 100.0, {e.id: e for e in ents})
        if planner is preemption_actions:
            return preemption_actions(snap)
        return planner(snap, {})  # type: ignore[operator,no-any-return]

    assert [p.target for p in run("mains")] == [SIG]
    assert [p.target for p in run("battery")] == [SIG]  # on battery the signal runs normally
    assert run("none") == []


# ----- real SUMO -----------------------------------------------------------------------------------------
def _twin(mode: str, services: RunServices | None = None) -> SumoTwin:
    scen = require("grid3x3")
    scen = dataclasses.replace(scen, end_s=scen.begin_s + 320,
                               params={"ev_per_hour": 0, "signal_backup_s": BACKUP_S})
    twin = domain.open_twin(scen, seed=1, mode=mode, services=services or RunServices())
    assert isinstance(twin, SumoTwin)
    return twin


def _states(twin: SumoTwin) -> dict[str, tuple[str, str]]:
    tl = twin._sumo.trafficlight
    return {s: (tl.getRedYellowGreenState(s), tl.getProgram(s)) for s in sorted(twin.edges)}


@dataclasses.dataclass
class Trace:
    """What one run showed: every signal's state and program after each step, and what was checked on the way."""

    twin: SumoTwin
    states: list[dict[str, tuple[str, str]]] = dataclasses.field(default_factory=list)
    refused: list[Outcome] = dataclasses.field(default_factory=list)
    dark: Entity | None = None
    battery: Entity | None = None
    restored_program: str = ""
    restored_phase: int = -1
    events: list[EdgeActionData] = dataclasses.field(default_factory=list)
    shared: dict[str, object] = dataclasses.field(default_factory=dict)
    kpis: dict[str, float] = dataclasses.field(default_factory=dict)


def _run(mode: str, cut: str | None) -> Trace:
    """Step a grid3x3 twin second by second; cut ``cut``'s mains at CUT_S and restore it at RESTORE_S."""
    pytest.importorskip("libsumo")
    services = RunServices()
    tr = Trace(_twin(mode, services), shared=services.shared)
    twin = tr.twin
    twin.start()
    try:
        while not twin.done():
            t = twin.elapsed_s()
            if cut is not None and t == CUT_S:
                twin.set_mains(cut, False)
            if cut is not None and t == CUT_S + 50:
                tr.battery = {e.id: e for e in twin.observe()}[signal_urn(cut)]
            if cut is not None and t == RESTORE_S:
                tr.dark = {e.id: e for e in twin.observe()}[signal_urn(cut)]
                tr.refused = [twin.actuate(ProposedAction(target=signal_urn(cut), action=a, params={"phase": 1}))
                              for a in ("set_phase", "preempt")]
                twin.set_mains(cut, True)
                tr.restored_program = twin._sumo.trafficlight.getProgram(cut)
                tr.restored_phase = twin._sumo.trafficlight.getPhase(cut)
            twin.advance(1)
            tr.states.append(_states(twin))
        tr.events = twin.edge_events()
    finally:
        tr.kpis = dict(twin.close().kpis)
    return tr


@pytest.mark.sumo
def test_cut_mains_battery_then_dark_then_program_back_others_untouched() -> None:
    ref = _run("smart", None)
    tr = _run("smart", "B1")
    twin = tr.twin
    assert tr.shared["signals"] is twin and isinstance(twin, SignalPowerPort)
    assert twin.net is not None
    sig = twin.net.signals["B1"]
    dark = "s" * len(sig.greens[0])
    dark_from = int(CUT_S + BACKUP_S)
    for k, (now, base) in enumerate(zip(tr.states, ref.states, strict=True)):
        t = k + 1  # elapsed seconds after the step
        assert {s: v for s, v in now.items() if s != "B1"} == {s: v for s, v in base.items() if s != "B1"}, t
        if t <= dark_from:
            assert now["B1"] == base["B1"], t  # on mains, then on battery: the signal runs normally
        elif t <= RESTORE_S:
            assert now["B1"][0] == dark, t  # dark: all-way stop on every link
        else:
            assert now["B1"][1] == sig.program_id and "s" not in now["B1"][0], t
    assert (tr.restored_program, tr.restored_phase) == (sig.program_id, 0)  # a power cycle restarts the program
    assert [(o.status, o.bound_by) for o in tr.refused] == [("refused", ("no_power",))] * 2
    assert tr.dark is not None and tr.battery is not None
    assert (tr.dark.get("powerSource"), tr.dark.get("controlMode"), tr.dark.get("currentPhase")) == (
        "none", "dark", None)
    assert tr.dark.attrs["powerSource"].observed_at is not None
    assert tr.battery.get("powerSource") == "battery" and tr.battery.get("controlMode") == "fixed"
    assert [(e["event"], e["time_s"]) for e in tr.events if e["target"] == signal_urn("B1")] == [
        ("battery", CUT_S), ("dark", CUT_S + BACKUP_S), ("mains", RESTORE_S)]
    assert tr.kpis["dark_signal_s"] == pytest.approx(RESTORE_S - CUT_S - BACKUP_S, abs=1.0)
    assert tr.kpis["battery_signal_s"] == pytest.approx(BACKUP_S, abs=1.0)
    assert ref.kpis["dark_signal_s"] == ref.kpis["battery_signal_s"] == 0.0


@pytest.mark.sumo
def test_ai_mode_goes_dark_and_takes_the_signal_back_after_the_power_cycle() -> None:
    tr = _run("ai", "B1")
    assert [o.bound_by for o in tr.refused] == [("no_power",)] * 2
    assert all(st["B1"][0] == "s" * len(st["B1"][0]) for st in tr.states[int(CUT_S + BACKUP_S):int(RESTORE_S)])
    assert tr.twin.edges["B1"].controlled  # back under AI control at its first green after mains returned
    assert tr.kpis["dark_signal_s"] == pytest.approx(RESTORE_S - CUT_S - BACKUP_S, abs=1.0)


@pytest.mark.sumo
def test_set_mains_refuses_unknown_signals_and_future_times() -> None:
    pytest.importorskip("libsumo")
    twin = _twin("smart")
    with pytest.raises(UserError, match="not started"):
        twin.set_mains("B1", False)
    twin.start()
    try:
        twin.advance(10)
        with pytest.raises(UserError, match="no signal 'nowhere'"):
            twin.set_mains("nowhere", False)
        with pytest.raises(ValueError, match="after the simulation's time"):
            twin.set_mains("B1", False, t_s=twin.begin_s + 20.0)
        assert set(twin.signal_districts().values()) <= {"NW", "NE", "SW", "SE"}
        assert set(twin.signal_districts()) == set(twin.signal_xy())
    finally:
        res = twin.close()
    assert res.kpis["dark_signal_s"] == 0.0 and res.kpis["battery_signal_s"] == 0.0


@pytest.mark.sumo
def test_a_signal_back_from_dark_stays_on_fixed_time_while_stopped_until_resume() -> None:
    pytest.importorskip("libsumo")
    twin = _twin("ai")
    twin.start()
    try:
        twin.advance(120)
        twin.safe_state()  # the stop button
        twin.set_mains("B1", False, t_s=twin.begin_s)  # lost at the begin: the 100 s battery is spent already
        assert twin.power.source("B1") == "none"
        twin.advance(10)
        twin.set_mains("B1", True)
        twin.advance(60)
        assert not twin.edges["B1"].controlled  # stopped: the cabinet's fixed program runs it
        twin.resume()
        twin.advance(60)
        assert twin.edges["B1"].controlled
    finally:
        res = twin.close()
    assert res.kpis["dark_signal_s"] == pytest.approx(10.0, abs=1.0) and res.kpis["battery_signal_s"] == 0.0


def test_person_delay_weights_trips_by_the_persons_the_routes_set(tmp_path: Path) -> None:
    routes = tmp_path / "r.rou.xml"
    routes.write_text('<routes><vType id="bus"><param key="occupancy" value="20"/></vType>'
                      '<vehicle id="car" depart="0" personNumber="3"/><flow id="f" personNumber="2"/></routes>')
    occ = read_occupancy([str(routes), str(tmp_path / "missing.xml")])
    assert (occ.of("car"), occ.of("f.4"), occ.of("b0", "bus"), occ.of("other", "car")) == (3.0, 2.0, 20.0, 1.0)

    def trip(vid: str, vtype: str, loss: float) -> Trip:
        return Trip(vid, vtype, 0.0, 100.0, loss, 0.0, 0.0, True, "e")

    trips = [trip("car", "passenger", 10.0), trip("b0", "bus", 1.0), trip("x", "passenger", 5.0)]
    assert person_delay(trips, [("late", 30.0)], occ) == pytest.approx((30 + 20 + 5 + 30) / 25)
    assert person_delay(trips, [], read_occupancy([])) == pytest.approx(16 / 3)  # 1 person per vehicle


@pytest.mark.sumo
def test_a_coupler_on_the_shared_host_clock_drives_the_port() -> None:
    """The city coupler's way: a hook after each SUMO step sets mains with the host's clock."""
    pytest.importorskip("libsumo")
    services = RunServices()
    twin = _twin("smart", services)
    twin.start()
    host, port = services.shared["sumo"], services.shared["signals"]
    assert isinstance(port, SignalPowerPort)
    begin = twin.begin_s

    def coupler(t: float) -> None:
        if t - begin in (CUT_S, RESTORE_S):
            port.set_mains("B1", t - begin == RESTORE_S, t)

    host.on_step(after=coupler)  # type: ignore[attr-defined]
    try:
        while not twin.done():
            twin.advance(twin.decision_interval_s)
        events = [(e["event"], e["time_s"]) for e in twin.edge_events() if e["target"] == signal_urn("B1")]
    finally:
        res = twin.close()
    assert events == [("battery", CUT_S), ("dark", CUT_S + BACKUP_S), ("mains", RESTORE_S)]
    assert res.kpis["dark_signal_s"] == pytest.approx(RESTORE_S - CUT_S - BACKUP_S, abs=1.0)
