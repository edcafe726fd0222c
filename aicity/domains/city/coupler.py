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

Its one actuator directs the traffic held at a road incident to other exits (:mod:`.incident`), when the AI
City's orchestration stage picks that response.

Incidents block their lanes in the safety twin itself (it rides the same SUMO).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from aicity.core.domain import DomainResult, Outcome, ProposedAction, Scenario
from aicity.core.entity import Entity
from aicity.domains.city.incident import DECIDE_EVERY_S, TrafficDirectionEdge

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

    # ---- no sensors or actuators of its own ---------------------------------------------------------------
    def observe(self) -> list[Entity]:
        """Nothing: every entity is published by the part that owns it."""
        return []

    def actuate(self, action: ProposedAction) -> Outcome:
        """Its one actuator: directing the traffic held at a road incident (:mod:`.incident`), through its edge."""
        if self.host is None:
            return Outcome(action, "refused", bound_by=("no_actuator",), reason="no simulation to act on")
        return self._direction.actuate(self.host.api, action, float(self.host.t))

    def safe_state(self) -> None:
        """Nothing to put in a safe state."""

    def close(self) -> DomainResult:
        """What it measured itself; :meth:`integrate` completes it once every part has closed."""
        return DomainResult({k: 0.0 for k in _kpi_names()}, extra={"notes": list(self.notes),
                                                                   **self._trip_extra()})

    def _trip_extra(self) -> dict[str, Any]:
        return {"ev_trips": len(self._late), "ev_unarrived": len(self._trips),
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
