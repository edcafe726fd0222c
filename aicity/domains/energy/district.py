"""The district: the CIGRE LV benchmark feeders (pandapower) with households, shops and a workshop on real
15-min household load profiles, rooftop PV from pvlib on the TMY3 weather pvlib ships, community batteries and
48 home chargers (11 kW) replaying real ACN Caltech sessions moved to the evening (+9 h: arrivals around 17:00-19:00,
departures overnight, energies and dwell times as recorded). ``draw`` seeds which households make each load point
and which Caltech station's sessions each charger replays.

The village (``district-kerber-village``) stands the same kind of assets on Kerber's village feeder (pandapower's
``create_kerber_dorfnetz``: 57 houses on six cables from one 400 kVA transformer), each house one real household.
It was laid out by the rules in :data:`VILLAGE_LAYOUT` before any controller ran on it, and nothing is tuned on it.

Honest limits of the model: the household profiles (ev2gym, MIT, 2022, 25 Dutch households) also shape the
commercial and industrial load points (no commercial profile is shipped); tariff and CO2 are the Caltech site's
(SCE TOU-EV-4, CAISO marginal emissions); the weather is Greensboro's TMY3.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from aicity.core.domain import Scenario
from aicity.core.errors import UserError
from aicity.domains.energy.const import DOMAIN
from aicity.domains.energy.data import DATA, Session, Tariff, read_moer, read_sessions
from aicity.domains.energy.edge import BatteryLimits, ChargerLimits
from aicity.domains.energy.site import Battery, Charger, Site

WEEK, MONTH, VILLAGE = "district-cigre-lv", "district-cigre-lv-month", "district-kerber-village"
LOADS_FILE = DATA / "residential_loads_2022-09-05.csv"
NODES: tuple[tuple[str, float, str], ...] = (
    ("Bus R1", 190.0, "residential"), ("Bus R11", 14.25, "residential"), ("Bus R15", 49.4, "residential"),
    ("Bus R16", 52.25, "residential"), ("Bus R17", 33.25, "residential"), ("Bus R18", 44.65, "residential"),
    ("Bus I2", 85.0, "industrial"), ("Bus C1", 108.0, "commercial"), ("Bus C12", 18.0, "commercial"),
    ("Bus C13", 18.0, "commercial"), ("Bus C14", 22.5, "commercial"), ("Bus C17", 22.5, "commercial"),
    ("Bus C18", 7.2, "commercial"), ("Bus C19", 14.4, "commercial"), ("Bus C20", 7.2, "commercial"))
"""CIGRE LV load points: bus, nominal load (kW), district."""
CHARGER_NODES = ("Bus R11", "Bus R15", "Bus R16", "Bus R17", "Bus R18", "Bus C14")
CHARGERS_PER_NODE = 8
PV_NODES = ("Bus R11", "Bus R15", "Bus R16", "Bus R17", "Bus R18", "Bus C12", "Bus C13", "Bus C14", "Bus C17",
            "Bus C18", "Bus C19", "Bus C20")
BATTERY_NODES = ("Bus R15", "Bus R18", "Bus C14", "Bus I2")
EV_KW, EV_MIN_KW, EV_STEP_KW = 11.04, 4.14, 0.69
"""16 A three-phase at 230 V; the 6 A minimum; 1 A steps."""
SHIFT_S = 9 * 3600.0
LOAD_SCALE = 0.5
PV_SHARE = 0.6
"""Rooftop PV per PV node, kWp per kW of nominal load."""
DAYS = 7
MONTH_DAYS = 28
"""The billing-month district: four weeks from Monday 2 September 2019 (the tariff's demand charge is monthly)."""
SCALE_STEPS = 15 * 96
"""Each load point is scaled by its profile's peak over the profiles' first 15 days (the span shipped when the week
was measured), whatever window is run: the month does not rescale the week."""
HISTORY_DAYS = 7
"""The household profiles' first week is the meter history before the window (the window is their second week,
Monday to Sunday as the first): forecasters learn from it first, as a city's would from past readings."""


WEEK_STEPS = 7 * 96
"""Quarter-hours in a week: a village house's profile starts a whole number of weeks into the shipped ones."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a district's load points and assets stand on its pandapower network."""

    network: str
    nodes: tuple[tuple[str, float, str], ...]
    """load points: bus, nominal load (kW), district (feeder)."""
    charger_nodes: tuple[str, ...]
    chargers_per_node: int
    pv_nodes: tuple[str, ...]
    battery_nodes: tuple[str, ...]
    transformer_kw: float
    houses: bool
    """each load point is one household at its own kW (the village), not five households' mean scaled to it."""


def short_name(bus: str) -> str:
    """A bus's name in asset ids: 'Bus R11' is 'R11', the village's 'loadbus_3_7' (feeder 3, house 7) 'H3.7'."""
    if bus.startswith("loadbus_"):
        return "H" + bus.removeprefix("loadbus_").replace("_", ".")
    return bus.split()[1]


CIGRE_LAYOUT = Layout("cigre_lv", NODES, CHARGER_NODES, CHARGERS_PER_NODE, PV_NODES, BATTERY_NODES, 950.0, False)


def _village_layout() -> Layout:
    """Kerber's village feeder, laid out by rules fixed before any run: every house a load point (Kerber's 6 kW
    planning load as its nominal), an 11 kW charger at every second house of each cable (its 1st, 3rd, ...), PV at
    every third (:data:`PV_SHARE` kWp per nominal kW, 3.6 kWp), a community battery as the CIGRE district's at the
    last house of the three cables with most houses (ties to the lower number), the transformer's 400 kVA as the
    site's limit."""
    feeders: dict[int, list[str]] = {}
    for f, h in ((f, h) for f, n in enumerate((9, 9, 16, 12, 7, 4), start=1) for h in range(1, n + 1)):
        feeders.setdefault(f, []).append(f"loadbus_{f}_{h}")
    nodes = tuple((b, 6.0, f"feeder {f}") for f, bs in feeders.items() for b in bs)
    longest = sorted(feeders, key=lambda f: (-len(feeders[f]), f))[:3]
    return Layout("kerber_dorfnetz", nodes, tuple(b for bs in feeders.values() for b in bs[::2]), 1,
                  tuple(b for bs in feeders.values() for b in bs[2::3]), tuple(feeders[f][-1] for f in longest),
                  400.0, True)


VILLAGE_LAYOUT = _village_layout()
LAYOUTS = {WEEK: CIGRE_LAYOUT, MONTH: CIGRE_LAYOUT, VILLAGE: VILLAGE_LAYOUT}
"""Each district scenario's layout."""


def draw_of(params: Mapping[str, Any]) -> int:
    """The ``draw`` option: 1 when it is not set; 0 is a draw of its own."""
    draw = params.get("draw")
    return 1 if draw is None else int(draw)


def district_scenarios() -> list[Scenario]:
    """The district scenarios, from Monday 2 September 2019 at 15-min steps: CIGRE LV over one week and over a
    billing month of four weeks, and the Kerber village over one week."""
    what = ("CIGRE LV feeders (pandapower): 15 load points on real household profiles, 12 PV roofs, 4 batteries, 48 "
            "home chargers on real ACN sessions")
    village = (f"Kerber village feeder (pandapower): 57 houses on six cables, each a real household, "
               f"{len(VILLAGE_LAYOUT.pv_nodes)} PV roofs, {len(VILLAGE_LAYOUT.battery_nodes)} batteries, "
               f"{len(VILLAGE_LAYOUT.charger_nodes)} home chargers on real ACN sessions, 400 kVA; one week (held out: "
               "nothing tuned on it)")
    return [Scenario(WEEK, DOMAIN, f"{what}; one week", 0.0, DAYS * 86400.0),
            Scenario(MONTH, DOMAIN, f"{what}; four weeks, a billing month of the demand charge", 0.0,
                     MONTH_DAYS * 86400.0),
            Scenario(VILLAGE, DOMAIN, village, 0.0, DAYS * 86400.0)]


def read_loads(path: Any = LOADS_FILE) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The shipped household loads: steps × 25 households, kW every 15 min from Monday 2022-09-05."""
    with open(path) as f:
        rows = [[float(x) for x in line.split(",")] for line in f if line.strip() and not line.startswith("#")]
    return np.array(rows)


def pv_per_kwp(epoch: datetime, n: int, step_s: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """AC output per kWp of a south-facing 30° roof from pvlib (PVWatts) on the TMY3 file pvlib ships."""
    import importlib.resources

    import pandas as pd
    import pvlib

    path = importlib.resources.files("pvlib") / "data" / "723170TYA.CSV"
    data, meta = pvlib.iotools.read_tmy3(str(path), map_variables=True)
    # the district's wall clock read as the weather station's local standard time (solar noon near 12:00)
    wall = pd.DatetimeIndex([epoch.replace(tzinfo=None) + timedelta(seconds=k * step_s + step_s / 2)
                             for k in range(n)])
    times = wall.tz_localize(f"Etc/GMT{-int(meta['TZ']):+d}")
    # the TMY's typical year, hour-ending values, looked up by month, day and hour
    tmy = data.select_dtypes("number").copy()
    tmy.index = pd.DatetimeIndex([t.replace(year=2019) for t in tmy.index.tz_localize(None)])
    hourly = tmy.reindex(pd.date_range("2019-01-01", periods=8760, freq="h")).interpolate()
    frac = (wall - pd.Timestamp("2019-01-01")).total_seconds().to_numpy() / 3600.0 - 0.5
    idx = np.clip(frac, 0, 8758)
    lo = np.floor(idx).astype(int)
    w = idx - lo

    def col(name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
        v = hourly[name].to_numpy()
        return np.asarray(v[lo] * (1 - w) + v[lo + 1] * w, dtype=float)

    solpos = pvlib.solarposition.get_solarposition(times, meta["latitude"], meta["longitude"])
    poa = pvlib.irradiance.get_total_irradiance(30, 180, solpos["apparent_zenith"], solpos["azimuth"],
                                                col("dni"), col("ghi"), col("dhi"))
    cell = pvlib.temperature.faiman(poa["poa_global"], col("temp_air"), col("wind_speed"))
    dc = pvlib.pvsystem.pvwatts_dc(poa["poa_global"], cell, 1.0, -0.004)
    out: np.ndarray[Any, np.dtype[np.float64]] = np.clip(np.nan_to_num(np.asarray(dc, dtype=float)) * 0.96, 0.0, 1.0)
    return out


def build_district(scenario: Scenario, params: Mapping[str, Any], history_days: int = 0) -> Site:
    """The district's ground truth for ``params["draw"]``: the household profiles from day ``history_days`` on,
    the days before it as the meter history (the district scenario uses :data:`HISTORY_DAYS`; the feeders keep
    the profiles' first week and no history)."""
    from aicity.domains.energy.grid import GridModel
    from aicity.domains.energy.scenarios import TZ

    layout = LAYOUTS.get(scenario.name)
    if layout is None:
        raise UserError(f"unknown district scenario {scenario.name!r}")
    rng = np.random.default_rng(draw_of(params))
    epoch = datetime(2019, 9, 2, tzinfo=TZ)
    step_s = 900.0
    span = max(scenario.end_s, DAYS * 86400.0)  # the whole week's ground truth, whatever window is run
    n = math.ceil(span / step_s) + 1
    homes = read_loads()
    past = round(history_days * 86400 / step_s)
    if len(homes) < past + n:
        raise UserError(f"the shipped load profiles cover {len(homes) * step_s / 86400:g} days; the window and its "
                        f"history need {(past + n) * step_s / 86400:g}")
    nodes = layout.nodes
    if layout.houses:
        loads = _house_loads(homes, len(nodes), past + n, rng)
    else:
        loads = np.zeros((len(nodes), past + n))
        for i, (_, nominal, _) in enumerate(nodes):
            pick = rng.choice(homes.shape[1], size=5, replace=False)
            shape = homes[:, pick].mean(axis=1)
            loads[i] = shape[:past + n] / shape[:SCALE_STEPS].max() * nominal * LOAD_SCALE
    unit_pv = pv_per_kwp(epoch - timedelta(seconds=past * step_s), past + n, step_s)
    kwp = tuple(round(PV_SHARE * nom, 1) if name in layout.pv_nodes else 0.0 for name, nom, _ in nodes)
    pvs = np.array(kwp)[:, None] * unit_pv[None, :]
    base, pv, history = loads[:, past:], pvs[:, past:], loads[:, :past] - pvs[:, :past]
    index = {name: i for i, (name, _, _) in enumerate(nodes)}
    district = {name: d for name, _, d in nodes}
    limits = ChargerLimits(EV_KW, EV_MIN_KW, EV_STEP_KW, min(float(params.get("safe_rate_kw") or EV_MIN_KW),
                                                            EV_KW))
    # a charger group for equity: a bank of chargers at one load point (CIGRE), or, one charger a house, its feeder
    chargers = tuple(Charger(f"{short_name(node)}-{j}", limits, index[node],
                             district[node].replace("feeder ", "f") if layout.houses else short_name(node))
                     for node in layout.charger_nodes for j in range(layout.chargers_per_node))
    sessions, before = _sessions(chargers, epoch, span, rng, past * step_s)
    batteries = tuple(Battery(f"{short_name(node)}-battery", BatteryLimits(30.0, 60.0, 0.1, 0.95, 15.0, 0.95), 0.5,
                              index[node]) for node in layout.battery_nodes)
    tariff = Tariff.load()
    from aicity.domains.energy.grid import bus_names

    buses = bus_names(layout.network)
    grid = GridModel(tuple(buses.index(name) for name, _, _ in nodes), network=layout.network)
    return Site(scenario.name, epoch, step_s, n, chargers, sessions, tariff.prices(epoch, n, step_s),
                read_moer(epoch, n, step_s), float(params.get("transformer_kw") or layout.transformer_kw),
                tariff.demand_charge(epoch), tuple(name for name, _, _ in nodes), base, pv, batteries, grid,
                tuple(d for _, _, d in nodes), kwp, history,
                tuple((s.arrival_s, s.requested_kwh if params.get("user_input") == "typed" else s.capacity_kwh)
                      for s in before))


def _house_loads(homes: np.ndarray[Any, np.dtype[np.float64]], count: int, steps: int,
                 rng: np.random.Generator) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``count`` houses, each one shipped household's kW from a whole number of weeks into its profile (so the
    weekdays stay aligned): distinct pairs of household and week, drawn by ``rng``."""
    weeks = (len(homes) - steps) // WEEK_STEPS + 1
    pairs = rng.choice(homes.shape[1] * weeks, size=count, replace=False)
    return np.array([homes[w * WEEK_STEPS:w * WEEK_STEPS + steps, h] for w, h in
                     (divmod(int(p), homes.shape[1]) for p in pairs)])


def _sessions(chargers: tuple[Charger, ...], epoch: datetime, end_s: float, rng: np.random.Generator,
              before_s: float = 0.0) -> tuple[tuple[Session, ...], tuple[Session, ...]]:
    """Each charger replays one Caltech station's sessions of the window, moved to the evening (``SHIFT_S`` later:
    read from ``SHIFT_S`` before the window, their times count from there, so a 08:00 arrival is at 17:00); and the
    same stations' sessions of the ``before_s`` seconds before it (the chargers' records), moved alike."""
    month_end = datetime(2019, 9, calendar.monthrange(2019, 9)[1], tzinfo=epoch.tzinfo) + timedelta(days=1)
    real = read_sessions(epoch - timedelta(seconds=SHIFT_S), min(month_end, epoch + timedelta(seconds=end_s)))
    by: dict[str, list[Session]] = {}
    for s in real:
        by.setdefault(s.station, []).append(s)
    # a station replayed has 3 sessions in the first week, so the month's first week is the week scenario's
    week = DAYS * 86400.0 + SHIFT_S
    stations = sorted(k for k, v in by.items() if sum(s.arrival_s < week for s in v) >= 3)
    picks = rng.choice(len(stations), size=len(chargers), replace=len(stations) < len(chargers))
    moved = epoch - timedelta(seconds=SHIFT_S)  # the real time a window session's epoch second 0 stands for
    earlier: dict[str, list[Session]] = {}
    for s in read_sessions(moved - timedelta(seconds=before_s), moved) if before_s > 0 else []:
        earlier.setdefault(s.station, []).append(replace(s, arrival_s=s.arrival_s - before_s,
                                                         departure_s=s.departure_s - before_s))
    past = [replace(s, station=ch.cid) for ch, p in zip(chargers, picks, strict=True)
            for s in earlier.get(stations[int(p)], [])]
    out: list[Session] = []
    for ch, p in zip(chargers, picks, strict=True):
        for s in by[stations[int(p)]]:
            cap = min(s.capacity_kwh, ch.limits.max_kw * (s.departure_s - s.arrival_s) / 3600.0)
            out.append(replace(s, sid=f"{s.sid}-{ch.cid}", station=ch.cid,
                               capacity_kwh=cap,
                               requested_kwh=s.requested_kwh))
    return tuple(sorted(out, key=lambda s: s.arrival_s)), tuple(sorted(past, key=lambda s: s.arrival_s))

