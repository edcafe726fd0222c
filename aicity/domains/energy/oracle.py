"""The perfect-foresight oracle: the dispatch LP of :mod:`.lp` solved once over the whole window with the true
arrivals, departures, energies, loads and PV of the :class:`Site` — the yardstick, never a controller a city could
run. :func:`oracle_kpis` scores its schedule; :func:`oracle_planner` replays it through the loop (benchmarks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicity.core.domain import ProposedAction, Snapshot
from aicity.domains.energy.const import BATTERY_DISPATCH, BATTERY_PREFIX, CHARGER_TYPE, EV_CHARGING, SET_POWER
from aicity.domains.energy.data import Session
from aicity.domains.energy.lp import Job, Problem, Solution, Storage, solve
from aicity.domains.energy.site import Site, availability

PLANNER = "energy.oracle.perfect-foresight@1"


def demand(s: Session, user_input: str) -> float:
    """The energy a session asks for that the EV can take."""
    return min(s.requested_kwh if user_input == "typed" else s.capacity_kwh, s.capacity_kwh)


def problem(site: Site, begin_s: float, end_s: float, user_input: str = "acn-sim") -> tuple[Problem, list[Session]]:
    """The whole-window LP with ground truth (sessions, loads, PV, batteries, grid)."""
    k0 = site.step_of(begin_s)
    n = max(1, round((end_s - begin_s) / site.step_s))
    dt_h = site.dt_h
    by = {c.cid: c for c in site.chargers}
    jobs: list[Job] = []
    used: list[Session] = []
    for s in site.sessions:
        ch = by.get(s.station)
        if ch is None or s.departure_s <= begin_s or s.arrival_s >= end_s:
            continue
        avail = availability(max(s.arrival_s, begin_s), s.departure_s, k0, n, site.step_s)
        later = ch.limits.max_kw * max(0.0, s.departure_s - end_s) / 3600.0  # what can still come after the window
        energy = min(max(0.0, demand(s, user_input) - later), ch.limits.max_kw * float(avail.sum()) * dt_h)
        jobs.append(Job(s.sid, avail, energy, ch.limits.max_kw, ch.node))
        used.append(s)
    ks = np.arange(k0, k0 + n)
    base = np.stack([site.base_at(int(k)) - site.pv_at(int(k)) for k in ks], axis=1)
    storages = [Storage(b.bid, b.soc0 * b.limits.capacity_kwh, b.limits.capacity_kwh, b.limits.power_kw,
                        b.limits.soc_min, b.limits.soc_max, b.limits.efficiency, b.node, b.limits.ramp_kw)
                for b in site.batteries]
    network = site.grid.planner_view().restrict(base, n) if site.grid is not None else None
    return Problem(n, dt_h, site.price[ks], base.sum(axis=0), jobs, storages, site.limit_kw, 0.0,
                   max(site.demand_charge, 1.0), network=network), used


def oracle_kpis(site: Site, begin_s: float, end_s: float, user_input: str = "acn-sim") -> dict[str, float]:
    """The oracle's peak, energy cost, CO2 and delivered share over the window (from its LP solution)."""
    prob, used = problem(site, begin_s, end_s, user_input)
    sol = solve(prob)
    if not sol.ok:
        return {"solved": 0.0}
    k0 = site.step_of(begin_s)
    ks = np.arange(k0, k0 + prob.n)
    imp = np.maximum(sol.grid_kw, 0.0) * prob.dt_h
    dem = sum(demand(s, user_input) for s in used)
    by = {c.cid: c for c in site.chargers}
    # energy a session can still take after the window's end is not a shortfall (as the twin scores it)
    after = [by[s.station].limits.max_kw * max(0.0, s.departure_s - end_s) / 3600.0 for s in used]
    unserved = sum(sol.unserved.values()) + sum(max(0.0, demand(s, user_input) - j.energy_kwh - a)
                                                for s, j, a in zip(used, prob.jobs, after, strict=True)
                                                if j.energy_kwh + a < demand(s, user_input) - 1e-9)
    return {"solved": 1.0, "peak_kw": sol.peak_kw, "energy_cost": float((imp * site.price[ks]).sum()),
            "co2_kg": float((imp * site.carbon[ks]).sum()), "delivered_frac": 1.0 - unserved / dem if dem else 1.0,
            "solve_s": sol.solve_s}


@dataclass(frozen=True)
class OraclePlanner:
    """Replays the oracle's schedule: each charger's power so its energy tracks the schedule's cumulative energy."""

    site: Site
    begin_s: float
    solution: Solution
    sessions: Mapping[str, Session]
    name: str = PLANNER

    def __call__(self, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """One proposal per connected charger and per battery."""
        k = round(snapshot.elapsed_s / self.site.step_s)
        dt_h = self.site.dt_h
        out: list[ProposedAction] = []
        for ent in snapshot.of_type(CHARGER_TYPE):
            sid = ent.get("sessionId")
            rate = self.solution.rates.get(str(sid)) if sid is not None else None
            if rate is None:
                continue
            due = float(rate[: k + 1].sum()) * dt_h
            kw = max(0.0, (due - float(ent.get("energyDelivered") or 0.0)) / dt_h)
            out.append(ProposedAction(ent.id, SET_POWER, {"kw": round(kw, 3)}, planner=self.name,
                                      action_type=EV_CHARGING, inputs={ent.id: ent.get("energyDelivered")}))
        for bid, net in self.solution.battery.items():
            if k < len(net):
                out.append(ProposedAction(f"{BATTERY_PREFIX}{bid}", SET_POWER, {"kw": round(float(net[k]), 3)},
                                          planner=self.name, action_type=BATTERY_DISPATCH))
        return out


def oracle_planner(site: Site, begin_s: float, end_s: float, user_input: str = "acn-sim") -> OraclePlanner:
    """The oracle controller's planner (solves the whole-window LP once, here)."""
    prob, used = problem(site, begin_s, end_s, user_input)
    sol = solve(prob)
    return OraclePlanner(site, begin_s, sol, {s.sid: s for s in used})

