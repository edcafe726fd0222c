"""The built-in city: cologne8's roads, signals, ambulances and the CIGRE LV grid under them, coupled both ways.

Events (``EVENTS``) are option sets over the parts: a feeder outage at the morning peak, a multi-vehicle
incident on an arterial, an EV arrival surge. cologne8's traffic covers 07:00–08:00 (TAPAS Cologne), so the
city's peak is the morning peak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicity.core.domain import CityScenario, Scenario
from aicity.domains.city.meta import DOMAIN

BEGIN_S, END_S = 25200.0, 28800.0
"""07:00–08:00, in seconds after midnight (SUMO time of cologne8 and the grid's clock)."""

OUTAGE: dict[str, dict[str, Any]] = {"energy": {"outage_feeder": "C", "outage_at_s": 600.0,
                                                "outage_duration_s": 2400.0}}
INCIDENT: dict[str, dict[str, Any]] = {"safety": {"incident_at_s": 900.0, "incident_duration_s": 1200.0,
                                                  "incident_patients": 3}}
SURGE: dict[str, dict[str, Any]] = {"energy": {"surge_at_s": 900.0, "surge_evs": 20}}

EVENTS: Mapping[str, Mapping[str, Mapping[str, Any]]] = {
    "outage": OUTAGE, "incident": INCIDENT, "surge": SURGE}
"""Scripted events by name: options per domain (seconds after the window's begin)."""

PARTS = ("mobility/cologne8", "safety/cologne8-ems", "energy/cologne8-grid", "city/cologne8-coupling")
EPOCH = "2019-09-03T00:00:00-07:00"
"""Local midnight of the grid's day (Tue 3 Sep 2019, Pacific time: its tariff and sessions); every part's clock."""
BASE: dict[str, dict[str, Any]] = {"mobility": {"ev_per_hour": 0, "epoch": EPOCH},
                                   "safety": {"load_multiplier": 60.0, "service_scale": 0.25, "epoch": EPOCH}}


def _merge(*sets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for s in sets:
        for dom, opts in s.items():
            out.setdefault(dom, {}).update(opts)
    return out


CITIES = (
    CityScenario("cologne8-city", "cologne8 as one city: signals (mobility), ambulances (safety) and the CIGRE LV "
                 "grid (energy) on the same districts; a feeder outage at 07:10 and a multi-vehicle incident at "
                 "07:15", PARTS, _merge(BASE, OUTAGE, INCIDENT)),
    CityScenario("cologne8-city-calm", "cologne8-city with no scripted event (the couplings still act: EVs "
                 "drive to their chargers)", PARTS, _merge(BASE)),
)


def event_options(event: str) -> dict[str, Any]:
    """The ``domain.key`` options of a scripted event (``none``: no event)."""
    if event == "none":
        return {}
    return {f"{d}.{k}": v for d, opts in EVENTS[event].items() for k, v in opts.items()}


def builtin_scenarios() -> list[Scenario]:
    """The coordinator's scenario on each built-in city (it only runs inside its city)."""
    from aicity.domains.mobility.scenarios import resolve as map_scenario

    base = map_scenario("cologne8")
    if base is None:
        return []
    return [Scenario("cologne8-coupling", DOMAIN, "couplings of cologne8-city: EV trips to chargers, grid supply "
                     "of signals, critical loads; the integrated KPIs", BEGIN_S, END_S, path=base.path)]


def resolve(name: str) -> Scenario | None:
    """A built-in scenario by name (``city/`` prefix allowed)."""
    key = name.removeprefix(f"{DOMAIN}/")
    return next((s for s in builtin_scenarios() if s.name == key), None)
