"""The city coupler: the physical ties between the domains of one city, and the integrated KPIs.

It rides the other parts' twins through the ports they register in ``RunServices.shared``: ``"sumo"`` (the
simulation mobility hosts), ``"signals"`` (mobility's signal cabinets), ``"grid"`` (energy's feeders, chargers
and critical loads). What it couples, in every mode alike (it decides nothing):

* **EVs drive and charge** — each charging session the grid expects becomes a car in SUMO, leaving so as to
  reach its charger at the planned time on free-flowing roads; it plugs in when it actually arrives, so traffic
  delays shift the energy schedule.
* **grid → mobility** — every signal draws its cabinet load from a bus of its district; when the bus loses
  supply the cabinet loses mains (battery backup, then dark: all-way stop).
* **safety → energy** — signals, the hospital and the ambulance stations are critical loads on the grid.

Its actuators, used only when the AI City's orchestration stage picks that response: directing the traffic held
at a road incident to other exits (:mod:`.incident`), and charging guidance (:mod:`.guidance`): two consenting EV
drivers on their way exchange their booked chargers (:mod:`.guide_edge`). Consent is a seeded draw per driver
(``guidance_consent``); only consenting drivers report their trips (``EVChargingTrip``), in every mode.

Incidents block their lanes in the safety twin itself (it rides the same SUMO).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aicity.core.domain import DomainResult, Outcome, ProposedAction, Scenario
from aicity.core.entity import Entity, Property
from aicity.domains.city.guidance import ACTION as GUIDE
from aicity.domains.city.guide_edge import ChargerSwap, GuidanceEdge
from aicity.domains.city.incident import DECIDE_EVERY_S, TrafficDirectionEdge
from aicity.domains.city.meta import EV_TRIP_TYPE

PORTS = ("sumo", "signals", "grid")
EV_VTYPE = "aicity_ev_car"


class CityCoupler:
    """A :class:`aicity.core.domain.Twin` that couples the city's parts (see the module docstring)."""

    decision_interval_s = DECIDE_EVERY_S

    def __init__(self, scenario: Scenario, *, seed: int, params: Mapping[str, Any],
                 shared: dict[str, object]) -> None:
        self.scenario = scenario
        self.seed = int(seed)
        self.params = dict(params)
        self.shared = shared
        self.rng = np.random.default_rng([self.seed, 15])
        self._t = 0.0
        self.host: Any = None
        self.grid: Any = None
        self.signals: Any = None
        self.signal_bus: dict[str, str] = {}
        self._powered: dict[str, bool] = {}
        self._trips: dict[str, tuple[str, float]] = {}  # vehicle id -> (session id, planned arrival)
        self._late: list[float] = []
        self._arrivals: list[tuple[str, float, float]] = []  # (session, planned arrival, SUMO arrival)
        self._dest: dict[str, str] = {}  # session -> the edge of its charger
        self._leaving: list[tuple[str, float, float]] = []  # (session, departure, kWh delivered)
        self._plugged_direct = 0
        self._edges: list[tuple[str, float, float, str]] = []  # (edge, x, y, district)
        self._median = (0.0, 0.0)
        self.notes: list[str] = []
        self._direction = TrafficDirectionEdge()
        self._sessions: dict[str, Any] = {}  # sid -> its DrivenSession (booked charger, bus, request)
        self._booked: dict[str, tuple[str, str]] = {}  # sid -> (charger, bus) now booked
        self._vehicle: dict[str, str] = {}  # sid -> the vehicle driving to its charger
        self._guided: set[str] = set()
        self._arrived: list[str] = []  # consenting drivers who arrived since the last report
        self._bus_feeder: dict[str, str] = {}
        self._edge_xy: dict[str, tuple[float, float]] = {}
        self._guide = GuidanceEdge(frozenset())

    # ---- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Attach to the other parts' ports; map signals to buses; register critical loads; plan the EV trips."""
        missing = [p for p in PORTS if p not in self.shared]
        if missing:
            self.notes.append(f"running without {', '.join(missing)}: nothing to couple")
            return
        self.host, self.signals, self.grid = (self.shared[p] for p in PORTS)
        self._map_signals()
        self._read_edges()
        self._critical_loads()
        self._plan_trips()
        self._consent()
        self.host.on_step(after=self._after_step)
        self._sync_power()

    def _map_signals(self) -> None:
        """Each signal draws from a bus of its district (round-robin over the district's buses, in name order)."""
        buses: dict[str, list[str]] = {}
        for bus, district in sorted(self.grid.bus_districts().items()):
            buses.setdefault(district, []).append(bus)
        every = sorted(b for bs in buses.values() for b in bs)
        count: dict[str, int] = {}
        for tls, district in sorted(self.signals.signal_districts().items()):
            pool = buses.get(district) or every
            k = count.get(district, 0)
            self.signal_bus[tls] = pool[k % len(pool)]
            count[district] = k + 1

    def _critical_loads(self) -> None:
        from aicity.domains.mobility.const import SIGNAL_PREFIX

        for tls, bus in sorted(self.signal_bus.items()):
            self.grid.add_critical_load(f"{SIGNAL_PREFIX}{tls}", bus, float(self.params["signal_kw"]), "signal")
        ems = self.shared.get("ems")
        sites = ems.critical_sites() if ems is not None and hasattr(ems, "critical_sites") else []
        for eid, kind, xy in sites:
            bus = self._bus_in(self._district_of(xy))
            kw = float(self.params["hospital_kw"] if kind == "hospital" else self.params["station_kw"])
            self.grid.add_critical_load(eid, bus, kw, kind)

    def _bus_in(self, district: str) -> str:
        pool: list[str] = sorted(b for b, d in self.grid.bus_districts().items() if d == district)
        return pool[0] if pool else str(sorted(self.grid.bus_districts())[0])

    def _district_of(self, xy: tuple[float, float]) -> str:
        """The quadrant around the signals' median position (mobility's district rule)."""
        mx, my = self._median
        return ("N" if xy[1] >= my else "S") + ("E" if xy[0] >= mx else "W")

    def _read_edges(self) -> None:
        """Drivable edges with their midpoints and districts (quadrants around the signals' median)."""
        api = self.host.api
        xy = self.signals.signal_xy()
        self._median = (float(np.median([p[0] for p in xy.values()])), float(np.median([p[1] for p in xy.values()])))
        for edge in sorted(api.edge.getIDList()):
            if edge.startswith(":"):
                continue
            lane = f"{edge}_0"
            try:
                allowed = api.lane.getAllowed(lane)
                shape = api.lane.getShape(lane)
            except Exception:
                continue
            if allowed and "passenger" not in allowed:
                continue
            x = float(np.mean([p[0] for p in shape]))
            y = float(np.mean([p[1] for p in shape]))
            self._edges.append((edge, x, y, self._district_of((x, y))))

    def _plan_trips(self) -> None:
        """Every session the grid expects in the window becomes a car trip to its charger (seeded origins)."""
        api = self.host.api
        begin = float(self.scenario.begin_s)
        if EV_VTYPE not in api.vehicletype.getIDList():
            api.vehicletype.copy("DEFAULT_VEHTYPE", EV_VTYPE)
            api.vehicletype.setColor(EV_VTYPE, (0, 160, 255, 255))
        min_m = float(self.params["ev_origin_min_m"])
        for s in sorted(self.grid.driven_sessions(), key=lambda s: (s.planned_arrival_s, s.sid)):
            dests = [e for e in self._edges if e[3] == s.district] or self._edges
            dest = dests[int(self.rng.integers(len(dests)))]
            best: tuple[float, list[str]] | None = None
            for k in range(48):
                o = self._edges[int(self.rng.integers(len(self._edges)))]
                if o[0] == dest[0] or (k < 24 and math.dist(o[1:3], dest[1:3]) < min_m):
                    continue
                route = api.simulation.findRoute(o[0], dest[0], vType=EV_VTYPE)
                if not route.edges:
                    continue
                tt = float(route.travelTime)
                if best is None or (s.planned_arrival_s - tt >= begin) > (s.planned_arrival_s - best[0] >= begin):
                    best = (tt, list(route.edges))
                if s.planned_arrival_s - tt >= begin:
                    break
            if best is None:
                self.grid.plug_in(s.sid, s.planned_arrival_s)
                self._plugged_direct += 1
                continue
            tt, edges = best
            self._dest[s.sid] = edges[-1]
            vid = f"ev:{s.sid}"
            self._insert(vid, edges, f"{max(begin, s.planned_arrival_s - tt):.0f}")
            self._trips[vid] = (s.sid, s.planned_arrival_s)
            self._sessions[s.sid] = s
            self._booked[s.sid] = (s.charger, s.bus)
            self._vehicle[s.sid] = vid

    def _consent(self) -> None:
        """Which drivers accept guidance: a seeded draw per driven session (its own generator, so the trips are
        the same whatever the share)."""
        rng = np.random.default_rng([self.seed, 15, 1])
        share = float(self.params["guidance_consent"])
        self._bus_feeder = {b: f for f, buses in self.grid.feeders().items() for b in buses}
        self._edge_xy = {e: (x, y) for e, x, y, _ in self._edges}
        sessions = sorted(self._sessions.values(), key=lambda s: s.sid)
        draws = rng.random(len(sessions))
        self._guide = GuidanceEdge(frozenset(s.sid for s, u in zip(sessions, draws, strict=True) if u < share))

    def _insert(self, vid: str, edges: list[str], depart: str) -> None:
        """An electric car on ``edges``, departing at ``depart`` (SUMO seconds or ``now``)."""
        self.host.api.route.add(f"route:{vid}", edges)
        self.host.api.vehicle.add(vid, f"route:{vid}", typeID=EV_VTYPE, depart=depart)

    # ---- the simulation, second by second -----------------------------------------------------------------
    def _after_step(self, t: float) -> None:
        for vid in self.host.api.simulation.getArrivedIDList():
            trip = self._trips.pop(vid, None)
            if trip is not None:
                sid, planned = trip
                self.grid.plug_in(sid, t)
                if sid in self._guide.consented:
                    self._arrived.append(sid)
                self._late.append(max(0.0, t - planned) / 60.0)
                self._arrivals.append((sid, planned, t))

    def _sync_power(self) -> None:
        """Each signal's mains follows the supply of its bus."""
        if self.grid is None:
            return
        t = float(self.host.t)
        for tls, bus in self.signal_bus.items():
            powered = bool(self.grid.supplied(bus))
            if self._powered.get(tls) != powered:
                self.signals.set_mains(tls, powered, t)
                self._powered[tls] = powered

    def elapsed_s(self) -> float:
        """Seconds since the window's begin."""
        if self.host is not None:
            return float(self.host.t) - float(self.scenario.begin_s)
        return self._t

    def done(self) -> bool:
        """True at the window's end."""
        return self.elapsed_s() >= self.scenario.end_s - self.scenario.begin_s - 1e-9

    def advance(self, seconds: float) -> None:
        """The parts it rides advance themselves; after them, signals follow the grid's new supply and EVs
        whose session ended drive off."""
        self._t += seconds
        self._sync_power()
        if self.grid is not None:
            self._drive_off()

    def _drive_off(self) -> None:
        """Each EV that ended its session leaves its charger now, with the energy it got, to a seeded edge."""
        api = self.host.api
        for sid, t_s, kwh in self.grid.departures():
            start = self._dest.get(sid)
            if start is None:
                continue
            for _ in range(12):
                dest = self._edges[int(self.rng.integers(len(self._edges)))][0]
                route = api.simulation.findRoute(start, dest, vType=EV_VTYPE)
                if route.edges and dest != start:
                    vid = f"ev-out:{sid}"
                    self._insert(vid, list(route.edges), "now")
                    api.vehicle.setParameter(vid, "chargedKWh", f"{kwh:.3f}")
                    self._leaving.append((sid, float(t_s), float(kwh)))
                    break

    # ---- the consenting drivers' trip reports; its actuators ---------------------------------------------
    def observe(self) -> list[Entity]:
        """The trip reports of consenting EV drivers on their way to a charger (every other entity is published
        by the part that owns it)."""
        if self.host is None or not self._guide.consented or not isinstance(self.grid, ChargerSwap):
            return []  # no guidance service without a grid that can exchange chargers: nobody reports to it
        from datetime import datetime, timedelta

        from aicity.domains.city.scenarios import EPOCH

        api, t = self.host.api, float(self.host.t)
        now = datetime.fromisoformat(EPOCH) + timedelta(seconds=t)
        begin = float(self.scenario.begin_s)
        live = set(api.vehicle.getIDList())
        out = [Entity(f"urn:ngsi-ld:{EV_TRIP_TYPE}:{sid}", EV_TRIP_TYPE, {
            "sessionId": Property(sid), "status": Property("arrived", now)}) for sid in self._arrived]
        self._arrived = []
        for sid in sorted(self._guide.consented):
            vid = self._vehicle.get(sid)
            if vid is None or vid not in live or vid not in self._trips:
                continue
            s = self._sessions[sid]
            charger, bus = self._booked[sid]
            x, y = api.vehicle.getPosition(vid)
            dest = self._edge_xy.get(self._dest[sid], (x, y))
            out.append(Entity(f"urn:ngsi-ld:{EV_TRIP_TYPE}:{sid}", EV_TRIP_TYPE, {
                "sessionId": Property(sid), "status": Property("driving", now),
                "charger": Property(charger, now), "bus": Property(bus, now),
                "feeder": Property(self._bus_feeder.get(bus, ""), now),
                "requestedEnergy": Property(float(s.requested_kwh), None, "KWH"),
                "departure": Property(float(s.departure_s) - begin, None, "SEC"),
                "position": Property([round(float(x), 1), round(float(y), 1)], now),
                "destination": Property([round(dest[0], 1), round(dest[1], 1)], now),
                "guided": Property(sid in self._guided, now)}))
        return out

    def actuate(self, action: ProposedAction) -> Outcome:
        """Its actuators, each through its edge: directing the traffic held at a road incident
        (:mod:`.incident`), charging guidance (:mod:`.guide_edge`)."""
        if self.host is None:
            return Outcome(action, "refused", bound_by=("no_actuator",), reason="no simulation to act on")
        if action.action == GUIDE:
            return self._guide.actuate(action, float(self.host.t), api=self.host.api, grid=self.grid,
                                       vehicle_of={sid: v for sid, v in self._vehicle.items()
                                                   if v in self._trips},
                                       dest=self._dest, swapped=self._swapped)
        return self._direction.actuate(self.host.api, action, float(self.host.t))

    def _swapped(self, a: str, b: str) -> None:
        self._booked[a], self._booked[b] = self._booked[b], self._booked[a]
        self._guided |= {a, b}

    def safe_state(self) -> None:
        """Nothing to put in a safe state."""

    def close(self) -> DomainResult:
        """What it measured itself; :meth:`integrate` completes it once every part has closed."""
        return DomainResult({k: 0.0 for k in _kpi_names()}, extra={"notes": list(self.notes),
                                                                   **self._trip_extra()})

    def _trip_extra(self) -> dict[str, Any]:
        return {"ev_trips": len(self._late), "ev_unarrived": len(self._trips),
                "ev_consented": len(self._guide.consented), "ev_guided": len(self._guided),
                "ev_plugged_direct": self._plugged_direct, "signal_bus": dict(self.signal_bus),
                "ev_arrivals": [list(a) for a in self._arrivals],
                "ev_departures": [list(d) for d in self._leaving]}

    def integrate(self, results: Mapping[str, DomainResult], loop: Mapping[str, Any]) -> DomainResult:
        """The integrated KPIs over every part's result and the loop's counters."""
        from aicity.domains.city.integrate import integrated

        return integrated(results, loop, self._late, self._trip_extra(), self.notes,
                          self._district_of if self.host is not None else None)


def _kpi_names() -> Sequence[str]:
    from aicity.domains.city.meta import KPIS

    return [k.name for k in KPIS]
