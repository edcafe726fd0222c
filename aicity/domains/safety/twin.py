"""The public-safety twin: incidents, stations, hospitals and ambulances driving in SUMO among the traffic.

Ambulances are SUMO vehicles of class ``emergency`` added at run time (routes from ``simulation.findRoute``).
In a city with the mobility domain the twin rides on mobility's SUMO (``RunServices.shared["sumo"]``) and
publishes its en-route ambulances as ``EmergencyVehicle`` entities in the shape mobility's preemption planner
reads; alone it starts its own SUMO on the map. What it reports is what a dispatch centre sees: reported
incidents, each ambulance's own position and status, and detector speeds — never SUMO's travel times.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from aicity.core.capabilities import RejectedInput
from aicity.core.domain import DomainResult, Outcome, ProposedAction, Scenario
from aicity.core.entity import Entity, Property, Relationship, urn
from aicity.core.errors import UserError
from aicity.domains.safety.const import (
    AMB_VTYPE,
    AMBULANCE_PREFIX,
    AMBULANCE_TYPE,
    AVAILABLE,
    BACKGROUND_EXCLUDED,
    EV_TYPE,
    HANDOVER,
    IDLE,
    INCIDENT_PREFIX,
    INCIDENT_TYPE,
    ON_SCENE,
    RESPONDING,
    RETURNING,
    SPEED_TYPE,
    TRAFFIC_INCIDENT_TYPE,
    TRANSPORTING,
    VEHICLE_PREFIX,
)
from aicity.domains.safety.edge import DispatchEdge, EdgeLimits
from aicity.domains.safety.geo import SafetyMap, load_map
from aicity.domains.safety.incidents import Incident, generate
from aicity.domains.safety.intake import check_incident_report, check_position
from aicity.domains.safety.roadblock import (
    ROAD_INCIDENT_ID,
    RoadBlock,
    RoadIncidentSpec,
    patient_calls,
    resolve_spec,
)

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
STAND_BACK_M = 0.5
"""A standing unit's front is this far before the end of its edge (SUMO inserts it there)."""
JAM_SPACING_M = 7.5
"""Road a standing car takes in a jam: SUMO's default passenger car, 5 m, and its 2.5 m gap."""
STUCK_CHECK_S = 10.0
"""How often the twin looks for an ambulance standing in a gridlock (simulated seconds)."""


@dataclass(slots=True)
class TwinConfig:
    """Options of a safety run (see :mod:`aicity.domains.safety.meta` for units and ranges)."""

    decision_interval_s: float = 10.0
    ambulances: int = 3
    zones_per_side: int = 3
    hospitals: int = 1
    load_multiplier: float = 1.0
    service_scale: float = 1.0
    call_processing_s: float = 60.0
    bluelight: bool = False
    stuck_bypass_s: float = 300.0
    drill_calls: int = 0
    bad_inputs: bool = False
    coverage_radius_s: float = 90.0
    target_p1_s: float = 90.0
    target_p2_s: float = 120.0
    busy_q: float = 0.3
    record_travel_times: bool = False
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    road_incident: RoadIncidentSpec = field(default_factory=RoadIncidentSpec)
    epoch: datetime | None = None
    shared: dict[str, object] | None = None


@dataclass(slots=True)
class Unit:
    """One ambulance as the twin simulates it."""

    id: str
    home: str
    edge: str
    xy: tuple[float, float]
    status: str = IDLE
    vid: str | None = None
    trips: int = 0
    dest: str | None = None
    incident: str | None = None
    until: float = 0.0
    relocatable: bool = False
    freed_at: float | None = None
    reloc_km: float = 0.0
    last_fix: tuple[float, float, float] | None = None
    route: tuple[str, ...] = ()


@dataclass(slots=True)
class CallState:
    """One incident while the run lasts: when it was reported, dispatched, reached and closed."""

    inc: Incident
    reported_s: float | None = None
    unit: str | None = None
    dispatch_s: float | None = None
    arrival_s: float | None = None
    travel_ff_s: float | None = None
    closed: bool = False


def ambulance_urn(unit: str) -> str:
    """Entity id of an ambulance."""
    return urn(AMBULANCE_TYPE, unit)


def incident_urn(inc: str) -> str:
    """Entity id of an incident."""
    return urn(INCIDENT_TYPE, inc)


class SafetyTwin:
    """Ambulances, incidents and dispatch on SUMO, implementing :class:`aicity.core.domain.Twin`."""

    def __init__(self, scenario: Scenario, *, seed: int, mode: str, config: TwinConfig | None = None) -> None:
        if mode not in ("smart", "ai"):
            raise UserError(f"unknown safety mode {mode!r}: use 'smart' or 'ai'")
        if scenario.path is None:
            raise UserError(f"safety scenario {scenario.name!r} names no map")
        self.scenario = scenario
        self.seed = int(seed)
        self.mode = mode
        self.config = config or TwinConfig()
        self.decision_interval_s = self.config.decision_interval_s
        self.begin_s = float(scenario.begin_s)
        self.end_s = float(scenario.end_s)
        self.start_time = (self.config.epoch or EPOCH) + timedelta(seconds=self.begin_s)
        self.map: SafetyMap | None = None
        self.units: dict[str, Unit] = {}
        self.calls: dict[str, CallState] = {}
        self.edge: DispatchEdge | None = None
        self.host: Any = None
        self._api: Any = None
        self._own_host = False
        self._tmp: Path | None = None
        self._t = self.begin_s
        self._target = self.begin_s
        self._vid_unit: dict[str, str] = {}
        self._departed: set[str] = set()
        self._pending_reports: list[dict[str, Any]] = []
        self._seen_reports: set[str] = set()
        self.dead_letters: list[dict[str, Any]] = []
        self._handed = 0  # dead letters already handed to the loop
        self.outcomes: list[Outcome] = []
        self._busy_s = 0.0
        self._samples: list[tuple[float, float, float, float]] = []  # (elapsed, coverage, busy units, halting)
        self._unit_track: dict[str, list[tuple[float, float]]] = {}
        self._unit_xy: dict[str, list[tuple[float, float, float]]] = {}
        """Each unit's map position every minute: (seconds into the window, x, y), for the report's map."""
        self._time_loss: dict[str, float] = {}
        """Each background vehicle's time lost so far (SUMO's timeLoss, read every decision interval; an arrived
        vehicle keeps its last reading): the traffic's delay."""
        self._detector_edges: tuple[str, ...] = ()
        self._signals: Any = None
        self._lane_links: dict[tuple[str, int], tuple[int, ...]] = {}
        self._times: dict[str, dict[str, float]] = {}
        self._running = False
        self._bounds = (0.0, 0.0, 0.0, 0.0)
        self.stations: list[str] = []
        self.route_weights: dict[str, float] = {}
        self.roadblock: RoadBlock | None = None
        self._road_calls: set[str] = set()
        self._edge_times: dict[str, list[float]] = {}  # ground truth for the traffic-aware oracle only
        self._args: list[str] = []  # SUMO's command line when this twin started it (again from a checkpoint)
        self._own_hooks = 0  # the hooks on its own SUMO once set up: more means another twin rides it
        self.bypasses: list[dict[str, Any]] = []  # ambulances moved past a gridlock (see _bypass_stuck)
        self._queued: dict[str, float] = {}  # trips added, not yet on the road: since when (s after the begin)

    def critical_sites(self) -> list[tuple[str, str, tuple[float, float]]]:
        """The hospital(s) and ambulance stations as critical loads: (entity id, kind, map position)."""
        assert self.map is not None
        out = [(f"urn:ngsi-ld:Hospital:{h}", "hospital", self.map.xy[h]) for h in self.map.hospitals]
        out += [(f"urn:ngsi-ld:AmbulanceStation:{s}", "station", self.map.xy[s]) for s in dict.fromkeys(self.stations)]
        return out

    # ----- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Attach to the city's SUMO (or start one), place the ambulances at their stations, draw the incidents."""
        from aicity.domains.mobility.scenarios import read_sumocfg
        from aicity.domains.mobility.sumo_host import SHARED_NAME, SumoHost

        cfg = read_sumocfg(str(self.scenario.path))
        c = self.config
        smap = self.map = self._load_map(cfg.net)
        xs = [p[0] for p in smap.xy.values()]
        ys = [p[1] for p in smap.xy.values()]
        self._bounds = (min(xs), min(ys), max(xs), max(ys))
        shared = c.shared.get(SHARED_NAME) if c.shared is not None else None
        if isinstance(shared, SumoHost):
            self.host = shared
        else:
            self.host = SumoHost.start(self._sumo_args(cfg), begin_s=self.begin_s, end_s=self.end_s,
                                       name=self.scenario.name)
            self._own_host = True
            if c.shared is not None:
                c.shared[SHARED_NAME] = self.host
        try:
            self._setup(cfg)
            self._own_hooks = self.host.hooks
        except BaseException:
            if self._own_host:
                self.host.close()
                if c.shared is not None:
                    c.shared.pop(SHARED_NAME, None)
            raise

    def _load_map(self, net: str) -> SafetyMap:
        """The map as the dispatcher knows it (a generated grid city's twin lays it out block by block)."""
        return load_map(net, self.config.zones_per_side, self.config.hospitals)

    def _setup(self, cfg: Any) -> None:
        c = self.config
        smap = self.map
        assert smap is not None
        self._api = self.host.api
        self._t = self._target = self.host.t
        self._vtype()
        self._read_signals(cfg.net)
        self.host.on_step(after=self._after_step)
        self._running = True
        self._times = {s: smap.times_from(s) for s in (*smap.sites.values(), *smap.hospitals)}
        from aicity.domains.safety.planning import historical_demand, home_stations

        demand = historical_demand(smap, c.load_multiplier)
        self.stations = home_stations(smap, demand, c.ambulances, c.coverage_radius_s, c.busy_q)
        from aicity.domains.safety.route_network import route_weights

        self.route_weights = route_weights(smap, self.stations)
        if c.shared is not None:
            c.shared["ems"] = self  # the city coupler reads where the critical sites are
        covers = self._covers()
        for k, site in enumerate(self.stations):
            uid = f"A{k + 1}"
            self.units[uid] = Unit(uid, site, site, smap.xy[site])
            self._unit_track[uid] = []
            self._unit_xy[uid] = []
        self.edge = DispatchEdge({u: IDLE for u in self.units}, {u: x.home for u, x in self.units.items()},
                                 covers, demand, c.limits)
        incidents = generate(smap, begin_s=self.begin_s, duration_s=self.end_s - self.begin_s, seed=self.seed,
                             load_multiplier=c.load_multiplier, service_scale=c.service_scale,
                             drill_calls=c.drill_calls, call_processing_s=c.call_processing_s)
        self.calls = {i.id: CallState(i) for i in incidents}
        if c.road_incident.enabled:
            import numpy as np

            spec = resolve_spec(c.road_incident, smap, np.random.default_rng([self.seed, 7004]))
            self.roadblock = RoadBlock(spec, smap.lanes.get(spec.edge) or (f"{spec.edge}_0",))
            for inc in patient_calls(spec, smap, np.random.default_rng([self.seed, 7005]), c.service_scale):
                self.calls[inc.id] = CallState(inc)
                self._road_calls.add(inc.id)
        if c.bad_inputs:
            self._plan_bad_inputs(incidents)

    def _sumo_args(self, cfg: Any) -> list[str]:
        from aicity.domains.mobility.scenarios import sumo_binary

        self._tmp = Path(tempfile.mkdtemp(prefix="aicity-safety-"))
        args = [sumo_binary(), "-n", cfg.net, "--begin", f"{self.begin_s:g}", "--end", f"{self.end_s:g}",
                "--step-length", "1", "--time-to-teleport", "-1", "--seed", str(self.seed), "--no-step-log", "true",
                "--no-warnings", "true", "--duration-log.disable", "true",
                "--save-state.rng", "true", "--save-state.precision", "9"]  # a checkpoint: every RNG, exact
        if cfg.routes:
            args += ["-r", ",".join(cfg.routes)]
        if cfg.additional:
            args += ["--additional-files", ",".join(cfg.additional)]
        self._args = args
        return args

    def _vtype(self) -> None:
        vt = self._api.vehicletype
        if AMB_VTYPE not in vt.getIDList():
            vt.copy("DEFAULT_VEHTYPE", AMB_VTYPE)
            vt.setVehicleClass(AMB_VTYPE, "emergency")
            vt.setShapeClass(AMB_VTYPE, "emergency")
            vt.setColor(AMB_VTYPE, (255, 255, 255, 255))
            vt.setSpeedFactor(AMB_VTYPE, 1.0)
        if self.config.bluelight:
            vt.setParameter(AMB_VTYPE, "has.bluelight.device", "true")

    def _read_signals(self, net_path: str) -> None:
        from aicity.domains.mobility.ev_report import lane_links
        from aicity.domains.mobility.network import load_network

        net = self._signals = load_network(net_path)
        assert self.map is not None
        self._detector_edges = tuple(sorted({net.lanes[ln].edge for ln in net.lane_signal
                                             if net.lanes[ln].edge in self.map.length}))
        self._lane_links = lane_links(net)

    def _covers(self) -> dict[str, set[str]]:
        from aicity.domains.safety.mexclp import coverage_matrix

        assert self.map is not None
        sites = list(self.map.sites.values())
        return coverage_matrix(self._times, sites, self.map.sites, self.config.coverage_radius_s)

    def elapsed_s(self) -> float:
        """Simulated seconds since the scenario's begin."""
        return self._t - self.begin_s

    def done(self) -> bool:
        """True once the window's end is reached."""
        return self._t >= self.end_s - 1e-9

    def advance(self, seconds: float) -> None:
        """Simulate ``seconds`` more (a no-op for the shared SUMO when another twin already stepped there)."""
        self._target += round(seconds)
        self.host.advance_to(self._target)

    # ----- the simulation, second by second --------------------------------------------------------------
    def _after_step(self, t: float) -> None:
        self._t = t
        api = self._api
        sim = api.simulation
        departed = sim.getDepartedIDList()
        for vid in departed:
            if vid in self._vid_unit:
                self._departed.add(vid)
                self._queued.pop(vid, None)
        if self.roadblock is not None:
            self._road_incident(t, departed)
        for vid in sim.getArrivedIDList():
            uid = self._vid_unit.pop(vid, None)
            if uid is not None:
                self._departed.discard(vid)
                self._arrive(self.units[uid], t)
        for u in self.units.values():
            if u.status in (ON_SCENE, HANDOVER) and t >= u.until:
                self._service_done(u, t)
        el = t - self.begin_s
        if self.config.stuck_bypass_s > 0 and el % STUCK_CHECK_S < 1e-9:
            self._bypass_stuck(el)
        self._report_calls(t)
        assert self.edge is not None
        if self.edge.safe:
            self._safe_dispatch(t)
        busy = sum(1 for u in self.units.values() if u.status not in AVAILABLE)
        self._busy_s += busy
        if el % self.decision_interval_s < 1e-9:
            halting = sum(api.edge.getLastStepHaltingNumber(e) for e in self._detector_edges)
            self._samples.append((el, self.edge.covered_share(), float(busy), float(halting)))
            self._read_time_loss()
            if self.config.record_travel_times:
                self._record_edge_times()
            if el % 60 < 1e-9 and self.map is not None:
                for u in self.units.values():
                    xy = self._xy(u)
                    self._unit_track[u.id].append((el, math.dist(xy, self.map.xy[u.home])))
                    self._unit_xy.setdefault(u.id, []).append((el, round(xy[0], 1), round(xy[1], 1)))

    def _read_time_loss(self) -> None:
        """Every background vehicle's time lost so far (ambulances and other emergency vehicles apart)."""
        veh = self._api.vehicle
        for vid in veh.getIDList():
            if not vid.startswith(BACKGROUND_EXCLUDED):
                self._time_loss[vid] = float(veh.getTimeLoss(vid))

    def _bypass_stuck(self, el: float) -> None:
        """Move on an ambulance that has stood ``stuck_bypass_s`` mid-trip, or waited that long to be let on to
        the road at all, to the first road ahead on its route with room for it (its last road if none has), as its
        crew would find a way round, and as SUMO's own teleport does (the twin runs with teleporting off for the
        traffic's sake, so a gridlock never clears by itself). Both modes alike; each move is recorded in
        :attr:`bypasses`."""
        api = self._api
        for u in self.units.values():
            vid = u.vid
            if vid is None or u.status not in (RESPONDING, TRANSPORTING, RETURNING) or vid not in self._vid_unit:
                continue
            try:
                if vid in self._departed:
                    waited = float(api.vehicle.getWaitingTime(vid))
                    route = list(api.vehicle.getRoute(vid))
                    ahead = route[max(api.vehicle.getRouteIndex(vid), 0) + 1:]
                    road = str(api.vehicle.getRoadID(vid))
                else:  # not on the road yet: SUMO finds no room to insert it
                    waited = el - self._queued.get(vid, el)
                    ahead, road = list(u.route[1:]), u.route[0] if u.route else u.edge
                if waited < self.config.stuck_bypass_s or not ahead:
                    continue
                first = next((k for k, e in enumerate(ahead) if self._has_room(e)), len(ahead) - 1)
            except Exception:  # left the simulation this step
                continue
            rest = ahead[first:]
            self._end_trip(vid)
            self._start_trip(u, rest, "free", el)
            u.edge = rest[0]
            self.bypasses.append({"time_s": el, "unit": u.id, "status": u.status, "stood_s": round(waited, 1),
                                  "at": road, "to": rest[0], "skipped": len(ahead) - len(rest)})

    def _has_room(self, edge: str) -> bool:
        """Whether some lane of ``edge`` has room for one more car at jam spacing (SUMO's default car with its gap)."""
        assert self.map is not None
        lane = self._api.lane
        return any((int(lane.getLastStepVehicleNumber(ln)) + 1) * JAM_SPACING_M <= float(lane.getLength(ln))
                   for ln in self.map.lanes.get(edge) or (f"{edge}_0",))

    def _end_trip(self, vid: str) -> None:
        """Take trip ``vid`` off the road (or out of SUMO's insertion queue) and out of the twin's books."""
        self._vid_unit.pop(vid, None)
        self._departed.discard(vid)
        self._queued.pop(vid, None)
        with contextlib.suppress(Exception):  # already gone
            self._api.vehicle.remove(vid)

    def _start_trip(self, u: Unit, edges: list[str], depart_pos: str, el: float) -> None:
        """Put ``u`` on the road along ``edges`` as a fresh SUMO trip, inserted at ``depart_pos`` as soon as SUMO
        finds room (its id skips the ids a restored simulation already holds)."""
        api = self._api
        u.trips += 1
        vid = f"{VEHICLE_PREFIX}{u.id}_{u.trips}"
        taken = {*api.route.getIDList(), *api.vehicle.getIDList()}
        while vid in taken or f"{vid}_route" in taken:
            u.trips += 1
            vid = f"{VEHICLE_PREFIX}{u.id}_{u.trips}"
        api.route.add(f"{vid}_route", edges)
        api.vehicle.add(vid, f"{vid}_route", typeID=AMB_VTYPE, depart="now", departLane="best", departSpeed="max",
                        departPos=depart_pos)
        u.vid, u.route = vid, tuple(edges)
        self._vid_unit[vid] = u.id
        self._queued[vid] = el

    def _record_edge_times(self) -> None:
        """One sample of every edge's travel time, length over the mean speed on it (at least 1 m/s; an empty edge
        reports its speed limit): ground truth for the traffic-aware oracle, never observed by a planner."""
        assert self.map is not None
        ed = self._api.edge
        for e, length in self.map.length.items():
            self._edge_times.setdefault(e, []).append(length / max(float(ed.getLastStepMeanSpeed(e)), 1.0))

    def _road_incident(self, t: float, departed: tuple[str, ...]) -> None:
        """Start or clear the road incident when due; while it lasts, reroute vehicles departing across it."""
        rb = self.roadblock
        assert rb is not None
        due = rb.due(t - self.begin_s)
        if due == "start":
            rb.start(self._api, t, VEHICLE_PREFIX)
        elif due == "clear":
            rb.clear(self._api, t)
        elif rb.active and departed:
            rb.reroute(self._api, departed, VEHICLE_PREFIX)

    def _report_calls(self, t: float) -> None:
        """Calls whose processing is done are reported to the dispatcher, through the intake."""
        el = t - self.begin_s
        assert self.map is not None
        for cs in self.calls.values():
            if cs.reported_s is None and cs.inc.call_s + self.config.call_processing_s <= el + 1e-9:
                self._intake({"id": cs.inc.id, "edge": cs.inc.edge, "call_s": cs.inc.call_s,
                              "priority": cs.inc.priority}, el)
        due = [r for r in self._pending_reports if r["at_s"] <= el]
        for r in due:
            self._pending_reports.remove(r)
            if r["kind"] == "avl":
                u = self.units[r["unit"]]
                reason = check_position(r["report"], edges=self.map.length, bounds=self._bounds, last=u.last_fix)
                if reason is not None:
                    self.dead_letters.append({"time_s": el, "source": "avl", "reason": reason, "payload": r["report"]})
            else:
                self._intake(r["report"], el)

    def _intake(self, report: dict[str, Any], el: float) -> None:
        assert self.map is not None
        reason = check_incident_report(report, edges=self.map.length, now_s=el, seen=self._seen_reports)
        if reason is not None:
            self.dead_letters.append({"time_s": el, "source": "call intake", "reason": reason, "payload": report})
            return
        self._seen_reports.add(str(report["id"]))
        cs = self.calls.get(str(report["id"]))
        if cs is not None:
            cs.reported_s = el

    def _plan_bad_inputs(self, incidents: list[Incident]) -> None:
        """Fault injection: one report of each bad kind, at seeded times in the first half of the window."""
        assert self.map is not None
        rng = random.Random(self.seed * 7919 + 5)
        span = (self.end_s - self.begin_s) / 2
        real = list(incidents)
        uid = sorted(self.units)[0]
        _x0, _y0, x1, y1 = self._bounds
        bad: list[dict[str, Any]] = [
               {"kind": "call", "report": {"id": "X-unknown", "edge": "no-such-road", "call_s": 0.0, "priority": 1}},
               {"kind": "call", "report": {"id": "X-future", "edge": self.map.edges[0], "call_s": 1e9,
                                           "priority": 1}},
               {"kind": "avl", "unit": uid, "report": {"x": x1 + 50_000.0, "y": y1 + 50_000.0, "t": 0.0,
                                                       "edge": self.units[uid].edge}}]
        if real:
            first = real[0]
            bad.append({"kind": "call", "report": {"id": first.id, "edge": first.edge, "call_s": first.call_s,
                                                   "priority": first.priority},
                        "after": first.call_s + self.config.call_processing_s + 1})
        for b in bad:
            at = float(b["after"]) if "after" in b else rng.uniform(1.0, span)
            if b["kind"] == "avl":
                b["report"]["t"] = at
            b["at_s"] = at
            self._pending_reports.append(b)

    # ----- ambulance movements ---------------------------------------------------------------------------
    def _xy(self, u: Unit) -> tuple[float, float]:
        if u.vid is not None and u.vid in self._departed:
            try:
                x, y = self._api.vehicle.getPosition(u.vid)
                road = self._api.vehicle.getRoadID(u.vid)
                if road in (self.map.length if self.map else {}):
                    u.edge = road
                u.xy = (float(x), float(y))
            except Exception:  # the vehicle left the simulation this step
                pass
        return u.xy

    def _drive(self, u: Unit, target: str, t: float, route: tuple[str, ...] = ()) -> float:
        """Send ``u`` to ``target`` (a new SUMO trip, or a new destination for the trip under way); route km.
        A planned ``route`` (a valid one: see :meth:`_valid_route`) is followed, else SUMO routes on its defaults."""
        api = self._api
        if u.vid is not None and u.vid in self._vid_unit:
            try:
                if route and u.vid in self._departed and api.vehicle.getRoadID(u.vid) == route[0]:
                    api.vehicle.setRoute(u.vid, list(route))
                else:
                    api.vehicle.changeTarget(u.vid, target)
                u.dest, u.route = target, tuple(api.vehicle.getRoute(u.vid))
                return float(api.simulation.findRoute(u.edge, target, vType=AMB_VTYPE).length) / 1000.0
            except Exception:  # not inserted yet, or no route from where it is: start a fresh trip
                self._end_trip(u.vid)
        stage = api.simulation.findRoute(u.edge, target, vType=AMB_VTYPE)
        edges = list(route) if route and route[0] == u.edge else (list(stage.edges) or [target])
        if edges[0] != u.edge:
            edges = [u.edge, *edges] if u.edge != target else [target]
        self._start_trip(u, edges, self._stand_pos(edges[0]), t - self.begin_s)
        u.dest = target
        return float(stage.length) / 1000.0

    def _stand_pos(self, edge: str) -> str:
        """Where a standing unit starts its next trip: the end of the edge it stands on, where its last trip
        arrived (SUMO's default arrival) and where the planners and the oracles put it."""
        assert self.map is not None
        return f"{max(0.0, self.map.length.get(edge, 0.0) - STAND_BACK_M):.2f}"

    def _valid_route(self, route: object, source: str, target: str) -> tuple[str, ...]:
        """A planned route as a tuple when it runs on the map's connected edges from ``source`` to ``target``,
        else () (SUMO's own routing is used)."""
        assert self.map is not None
        if not isinstance(route, list | tuple) or not route or not all(isinstance(e, str) for e in route):
            return ()
        edges = tuple(str(e) for e in route)
        if edges[0] != source or edges[-1] != target:
            return ()
        succ = self.map.succ
        if any(b not in succ.get(a, ()) for a, b in pairwise(edges)):
            return ()
        return edges

    def _arrive(self, u: Unit, t: float) -> None:
        assert self.map is not None and self.edge is not None
        el = t - self.begin_s
        u.edge = u.dest or u.edge
        u.xy = self.map.xy[u.edge]
        u.vid, u.route = None, ()
        if u.status == RESPONDING and u.incident is not None:
            cs = self.calls[u.incident]
            cs.arrival_s = el
            u.status, u.until = ON_SCENE, t + cs.inc.on_scene_s
            self.edge.set_status(u.id, ON_SCENE)
        elif u.status == TRANSPORTING and u.incident is not None:
            u.status, u.until = HANDOVER, t + self.calls[u.incident].inc.handover_s
            self.edge.set_status(u.id, HANDOVER)
        elif u.status == RETURNING:
            u.status, u.relocatable = IDLE, False
            self.edge.set_status(u.id, IDLE, u.edge)

    def _service_done(self, u: Unit, t: float) -> None:
        assert self.map is not None and self.edge is not None and u.incident is not None
        cs = self.calls[u.incident]
        if u.status == ON_SCENE and cs.inc.transport:
            times = self.map.times_from(u.edge)
            hosp = min(self.map.hospitals, key=lambda h: (times.get(h, math.inf), h))
            u.status = TRANSPORTING
            self.edge.set_status(u.id, TRANSPORTING)
            self._drive(u, hosp, t)
            return
        cs.closed = True
        u.incident, u.status, u.relocatable, u.freed_at = None, RETURNING, True, t - self.begin_s
        self.edge.set_status(u.id, RETURNING, u.home)
        self._go_home(u, t)

    def _go_home(self, u: Unit, t: float) -> None:
        if u.edge == u.home and u.vid is None:
            u.status, u.relocatable = IDLE, False
            assert self.edge is not None
            self.edge.set_status(u.id, IDLE, u.home)
            return
        self._drive(u, u.home, t)

    def _send(self, u: Unit, cs: CallState, t: float, route: tuple[str, ...] = ()) -> None:
        u.status, u.incident, u.relocatable = RESPONDING, cs.inc.id, False
        cs.unit, cs.dispatch_s = u.id, t - self.begin_s
        assert self.map is not None
        cs.travel_ff_s = self.map.times_from(u.edge).get(cs.inc.edge, math.inf)
        self._drive(u, cs.inc.edge, t, route)

    def _safe_dispatch(self, t: float) -> None:
        """The safe state's own policy: closest idle ambulance on free-flow times, oldest call first."""
        assert self.map is not None and self.edge is not None
        for cs in self._pending():
            free = [u for u in self.units.values() if u.status in AVAILABLE]
            if not free:
                return
            smap = self.map
            best = min(free, key=lambda u: (smap.times_from(u.edge).get(cs.inc.edge, math.inf), u.id))
            if self.edge.force_dispatch(best.id, cs.inc.id).ok:
                self._send(best, cs, t)

    def _pending(self) -> list[CallState]:
        out = [c for c in self.calls.values() if c.reported_s is not None and c.unit is None]
        return sorted(out, key=lambda c: (c.inc.priority, c.inc.call_s, c.inc.id))

    # ----- actuation -----------------------------------------------------------------------------------
    def actuate(self, action: ProposedAction) -> Outcome:
        """Pass a dispatch or relocation through the edge; applied ones start the ambulance's trip."""
        assert self.edge is not None and self.map is not None
        uid = action.target.removeprefix(AMBULANCE_PREFIX)
        t = self._t
        if uid not in self.units or not action.target.startswith(AMBULANCE_PREFIX):
            out = Outcome(action, "refused", bound_by=("unknown_target",), reason=f"no ambulance {action.target!r}")
        elif action.action == "dispatch":
            inc = str(action.params.get("incident", "")).removeprefix(INCIDENT_PREFIX)
            cs = self.calls.get(inc)
            v = self.edge.dispatch(uid, inc, reported=cs is not None and cs.reported_s is not None)
            if v.ok and cs is not None:
                u = self.units[uid]
                self._send(u, cs, t, self._valid_route(action.params.get("route"), u.edge, cs.inc.edge))
            out = Outcome(action, v.status, {"dispatch": uid, "incident": inc} if v.ok else {}, v.bound_by, v.reason)
        elif action.action == "relocate":
            site = str(action.params.get("station", ""))
            v = self.edge.relocate(uid, site, t - self.begin_s)
            if v.ok:
                u = self.units[uid]
                u.status, u.relocatable = RETURNING, False
                u.reloc_km += self._drive(u, site, t) if (u.edge != site or u.vid is not None) else 0.0
                if u.edge == site and u.vid is None:
                    u.status = IDLE
                    self.edge.set_status(uid, IDLE, site)
            out = Outcome(action, v.status, {"relocate": uid, "station": site} if v.ok else {}, v.bound_by, v.reason)
        else:
            out = Outcome(action, "refused", bound_by=("known_action",), reason=f"unknown action {action.action!r}")
        self.outcomes.append(out)
        return out

    def safe_state(self) -> None:
        """Closest-idle dispatch on free-flow times by the edge itself; every available ambulance heads home."""
        assert self.edge is not None
        self.edge.safe = True
        for u in self.units.values():
            if u.status in AVAILABLE and (u.dest or u.edge) != u.home:
                u.status, u.relocatable = RETURNING, False
                self.edge.set_status(u.id, RETURNING, u.home)
                self._go_home(u, self._t)
        self._safe_dispatch(self._t)

    def resume(self) -> None:
        """Hand dispatch and relocation back to the planners."""
        assert self.edge is not None
        self.edge.safe = False

    # ----- sensing -------------------------------------------------------------------------------------
    def rejected(self) -> list[RejectedInput]:
        """Reports refused at the boundary since the last call (the loop dead-letters and counts them)."""
        new = self.dead_letters[self._handed:]
        self._handed = len(self.dead_letters)
        return [{"source": f"safety.{d['source']}", "reason": str(d["reason"]), "payload": d["payload"]} for d in new]

    def observe(self) -> list[Entity]:
        """Reported incidents, ambulances' own reports, detector speeds and en-route ambulances, as entities."""
        assert self.map is not None
        when = self.start_time + timedelta(seconds=self.elapsed_s())
        el = self.elapsed_s()
        ents: list[Entity] = []
        for cs in sorted(self.calls.values(), key=lambda c: c.inc.id):
            if cs.reported_s is None:
                continue
            inc = cs.inc
            status = "closed" if cs.closed else ("on_scene" if cs.arrival_s is not None else
                                                  ("assigned" if cs.unit else "reported"))
            attrs: dict[str, Any] = {
                "callTime": Property(inc.call_s, when, "SEC"), "reportedTime": Property(cs.reported_s, when, "SEC"),
                "roadSegment": Property(inc.edge, when), "zone": Property(inc.zone, when),
                "priority": Property(inc.priority, when), "status": Property(status, when),
                "position": Property([round(v, 1) for v in self.map.xy[inc.edge]], when)}
            if cs.unit:
                attrs["assignedUnit"] = Relationship(ambulance_urn(cs.unit), when)
            if inc.id in self._road_calls:
                attrs["refTrafficIncident"] = Relationship(urn(TRAFFIC_INCIDENT_TYPE, ROAD_INCIDENT_ID), when)
            ents.append(Entity.trusted(incident_urn(inc.id), INCIDENT_TYPE, attrs))
        for u in self.units.values():
            x, y = self._xy(u)
            u.last_fix = (el, x, y)
            attrs = {
                "status": Property(u.status, when), "position": Property([round(x, 1), round(y, 1)], when),
                "roadSegment": Property(u.edge, when), "homeStation": Property(u.home),
                "destination": Property(u.dest if u.status in (RESPONDING, TRANSPORTING, RETURNING) else None, when),
                "relocatable": Property(u.relocatable, when),
                "relocationsLastHour": Property(self.edge.relocations_last_hour(el, u.id) if self.edge else 0, when)}
            attrs["signalsAhead"] = Property(list(self._signals_ahead(u)), when)
            if u.incident:
                attrs["assignedIncident"] = Relationship(incident_urn(u.incident), when)
            ents.append(Entity.trusted(ambulance_urn(u.id), AMBULANCE_TYPE, attrs))
            ents.append(self._ev_entity(u, when))
        if self.roadblock is not None and self.roadblock.started_s is not None:
            ents.append(self._road_incident_entity(self.roadblock, when))
        if self.route_weights:
            from aicity.domains.safety.route_network import route_network_entity

            ents.append(route_network_entity(self.route_weights, when))
        ed = self._api.edge
        for e in self._detector_edges:
            n = ed.getLastStepVehicleNumber(e)
            speed = round(float(ed.getLastStepMeanSpeed(e)), 2) if n > 0 else None
            ents.append(Entity.trusted(urn(SPEED_TYPE, e), SPEED_TYPE, {
                "roadSegment": Property(e), "averageVehicleSpeed": Property(speed, when, "MTS"),
                "vehicleCount": Property(int(n), when)}))
        return ents

    def _signals_ahead(self, u: Unit) -> tuple[str, ...]:
        """Signals still ahead on an ambulance's route while it answers a call or carries a patient."""
        from aicity.domains.safety.routes import route_signals

        if u.status not in (RESPONDING, TRANSPORTING) or u.vid is None or self.map is None:
            return ()
        route = u.route
        if u.vid in self._departed:
            try:
                route = tuple(self._api.vehicle.getRoute(u.vid))[max(self._api.vehicle.getRouteIndex(u.vid), 0):]
            except Exception:  # left the simulation this step
                return ()
        return route_signals(route, self.map.turn_signal)

    def _road_incident_entity(self, rb: RoadBlock, when: datetime) -> Entity:
        """The road incident as a ``TrafficIncident``: its segment, blocked lanes, since and until when."""
        assert self.map is not None
        s = rb.spec
        attrs: dict[str, Any] = {
            "roadSegment": Property(s.edge, when),
            "blockedLanes": Property(list(rb.blocked) if rb.active else [], when),
            "lanesTotal": Property(len(rb.lane_ids), when),
            "roadClosure": Property(rb.active and len(rb.blocked) >= len(rb.lane_ids), when),
            "status": Property("active" if rb.active else "cleared", when),
            "startTime": Property(s.at_s, when, "SEC"),
            "expectedClearTime": Property(s.at_s + s.duration_s, when, "SEC"),
            "allowedVehicleClass": Property(["emergency"], when),
            "patients": Property(s.patients, when),
            "position": Property([round(v, 1) for v in self.map.xy[s.edge]], when)}
        if rb.cleared_s is not None:
            attrs["clearedTime"] = Property(rb.cleared_s - self.begin_s, when, "SEC")
        return Entity.trusted(urn(TRAFFIC_INCIDENT_TYPE, ROAD_INCIDENT_ID), TRAFFIC_INCIDENT_TYPE, attrs)

    def _greens_of(self, tls: str) -> list[str]:
        sig = self._signals.signals.get(tls) if self._signals is not None else None
        return list(sig.greens) if sig is not None else []

    def _ev_entity(self, u: Unit, when: datetime) -> Entity:
        """The ambulance as an ``EmergencyVehicle`` (mobility's preemption reads it); signals only en route."""
        from aicity.domains.mobility.ev_report import signals_ahead

        ahead: list[dict[str, Any]] = []
        speed, route = 0.0, []
        veh = self._api.vehicle
        if u.status == RESPONDING and u.vid is not None and u.vid in self._departed:
            try:
                speed = round(float(veh.getSpeed(u.vid)), 2)
                route = list(veh.getRoute(u.vid))[max(veh.getRouteIndex(u.vid), 0):]
                tls_ahead = veh.getNextTLS(u.vid)
            except Exception:  # left the simulation this step
                tls_ahead = []
            ahead = signals_ahead(tls_ahead, self._greens_of, self._lane_links)
        attrs: dict[str, Any] = {
            "position": Property([round(u.xy[0], 2), round(u.xy[1], 2)], when),
            "roadSegment": Property(u.edge, when), "speed": Property(speed, when, "MTS"),
            "remainingRoute": Property(route, when), "nextSignals": Property(ahead, when)}
        if ahead:
            attrs["refNextSignal"] = Relationship(ahead[0]["signal"], when)
        return Entity.trusted(urn(EV_TYPE, f"{VEHICLE_PREFIX}{u.id}"), EV_TYPE, attrs)

    # ----- checkpoints (Checkpointable: a district's worker lost and restarted elsewhere) -----------------
    _SAVED = ("units", "calls", "edge", "_t", "_target", "_vid_unit", "_departed", "_pending_reports",
              "_seen_reports", "dead_letters", "_handed", "outcomes", "_busy_s", "_samples", "_unit_track",
              "_unit_xy", "_time_loss", "_road_calls", "_edge_times", "bypasses", "_queued")
    """The twin's own attributes a checkpoint carries (the map, stations, coverage and signals are static: built
    again by :meth:`start`; the incidents are drawn there and carried with the calls)."""

    def save_state(self) -> bytes:
        """SUMO's state file (every RNG, precision 9), the ambulances' type and the twin's own state (units, calls
        with their incidents, dispatch edge, pending reports, dead letters, outcomes, samples): what a new worker
        needs to go on. SUMO is stopped and started again from the state file here too, so this run goes on
        exactly as a restored one. Riding another twin's SUMO (the city), with another twin riding this one, or
        after the road incident changes SUMO's lanes, it is a ``UserError``: no checkpoint now."""
        from aicity.domains.mobility.checkpoint import pack

        if not self._running or self.edge is None:
            raise UserError("the safety twin was not started")
        if not self._own_host or self._tmp is None:
            raise UserError(f"the safety twin rides another twin's SUMO in {self.scenario.name!r}: no checkpoint")
        if self.host.hooks != self._own_hooks:
            raise UserError(f"another twin rides scenario {self.scenario.name!r}'s SUMO: no checkpoint of it")
        if self.roadblock is not None and self.roadblock.started_s is not None:
            raise UserError("the road incident has changed SUMO's lanes: no checkpoint of the safety twin")
        path = self._tmp / "checkpoint.xml"
        self._api.simulation.saveState(str(path))
        pending = sorted(self._api.simulation.getPendingVehicles())
        vtype = self._vtype_params()
        try:
            self._go_on_from(path, pending, vtype)
            sumo = path.read_bytes()
        finally:
            path.unlink(missing_ok=True)
        return pack({"scenario": self.scenario.name, "seed": self.seed, "mode": self.mode, "sumo": sumo,
                     "pending": pending, "vtype": vtype, "twin": {name: getattr(self, name) for name in self._SAVED},
                     "extra": self._checkpoint_extra()})

    def load_state(self, state: bytes) -> None:
        """Go on from a :meth:`save_state` of a twin of the same scenario, seed and mode (right after
        :meth:`start`): the twin takes its own state back and SUMO starts again from the state file."""
        from aicity.domains.mobility.checkpoint import unpack

        if not self._running or not self._own_host or self._tmp is None:
            raise UserError("the safety twin was not started on a SUMO of its own")
        blob = unpack(state, "safety", (self.scenario.name, self.seed, self.mode))
        for name, value in blob["twin"].items():
            setattr(self, name, value)
        self._restore_extra(blob["extra"])
        path = self._tmp / "checkpoint.xml"
        path.write_bytes(blob["sumo"])
        try:
            self._go_on_from(path, blob["pending"], blob["vtype"])
        finally:
            path.unlink(missing_ok=True)

    def _checkpoint_extra(self) -> dict[str, Any]:
        """What a subclass keeps besides :attr:`_SAVED` (nothing here)."""
        return {}

    def _restore_extra(self, extra: dict[str, Any]) -> None:
        """Take back :meth:`_checkpoint_extra` (before SUMO starts again)."""

    _VTYPE = ("Length", "Width", "Height", "MinGap", "Accel", "Decel", "EmergencyDecel", "ApparentDecel", "Tau",
              "MaxSpeed", "SpeedDeviation", "Imperfection", "EmissionClass")
    """What SUMO's state file does not keep of the ambulances' type, a copy of the default type: it writes the
    class only, and the class's own defaults (6.5 m long, a van's emissions...) come back from it."""

    def _vtype_params(self) -> dict[str, Any]:
        vt = self._api.vehicletype
        return {name: getattr(vt, f"get{name}")(AMB_VTYPE) for name in self._VTYPE}

    def _go_on_from(self, path: Path, pending: list[str], vtype: dict[str, Any]) -> set[str]:
        """Start SUMO again from the state file ``path`` at the twin's time; give the ambulances' type back its
        parameters (``vtype``); add the ambulances it does not hold that were waiting to be inserted
        (``pending``); the vehicles the state file holds."""
        from aicity.domains.mobility.checkpoint import load_state_args, state_vehicles

        self.host.restart(load_state_args(self._args, self._t, path), self._t, name=self.scenario.name)
        api = self._api = self.host.api
        self._target = self._t
        self._vtype()
        for name, value in vtype.items():
            getattr(api.vehicletype, f"set{name}")(AMB_VTYPE, value)
        saved = state_vehicles(path)
        here = saved | set(api.vehicle.getIDList()) | set(api.simulation.getPendingVehicles())
        for vid, uid in sorted(self._vid_unit.items()):
            u = self.units.get(uid)
            if u is not None and vid in set(pending) - here:
                self._add_again(vid, u.route)
        return saved

    def _add_again(self, vid: str, route: tuple[str, ...]) -> None:
        """Add again an ambulance that was waiting to be inserted (SUMO's state file does not hold it)."""
        api = self._api
        rid = f"{vid}_route"
        if rid not in api.route.getIDList():
            api.route.add(rid, list(route))
        api.vehicle.add(vid, rid, typeID=AMB_VTYPE, depart="now", departLane="best", departSpeed="max",
                        departPos=self._stand_pos(route[0]) if route else "base")

    # ----- end -----------------------------------------------------------------------------------------
    def close(self) -> DomainResult:
        """Stop SUMO (when this twin started it) and report the KPIs."""
        from aicity.domains.safety.kpis import compute_result

        if not self._running:
            raise UserError("the safety twin was not started")
        self._running = False
        if self._own_host:
            self.host.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        return compute_result(self)
