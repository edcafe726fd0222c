"""Named dispatch controllers: the planners and forecast providers each runs, and the twin mode it runs in.

``smart`` is Smart City mode (closest idle on free-flow times, return home); ``ai`` is AI City mode (dispatch on
live travel-time estimates, DMEXCLP relocation in its mean-response form fed by the incident forecast);
``ai_norelocation`` isolates what relocation adds. A static table: nothing registers at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicity.core.domain import ForecastProvider, Planner, Scenario
from aicity.core.errors import UserError

Parts = tuple[list[Planner], list[ForecastProvider]]
MODES: dict[str, str] = {"smart": "smart", "ai": "ai", "ai_norelocation": "ai"}
"""Controller → the twin mode it runs in."""
POOLING_CALLS = 20.0
"""AI City's relocation: pseudo-calls pulling the hour's zone shares towards the whole history's (a zone-hour cell
holds 28 hours of calls; at base load one call there in a month would otherwise draw every unit to it)."""


def parts(scenario: Scenario, name: str, params: Mapping[str, Any]) -> Parts:
    """Planners and forecast providers of controller ``name`` on ``scenario`` with validated ``params``."""
    from aicity.domains.mobility.scenarios import read_sumocfg
    from aicity.domains.safety.forecast import IncidentForecast
    from aicity.domains.safety.layout import ems_map
    from aicity.domains.safety.mexclp import coverage_matrix
    from aicity.domains.safety.planners import RelocationParams, make_dispatch_planner, make_relocation_planner
    from aicity.domains.safety.planning import historical_demand, site_times

    if name not in MODES:
        raise UserError(f"unknown safety controller {name!r}; known: {', '.join(MODES)}")
    cfg = read_sumocfg(str(scenario.path))
    smap = ems_map(str(scenario.path), cfg.net, int(params["zones_per_side"]), int(params["hospitals"]))
    if name == "smart":
        return [make_dispatch_planner(smap, live=False)], []
    planners: list[Planner] = [make_dispatch_planner(smap, live=True)]
    providers: list[ForecastProvider] = []
    if name == "ai":
        radius = float(params["coverage_radius_s"])
        times = site_times(smap)
        covers = coverage_matrix(times, list(smap.sites.values()), smap.sites, radius)
        prior = historical_demand(smap, float(params["load_multiplier"]))
        reloc = RelocationParams(radius_s=radius, objective="response", idle_moves=True,
                                 max_moves_per_unit_hour=int(params["max_relocations_per_unit_hour"]),
                                 max_moves_per_hour=int(params["max_relocations_per_hour"]),
                                 pooling_calls=POOLING_CALLS, coverage_floor=float(params["coverage_floor"]))
        planners.append(make_relocation_planner(smap, covers, prior, reloc, times))
        providers.append(IncidentForecast(smap, begin_s=scenario.begin_s,
                                          load_multiplier=float(params["load_multiplier"])))
    return planners, providers
