"""The energy twin: real EV sessions on chargers, batteries, loads and PV behind one transformer, with an AC
power flow (pandapower) where the scenario has a grid; meters report as NGSI-LD entities.

Smart City mode: chargers run at full power from plug-in, batteries follow a self-consumption rule. AI City mode:
chargers wait for dispatch (0 kW until told), batteries hold their setpoint. Every command passes the actuator
edge (:mod:`.edge`). What the sensors report is what a real charging network sees: meters and the connected
sessions with the user's requested energy and estimated departure (never future arrivals, loads or weather).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from aicity.core.capabilities import EdgeActionData
from aicity.core.domain import DomainResult, Outcome, ProposedAction, Scenario
from aicity.core.entity import Entity, Property
from aicity.domains.energy.const import (
    BATTERY_PREFIX,
    BATTERY_TYPE,
    BUS_TYPE,
    CHARGER_PREFIX,
    CHARGER_TYPE,
    METER_TYPE,
    PV_PREFIX,
    PV_TYPE,
    SET_POWER,
)
from aicity.domains.energy.data import Session
from aicity.domains.energy.edge import battery_command, battery_step, charger_command
from aicity.domains.energy.faults import MeterFaults
from aicity.domains.energy.kpis import Ledger, result
from aicity.domains.energy.site import Charger, FArray, Site

SITE_METER = "site"


@dataclass
class TwinConfig:
    """Run options of one twin (validated scenario options)."""

    decision_interval_s: float = 300.0
    user_input: str = "acn-sim"
    safe_kw: float = 1.248
    faults: MeterFaults | None = None
    oracle: bool = True


@dataclass
class _Plug:
    """A charger's live state."""

    queue: list[Session]
    setpoint: float = 0.0
    session: Session | None = None
    delivered: float = 0.0
    power: float = 0.0
    held: bool = False


@dataclass
class _Store:
    """A battery's live state."""

    soc: float
    setpoint: float = 0.0
    power: float = 0.0
    held: bool = False


@dataclass
class EnergyTwin:
    """A :class:`aicity.core.domain.Twin` over a :class:`Site` (see the module docstring)."""

    site: Site
    scenario: Scenario
    mode: str
    seed: int = 0
    config: TwinConfig = field(default_factory=TwinConfig)

    def __post_init__(self) -> None:
        self.import_cap_kw: float | None = None
        """AI City: the site import its batteries hold in real time (their inverters' import-limit mode, set with
        a battery command's ``cap_kw``): those not held discharge more, within their limits, while the live load
        is above it."""
        self.charger_cap_kw: float | None = None
        """Chargers' load-management mode (set by a charger command's ``cap_kw``): while the batteries cannot hold
        the live import under it, the chargers draw less within the step (see :meth:`_throttle`)."""
        self.decision_interval_s = self.config.decision_interval_s
        self.begin_step = self.site.step_of(self.scenario.begin_s)
        self.n_steps = max(1, math.ceil((self.scenario.end_s - self.scenario.begin_s) / self.site.step_s - 1e-9))
        self.start_time: datetime = self.site.epoch + timedelta(seconds=self.scenario.begin_s)
        self.k = 0
        self._pending_s = 0.0
        self.ledger = Ledger(self.site, self.begin_step)
        self._edge_log: list[EdgeActionData] = []
        self._frozen: dict[str, dict[str, Any]] = {}
        self._last_obs: dict[str, Entity | dict[str, Any]] = {}
        self.plugs: dict[str, _Plug] = {}
        self.stores: dict[str, _Store] = {}
        self.grid_kw = 0.0
        self.imported_kwh = 0.0
        self.node_inflexible = np.zeros(len(self.site.nodes))
        self.node_pv = np.zeros(len(self.site.nodes))

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Queue every session of the window on its charger (sessions plugged in before the window start at it);
        the meters first read the last interval before the window (as a real meter would at that moment), not
        zero: the site's past readings, else its profiles' step before the window (none at the profiles' start)."""
        begin, end = self.scenario.begin_s, self.scenario.end_s
        by: dict[str, list[Session]] = {c.cid: [] for c in self.site.chargers}
        for s in self.site.sessions:
            if s.departure_s > begin and s.arrival_s < end and s.station in by:
                by[s.station].append(s)
        self.plugs = {cid: _Plug(sorted(q, key=lambda s: s.arrival_s, reverse=True)) for cid, q in by.items()}
        self.stores = {b.bid: _Store(b.soc0 * b.limits.capacity_kwh) for b in self.site.batteries}
        if self.site.grid is not None:
            self.site.grid.start()
        ks = self.begin_step - 1
        if self.site.history_kw.shape[1] > 0:  # the meters' first reading: the last interval before the window
            self._first_reading(np.array(self.site.history_kw[:, -1], dtype=float))
        elif ks >= 0:  # no history, but the window starts within the site's profiles: their step before it
            self.node_pv = self.site.pv_at(ks)
            self._first_reading(self.site.base_at(ks) - self.node_pv)
        self._connect(begin)

    def _first_reading(self, node_kw: FArray) -> None:
        """The meters' reading before the window's first step: each node's inflexible load, the site's import, the
        power flow on it."""
        self.node_inflexible = node_kw
        self.grid_kw = float(node_kw.sum())
        if self.site.grid is not None:
            self.site.grid.run(node_kw)

    def elapsed_s(self) -> float:
        """Simulated seconds since the window's begin."""
        return self.k * self.site.step_s

    def done(self) -> bool:
        """True at the end of the window."""
        return self.k >= self.n_steps

    def advance(self, seconds: float) -> None:
        """Simulate ``seconds`` more: the seconds accumulate, and the grid steps each time they reach a whole
        step (a city loop stepping every 1-5 s moves a 60 s grid once a minute; ``elapsed_s`` stays grid time)."""
        self._pending_s += max(0.0, float(seconds))
        step = self.site.step_s
        while self._pending_s >= step - 1e-6 and not self.done():
            self._pending_s = max(0.0, self._pending_s - step)
            self._step()

    # ---- physics -------------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.scenario.begin_s + self.k * self.site.step_s

    def _connect(self, t: float) -> None:
        """Plug in the sessions arriving by ``t`` on free chargers (the charger's default power on plug-in)."""
        for cid, plug in self.plugs.items():
            if plug.session is None and plug.queue and plug.queue[-1].arrival_s <= t + 1e-9:
                plug.session = plug.queue.pop()
                plug.delivered = 0.0
                plug.setpoint = self._default_kw(cid) if not plug.held else self.config.safe_kw

    def _default_kw(self, cid: str) -> float:
        ch = self.site.charger(cid)
        return ch.limits.max_kw if (self.mode == "smart" and ch is not None) else 0.0

    def _step(self) -> None:
        site, dt = self.site, self.site.step_s
        t0 = self._now_s()
        t1 = t0 + dt
        ks = self.begin_step + self.k
        self._events(t0)
        node_kw = site.base_at(ks) - site.pv_at(ks) + self._extra_kw()
        self.node_inflexible = node_kw.copy()
        self.node_pv = site.pv_at(ks)
        ev_total = 0.0
        by_id = {c.cid: c for c in site.chargers}
        share = self._throttle(node_kw, t0, t1, by_id)
        for cid, plug in self.plugs.items():
            energy = 0.0
            # sessions arriving during the step: in smart mode they draw from plug-in
            if plug.session is None and plug.queue and plug.queue[-1].arrival_s < t1:
                plug.session = plug.queue.pop()
                plug.delivered = 0.0
                plug.setpoint = self._default_kw(cid) if not plug.held else self.config.safe_kw
            s = plug.session
            if s is not None:
                start, stop = max(t0, s.arrival_s), min(t1, s.departure_s)
                room = max(0.0, s.capacity_kwh - plug.delivered)
                kw = self._drawn_kw(by_id[cid], plug.setpoint)
                if share < 1.0 and not plug.held:  # load management
                    kw = at_share(kw, share, by_id[cid].limits.min_kw)
                energy = min(kw * max(0.0, stop - start) / 3600.0, room)
                plug.delivered += energy
                if s.departure_s <= t1 + 1e-9:
                    self._depart(by_id[cid], plug, s, t1)
            plug.power = energy / (dt / 3600.0)
            node_kw[by_id[cid].node] += plug.power
            ev_total += plug.power
        bat_total = self._batteries(node_kw)
        node_kw = self._served(node_kw)
        grid_kw = float(node_kw.sum())
        self.grid_kw = grid_kw
        self.imported_kwh += max(grid_kw, 0.0) * site.dt_h
        flow = site.grid.run(node_kw) if site.grid is not None else None
        self.ledger.step(ks, self.k * dt, grid_kw, ev_total, bat_total, flow,
                         [st.soc for st in self.stores.values()])
        self.k += 1
        self._connect(self._now_s())

    def _throttle(self, node_kw: FArray, t0: float, t1: float, by_id: Mapping[str, Charger]) -> float:
        """The share of their setpoints the chargers draw this step under the load-management cap: 1 unless the
        live import (loads, PV, chargers, batteries at their setpoints and the most the import-limit mode can add)
        would exceed ``charger_cap_kw``; then every charger draws that share of its setpoint, pausing where it would
        fall below its minimum (an ``import_cap`` edge event)."""
        cap = self.charger_cap_kw
        if cap is None or self.mode == "smart":
            return 1.0
        parts: list[tuple[float, float, float, float]] = []  # (kW, hours in the step, room kWh, minimum kW)
        for cid, plug in self.plugs.items():
            s = plug.session if plug.session is not None else (
                plug.queue[-1] if plug.queue and plug.queue[-1].arrival_s < t1 else None)
            if s is None or plug.held:
                continue
            start, stop = max(t0, s.arrival_s), min(t1, s.departure_s)
            delivered = plug.delivered if plug.session is not None else 0.0
            kw = self._drawn_kw(by_id[cid], plug.setpoint if plug.session is not None else self._default_kw(cid))
            parts.append((kw, max(0.0, stop - start) / 3600.0, max(0.0, s.capacity_kwh - delivered),
                          by_id[cid].limits.min_kw))

        def drawn(share: float) -> float:
            return sum(min(at_share(kw, share, lo) * h, room) for kw, h, room, lo in parts) / self.site.dt_h

        ev = drawn(1.0)
        room = 0.0
        for b in self.site.batteries:
            st = self.stores[b.bid]
            if st.held:
                continue
            floor = battery_command(b.limits, -b.limits.power_kw, soc_kwh=st.soc, prev_kw=st.power,
                                    dt_h=self.site.dt_h).kw
            room += max(0.0, st.setpoint - floor) if self.import_cap_kw is not None else 0.0
        bats = sum(self.stores[b.bid].setpoint for b in self.site.batteries)
        over = float(node_kw.sum()) + ev + bats - room - cap
        if over <= 1e-9 or ev <= 1e-9:
            return 1.0
        lo, hi = 0.0, 1.0  # the largest share whose draw sheds the excess (the draw rises with the share)
        for _ in range(30):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if drawn(mid) <= ev - over else (lo, mid)
        share = lo
        self._edge_log.append({"target": f"{CHARGER_PREFIX}*", "event": "import_cap", "time_s": self.elapsed_s(),
                               "detail": {"charger_share": round(share, 3), "cap_kw": cap}})
        return share

    # ---- hooks a grid with events overrides (see :mod:`.city_twin`) ----------------------------------
    def _events(self, t_s: float) -> None:
        """What happens to the grid at the start of the step beginning at epoch second ``t_s`` (nothing here)."""

    def _extra_kw(self) -> FArray:
        """Loads beyond the site's profiles, per node (none here)."""
        return np.zeros(len(self.site.nodes))

    def _drawn_kw(self, charger: Charger, setpoint: float) -> float:
        """The power a charger really draws at ``setpoint`` (all of it here)."""
        return setpoint

    def _served(self, node_kw: FArray) -> FArray:
        """Net load per node the grid really serves (all of it here)."""
        return node_kw

    def _depart(self, charger: Charger, plug: _Plug, s: Session, t_s: float) -> None:
        """Score a session that leaves at epoch second ``t_s`` and free its charger."""
        self.ledger.session_done(s, plug.delivered, self._demand(s), charger.group,
                                 self.site.node_districts[charger.node])
        plug.session, plug.delivered = None, 0.0
        plug.setpoint = 0.0

    def _batteries(self, node_kw: np.ndarray[Any, Any]) -> float:
        """Batteries as commanded; under an import cap, those not held discharge more while the live import (loads,
        PV, chargers and the batteries' setpoints) would exceed it (an ``import_cap`` edge event each time)."""
        cap = self.import_cap_kw
        live = [b for b in self.site.batteries if not self.stores[b.bid].held]
        over = (float(node_kw.sum()) + sum(self.stores[b.bid].setpoint for b in self.site.batteries) - cap
                if cap is not None and self.mode != "smart" and live else 0.0)
        if over <= 1e-9:
            return self._dispatch(node_kw)
        room = {b.bid: max(0.0, self.stores[b.bid].setpoint - battery_command(
            b.limits, -b.limits.power_kw, soc_kwh=self.stores[b.bid].soc, prev_kw=self.stores[b.bid].power,
            dt_h=self.site.dt_h).kw) for b in live}
        total = sum(room.values())
        saved = {b.bid: self.stores[b.bid].setpoint for b in live}
        for b in live:
            extra = min(room[b.bid], over * room[b.bid] / total) if total > 1e-9 else 0.0
            if extra > 1e-6:
                self.stores[b.bid].setpoint -= extra
                self._edge_log.append({"target": f"{BATTERY_PREFIX}{b.bid}", "event": "import_cap",
                                       "time_s": self.elapsed_s(),
                                       "detail": {"discharge_more_kw": round(extra, 3), "cap_kw": cap}})
        try:
            return self._dispatch(node_kw)
        finally:
            for bid, kw in saved.items():
                self.stores[bid].setpoint = kw

    def _dispatch(self, node_kw: np.ndarray[Any, Any]) -> float:
        """Every battery through its edge at its setpoint (Smart City: self-consumption), into ``node_kw``."""
        total = 0.0
        for b in self.site.batteries:
            st = self.stores[b.bid]
            want = st.setpoint
            if self.mode == "smart" and not st.held:  # self-consumption: charge surplus, cover the rest
                want = -float(node_kw[b.node])
            cmd = battery_command(b.limits, want, soc_kwh=st.soc, prev_kw=st.power, dt_h=self.site.dt_h)
            kw = cmd.kw if self.mode == "smart" or cmd.status != "refused" else 0.0
            if self.mode != "smart" and cmd.status == "clamped" and any(x.startswith("soc") for x in cmd.bound_by):
                detail: dict[str, Any] = {"kw": kw, "bound_by": list(cmd.bound_by)}
                self._edge_log.append({"target": f"{BATTERY_PREFIX}{b.bid}", "event": "soc_limit",
                                       "time_s": self.elapsed_s(), "detail": detail})
            st.soc = battery_step(b.limits, kw, st.soc, self.site.dt_h)
            st.power = kw
            node_kw[b.node] += kw
            total += kw
        return total

    def _demand(self, s: Session) -> float:
        """The energy a session asks for that the EV can take: min(request shown, what it took in reality)."""
        return min(self._request(s), s.capacity_kwh)

    def _request(self, s: Session) -> float:
        return s.requested_kwh if self.config.user_input == "typed" else s.capacity_kwh

    # ---- sensors ---------------------------------------------------------------------------------
    def observe(self) -> list[Any]:
        """Meters and chargers as entities (a faulty reading may come as a raw, invalid NGSI-LD dict)."""
        now = self.start_time + timedelta(seconds=self.elapsed_s())
        ents: list[Any] = [self._meter(now)]
        for cid, plug in sorted(self.plugs.items()):
            ents.append(self._charger_entity(cid, plug, now))
        for b in self.site.batteries:
            st = self.stores[b.bid]
            ents.append(Entity(f"{BATTERY_PREFIX}{b.bid}", BATTERY_TYPE, {
                "stateOfCharge": Property(round(st.soc / b.limits.capacity_kwh, 4), now, "P1"),
                "energyStored": Property(round(st.soc, 3), now, "KWH"),
                "power": Property(round(st.power, 3), now, "KWT"),
                "capacity": Property(b.limits.capacity_kwh, None, "KWH"),
                "maxPower": Property(b.limits.power_kw, None, "KWT"),
                "socMin": Property(b.limits.soc_min), "socMax": Property(b.limits.soc_max),
                "efficiency": Property(b.limits.efficiency), "node": Property(b.node),
                **({"rampRate": Property(b.limits.ramp_kw, None, "KWT")} if math.isfinite(b.limits.ramp_kw) else {})}))
        if self.site.grid is not None:
            ents.extend(self.site.grid.observe(now, BUS_TYPE, self.node_inflexible))
        for i, kwp in enumerate(self.site.pv_kwp):
            if kwp > 0:
                ents.append(Entity(f"{PV_PREFIX}{self.site.nodes[i].replace(' ', '-')}", PV_TYPE, {
                    "power": Property(round(float(self.node_pv[i]), 3), now, "KWT"),
                    "peakPower": Property(kwp, None, "KWT"), "node": Property(i)}))
        return [self._fault(e, now) for e in ents]

    def _meter(self, now: datetime) -> Entity:
        return Entity(f"urn:ngsi-ld:{METER_TYPE}:{SITE_METER}", METER_TYPE, {
            "activePower": Property(round(self.grid_kw, 3), now, "KWT"),
            "totalActiveEnergyImport": Property(round(self.imported_kwh, 3), now, "KWH"),
            "peakPower": Property(round(self.ledger.peak_kw, 3), now, "KWT"),
            "transformerRating": Property(self.site.limit_kw, None, "KWT"),
            "decisionInterval": Property(self.decision_interval_s, None, "SEC"),
            "stepsPerDay": Property(round(86400 / self.site.step_s))})

    def _charger_entity(self, cid: str, plug: _Plug, now: datetime) -> Entity:
        ch = self.site.charger(cid)
        assert ch is not None
        lim = ch.limits
        s = plug.session
        attrs: dict[str, Any] = {
            "power": Property(round(plug.power, 3), now, "KWT"),
            "setpoint": Property(round(plug.setpoint, 3), now, "KWT"),
            "maxPower": Property(lim.max_kw, None, "KWT"), "minPower": Property(lim.min_kw, None, "KWT"),
            "powerStep": Property(lim.step_kw, None, "KWT"), "safePower": Property(self.config.safe_kw, None, "KWT"),
            "chargerGroup": Property(ch.group), "node": Property(ch.node)}
        if s is None:
            attrs["status"] = Property("Available", now)
            attrs["energyDelivered"] = Property(None, now, "KWH")
        else:
            full = plug.delivered >= s.capacity_kwh - 1e-6
            attrs["status"] = Property("SuspendedEV" if full else ("Charging" if plug.setpoint > 0 else
                                                                  "SuspendedEVSE"), now)
            attrs["sessionId"] = Property(s.sid)
            attrs["connectedSince"] = Property(self._iso(max(s.arrival_s, self.scenario.begin_s)))
            shown = s.departure_s if self.config.user_input == "acn-sim" else s.est_departure_s
            attrs["estimatedDeparture"] = Property(self._iso(shown))
            attrs["requestedEnergy"] = Property(round(self._request(s), 3), now, "KWH")
            attrs["energyDelivered"] = Property(round(plug.delivered, 4), now, "KWH")
        return Entity(f"{CHARGER_PREFIX}{cid}", CHARGER_TYPE, attrs)

    def _iso(self, epoch_s: float) -> str:
        return (self.site.epoch + timedelta(seconds=epoch_s)).isoformat()

    def _fault(self, ent: Entity, now: datetime) -> Entity | dict[str, Any]:
        faults = self.config.faults
        local = ent.local_id
        kind = faults.kind(local, self.elapsed_s()) if faults is not None else None
        if kind is None:
            return ent
        data = ent.to_ngsi()
        key = "totalActiveEnergyImport" if ent.type == METER_TYPE else "energyDelivered"
        if key not in data:
            key = "power"
        if kind == "negative":
            data[key]["value"] = -abs(float(data[key]["value"])) - 1.0
        elif kind == "nan":
            data[key]["value"] = float("nan")
            return data
        elif kind == "freeze":
            first = self._frozen.setdefault(local, data)
            data = {**data, key: {**data[key], "value": first[key]["value"]}}
        elif kind == "stale":
            first = self._frozen.setdefault(local, data)
            data = first
        return Entity.from_ngsi(data)

    # ---- actuators -------------------------------------------------------------------------------
    def actuate(self, action: ProposedAction) -> Outcome:
        """Pass a setpoint through the charger's or battery's edge."""
        kw = action.params.get("kw")
        if action.action != SET_POWER:
            return Outcome(action, "refused", bound_by=("known_action",), reason=f"unknown action {action.action!r}")
        if action.target.startswith(CHARGER_PREFIX):
            cid = action.target.removeprefix(CHARGER_PREFIX)
            plug, ch = self.plugs.get(cid), self.site.charger(cid)
            if plug is not None and ch is not None:
                s = plug.session
                cmd = charger_command(ch.limits, kw, connected=s is not None,
                                      full=s is not None and plug.delivered >= s.capacity_kwh - 1e-6)
                if cmd.status != "refused":
                    plug.setpoint, plug.held = cmd.kw, False
                    if "cap_kw" in action.params:  # the load-management mode: a finite kW, or None (off)
                        cap = action.params["cap_kw"]
                        self.charger_cap_kw = float(cap) if _finite(cap) else None
                return Outcome(action, cmd.status, {"kw": cmd.kw}, cmd.bound_by, cmd.reason)
        if action.target.startswith(BATTERY_PREFIX):
            bid = action.target.removeprefix(BATTERY_PREFIX)
            st = self.stores.get(bid)
            bat = next((b for b in self.site.batteries if b.bid == bid), None)
            if st is not None and bat is not None:
                cmd = battery_command(bat.limits, kw, soc_kwh=st.soc, prev_kw=st.power, dt_h=self.site.dt_h)
                if cmd.status != "refused":
                    st.setpoint, st.held = cmd.kw, False
                    if "cap_kw" in action.params:  # the import-limit mode: a finite kW, or None (off)
                        cap = action.params["cap_kw"]
                        self.import_cap_kw = float(cap) if _finite(cap) else None
                return Outcome(action, cmd.status, {"kw": cmd.kw}, cmd.bound_by, cmd.reason)
        return Outcome(action, "refused", bound_by=("known_target",), reason=f"no charger or battery {action.target}")

    def safe_state(self) -> None:
        """Every charger with an EV to the declared safe rate, every battery idle, no import cap."""
        self.import_cap_kw = None
        self.charger_cap_kw = None
        for cid in self.plugs:
            self.safe_state_for(f"{CHARGER_PREFIX}{cid}")
        for bid in self.stores:
            self.safe_state_for(f"{BATTERY_PREFIX}{bid}")

    def safe_state_for(self, target: str) -> bool:
        """Put one charger (safe rate) or battery (idle) in its safe state."""
        cid = target.removeprefix(CHARGER_PREFIX)
        if target.startswith(CHARGER_PREFIX) and cid in self.plugs:
            plug = self.plugs[cid]
            plug.setpoint = self.config.safe_kw if plug.session is not None else 0.0
            plug.held = True
            return True
        bid = target.removeprefix(BATTERY_PREFIX)
        if target.startswith(BATTERY_PREFIX) and bid in self.stores:
            self.stores[bid].setpoint, self.stores[bid].held = 0.0, True
            return True
        return False

    def resume(self) -> None:
        """Hand control back (setpoints stay until the next decision)."""
        for plug in self.plugs.values():
            plug.held = False
        for st in self.stores.values():
            st.held = False

    def edge_events(self) -> list[EdgeActionData]:
        """What the edges did on their own since the last call."""
        out, self._edge_log = self._edge_log, []
        return out

    def close(self) -> DomainResult:
        """Sessions still plugged in are scored as they stand; KPIs, groups, series and the oracle's figures."""
        by_id = {c.cid: c for c in self.site.chargers}
        for cid, plug in self.plugs.items():
            if plug.session is not None:
                s = plug.session
                demand = self._demand(s)
                self.ledger.session_done(s, demand - self._locked_shortfall(s, plug.delivered), demand,
                                         by_id[cid].group, self.site.node_districts[by_id[cid].node])
                plug.session = None
        if self.site.grid is not None:
            self.site.grid.close()
        oracle = None
        if self.config.oracle and self.k > 0:
            from aicity.domains.energy.oracle import oracle_kpis

            oracle = oracle_kpis(self.site, self.scenario.begin_s, self.scenario.begin_s + self.k * self.site.step_s,
                                 user_input=self.config.user_input)
            if oracle.get("solved") and self.mode == "ai":
                oracle.update(self._gaps(oracle))
        return result(self.ledger, self.site, oracle)

    def _gaps(self, oracle: dict[str, float]) -> dict[str, float]:
        """Gap closed per KPI against uncontrolled charging on the same window, so a single report shows it:
        a shadow Smart City twin (no power flow: peak, cost and CO2 need none) run to the same time."""
        import dataclasses

        from aicity.domains.energy.kpis import gap_closed

        end = self.scenario.begin_s + self.k * self.site.step_s
        shadow = EnergyTwin(dataclasses.replace(self.site, grid=None), dataclasses.replace(self.scenario, end_s=end),
                            "smart", self.seed, dataclasses.replace(self.config, oracle=False, faults=None))
        shadow.start()
        while not shadow.done():
            shadow.advance(self.site.step_s)
        base = shadow.close().kpis
        mine = {"peak_kw": self.ledger.peak_kw, "energy_cost": self.ledger.cost, "co2_kg": self.ledger.co2}
        out: dict[str, float] = {}
        for kpi, value in mine.items():
            g = gap_closed(base[kpi], value, oracle[kpi])
            out[f"smart_{kpi}"] = base[kpi]
            if g is not None:
                out[f"gap_closed_{kpi}"] = g
        return out

    def _locked_shortfall(self, s: Session, delivered: float) -> float:
        """For a session still plugged in at the window's end: the shortfall that full power until its
        departure could no longer avoid (a controller is not blamed for energy it can still deliver)."""
        end = self.scenario.begin_s + self.k * self.site.step_s
        ch = self.site.charger(s.station)
        max_kw = ch.limits.max_kw if ch is not None else 0.0
        reach = max_kw * max(0.0, s.departure_s - end) / 3600.0
        return max(0.0, self._demand(s) - delivered - reach)


def at_share(kw: float, share: float, min_kw: float) -> float:
    """A charger under load management: ``share`` of its ``kw``, paused (0) where that is below its minimum."""
    return kw * share if kw * share >= min_kw - 1e-9 else 0.0


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
