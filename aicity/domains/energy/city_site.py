"""The city energy scenario ``cologne8-grid``: the CIGRE LV grid (:mod:`.city_grid`) under the cologne8 road map,
07:00-08:00 of a weekday (Tuesday 3 September 2019), 60 s grid steps.

Load points carry real 15-min household profiles (as in the district, interpolated to the minute). Workplace
chargers (11 kW) stand on commercial and industrial buses. Their EV sessions are real ACN Caltech sessions at
their real time of day, *unshifted*: the Caltech garage sees only one arrival between 07:00 and 08:00 on
3 September, so the arrivals between 06:00 and 09:00 of every weekday of September 2019 are pooled onto that
Tuesday (each keeps its time of day, dwell and energy) and take a free charger first come, first served; a
session finding none is left out (counted). Those arriving inside the window are the EVs that drive in SUMO.
No PV or batteries (the morning's PV is small; the story is the grid's). Tariff and CO2 are the Caltech site's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from aicity.core.domain import Scenario
from aicity.domains.energy.const import DOMAIN
from aicity.domains.energy.data import Session, Tariff, read_moer, read_sessions
from aicity.domains.energy.edge import ChargerLimits
from aicity.domains.energy.site import Charger, Site

NAME = "cologne8-grid"
BEGIN_S, END_S = 7 * 3600.0, 8 * 3600.0
STEP_S = 60.0
CHARGER_BUSES: tuple[tuple[str, int], ...] = (
    ("Bus C12", 3), ("Bus C13", 3), ("Bus C14", 4), ("Bus C17", 3), ("Bus C19", 3), ("Bus C20", 2),
    ("Bus I2", 8))
"""Workplace chargers per bus: 18 on the commercial feeder (NE and SE), 8 at the industrial site (SE)."""
LOAD_SCALE = 0.6
POOL_HOURS = (6, 9)
"""Local hours [from, to) of the weekday arrivals pooled onto the scenario's day."""
SURGE_SPREAD_S = 300.0


def city_scenario() -> Scenario:
    """``cologne8-grid``: 07:00-08:00 on Tuesday 3 September 2019, seconds after local midnight."""
    return Scenario(NAME, DOMAIN, "CIGRE LV grid under the cologne8 road map, 07:00-08:00: 26 workplace "
                    "chargers on pooled real ACN morning sessions; feeder outages, tie restoration, EV surges",
                    BEGIN_S, END_S)


def city_epoch() -> datetime:
    """Local midnight of Tuesday 3 September 2019 (the ACN site's time zone: its tariff and sessions)."""
    from aicity.domains.energy.scenarios import TZ

    return datetime(2019, 9, 3, tzinfo=TZ)


def build_city(scenario: Scenario, params: Mapping[str, Any]) -> Site:
    """The city's ground truth: load points, chargers, pooled sessions (plus a seeded surge), tariff, grid."""
    from aicity.domains.energy.city_grid import city_grid, district_of
    from aicity.domains.energy.district import EV_KW, EV_MIN_KW, EV_STEP_KW, NODES, SCALE_STEPS, draw_of, read_loads

    rng = np.random.default_rng(draw_of(params))
    epoch = city_epoch()
    grid = city_grid()
    names = grid.names
    n = math.ceil(max(scenario.end_s, END_S) / STEP_S) + 1
    homes = read_loads()
    t_h = np.arange(n) * STEP_S / 900.0  # the profiles start on a Monday at 00:00: Tuesday is day 1
    t_h = t_h + 96.0
    base = np.zeros((len(names), n))
    for bus, nominal, _ in NODES:
        pick = rng.choice(homes.shape[1], size=5, replace=False)
        shape = homes[:, pick].mean(axis=1)
        peak = shape[:SCALE_STEPS].max()
        base[names.index(bus)] = np.interp(t_h, np.arange(len(shape)), shape) / peak * nominal * LOAD_SCALE
    limits = ChargerLimits(EV_KW, EV_MIN_KW, EV_STEP_KW, min(float(params.get("safe_rate_kw") or EV_MIN_KW), EV_KW))
    chargers = [Charger(f"{bus.split()[1]}-{j}", limits, names.index(bus), bus.split()[1])
                for bus, count in CHARGER_BUSES for j in range(count)]
    sessions = _pooled(epoch)
    surge_at, surge_n = float(params.get("surge_at_s", -1.0)), int(params.get("surge_evs", 0))
    if surge_at >= 0 and surge_n > 0:
        sessions += _surge(sessions, scenario.begin_s + surge_at, surge_n, rng)
    placed, chargers = _place(sessions, chargers, limits, names)
    tariff = Tariff.load()
    grid.published = frozenset(b for b, _, _ in NODES) | {b for b, _ in CHARGER_BUSES}
    return Site(scenario.name, epoch, STEP_S, n, tuple(chargers), tuple(placed), tariff.prices(epoch, n, STEP_S),
                read_moer(epoch, n, STEP_S), float(params.get("transformer_kw") or 950.0),
                tariff.demand_charge(epoch), names, base, np.zeros((len(names), n)), (), grid,
                tuple(district_of(b) for b in names), tuple(0.0 for _ in names))


def _pooled(epoch: datetime) -> list[Session]:
    """Weekday arrivals of September 2019 between the pool hours, each moved to ``epoch``'s day."""
    month = datetime(2019, 9, 1, tzinfo=epoch.tzinfo)
    out: list[Session] = []
    for s in read_sessions(month, datetime(2019, 10, 1, tzinfo=epoch.tzinfo)):
        at = month + timedelta(seconds=s.arrival_s)
        if at.weekday() >= 5 or not POOL_HOURS[0] <= at.hour < POOL_HOURS[1]:
            continue
        tod = (at - datetime(at.year, at.month, at.day, tzinfo=epoch.tzinfo)).total_seconds()
        d = tod - s.arrival_s
        out.append(replace(s, arrival_s=s.arrival_s + d, departure_s=s.departure_s + d,
                           est_departure_s=s.est_departure_s + d))
    return sorted(out, key=lambda s: (s.arrival_s, s.sid))


def _surge(real: list[Session], at_s: float, count: int, rng: np.random.Generator) -> list[Session]:
    """``count`` extra sessions copied from the day's real ones (new ids), arriving within 5 min after ``at_s``."""
    picks = rng.choice(len(real), size=count, replace=len(real) < count)
    offsets = np.sort(rng.uniform(0.0, SURGE_SPREAD_S, size=count))
    out = []
    for i, (p, off) in enumerate(zip(picks, offsets, strict=True)):
        s = real[int(p)]
        dwell = s.departure_s - s.arrival_s
        a = at_s + float(off)
        out.append(replace(s, sid=f"surge{i:03d}", arrival_s=a, departure_s=a + dwell,
                           est_departure_s=a + (s.est_departure_s - s.arrival_s)))
    return out


def _place(sessions: list[Session], chargers: list[Charger], limits: ChargerLimits,
           names: tuple[str, ...]) -> tuple[list[Session], list[Charger]]:
    """Each session on the charger free longest (first come, first served); surge EVs that find none get a new
    charger on the commercial and industrial buses in turn; a real session finding none is left out."""
    free_at = {c.cid: -math.inf for c in chargers}
    placed: list[Session] = []
    extra = 0
    for s in sorted(sessions, key=lambda s: (s.arrival_s, s.sid)):
        free = sorted((t, cid) for cid, t in free_at.items() if t <= s.arrival_s)
        if not free:
            if not s.sid.startswith("surge"):
                continue
            bus = CHARGER_BUSES[extra % len(CHARGER_BUSES)][0]
            cid = f"{bus.split()[1]}-s{extra}"
            extra += 1
            chargers.append(Charger(cid, limits, names.index(bus), bus.split()[1]))
        else:
            cid = free[0][1]
        free_at[cid] = s.departure_s
        cap = min(s.capacity_kwh, limits.max_kw * max(0.0, s.departure_s - s.arrival_s) / 3600.0)
        placed.append(replace(s, station=cid, capacity_kwh=cap))
    return placed, chargers
