"""The city energy twin: :class:`.twin.EnergyTwin` on the city grid (:mod:`.city_grid`) with the events of a city
and the grid port (:mod:`.port`) a coupler drives.

Events (scenario options): a feeder's transformer trips at ``outage_at_s`` after the window's begin and is
repaired ``outage_duration_s`` later. Meanwhile the ``R`` feeder may pick up load points of the dead feeder
through its normally-open tie, at most the tie's capacity (``tie_kw``) and within the ``R`` transformer's rating;
the actuator edge refuses a restore beyond either, or on a bus of a live feeder. Smart City mode: the crew closes
the tie ``crew_delay_s`` after the trip and picks up load points in fixed bus order, each that still fits,
chargers keep running at full power. AI City mode: a restoration planner (:mod:`.restoration`) proposes the set;
chargers behind the tie take no power (the edge clamps them to 0). Chargers on an unsupplied bus deliver nothing;
the load of an unsupplied bus is unserved energy (critical loads' also in ``critical_unserved_kwh``).

On this scenario ``delivered_frac`` is delivered ÷ owed by the window's end: an EV that left (or never arrived)
was owed its demand; one still plugged in only what full power until its departure could no longer make up (a
controller is not blamed for energy it can still deliver), and one plugged in before the window less what full
power could have delivered before it. When nothing was owed it is 1 (no EV went short; ``owed_kwh`` = 0 in the
counts says that nothing was at stake). The share of what full power from each planned arrival could have
delivered by the end is in the counts (``deliverable_kwh``) — it counts deliberate deferral against a controller,
so it is not the KPI.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from aicity.core.domain import DomainResult, Outcome, ProposedAction
from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.domains.energy.city_grid import FEEDERS, SOURCE, TIE_TO, CityGrid, feeder_of, tie_name
from aicity.domains.energy.const import (
    CHARGER_PREFIX,
    CRITICAL_PREFIX,
    CRITICAL_TYPE,
    LOADPOINT_PREFIX,
    LOADPOINT_TYPE,
    RESTORE,
    TIE_PREFIX,
    TIE_TYPE,
    TRANSFORMER_PREFIX,
    TRANSFORMER_TYPE,
    URN,
)
from aicity.domains.energy.data import Session
from aicity.domains.energy.kpis import result
from aicity.domains.energy.port import CRITICAL_KINDS, SHARED_NAME, CriticalLoad, DrivenSession
from aicity.domains.energy.site import Charger, FArray
from aicity.domains.energy.twin import EnergyTwin, _Plug

AUTO_TIE_SHARE = 0.4
"""Without ``tie_kw``, the tie's capacity is this share of the dead feeder's load just before the trip (its
inflexible and critical loads, the same in both modes; EV charging comes on top)."""


@dataclass(frozen=True, slots=True)
class CityEvents:
    """The city's event options (validated): an outage, the tie, the crew, the share of sessions driven."""

    outage_feeder: str = ""
    outage_at_s: float = 600.0
    outage_duration_s: float = 1800.0
    tie_kw: float | None = None
    crew_delay_s: float = 1200.0
    driven_share: float = 1.0


def point_id(bus: str) -> str:
    """The load point entity id of ``bus`` (``urn:ngsi-ld:LoadPoint:Bus-C12``)."""
    return f"{LOADPOINT_PREFIX}{bus.replace(' ', '-')}"


def critical_id(eid: str) -> str:
    """The entity id of the critical load serving ``eid``."""
    return f"{CRITICAL_PREFIX}{eid.removeprefix(URN).replace(':', '-')}"


@dataclass
class CityEnergyTwin(EnergyTwin):
    """The energy twin of a city scenario, and its grid port (see the module docstring)."""

    events: CityEvents = field(default_factory=CityEvents)
    shared: dict[str, object] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.site.grid, CityGrid):
            raise UserError(f"scenario {self.scenario.name} has no city grid")
        self.grid: CityGrid = self.site.grid
        self.critical: dict[str, CriticalLoad] = {}
        self.held: dict[str, Session] = {}
        self.driven: list[DrivenSession] = []
        self.planned: dict[str, float] = {}
        self._departed: list[tuple[str, float, float]] = []
        self.bus_kw = np.zeros(len(self.site.nodes))
        self.bus_ev = np.zeros(len(self.site.nodes))
        self.last_kw = np.zeros(len(self.site.nodes))
        self.last_ev = np.zeros(len(self.site.nodes))
        self.claimed = False
        self.tripped_at: float | None = None
        self.repaired = False
        self.crew_done = False
        self.tie_capacity: dict[str, float] = {}
        self.counts: dict[str, float] = {"restores": 0, "restores_refused": 0, "plugged_in": 0, "never_arrived": 0,
                                         "tie_overload_min": 0.0}
        self.ledger.ev_unserved = False
        self.deliverable = [0.0, 0.0]
        """Energy delivered and deliverable at full power from the planned arrivals, by the window's end."""
        self._index = {b: i for i, b in enumerate(self.site.nodes)}
        self._charger_bus = {c.cid: self.site.nodes[c.node] for c in self.site.chargers}

    # ---- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Queue the window's sessions, hold the driven ones for :meth:`plug_in`, register the grid port."""
        super().start()
        begin, end = self.scenario.begin_s, self.scenario.end_s
        inside = sorted((s for s in self.site.sessions if begin <= s.arrival_s < end), key=lambda s: s.sid)
        rng = np.random.default_rng(self.seed)
        n = round(self.events.driven_share * len(inside))
        chosen = {inside[int(i)].sid for i in rng.choice(len(inside), size=n, replace=False)} if n else set()
        by_id = {c.cid: c for c in self.site.chargers}
        self.driven = [DrivenSession(s.sid, s.station, self._charger_bus[s.station],
                                     self.site.node_districts[by_id[s.station].node], s.arrival_s, s.departure_s,
                                     round(s.requested_kwh, 3))
                       for s in sorted(inside, key=lambda s: (s.arrival_s, s.sid)) if s.sid in chosen]
        self.planned = {s.sid: s.arrival_s for s in self.site.sessions}
        if self.shared is not None:
            self.shared[SHARED_NAME] = self

    # ---- the grid port ----------------------------------------------------------------------------
    def feeders(self) -> dict[str, tuple[str, ...]]:
        """Feeder (``R``, ``I``, ``C``) → its bus names."""
        return self.grid.feeders()

    def bus_districts(self) -> dict[str, str]:
        """Bus → district (``NW``/``NE``/``SW``/``SE``)."""
        return dict(zip(self.site.nodes, self.site.node_districts, strict=True))

    def supplied(self, bus: str) -> bool:
        """Is ``bus`` energised after the last grid step?"""
        if bus not in self._index:
            raise UserError(f"unknown bus {bus!r}; known: {', '.join(self.site.nodes)}")
        return self.grid.supplied(bus)

    def add_critical_load(self, eid: str, bus: str, kw: float, kind: str) -> None:
        """Register a critical load (``signal``, ``hospital`` or ``station``) drawing ``kw`` on ``bus``."""
        if bus not in self._index:
            raise UserError(f"critical load {eid}: unknown bus {bus!r}")
        if kind not in CRITICAL_KINDS:
            raise UserError(f"critical load {eid}: kind must be one of {', '.join(CRITICAL_KINDS)}, got {kind!r}")
        if not (math.isfinite(kw) and kw >= 0):
            raise UserError(f"critical load {eid}: power must be a finite number of kW >= 0, got {kw!r}")
        self.critical[eid] = CriticalLoad(eid, bus, float(kw), kind)
        if self.grid.published is not None:
            self.grid.published = self.grid.published | {bus}

    def driven_sessions(self) -> list[DrivenSession]:
        """The window's sessions whose EVs drive in traffic: from this call on, those not plugged in yet are held
        until :meth:`plug_in` (without a coupler asking, every EV arrives as planned)."""
        if not self.claimed:
            self.claimed = True
            sids = {d.sid for d in self.driven}
            for plug in self.plugs.values():
                for s in [s for s in plug.queue if s.sid in sids]:
                    plug.queue.remove(s)
                    self.held[s.sid] = s
        return list(self.driven)

    def plug_in(self, sid: str, t_s: float) -> None:
        """The EV of driven session ``sid`` reached its charger at scenario second ``t_s``: it charges from then."""
        s = self.held.pop(sid, None)
        if s is None:
            raise UserError(f"session {sid!r} is not a driven session waiting to plug in (ask driven_sessions() "
                            "first)")
        self.counts["plugged_in"] += 1
        if t_s >= s.departure_s:
            self.held[sid] = s  # too late to charge: scored as never arrived
            return
        plug = self.plugs[s.station]
        plug.queue.append(replace(s, arrival_s=float(t_s)))
        plug.queue.sort(key=lambda x: x.arrival_s, reverse=True)

    def swap_chargers(self, a: str, b: str) -> str | None:
        """Driven sessions ``a`` and ``b``, both still on their way, exchange their chargers (their drivers accepted
        guidance); None when done, else why not."""
        sa, sb = self.held.get(a), self.held.get(b)
        if sa is None or sb is None or a == b:
            return f"sessions {a!r} and {b!r} must be two driven sessions still on their way"
        self.held[a], self.held[b] = replace(sa, station=sb.station), replace(sb, station=sa.station)
        return None

    def departures(self) -> list[tuple[str, float, float]]:
        """Drain the sessions that ended: (sid, scenario second, energy delivered kWh)."""
        out, self._departed = self._departed, []
        return out

    # ---- events and physics -----------------------------------------------------------------------
    def _events(self, t_s: float) -> None:
        ev = self.events
        feeder = ev.outage_feeder
        if not feeder:
            return
        elapsed = t_s - self.scenario.begin_s
        if self.tripped_at is None and elapsed >= ev.outage_at_s - 1e-9:
            self.tripped_at = elapsed
            if feeder in TIE_TO:
                self.tie_capacity[tie_name(feeder)] = self._capacity(feeder)
            self.grid.set_in_service(feeder, False)
            self._log(f"{TRANSFORMER_PREFIX}{feeder}", "trip", {"feeder": feeder})
        repair_at = ev.outage_at_s + ev.outage_duration_s
        if self.tripped_at is not None and not self.repaired and elapsed >= repair_at - 1e-9:
            self.repaired = True
            self.grid.set_in_service(feeder, True)
            self._log(f"{TRANSFORMER_PREFIX}{feeder}", "repaired", {"feeder": feeder})
        if (self.mode == "smart" and self.tripped_at is not None and not self.repaired and not self.crew_done
                and feeder in TIE_TO and elapsed >= ev.outage_at_s + ev.crew_delay_s - 1e-9):
            self.crew_done = True
            self._crew(feeder)

    def _capacity(self, feeder: str) -> float:
        """The tie's capacity: the option, else a share of the feeder's load now (so it cannot take it all)."""
        if self.events.tie_kw is not None:
            return float(self.events.tie_kw)
        return float(round(AUTO_TIE_SHARE * float(self.node_inflexible[self._feeder_idx(feeder)].sum()), 1))

    def _crew(self, feeder: str) -> None:
        """The crew's rule: close the tie and pick up load points in bus order, each one that still fits."""
        chosen: list[str] = []
        for bus in self.grid.feeders()[feeder]:
            if self.last_kw[self._index[bus]] <= 1e-9 and not any(c.bus == bus for c in self.critical.values()):
                continue
            if self._check(feeder, [*chosen, bus]) is None:
                chosen.append(bus)
        if chosen:
            self._apply(feeder, chosen)
        self._log(f"{TIE_PREFIX}{tie_name(feeder)}", "crew_restore", {"buses": chosen})

    def _extra_kw(self) -> FArray:
        out = np.zeros(len(self.site.nodes))
        for c in self.critical.values():
            out[self._index[c.bus]] += c.kw
        return out

    def _drawn_kw(self, charger: Charger, setpoint: float) -> float:
        return setpoint if self.grid.supplied(self.site.nodes[charger.node]) else 0.0

    def _served(self, node_kw: FArray) -> FArray:
        dt_h = self.site.dt_h
        ev = np.zeros(len(node_kw))
        for cid, plug in self.plugs.items():
            ev[self._index[self._charger_bus[cid]]] += plug.power
        crit = self._extra_kw()
        out = node_kw.copy()
        for i, bus in enumerate(self.site.nodes):
            if not self.grid.supplied(bus):
                self.ledger.unserved += max(0.0, float(node_kw[i])) * dt_h
                self.ledger.critical_unserved += float(crit[i]) * dt_h
                out[i] = 0.0
        self.bus_kw, self.bus_ev = out, ev
        live = np.array([self.grid.supplied(b) for b in self.site.nodes])
        self.last_kw = np.where(live, out, self.last_kw)
        self.last_ev = np.where(live, ev, self.last_ev)
        return out

    def _step(self) -> None:
        super()._step()
        ties = self.grid.tie_kw()
        for name, kw in ties.items():
            cap = self.tie_capacity.get(name)
            if cap is not None and kw > cap + 1e-6:
                self.counts["tie_overload_min"] += self.site.step_s / 60.0

    def _depart(self, charger: Charger, plug: _Plug, s: Session, t_s: float) -> None:
        self._departed.append((s.sid, t_s, round(plug.delivered, 4)))
        self._score(s, plug.delivered, charger, t_s)
        plug.session, plug.delivered = None, 0.0
        plug.setpoint = 0.0

    def _score(self, s: Session, delivered: float, charger: Charger, end: float, gone: bool = True) -> None:
        """Score one session by ``end`` (epoch s): against the energy it was owed by then — all its demand if it
        left (or never arrived), else what full power until its departure could no longer make up — and, for the
        fallback share, what full power from its planned arrival could have delivered by then."""
        demand, max_kw = self._demand(s), charger.limits.max_kw
        planned, begin = self.planned.get(s.sid, s.arrival_s), self.scenario.begin_s
        outside = max(0.0, begin - planned) + (0.0 if gone else max(0.0, s.departure_s - end))
        owed = max(0.0, demand - max_kw * outside / 3600.0)
        start = max(planned, begin)
        deliverable = min(demand, max_kw * max(0.0, min(s.departure_s, end) - start) / 3600.0)
        self.ledger.session_done(s, min(delivered, owed), owed, charger.group, self.site.node_districts[charger.node])
        self.deliverable[0] += min(delivered, deliverable)
        self.deliverable[1] += deliverable

    # ---- restoration through the tie ------------------------------------------------------------------
    def _demand_kw(self, bus: str) -> float:
        """The load ``bus`` would draw if picked up now (chargers at their setpoints in Smart City mode; in AI
        City mode chargers behind the tie take nothing)."""
        i = self._index[bus]
        kw = float(self.node_inflexible[i])
        if self.mode == "smart":
            kw += sum(p.setpoint for cid, p in self.plugs.items()
                      if self._charger_bus[cid] == bus and p.session is not None)
        return max(0.0, kw)

    def _check(self, feeder: str, buses: list[str]) -> str | None:
        """Why the edge refuses picking up ``buses`` of ``feeder`` (None: it may)."""
        if feeder == SOURCE or feeder not in TIE_TO:
            return "source"
        if self.grid.in_service.get(feeder, True):
            return "live_feeder"
        if not self.grid.in_service.get(SOURCE, False):
            return "source_dead"
        load = sum(self._demand_kw(b) for b in buses)
        if load > self.tie_capacity.get(tie_name(feeder), 0.0) + 1e-6:
            return "tie_kw"
        rating = self.grid.ratings_kw()[SOURCE]
        own = self.grid.transformer_kw().get(SOURCE, 0.0) - self.grid.tie_kw().get(tie_name(feeder), 0.0)
        if own + load > rating + 1e-6:
            return f"transformer_rating {SOURCE}"
        return None

    def _apply(self, feeder: str, buses: list[str]) -> None:
        self.grid.set_tie(feeder, buses)
        if self.mode != "smart":
            for cid, plug in self.plugs.items():
                if self._charger_bus[cid] in buses:
                    plug.setpoint = 0.0

    def _restore(self, action: ProposedAction) -> Outcome:
        if action.target.startswith(TIE_PREFIX):
            name = action.target.removeprefix(TIE_PREFIX)
            feeder = next((f for f in TIE_TO if tie_name(f) == name), None)
            raw = action.params.get("buses")
            if feeder is None or not isinstance(raw, list | tuple):
                return Outcome(action, "refused", bound_by=("known_target",),
                               reason=f"no tie {name!r} or no list of buses")
            buses = [str(b).removeprefix(LOADPOINT_PREFIX).replace("-", " ") for b in raw]
        elif action.target.startswith(LOADPOINT_PREFIX):
            bus = action.target.removeprefix(LOADPOINT_PREFIX).replace("-", " ")
            if bus not in self._index:
                return Outcome(action, "refused", bound_by=("known_target",), reason=f"no load point {bus!r}")
            feeder = feeder_of(bus)
            on = action.params.get("on")
            if not isinstance(on, bool):
                return Outcome(action, "refused", bound_by=("known_action",), reason="params.on must be true or false")
            now = {b for b in self.grid.picked if feeder_of(b) == feeder}
            buses = sorted(now | {bus}) if on else sorted(now - {bus})
        else:
            return Outcome(action, "refused", bound_by=("known_target",),
                           reason=f"no tie or load point {action.target}")
        unknown = [b for b in buses if b not in self._index or feeder_of(b) != feeder]
        if unknown:
            return Outcome(action, "refused", bound_by=("known_target",),
                           reason=f"not load points of feeder {feeder}: {', '.join(unknown)}")
        why = self._check(feeder, buses) if buses else None
        if why is not None:
            self.counts["restores_refused"] += 1
            reasons = {"tie_kw": f"the set draws more than the tie's {self.tie_capacity.get(tie_name(feeder), 0):g} kW",
                       "live_feeder": f"feeder {feeder} is live: nothing to restore",
                       "source": f"feeder {feeder} has no tie", "source_dead": f"feeder {SOURCE} is dead"}
            return Outcome(action, "refused", bound_by=(why,), reason=reasons.get(why, f"over the {why}"))
        self._apply(feeder, buses)
        self.counts["restores"] += 1
        return Outcome(action, "applied", {"buses": buses, "tie": tie_name(feeder)})

    def actuate(self, action: ProposedAction) -> Outcome:
        """Restores through the tie's edge; charger setpoints through theirs (none behind the tie in AI mode)."""
        if action.action == RESTORE:
            return self._restore(action)
        out = super().actuate(action)
        cid = action.target.removeprefix(CHARGER_PREFIX)
        if (action.target.startswith(CHARGER_PREFIX) and cid in self.plugs and not out.refused
                and self._via_tie(self._charger_bus[cid]) and self.plugs[cid].setpoint > 0):
            self.plugs[cid].setpoint = 0.0
            return Outcome(action, "clamped", {"kw": 0.0}, ("tie_fed",), "fed through the tie: no EV charging")
        return out

    def safe_state_for(self, target: str) -> bool:
        """Chargers and batteries as in :class:`EnergyTwin`; a tie or load point keeps its state (opening it
        would de-energise loads: the crew decides)."""
        if target.startswith((TIE_PREFIX, LOADPOINT_PREFIX)):
            return True
        return super().safe_state_for(target)

    def _via_tie(self, bus: str) -> bool:
        return not self.grid.in_service.get(feeder_of(bus), True) and self.grid.supplied(bus)

    # ---- sensors -------------------------------------------------------------------------------------
    def observe(self) -> list[Any]:
        """The energy twin's entities plus transformers, ties, load points and critical loads."""
        from datetime import timedelta

        ents = super().observe()
        now = self.start_time + timedelta(seconds=self.elapsed_s())
        ratings, through = self.grid.ratings_kw(), self.grid.transformer_kw()
        for f in FEEDERS:
            kw = max(0.0, through.get(f, 0.0)) if self.k > 0 else float(self.bus_kw[self._feeder_idx(f)].sum())
            ents.append(Entity(f"{TRANSFORMER_PREFIX}{f}", TRANSFORMER_TYPE, {
                "rating": Property(ratings[f], None, "KWT"), "loading_kw": Property(round(kw, 3), now, "KWT"),
                "headroom": Property(round(max(0.0, ratings[f] - kw) if self.grid.in_service[f] else 0.0, 3), now,
                                     "KWT"),
                "inService": Property(self.grid.in_service[f], now), "feeder": Property(f)}))
        ties = self.grid.tie_kw()
        src_room = max(0.0, ratings[SOURCE] - max(0.0, through.get(SOURCE, 0.0)))
        for f in TIE_TO:
            name = tie_name(f)
            cap = self.tie_capacity.get(name, self._capacity(f))
            used = ties.get(name, 0.0)
            ents.append(Entity(f"{TIE_PREFIX}{name}", TIE_TYPE, {
                "capacity": Property(float(cap), now, "KWT"), "used": Property(round(used, 3), now, "KWT"),
                "headroom": Property(round(max(0.0, min(float(cap) - used, src_room)), 3), now, "KWT"),
                "closed": Property(self.grid.tie_closed.get(name, False), now), "source": Property(SOURCE),
                "feeder": Property(f),
                "buses": Property(sorted(b for b in self.grid.picked if feeder_of(b) == f), now)}))
        crit_buses = {c.bus for c in self.critical.values()}
        for i, bus in enumerate(self.site.nodes):
            if self.site.base_kw[i].max() <= 0 and bus not in crit_buses and not self._has_charger(bus):
                continue
            ents.append(self._point(bus, i, now))
        for c in sorted(self.critical.values(), key=lambda c: c.eid):
            ents.append(Entity(critical_id(c.eid), CRITICAL_TYPE, {
                "servedEntity": Property(c.eid), "bus": Property(c.bus), "kind": Property(c.kind),
                "power": Property(c.kw, None, "KWT"),
                "supplied": Property(self.grid.supplied(c.bus), now), "feeder": Property(feeder_of(c.bus))}))
        return ents

    def _point(self, bus: str, i: int, now: datetime) -> Entity:
        return Entity(point_id(bus), LOADPOINT_TYPE, {
            "bus": Property(bus), "feeder": Property(feeder_of(bus)),
            "district": Property(self.site.node_districts[i]),
            "power": Property(round(float(self.bus_kw[i]), 3), now, "KWT"),
            "evPower": Property(round(float(self.bus_ev[i]), 3), now, "KWT"),
            "lastPower": Property(round(float(self.last_kw[i]), 3), now, "KWT"),
            "lastEvPower": Property(round(float(self.last_ev[i]), 3), now, "KWT"),
            "supplied": Property(self.grid.supplied(bus), now), "viaTie": Property(self._via_tie(bus), now)})

    def _charger_entity(self, cid: str, plug: _Plug, now: datetime) -> Entity:
        ent = super()._charger_entity(cid, plug, now)
        bus = self._charger_bus[cid]
        attrs = {**ent.attrs, "bus": Property(bus), "feeder": Property(feeder_of(bus)),
                 "supplied": Property(self.grid.supplied(bus), now), "viaTie": Property(self._via_tie(bus), now)}
        return Entity(ent.id, ent.type, attrs)

    def _feeder_idx(self, feeder: str) -> list[int]:
        return [self._index[b] for b in self.grid.feeders()[feeder]]

    def _has_charger(self, bus: str) -> bool:
        return bus in self._charger_bus.values()

    # ---- the end -------------------------------------------------------------------------------------
    def close(self) -> DomainResult:
        """Score sessions still plugged in and those never plugged in against what was deliverable by the end."""
        by_id = {c.cid: c for c in self.site.chargers}
        end = self.scenario.begin_s + self.k * self.site.step_s
        for cid, plug in self.plugs.items():
            if plug.session is not None:
                self._score(plug.session, plug.delivered, by_id[cid], end, gone=False)
                plug.session = None
        for s in self.held.values():
            if s.arrival_s < end:
                self.counts["never_arrived"] += 1
                self._score(s, 0.0, by_id[s.station], end)
        self.grid.close()
        res = result(self.ledger, self.site, None)
        if self.ledger.demand <= 1e-9:  # nothing was owed by the end: no EV went short (owed_kwh = 0 says so)
            res.kpis["delivered_frac"] = 1.0
        counts = res.extra.setdefault("counts", {})
        counts.update({k: round(v, 3) for k, v in self.counts.items()})
        counts.update({"driven_sessions": len(self.driven), "critical_loads": len(self.critical),
                       "owed_kwh": round(self.ledger.demand, 3),
                       "owed_delivered_kwh": round(self.ledger.delivered, 3),
                       "deliverable_kwh": round(self.deliverable[1], 3),
                       "deliverable_delivered_kwh": round(self.deliverable[0], 3),
                       "outage_feeder": self.events.outage_feeder or "none"})
        return res

    def _log(self, target: str, event: str, detail: dict[str, Any]) -> None:
        self._edge_log.append({"target": target, "event": event, "time_s": self.elapsed_s(), "detail": detail})
