"""Incidents: a non-homogeneous Poisson process with the real hourly shape of NYC EMS calls, over the map's zones.

Sources (stated, see ``NOTICE`` and ``README`` of this folder):

* hourly shape and share of life-threatening calls per hour: NYC EMS dispatch profiles in the emergenSEE 0.9.7
  sdist (MIT), derived once by ``data/extract_emergensee.py`` into ``data/nyc_ems_hourly.csv``;
* spatial heterogeneity: each zone's weight is a seeded draw from the 177 NYC ZIP codes' shares of all calls
  (``data/nyc_ems_zip_share.csv``, spatial Gini 0.40), so the spread matches the real one;
* base rate: Cologne's density, ~206,000 EMS alarms in 2023 on 405 km² ≈ 509 per km² per year, over the map's
  extent, times the explicit ``load_multiplier``;
* service times (assumptions, scaled by ``service_scale``): on scene lognormal, median 15 min (EMS interval
  studies report 10–20 min); 70 % transported to the nearest hospital; hospital handover lognormal, median
  15 min (NHS England's 15-minute handover standard).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from aicity.domains.safety.geo import MIN_EDGE_M, SafetyMap

DATA = Path(__file__).resolve().parent / "data"
ALARMS_PER_KM2_YEAR = 509.0
ON_SCENE_MEDIAN_S = 900.0
HANDOVER_MEDIAN_S = 900.0
TRANSPORT_SHARE = 0.7


@dataclass(frozen=True, slots=True)
class Incident:
    """One emergency call: when (seconds after the window's begin), where, how urgent, and its service times."""

    id: str
    call_s: float
    edge: str
    zone: str
    priority: int
    on_scene_s: float
    transport: bool
    handover_s: float


@dataclass(frozen=True, slots=True)
class Profile:
    """The hourly shape: share of all calls and of life-threatening calls per hour, and the ZIP shares."""

    share_all: tuple[float, ...]
    p1_fraction: tuple[float, ...]
    zip_shares: tuple[float, ...]


@lru_cache(maxsize=1)
def profile() -> Profile:
    """The shipped NYC EMS profile (read once: the files never change)."""
    with (DATA / "nyc_ems_hourly.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    with (DATA / "nyc_ems_zip_share.csv").open() as fh:
        zips = [float(r["share_all"]) for r in csv.DictReader(fh)]
    return Profile(tuple(float(r["share_all"]) for r in rows), tuple(float(r["p1_fraction"]) for r in rows),
                   tuple(zips))


CITY_SEED = 2024
"""Seed of the city's spatial density and its call history: a property of the city, the same every day (seed)."""


def zone_density(smap: SafetyMap, city_seed: int = CITY_SEED) -> dict[str, float]:
    """Each zone's share of incidents: seeded draws of real ZIP-code shares, normalised (fixed per city)."""
    rng = np.random.default_rng([city_seed, 7001])
    shares = np.array(profile().zip_shares)
    zones = sorted(smap.zones)
    picked = rng.choice(shares, size=len(zones), replace=len(zones) > len(shares))
    total = float(picked.sum())
    return {z: float(v) / total for z, v in zip(zones, picked, strict=True)}


def mean_rate_per_h(smap: SafetyMap, load_multiplier: float) -> float:
    """Mean incidents per hour over a day at Cologne's density times ``load_multiplier``."""
    return ALARMS_PER_KM2_YEAR * smap.area_km2 / 8760.0 * load_multiplier


def rate_per_h(smap: SafetyMap, load_multiplier: float, time_of_day_s: float) -> float:
    """Incidents per hour at a time of day (the hourly shape times the mean rate)."""
    hour = int(time_of_day_s // 3600) % 24
    return mean_rate_per_h(smap, load_multiplier) * 24.0 * profile().share_all[hour]


def _place(smap: SafetyMap, density: dict[str, float], rng: np.random.Generator) -> tuple[str, str]:
    zones = sorted(density)
    zone = zones[int(rng.choice(len(zones), p=np.array([density[z] for z in zones])))]
    pool = [e for e in smap.zones[zone] if smap.length[e] >= MIN_EDGE_M]
    w = np.array([smap.length[e] for e in pool])
    return pool[int(rng.choice(len(pool), p=w / w.sum()))], zone


def service_times(rng: np.random.Generator, scale: float) -> tuple[float, bool, float]:
    """On-scene seconds, whether the patient is transported, handover seconds (seeded draws, scaled)."""
    on_scene = float(ON_SCENE_MEDIAN_S * np.exp(0.4 * rng.standard_normal())) * scale
    transport = bool(rng.random() < TRANSPORT_SHARE)
    handover = float(HANDOVER_MEDIAN_S * np.exp(0.5 * rng.standard_normal())) * scale
    return on_scene, transport, handover


def generate(smap: SafetyMap, *, begin_s: float, duration_s: float, seed: int, load_multiplier: float,
             service_scale: float = 1.0, drill_calls: int = 0, call_processing_s: float = 60.0) -> list[Incident]:
    """The window's incidents (by thinning), sorted by call time; the same for every controller of one seed.

    ``drill_calls`` adds exercise calls made during the minute before the window (reported in its first seconds).
    """
    rng = np.random.default_rng([seed, 7002])
    density = zone_density(smap)
    prof = profile()
    peak = mean_rate_per_h(smap, load_multiplier) * 24.0 * max(prof.share_all) / 3600.0
    out: list[Incident] = []
    for k in range(drill_calls):
        edge, zone = _place(smap, density, rng)
        on, tr, ho = service_times(rng, service_scale)
        out.append(Incident(f"D{k + 1}", -call_processing_s + 2.0 * k, edge, zone, 1 + k % 2, on, tr, ho))
    t = 0.0
    while peak > 0:
        t += float(rng.exponential(1.0 / peak))
        if t >= duration_s:
            break
        lam = rate_per_h(smap, load_multiplier, begin_s + t) / 3600.0
        if rng.random() * peak > lam:
            continue
        edge, zone = _place(smap, density, rng)
        hour = int((begin_s + t) // 3600) % 24
        prio = 1 if rng.random() < prof.p1_fraction[hour] else 2
        on, tr, ho = service_times(rng, service_scale)
        out.append(Incident(f"I{len(out) + 1}", round(t, 1), edge, zone, prio, on, tr, ho))
    return sorted(out, key=lambda i: (i.call_s, i.id))


def history_counts(smap: SafetyMap, *, load_multiplier: float, days: int = 28) -> np.ndarray[Any, Any]:
    """The city's call log of the ``days`` before any run: counts per (day·24 + hour, zone in sorted order).

    It is what an EMS agency's records hold: the same process, another random stream (never a run's incidents).
    """
    rng = np.random.default_rng([CITY_SEED, 7003])
    density = zone_density(smap)
    zones = sorted(density)
    rates = np.array([[rate_per_h(smap, load_multiplier, h * 3600.0) * density[z] for z in zones]
                      for h in range(24)])
    return rng.poisson(np.tile(rates, (days, 1))).astype(float)
