"""The SUMO traffic twin: lane-area detectors in, phase commands out through each signal's actuator edge.

libsumo runs one simulation per process; TraCI (``use_traci=True``) is the slower fallback.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aicity.core.capabilities import Crossing, EdgeActionData, RejectedInput
from aicity.core.domain import DomainResult, ForecastProvider, Outcome, ProposedAction, Scenario
from aicity.core.entity import Entity, Property, Relationship, urn
from aicity.core.errors import UserError
from aicity.domains.mobility.border import BorderPort
from aicity.domains.mobility.checkpoint import pack, unpack
from aicity.domains.mobility.const import (
    EV_PREFIX,
    EV_TYPE,
    FLOW_TYPE,
    POWER_MAINS,
    POWER_NONE,
    SIGNAL_PREFIX,
    SIGNAL_TYPE,
    SIGNALS_SHARED_NAME,
)
from aicity.domains.mobility.edge import GREEN, EdgeLimits, SignalEdge
from aicity.domains.mobility.ev_report import lane_links, signals_ahead
from aicity.domains.mobility.faults import IMPOSSIBLE_OCCUPANCY, IMPOSSIBLE_QUEUE, SensorFaults
from aicity.domains.mobility.network import Network, additional_xml, load_network
from aicity.domains.mobility.power import CabinetPower, PowerChange
from aicity.domains.mobility.scenarios import SumoConfig, read_sumocfg, sumo_binary
from aicity.domains.mobility.sumo_host import SHARED_NAME, SumoHost

EV_VTYPE = "aicity_emergency"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
KPI_PERIOD_S = 300.0


TMP_PREFIX = "aicity-sumo-"


def sweep_stale_outputs(root: Path | None = None) -> int:
    """Remove output folders of SUMO runs whose process is gone (killed runs); how many were removed."""
    removed = 0
    for path in (root or Path(tempfile.gettempdir())).glob(f"{TMP_PREFIX}*-*"):
        pid_text = path.name[len(TMP_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        except PermissionError:  # alive, someone else's
            continue
    return removed


def signal_urn(tls: str) -> str:
    """Entity id of a signal."""
    return urn(SIGNAL_TYPE, tls)


def flow_urn(lane: str, direction: str = "in") -> str:
    """Entity id of the detector group of an incoming (``in``) or outgoing (``out``) lane."""
    return urn(FLOW_TYPE, f"{direction}:{lane}")


def ev_urn(vid: str) -> str:
    """Entity id of an emergency vehicle."""
    return urn(EV_TYPE, vid)


@dataclass(slots=True)
class TwinConfig:
    """Options of a twin run (all have RESCO-like defaults)."""

    decision_interval_s: float = 10.0
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    ev_per_hour: float = 10.0
    ev_speed_factor: float = 1.0
    """Emergency vehicles' desired speed as a multiple of the speed limit (SUMO ``speedFactor``; the same in
    both modes). 1.0 — SUMO's ``emergency`` class default, no random deviation — is what every result uses
    unless stated; above 1 models blue-light driving over the limit."""
    use_traci: bool = False
    detection_range_m: float = 200.0
    sensor_faults: SensorFaults | None = None
    probes: Any = None  # aicity.domains.mobility.probes.ProbeConfig: connected-vehicle probe data
    consent: Any = None  # aicity.governance.consent.ConsentRegistry the probe feed gives consents to
    epoch: datetime | None = None  # the instant scenario seconds count from (None: EPOCH)
    shared: dict[str, object] | None = None  # the run's shared simulators (RunServices.shared): SUMO goes there
    signal_backup_s: float = 300.0
    """Battery backup of each signal cabinet after mains is lost (s); then the signal goes dark."""
    borders: dict[str, Any] | None = None
    """The district's border edges (the ``borders`` option of a partitioned scenario); None: a whole city."""


class SumoTwin:
    """A traffic twin over SUMO implementing :class:`aicity.core.domain.Twin`.

    ``mode`` is ``"smart"`` (the network's fixed-time programs, no preemption) or ``"ai"`` (every signal is
    driven through its actuator edge).
    """

    def __init__(self, scenario: Scenario, *, seed: int, mode: str, config: TwinConfig | None = None) -> None:
        if mode not in ("smart", "ai"):
            raise UserError(f"unknown mobility mode {mode!r}: use 'smart' or 'ai'")
        if scenario.path is None:
            raise UserError(f"scenario {scenario.name!r} has no .sumocfg path")
        self.scenario = scenario
        self.seed = int(seed)
        self.mode = mode
        self.config = config or TwinConfig()
        self.decision_interval_s = self.config.decision_interval_s
        self.cfg: SumoConfig = read_sumocfg(scenario.path)
        self.begin_s = float(scenario.begin_s)
        self.end_s = float(scenario.end_s)
        self.start_time = (self.config.epoch or EPOCH) + timedelta(seconds=self.begin_s)
        self.net: Network | None = None
        self.edges: dict[str, SignalEdge] = {}
        self.outcomes: list[Outcome] = []
        self.ev_plan: list[dict[str, Any]] = []
        self._ev_routes: dict[str, list[str]] = {}  # emergency vehicle -> its route (added again after a restore)
        self._before: dict[str, list[str]] = {}  # output -> its records from before SUMO last started again
        self._t = self.begin_s
        self._want_control: set[str] = set()
        self._tmp: Path | None = None
        self._args: list[str] = []  # SUMO's command line (started again from a checkpoint's state)
        self._own_hooks = 0
        self._sumo: Any = None
        self.host: Any = None  # the SumoHost this twin started
        self._running = False
        self._cache_t = -1.0
        self._cache: dict[str, dict[str, Any]] = {}
        self._prev_ids: dict[str, set[str]] = {}
        self._prev_obs_t: float | None = None
        self._queue_series: list[tuple[float, float]] = []
        self._static_phases: dict[str, list[dict[str, Any]]] = {}
        self._prog_index: dict[str, dict[int, int]] = {}
        self._flow_static_cache: dict[str, tuple[str, dict[str, Any]]] = {}
        self._det_list: list[Any] = []
        self._freeze: set[str] = set()
        self._impossible: set[str] = set()
        self._last_flow: dict[str, Entity] = {}
        self._safe_hold: set[str] = set()
        self._lane_links: dict[tuple[str, int], tuple[int, ...]] = {}  # (signal, link) -> links of its in-lane
        self.power = CabinetPower((), self.config.signal_backup_s)  # every signal's cabinet, set at start()
        self._power_events: list[EdgeActionData] = []
        self._stopped = False  # the stop button / a demotion: signals coming back from dark stay on fixed time
        self.border: BorderPort | None = None  # a district's borders (set at start when the scenario has some)
        self.probes: Any = None  # ProbeFeed when probe data is on (AI City mode only: nothing else reads it)
        if self.config.probes is not None and mode == "ai":
            from aicity.domains.mobility.probes import ProbeFeed

            self.probes = ProbeFeed(self.config.probes, seed=self.seed, registry=self.config.consent)

    def feed_providers(self) -> list[ForecastProvider]:
        """The forecast providers only this twin can feed: probe features from its consented probe feed."""
        if self.probes is None:
            return []
        from aicity.domains.mobility.probes import ProbeFeatures

        return [ProbeFeatures(self.probes)]

    # ----- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the scenario into SUMO, declare the detectors, insert the emergency vehicles."""
        binary = sumo_binary()
        net = self.net = load_network(self.cfg.net, self.config.detection_range_m)
        self._lane_links = lane_links(net)
        if self.config.sensor_faults is not None:  # checked before SUMO starts
            self._freeze, self._impossible = self.config.sensor_faults.resolve(net)
        if self.probes is not None:
            areas: dict[str, list[tuple[float, float, str, float]]] = {}
            for lane, pieces in net.in_groups.items():
                to_stop: dict[str, float] = {lane: 0.0}  # metres from a piece's end to the stop line
                for piece in pieces:  # upstream pieces come after the lanes they feed
                    if piece.lane not in to_stop:
                        to_stop[piece.lane] = min((to_stop[s] + net.lanes[s].length
                                                   for s in net.successors.get(piece.lane, []) if s in to_stop),
                                                  default=0.0)
                    areas.setdefault(piece.lane, []).append(
                        (piece.start_pos, piece.end_pos, flow_urn(lane), to_stop[piece.lane]))
            self.probes.set_areas(areas)
        sweep_stale_outputs()
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        det_file = self._tmp / "detectors.add.xml"
        det_file.write_text(additional_xml(net.detectors(), str(self._tmp / "e2.xml"), KPI_PERIOD_S))
        ev_file = self._tmp / "emergency.add.xml"  # vClass emergency with SUMO's own defaults for the class
        ev_file.write_text(f'<additional>\n    <vType id="{EV_VTYPE}" vClass="emergency" color="255,0,0" '
                           f'speedFactor="{self.config.ev_speed_factor:g}"/>\n</additional>\n')
        self.tripinfo_path = self._tmp / "tripinfo.xml"
        args = [binary, "-n", self.cfg.net, "--begin", f"{self.begin_s:g}", "--end", f"{self.end_s:g}",
                "--step-length", "1", "--time-to-teleport", "-1", "--seed", str(self.seed),
                "--tripinfo-output", str(self.tripinfo_path), "--tripinfo-output.write-unfinished", "true",
                "--no-step-log", "true", "--no-warnings", "true", "--duration-log.disable", "true",
                "--save-state.rng", "true", "--save-state.precision", "9",  # a checkpoint: every RNG, exact
                "--additional-files", ",".join([*self.cfg.additional, str(det_file), str(ev_file)])]
        if self.cfg.routes:
            args += ["-r", ",".join(self.cfg.routes)]
        if self.config.borders:  # a trip's waiting time is summed over its districts: remember all of it
            args += ["--waiting-time-memory", f"{self.end_s - self.begin_s + 1:g}"]
        self._args = args
        try:
            self.host = SumoHost.start(args, begin_s=self.begin_s, end_s=self.end_s, use_traci=self.config.use_traci,
                                       name=self.scenario.name)
        except UserError:  # SUMO refuses the inputs: no folder left behind
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            raise
        self._sumo = self.host.api
        self.host.on_step(before=self._before_step, after=self._after_step)
        if self.config.borders:
            self.border = BorderPort.of(self.config.borders, self._sumo, self.begin_s)
            self.host.on_step(after=self.border.after_step)
        self._own_hooks = self.host.hooks  # more later: another twin rides this SUMO (no checkpoint then)
        if self.config.shared is not None:  # other twins of the city ride on this simulation
            self.config.shared[SHARED_NAME] = self.host
            self.config.shared[SIGNALS_SHARED_NAME] = self  # the signals' power port (SignalPowerPort)
        self._running = True
        self.power = CabinetPower(net.signals, self.config.signal_backup_s)
        for sig in net.signals.values():
            self.edges[sig.id] = SignalEdge(sig.id, sig.greens, self._limits_for(sig.all_red_s),
                                            now=self._t, controlled=False)
            self._prog_index[sig.id] = {p: g for g, p in enumerate(sig.green_program_index)}
            self._static_phases[sig.id] = [
                {"index": g, "state": sig.greens[g],
                 "serves": [{"lane": lane, "to": outs, "detector": flow_urn(lane)}
                            for lane, outs in sig.served(g).items()]}
                for g in range(len(sig.greens))]
        if self.mode == "ai":
            self._want_control = set(self.edges)
            self._take_control_where_green()
        self._plan_emergency_vehicles()

    def _limits_for(self, all_red_s: float) -> EdgeLimits:
        lim = self.config.limits
        return EdgeLimits(lim.yellow_s, lim.min_green_s, lim.max_green_s, all_red_s, lim.max_hold_s,
                          lim.cooldown_s)

    def elapsed_s(self) -> float:
        """Simulated seconds since the scenario's begin."""
        return self._t - self.begin_s

    def now(self) -> datetime:
        """The twin's clock time (``start_time`` + elapsed)."""
        return self.start_time + timedelta(seconds=self.elapsed_s())

    def done(self) -> bool:
        """True once the scenario's end is reached."""
        return self._t >= self.end_s - 1e-9

    # ----- stepping ------------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Simulate ``seconds`` more, 1 s at a time, ticking every actuator edge before each step."""
        self.host.advance_to(self._t + round(seconds))

    def _before_step(self, now: float) -> None:
        """Before each 1 s step: hand signals over where asked, tick every controlled edge, show its state."""
        tl = self._sumo.trafficlight
        if not self.power.all_on_mains:
            self._apply_power(self.power.tick(now))
            self.power.count(1.0)  # SUMO steps 1 s
            for sid in self.power.dark:  # every step: nothing (program, edge, another twin) lights it again
                tl.setRedYellowGreenState(sid, self._dark_state(sid))
        if self._want_control:
            self._take_control_where_green()
        for sid, edge in self.edges.items():
            if not edge.controlled:
                continue
            edge.tick(now)
            if edge.ready_for_fixed():
                self._hand_over(sid, edge, now)
                continue
            state = edge.poll()
            if state is not None:
                tl.setRedYellowGreenState(sid, state)

    def _after_step(self, t: float) -> None:
        """After each step: the twin's time, and the queue at every decision time."""
        self._t = t
        if (self._t - self.begin_s) % self.decision_interval_s < 1e-9:
            det = self._read_detectors()
            q = sum(v["queue"] for k, v in det.items() if k.startswith("in:"))
            self._queue_series.append((self.elapsed_s(), float(q)))

    def _take_control_where_green(self) -> None:
        tl = self._sumo.trafficlight
        for sid in sorted(self._want_control):
            if self.power.source(sid) == POWER_NONE:
                continue
            idx = tl.getPhase(sid)
            g = self._prog_index[sid].get(idx)
            if g is None:
                continue
            spent = tl.getSpentDuration(sid)
            edge = self.edges[sid]
            edge.take_control(g, self._t - spent, self._t)
            edge.resend()
            state = edge.poll()
            if state is not None:
                tl.setRedYellowGreenState(sid, state)
            self._want_control.discard(sid)

    def _hand_over(self, sid: str, edge: SignalEdge, now: float) -> None:
        assert self.net is not None
        tl = self._sumo.trafficlight
        sig = self.net.signals[sid]
        prog_idx = sig.green_program_index[edge.green]
        spent = now - edge.since
        remaining = max(sig.program[prog_idx][1] - spent, edge.limits.min_green_s - spent, 1.0)
        tl.setProgram(sid, sig.program_id)
        tl.setPhase(sid, prog_idx)
        tl.setPhaseDuration(sid, remaining)
        edge.handed_over()

    # ----- borders (a district of a partitioned city) --------------------------------------------------
    def outbound(self) -> list[Crossing]:
        """Vehicles that left through this district's border edges since the last call (see :mod:`.border`)."""
        return self.border.outbound() if self.border is not None else []

    def inbound(self, crossings: list[Crossing]) -> list[RejectedInput]:
        """Insert the vehicles that crossed into this district; the ones it cannot take come back with a reason."""
        if self.border is None:
            return [{"source": "border", "reason": f"scenario {self.scenario.name!r} has no borders", "payload": c}
                    for c in crossings]
        return self.border.inbound(crossings)

    # ----- power (the city coupler's port) ---------------------------------------------------------------
    def set_mains(self, tls: str, powered: bool, t_s: float | None = None) -> None:
        """Mains power at signal ``tls``'s cabinet lost (``powered=False``) or back (a :class:`SignalPowerPort`).

        Without mains the signal runs normally on its battery for ``signal_backup_s`` (counted from ``t_s``, the
        SUMO simulation time of the loss as on the shared :class:`SumoHost` clock, not in the future; default
        now), then goes dark: every
        link shows ``s`` (all-way stop) and commands are refused (``no_power``). When mains returns it
        restarts its fixed-time program at its first phase; in AI mode the twin takes it back at its next
        green. Repeating the current state changes nothing.
        """
        if not self._running:
            raise UserError("the twin was not started")
        if tls not in self.edges:
            raise UserError(f"no signal {tls!r} in scenario {self.scenario.name!r}")
        lost_at = None
        if t_s is not None:
            now = max(self._t, float(self.host.t))  # in the host's after-step hooks its clock may lead the twin's
            if t_s > now + 1e-9:
                raise ValueError(f"mains change at SUMO time {t_s:g} s is after the simulation's time {now:g} s")
            lost_at = float(t_s)
        self._apply_power(self.power.set_mains(tls, bool(powered), self._t, lost_at))

    def signal_districts(self) -> dict[str, str]:
        """Signal → ``NW``/``NE``/``SW``/``SE``: the quadrants of :func:`~.kpis.quadrant_districts` (the same
        signal positions the district KPIs use on maps without TAZ)."""
        from aicity.domains.mobility.kpis import quadrant_districts, signal_positions

        assert self.net is not None
        return quadrant_districts(signal_positions(self.net))

    def _dark_state(self, sid: str) -> str:
        return "s" * len(self.edges[sid].greens[0])

    def _apply_power(self, changes: list[PowerChange]) -> None:
        """Show each change of power source in SUMO and record it as an edge event."""
        assert self.net is not None
        tl = self._sumo.trafficlight
        for ch in changes:
            sid = ch.signal
            detail: dict[str, Any] = {"from": ch.previous}
            if ch.source == POWER_NONE:
                self.edges[sid].power_off(ch.time)
                self._want_control.discard(sid)
                tl.setRedYellowGreenState(sid, self._dark_state(sid))
                event = "dark"
            elif ch.source == POWER_MAINS:
                if ch.previous == POWER_NONE:  # a power cycle: the cabinet restarts its fixed-time program
                    tl.setProgram(sid, self.net.signals[sid].program_id)
                    tl.setPhase(sid, 0)
                    if self.mode == "ai" and not self._stopped and sid not in self._safe_hold:
                        self._want_control.add(sid)
                event = "mains"
            else:
                detail["backup_s"] = self.power.backup_s
                event = "battery"
            self._power_events.append({"target": signal_urn(sid), "event": event,
                                       "time_s": ch.time - self.begin_s, "detail": detail})

    # ----- actuation -----------------------------------------------------------------------------------
    def actuate(self, action: ProposedAction) -> Outcome:
        """Pass a proposal through the target signal's actuator edge (it clamps or refuses what breaks limits)."""
        sid = action.target.removeprefix(f"urn:ngsi-ld:{SIGNAL_TYPE}:")
        edge = self.edges.get(sid)
        if edge is None:
            out = Outcome(action, "refused", bound_by=("unknown_target",),
                          reason=f"no signal {action.target!r} in scenario {self.scenario.name!r}")
        elif self.power.source(sid) == POWER_NONE:
            out = Outcome(action, "refused", bound_by=("no_power",),
                          reason=f"signal {sid} is dark: no mains power and its battery backup is spent")
        elif sid in self._safe_hold:
            out = self._resume_one(action, sid, edge)
        else:
            out = edge.apply(action, self._t)
            if edge.controlled:
                state = edge.poll()
                if state is not None:
                    self._sumo.trafficlight.setRedYellowGreenState(sid, state)
        self.outcomes.append(out)
        return out

    def safe_state(self) -> None:
        """Return every signal to its fixed-time program (after at most one clearance)."""
        self._want_control.clear()
        self._stopped = True
        for sid, edge in self.edges.items():
            if edge.controlled:
                edge.request_fixed()
                if edge.ready_for_fixed():
                    self._hand_over(sid, edge, self._t)

    def resume(self) -> None:
        """Take the signals back from their fixed-time programs (AI mode only), each at its next green."""
        self._stopped = False
        if self.mode == "ai":
            self._want_control = {sid for sid, e in self.edges.items() if not e.controlled
                                  and sid not in self._safe_hold and self.power.source(sid) != POWER_NONE}
            self._take_control_where_green()

    def safe_state_for(self, target: str) -> bool:
        """Hand one signal back to its fixed-time program and hold it there (its inputs are implausible).

        It stays on the fixed-time program until a ``set_phase`` with ``params["resume"]`` is actuated for it
        (:mod:`aicity.domains.mobility.safe_plan` proposes one every step; governance lets it through only
        when the signal's inputs are plausible again). False when ``target`` is no signal of this twin.
        """
        sid = target.removeprefix(f"urn:ngsi-ld:{SIGNAL_TYPE}:")
        edge = self.edges.get(sid)
        if edge is None:
            return False
        self._safe_hold.add(sid)
        self._want_control.discard(sid)
        if edge.controlled:
            edge.request_fixed()
            if edge.ready_for_fixed():
                self._hand_over(sid, edge, self._t)
        return True

    def _resume_one(self, action: ProposedAction, sid: str, edge: SignalEdge) -> Outcome:
        if not (action.action == "set_phase" and action.params.get("resume") is True):
            return Outcome(action, "refused", bound_by=("safe_plan",),
                           reason=f"signal {sid} runs its fixed-time safe plan (implausible inputs)")
        self._safe_hold.discard(sid)
        if self.mode == "ai":
            if edge.controlled:
                edge.to_fixed = False
            else:
                self._want_control.add(sid)
                self._take_control_where_green()
        return Outcome(action, "applied", command={"resume": True})

    def edge_events(self) -> list[EdgeActionData]:
        """Everything the edges did on their own (forced max-green changes, preemption ends) and every change of a
        cabinet's power source (``battery``, ``dark``, ``mains``), drained; ``time_s`` in elapsed seconds."""
        raw: list[dict[str, Any]] = []
        for edge in self.edges.values():
            raw.extend(edge.events)
            edge.events.clear()
        out: list[EdgeActionData] = [
            {"target": f"{SIGNAL_PREFIX}{e['signal']}", "event": str(e["event"]),
             "time_s": float(e["time"]) - self.begin_s,
             "detail": {k: v for k, v in e.items() if k not in ("time", "signal", "event")}} for e in raw]
        out.extend(self._power_events)
        self._power_events = []
        out.sort(key=lambda e: (e["time_s"], e["target"]))
        return out

    # ----- sensing -------------------------------------------------------------------------------------
    def _read_detectors(self) -> dict[str, dict[str, Any]]:
        """Detector-group readings now (memoised per simulation second)."""
        if self._cache_t == self._t:
            return self._cache
        assert self.net is not None
        la = self._sumo.lanearea
        piece: dict[str, tuple[tuple[str, ...], int, float, float, float]] = {}
        if not self._det_list:
            self._det_list = self.net.detectors()
        for p in self._det_list:
            piece[p.id] = (la.getLastStepVehicleIDs(p.id), la.getLastStepHaltingNumber(p.id),
                           la.getLastStepOccupancy(p.id), la.getLastStepMeanSpeed(p.id), p.length)
        out: dict[str, dict[str, Any]] = {}
        for direction, groups in (("in", self.net.in_groups), ("out", self.net.out_groups)):
            for lane, pieces in groups.items():
                ids: set[str] = set()
                halt, occ_len, length, speed_sum, speed_n = 0, 0.0, 0.0, 0.0, 0
                for p in pieces:
                    pid, h, occ, spd, ln = piece[p.id]
                    ids.update(pid)
                    halt += h
                    occ_len += occ * ln
                    length += ln
                    if spd >= 0 and pid:
                        speed_sum += spd * len(pid)
                        speed_n += len(pid)
                out[f"{direction}:{lane}"] = {
                    "ids": ids, "lanes": len(pieces), "count": len(ids), "queue": halt,
                    "occupancy": (occ_len / length / 100.0) if length > 0 else 0.0,
                    "speed": (speed_sum / speed_n) if speed_n else None, "length": length}
        self._cache_t, self._cache = self._t, out
        return out

    def observe(self) -> list[Entity]:
        """Detector groups (TrafficFlowObserved), signals (TrafficSignal) and emergency vehicles, as entities."""
        assert self.net is not None
        when = self.now()
        det = self._read_detectors()
        period = None if self._prev_obs_t is None else self._t - self._prev_obs_t
        ents: list[Entity] = []
        static = self._flow_static()
        period_p = Property(period, when, "SEC")
        faults = self.config.sensor_faults
        faulty = faults is not None and self.elapsed_s() >= faults.after_s
        for key in sorted(det):
            d = det[key]
            prev = self._prev_ids.get(key)
            entered = len(d["ids"] - prev) if prev is not None else len(d["ids"])
            self._prev_ids[key] = d["ids"]
            if key in self._freeze and faulty and key in self._last_flow:
                ents.append(self._last_flow[key])  # frozen: last value and last observedAt
                continue
            eid, attrs = static[key]
            speed = d["speed"]
            bad = faulty and key in self._impossible
            ent = Entity.trusted(eid, FLOW_TYPE, {
                **attrs,
                "vehicleCount": Property(d["count"], when),
                "queue": Property(IMPOSSIBLE_QUEUE if bad else d["queue"], when),
                "occupancy": Property(IMPOSSIBLE_OCCUPANCY if bad else round(d["occupancy"], 4), when),
                "averageVehicleSpeed": Property(None if speed is None else round(speed, 3), when, "MTS"),
                "intensity": Property(entered, when),
                "observationPeriod": period_p,
            })
            if key in self._freeze:
                self._last_flow[key] = ent
            ents.append(ent)
        self._prev_obs_t = self._t
        if self.probes is not None:
            self._update_probes(when)
        ents.extend(self._signal_entities(when))
        ents.extend(self._ev_entities(when))
        return ents

    def _update_probes(self, when: datetime) -> None:
        """Hand the connected vehicles' reports to the probe feed (never to observe(): consent first)."""
        veh = self._sumo.vehicle
        reports: dict[str, dict[str, Any]] = {}
        for vid in veh.getIDList():
            if vid.startswith(EV_PREFIX) or not self.probes.connected(vid):
                continue
            x, y = veh.getPosition(vid)
            reports[vid] = {"speed": veh.getSpeed(vid), "x": x, "y": y, "lane": veh.getLaneID(vid),
                            "pos": veh.getLanePosition(vid)}
        self.probes.update(reports, when)

    def _flow_static(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Entity id and the attributes that never change, per detector group (built once)."""
        if self._flow_static_cache:
            return self._flow_static_cache
        assert self.net is not None
        for direction, groups in (("in", self.net.in_groups), ("out", self.net.out_groups)):
            for lane, pieces in groups.items():
                attrs: dict[str, Any] = {
                    "laneId": Property(lane),
                    "flowDirection": Property("incoming" if direction == "in" else "outgoing"),
                    "detectionLength": Property(round(sum(p.length for p in pieces), 1), None, "MTR"),
                    "laneCount": Property(len(pieces)),
                }
                sig = self.net.lane_signal.get(lane) if direction == "in" else None
                if sig is not None:
                    attrs["refTrafficSignal"] = Relationship(signal_urn(sig))
                self._flow_static_cache[f"{direction}:{lane}"] = (flow_urn(lane, direction), attrs)
        return self._flow_static_cache

    def _signal_entities(self, when: datetime) -> list[Entity]:
        assert self.net is not None
        tl = self._sumo.trafficlight
        out = []
        for sid, edge in self.edges.items():
            sig = self.net.signals[sid]
            power = self.power.source(sid)
            phase: int | None
            if power == POWER_NONE:  # dark: all-way stop, no phase, nothing to command
                phase, kind, target, mode = None, "dark", None, "dark"
                in_phase = self._t - (self.power.since(sid) or self._t)
            elif edge.controlled:
                phase = edge.green if edge.kind == GREEN else None
                kind = edge.kind
                in_phase = self._t - edge.since
                mode = "preempted" if edge.preempting else ("to_fixed" if edge.to_fixed else "controlled")
                target = edge.target
            else:
                idx = tl.getPhase(sid)
                phase = self._prog_index[sid].get(idx)
                state = tl.getRedYellowGreenState(sid)
                kind = GREEN if phase is not None else ("yellow" if "y" in state.lower() else "allred")
                in_phase = tl.getSpentDuration(sid)
                mode, target = "fixed", None
            lim = edge.limits
            attrs: dict[str, Any] = {
                "currentPhase": Property(phase, when),
                "phaseKind": Property(kind, when),
                "nextPhase": Property(target, when),
                "timeInPhase": Property(float(in_phase), when, "SEC"),
                "controlMode": Property(mode, when),
                "phases": Property(self._static_phases[sid]),
                "position": Property([round(sig.x, 2), round(sig.y, 2)]),
                "limits": Property({"yellow_s": lim.yellow_s, "min_green_s": lim.min_green_s,
                                    "max_green_s": lim.max_green_s, "all_red_s": lim.all_red_s,
                                    "max_hold_s": lim.max_hold_s, "cooldown_s": lim.cooldown_s}),
                "preemptCooldownUntil": Property(
                    edge.cooldown_until - self.begin_s if edge.cooldown_until > -1e300 else None, when),
                "safeHold": Property(sid in self._safe_hold, when),
                "preemptPhase": Property(edge.preempt_phase if edge.controlled else None, when),
                "powerSource": Property(power, when),
            }
            out.append(Entity.trusted(signal_urn(sid), SIGNAL_TYPE, attrs))
        return out

    def _greens_of(self, tls: str) -> list[str]:
        edge = self.edges.get(tls)
        return edge.greens if edge is not None else []

    def _ev_entities(self, when: datetime) -> list[Entity]:
        veh = self._sumo.vehicle
        out = []
        for vid in veh.getIDList():
            if not vid.startswith(EV_PREFIX):
                continue
            x, y = veh.getPosition(vid)
            route = veh.getRoute(vid)
            idx = veh.getRouteIndex(vid)
            ahead = signals_ahead(veh.getNextTLS(vid), self._greens_of, self._lane_links)
            attrs: dict[str, Any] = {
                "position": Property([round(x, 2), round(y, 2)], when),
                "roadSegment": Property(veh.getRoadID(vid), when),
                "speed": Property(round(veh.getSpeed(vid), 2), when, "MTS"),
                "remainingRoute": Property(list(route[max(idx, 0):]), when),
                "nextSignals": Property(ahead, when),
            }
            if ahead:
                attrs["refNextSignal"] = Relationship(ahead[0]["signal"], when)
            out.append(Entity.trusted(ev_urn(vid), EV_TYPE, attrs))
        return out

    # ----- emergency vehicles --------------------------------------------------------------------------
    def _plan_emergency_vehicles(self) -> None:
        """Insert ``ev_per_hour`` emergency vehicles on seeded OD pairs crossing as many signals as possible."""
        assert self.net is not None
        duration = self.end_s - self.begin_s
        n = round(self.config.ev_per_hour * duration / 3600.0)
        if n <= 0:
            return
        api = self._sumo
        rng = random.Random(self.seed * 1_000_003 + 17)
        net = self.net
        sources = sorted(e for e, lanes in net.edge_lanes.items()
                         if all(not net.predecessors[ln] for ln in lanes))
        sinks = sorted(e for e, lanes in net.edge_lanes.items() if all(not net.successors[ln] for ln in lanes))
        if not sources or not sinks:
            sources = sinks = sorted(net.edge_lanes)
        edge_sig = {net.lanes[ln].edge: s for ln, s in net.lane_signal.items()}
        scored: list[tuple[int, float, tuple[str, ...]]] = []
        for _ in range(80):
            a, b = rng.choice(sources), rng.choice(sinks)
            if net.edge_from.get(a) == net.edge_to.get(b) or a == b:
                continue
            try:
                stage = api.simulation.findRoute(a, b, vType=EV_VTYPE)
            except Exception:  # no route for this pair
                continue
            edges = tuple(stage.edges)
            if not edges:
                continue
            crossed = len({edge_sig[e] for e in edges if e in edge_sig})
            scored.append((crossed, -stage.travelTime, edges))
        if not scored:
            return
        scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
        pool = scored[: max(3, min(8, len(scored) // 4))]
        spread = max(duration - 300.0, duration * 0.5)
        for k in range(n):
            crossed, _, edges = pool[rng.randrange(len(pool))]
            depart = self.begin_s + (k + rng.random()) * spread / n
            vid, rid = f"{EV_PREFIX}{k}", f"{EV_PREFIX}route_{k}"
            api.route.add(rid, list(edges))
            api.vehicle.add(vid, rid, typeID=EV_VTYPE, depart=f"{depart:.1f}", departLane="best",
                            departSpeed="max")
            self._ev_routes[vid] = list(edges)
            self.ev_plan.append({"id": vid, "depart": depart, "signals": crossed, "edges": len(edges)})

    # ----- checkpoints (Checkpointable: a district's worker lost and restarted elsewhere) -----------------
    _SAVED = ("edges", "outcomes", "_want_control", "_cache_t", "_cache", "_prev_ids", "_prev_obs_t",
              "_queue_series", "_last_flow", "_safe_hold", "power", "_power_events", "_stopped")
    """The twin's own attributes a checkpoint carries (the rest is static: built again by :meth:`start`)."""

    def save_state(self) -> bytes:
        """SUMO's state file (see :mod:`.checkpoint` for what it holds), the twin's own state (actuator edges,
        cabinet power, the detectors' readings and memory, border port, probe feed) and the records of the
        outputs the KPIs read, compressed: what a new worker on another machine needs to go on. SUMO is stopped
        and started again from the state file here too, so this run goes on exactly as a restored one would."""
        if not self._running or self._tmp is None:
            raise UserError("the twin was not started")
        if self.host.hooks != self._own_hooks:  # their vehicles and state are theirs: no checkpoint of it here
            raise UserError(f"another twin rides scenario {self.scenario.name!r}'s SUMO: no checkpoint of it")
        path = self._tmp / "checkpoint.xml"
        self._sumo.simulation.saveState(str(path))
        pending = sorted(self._sumo.simulation.getPendingVehicles())
        try:
            self._go_on_from(path, pending, self._keep_outputs)
            sumo = path.read_bytes()
        finally:
            path.unlink(missing_ok=True)
        blob = {
            "scenario": self.scenario.name, "seed": self.seed, "mode": self.mode, "t": self._t, "sumo": sumo,
            "pending": pending, "twin": {name: getattr(self, name) for name in self._SAVED},
            "border": self.border.state() if self.border is not None else None,
            "probes": self.probes.state() if self.probes is not None else None,
            "outputs": self._before}
        return pack(blob)

    def load_state(self, state: bytes) -> None:
        """Go on from a :meth:`save_state` of a twin of the same scenario, seed and mode (right after
        :meth:`start`): the twin takes its own state back and SUMO starts again from the state file."""
        if not self._running or self._tmp is None:
            raise UserError("the twin was not started")
        blob = unpack(state, "mobility", (self.scenario.name, self.seed, self.mode))
        self._t = float(blob["t"])
        for name, value in blob["twin"].items():
            setattr(self, name, value)
        if self.border is not None and blob["border"] is not None:
            self.border.restore(blob["border"])
        if self.probes is not None and blob["probes"] is not None:
            self.probes.restore(blob["probes"])
        self._before = {name: list(items) for name, items in blob["outputs"].items()}
        path = self._tmp / "checkpoint.xml"
        path.write_bytes(blob["sumo"])
        try:
            self._go_on_from(path, blob["pending"], lambda: None)
        finally:
            path.unlink(missing_ok=True)

    def _go_on_from(self, path: Path, pending: list[str], stopped: Callable[[], None]) -> None:
        """Stop SUMO, call ``stopped()``, start it again from the state file ``path`` at the twin's time; add the
        vehicles the state file does not hold; show every signal as its edge and cabinet have it."""
        from aicity.domains.mobility.checkpoint import load_state_args, state_vehicles

        self.host.restart(load_state_args(self._args, self._t, path), self._t, use_traci=self.config.use_traci,
                          name=self.scenario.name, stopped=stopped)
        self._sumo = self.host.api
        saved = state_vehicles(path)
        if self.border is not None:
            self.border.api = self._sumo
            self.border.add_unsaved(saved)
        self._add_unsaved_evs(set(pending), saved)
        self._show_signals()

    def _keep_outputs(self) -> None:
        """Keep the records SUMO wrote since it last started (it has just stopped), for the KPIs and checkpoints."""
        from aicity.domains.mobility.checkpoint import OUTPUTS, kept_at_restart, records

        assert self._tmp is not None
        for name in OUTPUTS:
            self._before.setdefault(name, []).extend(r for r in records(self._tmp / name) if kept_at_restart(r))

    def _write_before(self) -> None:
        """Write the records kept from earlier runs of SUMO where the KPIs read them (beside the last run's)."""
        from aicity.domains.mobility.checkpoint import BEFORE, write_records

        assert self._tmp is not None
        for name, items in self._before.items():
            write_records(self._tmp / f"{BEFORE}{name}", items)

    def _add_unsaved_evs(self, pending: set[str], saved: set[str]) -> None:
        """Add again the planned emergency vehicles SUMO's state file (``saved``) does not hold."""
        api = self._sumo
        here = saved | set(api.vehicle.getIDList()) | set(api.simulation.getPendingVehicles())
        for plan in self.ev_plan:
            vid = plan["id"]
            if vid in here or (plan["depart"] < self._t and vid not in pending):
                continue  # on the road, or it departed before the checkpoint
            rid = f"{EV_PREFIX}route_{vid.removeprefix(EV_PREFIX)}"
            if rid not in api.route.getIDList():
                api.route.add(rid, self._ev_routes[vid])
            api.vehicle.add(vid, rid, typeID=EV_VTYPE, depart=f"{max(plan['depart'], self._t):.1f}",
                            departLane="best", departSpeed="max")

    def _show_signals(self) -> None:
        """Show every signal's state as its edge and cabinet have it (SUMO's state file keeps a programme's phase,
        not a state set by a twin)."""
        tl = self._sumo.trafficlight
        for sid, edge in self.edges.items():
            if self.power.source(sid) == POWER_NONE:
                tl.setRedYellowGreenState(sid, self._dark_state(sid))
            elif edge.controlled:
                edge.resend()
                state = edge.poll()
                if state is not None:
                    tl.setRedYellowGreenState(sid, state)

    # ----- end -----------------------------------------------------------------------------------------
    def close(self) -> DomainResult:
        """Stop SUMO and report the KPIs (RESCO delay, trips, equity per signal/district, emergency trips)."""
        from aicity.domains.mobility.kpis import compute_result

        if not self._running:
            raise UserError("the twin was not started")
        veh = self._sumo.vehicle
        never = [(v, float(veh.getDepartDelay(v))) for v in self._sumo.simulation.getPendingVehicles()]
        if self.border is not None:
            never += self.border.not_entered({v for v, _ in never})
        self.host.close()
        self._running = False
        assert self.net is not None and self._tmp is not None
        try:
            self._write_before()  # the records of SUMO's runs before the last checkpoint, beside the last run's
            return compute_result(self, never)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    # ----- what KPIs need ------------------------------------------------------------------------------
    @property
    def output_dir(self) -> Path:
        """The folder SUMO writes this run's detector and trip outputs to (while the run lasts)."""
        if self._tmp is None:
            raise UserError("the twin was not started")
        return self._tmp

    @property
    def queue_series(self) -> list[tuple[float, float]]:
        """Total halting vehicles at all signal approaches at every decision step."""
        return list(self._queue_series)

    def signal_xy(self) -> Mapping[str, tuple[float, float]]:
        """Network coordinates of each signal."""
        assert self.net is not None
        return {sid: (s.x, s.y) for sid, s in self.net.signals.items()}
