"""Safety scenarios: the EMS layer (stations, hospitals, ambulances, incidents) on a mobility map's window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aicity.core.domain import CityScenario, Scenario
from aicity.domains.safety.const import DOMAIN


@dataclass(frozen=True, slots=True)
class Layout:
    """A built-in scenario: the map it runs on and its default options."""

    map: str
    description: str
    params: dict[str, Any]


TARGET_PER_MEDIAN = (90.0 / 63.0, 120.0 / 63.0)
"""Network-scaled travel targets (priority 1, 2) per second of the map's median free-flow edge-to-edge time:
cologne8's 63 s gives the 90 s / 120 s the options default to, ingolstadt21's 115 s gives 165 s / 220 s (rounded
to 5 s). The coverage radius that places Smart City's stations stays 90 s on every map: at ingolstadt21's 165 s one
station covers nearly every zone and MEXCLP stacks all three ambulances there."""


def network_targets(median_s: float) -> tuple[float, float]:
    """Priority-1 and priority-2 travel targets for a map whose median free-flow edge-to-edge time is
    ``median_s`` (rounded to 5 s)."""
    p1, p2 = TARGET_PER_MEDIAN
    return 5.0 * round(p1 * median_s / 5.0), 5.0 * round(p2 * median_s / 5.0)


LAYOUTS: dict[str, Layout] = {
    "ingolstadt21-ems": Layout("ingolstadt21", "EMS on InTAS ingolstadt21 (16:00-17:00, real congestion): "
                               "3 ambulances, 2 hospitals, 16 zones",
                               {"ambulances": 3, "zones_per_side": 4, "hospitals": 2, "target_p1_s": 165.0,
                                "target_p2_s": 220.0}),
    "cologne8-ems": Layout("cologne8", "EMS on TAPASCologne cologne8 (07:00-08:00): 2 ambulances, 1 hospital, "
                           "9 zones", {"ambulances": 2, "zones_per_side": 3, "hospitals": 1}),
    "grid4x4-ems": Layout("grid4x4", "EMS on RESCO grid4x4 (synthetic 4x4 grid, 16 signals; held out: nothing tuned "
                          "on it): 2 ambulances, 1 hospital, 9 zones",
                          {"ambulances": 2, "zones_per_side": 3, "hospitals": 1, "target_p1_s": 110.0,
                           "target_p2_s": 150.0}),
    "cologne8-ems-drill": Layout("cologne8", "cologne8-ems with 3 exercise calls waiting at the start",
                                 {"ambulances": 2, "zones_per_side": 3, "hospitals": 1, "drill_calls": 3}),
}

CITIES = (
    CityScenario("cologne8-ems-city", "traffic signals and EMS on one SUMO: cologne8, ambulances get preemption",
                 ("mobility/cologne8", "safety/cologne8-ems"), {"mobility": {"ev_per_hour": 0}}),
    CityScenario("ingolstadt21-ems-city", "traffic signals and EMS on one SUMO: ingolstadt21, ambulances get "
                 "preemption", ("mobility/ingolstadt21", "safety/ingolstadt21-ems"), {"mobility": {"ev_per_hour": 0}}),
    CityScenario("grid4x4-ems-city", "traffic signals and EMS on one SUMO: RESCO grid4x4 (held out), ambulances get "
                 "preemption", ("mobility/grid4x4", "safety/grid4x4-ems"), {"mobility": {"ev_per_hour": 0}}),
)


def _scenario(name: str) -> Scenario | None:
    from aicity.domains.mobility.scenarios import resolve as map_scenario

    lay = LAYOUTS[name]
    base = map_scenario(lay.map)
    if base is None:
        return None
    return Scenario(name=name, domain=DOMAIN, description=lay.description, begin_s=base.begin_s, end_s=base.end_s,
                    path=base.path, params=dict(lay.params))


def builtin_scenarios() -> list[Scenario]:
    """Every built-in safety scenario whose map is installed."""
    return [s for s in (_scenario(n) for n in LAYOUTS) if s is not None]


def resolve(name: str) -> Scenario | None:
    """A built-in scenario by name (``safety/`` prefix allowed), else None."""
    key = name.strip().removeprefix(f"{DOMAIN}/")
    if key not in LAYOUTS:
        from aicity.domains.safety.layout import grid_scenario

        return grid_scenario(key)
    return _scenario(key)
