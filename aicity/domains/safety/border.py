"""The EMS twin of a generated grid city, whole or one district, and what crosses a district's borders.

:class:`GridSafetyTwin` lays the city out block by block (:mod:`.layout`). As a district it is
:class:`~aicity.core.capabilities.Bordered`; every decision interval it sends its neighbours, through a border
edge leading to each:

* ``ems_units`` — every ambulance in the district with its status, road segment and free-flow seconds to the end
  of each border edge into that neighbour (what a mutual-aid link between two dispatch centres shares; received
  one decision interval later, published there as ``Ambulance`` entities carrying ``district``);
* ``aid_request`` — the district's planner chose a neighbour's unit for one of its calls (:mod:`.aid`): the call,
  its road segment, the unit and the border to take;
* ``aid_declined`` — the answer when the unit was no longer available (the call is pending again);
* ``ambulance`` — a unit reaching the end of its border edge, removed from this SUMO and added to the
  neighbour's on the same edge and lane at the same position (at the highest safe speed), carrying its
  assignment: status, incident, destination, home and home district. A unit lent out belongs to the call's
  district until it has served the call (transport to that district's hospital included); then it drives home,
  crossing back the same way;
* ``vehicle`` — the background traffic, handed over by the mobility domain's own border port.

Whatever is malformed (unknown kind, a border that is not one, an unknown unit or call, impossible lane,
position or speed) is returned as a :class:`~aicity.core.capabilities.RejectedInput`: dead-lettered, never acted
on. What differs from one process is in :mod:`.districts`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aicity.core.capabilities import Crossing, RejectedInput
from aicity.core.domain import DomainResult, Outcome, ProposedAction, Scenario
from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.domains.mobility.border import BorderPort
from aicity.domains.safety.aid import BorderGeometry, border_geometry, from_border, to_borders
from aicity.domains.safety.const import (
    AMB_VTYPE,
    AMBULANCE_PREFIX,
    AMBULANCE_TYPE,
    AVAILABLE,
    IDLE,
    INCIDENT_PREFIX,
    RESPONDING,
    RETURNING,
    STATUSES,
    VEHICLE_PREFIX,
)
from aicity.domains.safety.edge import DispatchEdge
from aicity.domains.safety.geo import SafetyMap
from aicity.domains.safety.layout import (
    GridPlace,
    block_incidents,
    block_map,
    block_stations,
    city_map,
    ems_map,
)
from aicity.domains.safety.twin import CallState, SafetyTwin, TwinConfig, Unit, ambulance_urn

UNITS, REQUEST, DECLINED, AMBULANCE, VEHICLE = "ems_units", "aid_request", "aid_declined", "ambulance", "vehicle"
UNIT_ID = re.compile(r"A\d{1,4}")
MAX_SPEED = 70.0
AWAY = "away"
"""Status published for an ambulance this district reported before and that is no longer here."""


@dataclass
class AidEdge(DispatchEdge):
    """A district's dispatch edge: its coverage also counts the neighbours' available units as last reported
    (at their home stations), as the whole city's does; relocations stay among its own stations."""

    neighbour_covers: Mapping[str, set[str]] = field(default_factory=dict)
    neighbours: dict[str, str] = field(default_factory=dict)
    """Available neighbour unit → the station it covers from."""

    def covered_share(self, where: Mapping[str, str | None] | None = None) -> float:
        """Demand share of this district's zones with an available unit, its own or a neighbour's, covering them."""
        if not self.neighbours:
            return super().covered_share(where)
        units, covers = self.units, self.covers
        self.units = {**units, **dict.fromkeys(self.neighbours, IDLE)}
        self.covers = {**self.neighbour_covers, **covers}
        try:
            return super().covered_share({**(self.where if where is None else where), **self.neighbours})
        finally:
            self.units, self.covers = units, covers


class TrafficPort(BorderPort):
    """The mobility domain's border port for the background traffic; ambulances cross through the EMS port."""

    def _on_borders(self) -> list[str]:
        return [v for v in super()._on_borders() if not v.startswith(VEHICLE_PREFIX)]


@dataclass(slots=True)
class Leaving:
    """A unit driving to a border edge: where it goes next, its last position on the edge, whether it ended."""

    unit: Unit
    to: str
    border: str
    destination: str
    home_district: str
    lane: int = 0
    pos: float = 0.0
    speed: float = 0.0
    seen: bool = False
    ended: bool = False


class GridSafetyTwin(SafetyTwin):
    """The EMS twin of a generated grid city (block-by-block layout); as a district, it crosses borders."""

    def __init__(self, scenario: Scenario, *, seed: int, mode: str, config: TwinConfig, place: GridPlace) -> None:
        super().__init__(scenario, seed=seed, mode=mode, config=config)
        self.place = place
        self.port: TrafficPort | None = None
        self.geo: BorderGeometry | None = None
        self.home_units: list[str] = []
        self.home_of: dict[str, str] = {}
        """Unit → its home district, for every unit that is or was here."""
        self._foreign: dict[str, dict[str, Any]] = {}
        self._leaving: dict[str, Leaving] = {}
        self._gone: set[str] = set()
        self._published: set[str] = set()
        self._queue: list[Crossing] = []
        self.aid = {"requested": 0, "accepted": 0, "declined": 0, "lent_out": 0, "taken_in": 0}

    def _load_map(self, net: str) -> SafetyMap:
        c = self.config
        return ems_map(str(self.scenario.path), net, c.zones_per_side, c.hospitals)

    def _setup(self, cfg: Any) -> None:
        c = self.config
        if c.road_incident.enabled:
            raise UserError("the road incident (incident_at_s) is not available on a generated grid city")
        super()._setup(cfg)
        assert self.map is not None
        from aicity.domains.safety.route_network import route_weights

        homes, demand = block_stations(self.place, c.zones_per_side, c.hospitals, c.ambulances, c.load_multiplier,
                                       c.coverage_radius_s, c.busy_q)
        me = self.place.district or ""
        self.home_units = sorted(homes)
        self.home_of = {u: me for u in homes}
        self.stations = list(homes.values())
        self.units = {u: Unit(u, s, s, self.map.xy[s]) for u, s in homes.items()}
        self._unit_track = {u: [] for u in homes}
        self._unit_xy = {u: [] for u in homes}
        self.route_weights = route_weights(self.map, self.stations)
        self.edge = AidEdge({u: IDLE for u in homes}, dict(homes), self._covers(), demand, c.limits,
                            neighbour_covers=self._neighbour_covers())
        incidents = block_incidents(self.place, c.zones_per_side, c.hospitals, begin_s=self.begin_s,
                                    duration_s=self.end_s - self.begin_s, seed=self.seed,
                                    load_multiplier=c.load_multiplier, service_scale=c.service_scale,
                                    drill_calls=c.drill_calls, call_processing_s=c.call_processing_s)
        self.calls = {i.id: CallState(i) for i in incidents}
        if c.bad_inputs:
            self._pending_reports = []
            self._plan_bad_inputs(incidents)
        if self.place.district is not None:
            self.geo = border_geometry(cfg.net, tuple(sorted(self.place.out)), tuple(sorted(self.place.entries)))
            port = TrafficPort.of({"out": self.place.out, "in": self.place.entries}, self._api, self.begin_s)
            assert isinstance(port, TrafficPort)
            self.port = port
            self.host.on_step(after=port.after_step)
            self.host.on_step(after=self._track_leaving)

    def _covers(self) -> dict[str, set[str]]:
        """Zones each station covers, timed on the whole city's roads (the same in one process and as districts)."""
        from aicity.domains.safety.mexclp import coverage_matrix

        assert self.map is not None
        c = self.config
        whole = city_map(self.place.k, c.zones_per_side, c.hospitals)
        sites = list(self.map.sites.values())
        return coverage_matrix({s: whole.times_from(s) for s in sites}, sites, self.map.sites, c.coverage_radius_s)

    def _neighbour_covers(self) -> dict[str, set[str]]:
        """Zones of this district each other block's stations cover (whole-city roads; empty for the whole city)."""
        from aicity.domains.safety.mexclp import coverage_matrix

        assert self.map is not None
        c = self.config
        whole = city_map(self.place.k, c.zones_per_side, c.hospitals)
        sites = [s for b in range(self.place.k) if b not in self.place.blocks
                 for s in block_map(self.place.k, b, c.zones_per_side, c.hospitals).sites.values()]
        return coverage_matrix({s: whole.times_from(s) for s in sites}, sites, self.map.sites, c.coverage_radius_s)

    # ----- units leaving through a border ----------------------------------------------------------------
    def _leave(self, u: Unit, to: str, border: str, destination: str, t: float) -> None:
        """Drive ``u`` to the end of ``border`` and hand it to district ``to`` there (it is no longer here)."""
        self._drive(u, border, t)
        assert self.edge is not None
        if u.vid is not None:
            self._vid_unit.pop(u.vid, None)
        for table in (self.edge.units, self.edge.where, self.edge.assigned):
            table.pop(u.id, None)
        if u.incident is not None and u.incident not in self.calls:
            self.edge.incident_unit.pop(u.incident, None)
        self._leaving[u.id] = Leaving(u, to, border, destination, self.home_of.get(u.id, ""))
        self._gone.add(u.id)  # out of self.units once no loop over them runs (see _purge)

    def _purge(self) -> None:
        for uid in self._gone:
            self.units.pop(uid, None)
        self._gone.clear()

    def _track_leaving(self, t: float) -> None:
        """After each step: where each leaving unit is on its border edge, whether it reached its end."""
        self._purge()
        if not self._leaving:
            return
        veh = self._api.vehicle
        arrived = set(self._api.simulation.getArrivedIDList())
        for lv in self._leaving.values():
            u = lv.unit
            if u.status not in AVAILABLE:
                self._busy_s += 1
            if lv.ended or u.vid is None:
                continue
            if u.vid in arrived:
                lv.ended = True
                continue
            try:
                if veh.getRoadID(u.vid) == lv.border:
                    lv.lane, lv.pos, lv.speed = int(veh.getLaneIndex(u.vid)), float(veh.getLanePosition(u.vid)), \
                        float(veh.getSpeed(u.vid))
                    lv.seen = True
                x, y = veh.getPosition(u.vid)
                u.xy = (float(x), float(y))
            except Exception:  # not inserted yet
                continue

    def _go_home(self, u: Unit, t: float) -> None:
        """Home; a unit lent to this district drives to the border towards its own."""
        assert self.map is not None
        if u.home in self.map.length or self.place.district is None:
            super()._go_home(u, t)
            return
        home = self.home_of.get(u.id, "")
        border = self._border_to(u.edge, home)
        if border is None:
            raise UserError(f"ambulance {u.id} has no way home from district {self.place.district}")
        self._leave(u, home, border, u.home, t)

    def _border_to(self, source: str, district: str) -> str | None:
        """The outgoing border edge towards ``district`` reached soonest from ``source`` (free flow)."""
        assert self.map is not None and self.geo is not None
        borders = sorted(e for e, d in self.place.out.items() if d == district)
        times = to_borders(self.map, self.geo, source, borders, self.map.free_flow_costs())
        return min(times, key=lambda e: (times[e], e)) if times else None

    # ----- what crosses --------------------------------------------------------------------------------
    def outbound(self) -> list[Crossing]:
        """Requests and answers, units at the end of a border edge, the unit report, the background traffic."""
        if self.place.district is None:
            return []
        self._purge()
        at = self.elapsed_s()
        out, self._queue = self._queue, []
        for uid, lv in sorted(self._leaving.items()):
            if not (lv.ended or lv.seen):
                continue
            u = lv.unit
            if not lv.ended and u.vid is not None:
                self._api.vehicle.remove(u.vid)
            if lv.ended:
                lv.pos = float(self._api.lane.getLength(f"{lv.border}_{lv.lane}"))
            del self._leaving[uid]
            self.aid["lent_out"] += 1
            out.append({"via": lv.border, "kind": AMBULANCE, "at_s": at, "payload": {
                "unit": uid, "home": u.home, "home_district": lv.home_district, "status": u.status,
                "incident": u.incident, "destination": lv.destination, "to": lv.to, "lane": lv.lane,
                "pos": round(lv.pos, 2), "speed": round(lv.speed, 2), "trips": u.trips,
                "reloc_km": round(u.reloc_km, 4)}})
        out += self._report(at)
        if self.port is not None:
            out += self.port.outbound()
        return out

    def _report(self, at: float) -> list[Crossing]:
        """Every unit here, for each neighbour: status, segment, free-flow seconds to each border into it."""
        assert self.map is not None and self.geo is not None
        free = self.map.free_flow_costs()
        out: list[Crossing] = []
        for n in sorted(set(self.place.out.values())):
            borders = sorted(e for e, d in self.place.out.items() if d == n)
            units = []
            for u in sorted(self.units.values(), key=lambda x: x.id):
                x, y = self._xy(u)
                units.append({"id": u.id, "status": u.status, "edge": u.edge, "home": u.home,
                              "xy": [round(x, 1), round(y, 1)],
                              "border_s": {e: round(s, 2) for e, s in to_borders(self.map, self.geo, u.edge,
                                                                                 borders, free).items()}})
            out.append({"via": borders[0], "kind": UNITS, "at_s": at,
                        "payload": {"district": self.place.district, "units": units}})
        return out

    def inbound(self, crossings: list[Crossing]) -> list[RejectedInput]:
        """Take in what crossed; what is malformed comes back with its reason (never acted on)."""
        rejected: list[RejectedInput] = []
        for c in crossings:
            try:
                if not isinstance(c, Mapping) or not isinstance(c.get("payload"), Mapping):
                    raise UserError("a crossing needs a kind, a border and a payload")
                kind = c.get("kind")
                if kind == VEHICLE:
                    if self.port is None:
                        raise UserError("this twin has no borders")
                    rejected += self.port.inbound([c])
                    continue
                handler = {UNITS: self._take_report, REQUEST: self._take_request, DECLINED: self._take_decline,
                           AMBULANCE: self._take_unit}.get(str(kind))
                if handler is None:
                    raise UserError(f"unknown crossing kind {kind!r}")
                via = str(c.get("via"))
                handler(via, self._entry(via), c["payload"])
            except (UserError, KeyError, TypeError, ValueError) as exc:
                reason = f"crossing lacks {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
                via = c.get("via", "") if isinstance(c, Mapping) else ""
                rejected.append({"source": f"safety.border:{via}", "reason": reason.splitlines()[0],
                                 "payload": c})
        self._purge()
        return rejected

    def _entry(self, via: str) -> str:
        """The district a crossing came from (its border must lead into this district)."""
        if via not in self.place.entries:
            raise UserError(f"border {via!r} does not lead into district {self.place.district!r}")
        return self.place.entries[via]

    def _take_report(self, via: str, sender: str, p: Mapping[str, Any]) -> None:
        if p.get("district") != sender or not isinstance(p.get("units"), list):
            raise UserError(f"a unit report from {sender!r} must name it and list its units")
        fresh: dict[str, dict[str, Any]] = {}
        for r in p["units"]:
            uid = _unit_id(r.get("id") if isinstance(r, Mapping) else None)
            if r.get("status") not in STATUSES or not isinstance(r.get("edge"), str):
                raise UserError(f"unit {uid}: status {r.get('status')!r} or road segment {r.get('edge')!r} invalid")
            times = r.get("border_s")
            if not isinstance(times, Mapping) or any(self.place.entries.get(e) != sender or not _finite(v, 0.0)
                                                     for e, v in times.items()):
                raise UserError(f"unit {uid}: border times must be seconds to borders from {sender!r} into here")
            xy = r.get("xy")
            if not (isinstance(xy, list) and len(xy) == 2 and all(_finite(v) for v in xy)):
                raise UserError(f"unit {uid}: position {xy!r} is not two finite numbers")
            if uid not in self.units and uid not in self._leaving:
                fresh[uid] = {"district": sender, "status": r["status"], "edge": r["edge"], "xy": xy,
                              "home": str(r.get("home", "")), "border_s": dict(times), "at_s": self.elapsed_s()}
        self._foreign = {u: f for u, f in self._foreign.items() if f["district"] != sender} | fresh
        self._neighbours_available()

    def _neighbours_available(self) -> None:
        """The neighbours' available units, at their home stations, for the edge's coverage."""
        assert isinstance(self.edge, AidEdge)
        self.edge.neighbours = {u: str(f["home"]) for u, f in sorted(self._foreign.items())
                                if f["status"] in AVAILABLE and f["home"] in self.edge.neighbour_covers}

    def _take_request(self, via: str, sender: str, p: Mapping[str, Any]) -> None:
        uid, inc, border = _unit_id(p.get("unit")), p.get("incident"), p.get("border")
        if not isinstance(inc, str) or not inc or not isinstance(p.get("edge"), str):
            raise UserError("an aid request names the incident and its road segment")
        if self.place.out.get(str(border)) != sender:
            raise UserError(f"border {border!r} does not lead from here to {sender!r}")
        assert self.edge is not None
        u = self.units.get(uid)
        verdict = self.edge.check_dispatch(uid, inc) if u is not None and uid in self.edge.units else None
        assert self.map is not None and self.geo is not None
        reach = u is not None and bool(to_borders(self.map, self.geo, u.edge, [str(border)],
                                                  self.map.free_flow_costs()))
        if u is None or verdict is None or not verdict.ok or not reach:
            self.aid["declined"] += 1
            why = (f"ambulance {uid} is not in district {self.place.district}" if u is None or verdict is None
                   else verdict.reason if not verdict.ok else f"no road from {u.edge} to border {border}")
            self._queue.append({"via": str(border), "kind": DECLINED, "at_s": self.elapsed_s(),
                                "payload": {"incident": inc, "unit": uid, "reason": why}})
            return
        self.edge.dispatch(uid, inc)
        self.aid["accepted"] += 1
        u.status, u.incident, u.relocatable = RESPONDING, inc, False
        self._leave(u, sender, str(border), str(p["edge"]), self._t)

    def _take_decline(self, via: str, sender: str, p: Mapping[str, Any]) -> None:
        uid, inc = _unit_id(p.get("unit")), str(p.get("incident"))
        cs = self.calls.get(inc)
        if cs is None or cs.unit != uid or cs.arrival_s is not None or uid in self.units:
            raise UserError(f"no call here waits for ambulance {uid} ({inc!r})")
        assert self.edge is not None
        cs.unit = cs.dispatch_s = cs.travel_ff_s = None
        self.edge.incident_unit.pop(inc, None)

    def _take_unit(self, via: str, sender: str, p: Mapping[str, Any]) -> None:
        """Add a unit crossing in, on the border edge, and send it on with its assignment."""
        assert self.map is not None and self.edge is not None
        uid, status, api = _unit_id(p.get("unit")), p.get("status"), self._api
        if uid in self.units or uid in self._leaving:
            raise UserError(f"ambulance {uid} is already in district {self.place.district}")
        if p.get("to") != self.place.district or status not in (RESPONDING, RETURNING):
            raise UserError(f"ambulance {uid} ({status!r}) is not sent to district {self.place.district}")
        lane, pos, speed, km = p.get("lane"), p.get("pos", math.nan), p.get("speed", math.nan), p.get("reloc_km")
        if isinstance(lane, bool) or not isinstance(lane, int) or not 0 <= lane < api.edge.getLaneNumber(via):
            raise UserError(f"lane {lane!r} does not exist on edge {via!r}")
        length = float(api.lane.getLength(f"{via}_{lane}"))
        if not (_finite(pos, 0.0, length + 1e-6) and _finite(speed, 0.0, MAX_SPEED)):
            raise UserError(f"position {pos!r} or speed {speed!r} is impossible on edge {via!r} ({length:g} m)")
        inc = p.get("incident")
        if status == RESPONDING:
            cs = self.calls.get(str(inc))
            if cs is None or cs.unit != uid or cs.arrival_s is not None:
                raise UserError(f"ambulance {uid} answers {inc!r}, which no call here waits for it on")
            dest = cs.inc.edge
        else:
            dest, inc = str(p.get("home")), None
            if dest not in self.map.length:
                raise UserError(f"ambulance {uid} returns to {dest!r}, which is no station of this district")
        trips = p.get("trips")
        if isinstance(trips, bool) or not isinstance(trips, int) or trips < 0 or not isinstance(km, int | float) \
                or not _finite(km, 0.0):
            raise UserError(f"ambulance {uid}: trips {trips!r} or relocation km {km!r} invalid")
        u = Unit(uid, str(p.get("home")), via, self.map.xy.get(via, (0.0, 0.0)), status=str(status),
                 trips=trips + 1, incident=inc, reloc_km=float(km))
        vid = f"{VEHICLE_PREFIX}{uid}_{u.trips}"
        try:
            edges = list(api.simulation.findRoute(via, dest, vType=AMB_VTYPE).edges)
            if not edges:
                raise UserError(f"no route from {via!r} to {dest!r}")
            api.route.add(f"{vid}_route", edges)
            api.vehicle.add(vid, f"{vid}_route", typeID=AMB_VTYPE, depart="now", departLane=str(lane),
                            departPos=f"{float(pos):.2f}", departSpeed="max")
        except UserError:
            raise
        except Exception as exc:  # SUMO's own refusal
            raise UserError(f"SUMO refused ambulance {uid}: {exc}") from exc
        u.vid, u.dest, u.route = vid, dest, tuple(edges)
        self.units[uid] = u
        self._vid_unit[vid] = uid
        self._unit_track.setdefault(uid, [])
        self._unit_xy.setdefault(uid, [])
        self.home_of[uid] = str(p.get("home_district") or sender)
        self._foreign.pop(uid, None)
        self._neighbours_available()
        self.edge.set_status(uid, str(status), u.home if status == RETURNING else None)
        if inc is not None:
            self.edge.assigned[uid] = str(inc)
        self.aid["taken_in"] += 1

    # ----- dispatch of a neighbour's unit ------------------------------------------------------------------
    def actuate(self, action: ProposedAction) -> Outcome:
        """A dispatch of a neighbour's unit becomes a request to its district; anything else as usual."""
        uid = action.target.removeprefix(AMBULANCE_PREFIX)
        if action.action != "dispatch" or uid in self.units or uid not in self._foreign:
            return super().actuate(action)
        assert self.edge is not None and self.map is not None and self.geo is not None
        report = self._foreign[uid]
        inc = str(action.params.get("incident", "")).removeprefix(INCIDENT_PREFIX)
        border = str(action.params.get("border", ""))
        cs = self.calls.get(inc)
        if self.edge.safe:
            out = Outcome(action, "refused", bound_by=("safe_state",), reason="no mutual aid in the safe state")
        elif cs is None or cs.reported_s is None:
            out = Outcome(action, "refused", bound_by=("reported_incidents_only",),
                          reason=f"incident {inc!r} is not a reported incident")
        elif inc in self.edge.incident_unit:
            out = Outcome(action, "refused", bound_by=("one_ambulance_per_incident",),
                          reason=f"incident {inc} already has ambulance {self.edge.incident_unit[inc]}")
        elif report["status"] not in AVAILABLE or border not in report["border_s"]:
            out = Outcome(action, "refused", bound_by=("available_only",),
                          reason=f"ambulance {uid} is {report['status']} or cannot come over {border!r}")
        else:
            cs.unit, cs.dispatch_s = uid, self.elapsed_s()
            cs.travel_ff_s = float(report["border_s"][border]) + from_border(
                self.map, self.geo, border, self.map.free_flow_costs()).get(cs.inc.edge, math.inf)
            self.edge.incident_unit[inc] = uid
            del self._foreign[uid]
            self._neighbours_available()
            back = min(e for e, d in self.place.out.items() if d == report["district"])
            self._queue.append({"via": back, "kind": REQUEST, "at_s": self.elapsed_s(), "payload": {
                "incident": inc, "edge": cs.inc.edge, "unit": uid, "border": border,
                "district": self.place.district}})
            self.aid["requested"] += 1
            out = Outcome(action, "applied", {"aid_request": uid, "incident": inc, "district": report["district"]})
        self.outcomes.append(out)
        return out

    # ----- checkpoints ---------------------------------------------------------------------------------
    def _checkpoint_extra(self) -> dict[str, Any]:
        """Units lent out and leaving, the neighbours' last reports, what waits to cross, the traffic port."""
        self._purge()
        return {"home_of": self.home_of, "foreign": self._foreign, "leaving": self._leaving,
                "published": self._published, "queue": self._queue, "aid": self.aid,
                "port": self.port.state() if self.port is not None else None}

    def _restore_extra(self, extra: dict[str, Any]) -> None:
        self.home_of, self._foreign, self._leaving = extra["home_of"], extra["foreign"], extra["leaving"]
        self._published, self._queue, self.aid = extra["published"], extra["queue"], extra["aid"]
        if self.port is not None and extra["port"] is not None:
            self.port.restore(extra["port"])

    def _go_on_from(self, path: Path, pending: list[str], vtype: dict[str, Any]) -> set[str]:
        """As a whole twin's, plus the background traffic handed in and units leaving not inserted yet."""
        saved = super()._go_on_from(path, pending, vtype)
        api = self._api
        here = saved | set(api.vehicle.getIDList()) | set(api.simulation.getPendingVehicles())
        for lv in self._leaving.values():
            vid = lv.unit.vid
            if vid is not None and vid in set(pending) - here:
                self._add_again(vid, lv.unit.route)
        if self.port is not None:
            self.port.api = api
            self.port.add_unsaved(saved)
        return saved

    # ----- sensing and the end ---------------------------------------------------------------------------
    def observe(self) -> list[Entity]:
        """As usual, plus the neighbours' units as last reported, and ``away`` for units that left."""
        self._purge()
        ents = super().observe()
        here = set(self.units)
        for uid, f in sorted(self._foreign.items()):
            when = self.start_time + timedelta(seconds=float(f["at_s"]))
            ents.append(Entity.trusted(ambulance_urn(uid), AMBULANCE_TYPE, {
                "status": Property(f["status"], when), "position": Property(f["xy"], when),
                "roadSegment": Property(f["edge"], when), "homeStation": Property(f["home"]),
                "district": Property(f["district"], when), "borderTravelTime": Property(f["border_s"], when),
                "relocatable": Property(False, when)}))
        now = self.start_time + timedelta(seconds=self.elapsed_s())
        for uid in sorted(self._published - here - set(self._foreign)):
            ents.append(Entity.trusted(ambulance_urn(uid), AMBULANCE_TYPE, {
                "status": Property(AWAY, now), "roadSegment": Property(None, now),
                "homeStation": Property(self.units[uid].home if uid in self.units else None),
                "relocatable": Property(False, now)}))
        self._published = here | set(self._foreign)
        return ents

    def close(self) -> DomainResult:
        """The KPIs of this twin, with what a merge of districts needs (see :mod:`.districts`)."""
        result = super().close()
        assert self.edge is not None
        units = {**{u.id: u for u in self.units.values()}, **{k: lv.unit for k, lv in self._leaving.items()}}
        result.extra["grid"] = {
            "district": self.place.district, "blocks": [b + 1 for b in self.place.blocks],
            "home_units": self.home_units, "busy_s": self._busy_s, "demand": sum(self.edge.demand.values()),
            "reloc_km": {u: x.reloc_km for u, x in sorted(units.items())}, "aid": dict(self.aid),
            "away_at_end": sorted(self._leaving), "border": self.port.extra() if self.port is not None else {}}
        return result


def _unit_id(value: Any) -> str:
    if not isinstance(value, str) or not UNIT_ID.fullmatch(value.removeprefix(AMBULANCE_PREFIX)):
        raise UserError(f"{value!r} is no ambulance id")
    return value.removeprefix(AMBULANCE_PREFIX)


def _finite(v: Any, lo: float = -math.inf, hi: float = math.inf) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) and lo <= v <= hi
