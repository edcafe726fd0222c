"""The public-safety domain: incidents, ambulance dispatch and relocation on the traffic twin.

Registered as the ``safety`` entry point of ``aicity.domains``; heavy imports (SUMO, scipy) happen at first use.
Smart City mode: MEXCLP stations, closest-idle dispatch on free-flow times, return home. AI City mode: dispatch
on live travel-time estimates, DMEXCLP relocation fed by an online incident forecast, and — in a city with the
mobility domain — signal preemption for the ambulances en route. What it declares is in :mod:`.meta`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.capabilities import DistrictScenario
from aicity.core.domain import (
    CityScenario,
    DomainResult,
    ForecastProvider,
    ModeControllers,
    Planner,
    RunServices,
    Scenario,
    Twin,
)
from aicity.core.meta import check_domain_options, option_values, parse_epoch
from aicity.domains.safety.meta import META

__all__ = ["SafetyDomain", "domain"]


def options_of(scenario: Scenario) -> dict[str, Any]:
    """Every option's validated value for ``scenario`` (its params over the declared defaults)."""
    return option_values(META.options, check_domain_options("safety", META, scenario.params))


def twin_config(params: Mapping[str, Any], shared: dict[str, object] | None = None) -> Any:
    """The :class:`~aicity.domains.safety.twin.TwinConfig` for validated option values."""
    from aicity.domains.safety.edge import EdgeLimits
    from aicity.domains.safety.roadblock import RoadIncidentSpec
    from aicity.domains.safety.twin import TwinConfig

    p = params
    return TwinConfig(
        decision_interval_s=float(p["decision_interval_s"]), ambulances=int(p["ambulances"]),
        zones_per_side=int(p["zones_per_side"]), hospitals=int(p["hospitals"]),
        load_multiplier=float(p["load_multiplier"]), service_scale=float(p["service_scale"]),
        call_processing_s=float(p["call_processing_s"]), bluelight=bool(p["bluelight"]),
        stuck_bypass_s=float(p["stuck_bypass_s"]),
        drill_calls=int(p["drill_calls"]), bad_inputs=bool(p["bad_inputs"]),
        coverage_radius_s=float(p["coverage_radius_s"]), target_p1_s=float(p["target_p1_s"]),
        target_p2_s=float(p["target_p2_s"]), epoch=parse_epoch(p["epoch"]),
        record_travel_times=bool(p["record_travel_times"]),
        limits=EdgeLimits(int(p["max_relocations_per_hour"]), int(p["max_relocations_per_unit_hour"]),
                          float(p["coverage_floor"])),
        road_incident=RoadIncidentSpec(float(p["incident_at_s"]), str(p["incident_edge"]), int(p["incident_lanes"]),
                                       float(p["incident_duration_s"]), int(p["incident_patients"])),
        shared=shared)


class SafetyDomain(ModeControllers):
    """The safety plug-in: scenarios, the EMS twin on SUMO, planners per mode, city scenarios with mobility."""

    name = "safety"
    description = "EMS dispatch on SUMO: closest-idle from MEXCLP stations (Smart City) vs live dispatch with " \
                  "DMEXCLP relocation and signal preemption (AI City)"
    meta = META

    def plots(self, out: Path, results: Mapping[str, DomainResult], prefix: str) -> list[str]:
        """The report's call-to-arrival distribution per mode and the ambulances' positions over time (the kernel
        draws the series, the zones' bars and their p90 map)."""
        from aicity.domains.safety.plots import report_plots

        return report_plots(out, results, prefix)

    def scenarios(self) -> list[Scenario]:
        """Built-in scenarios (on the sumo-rl wheel's ingolstadt21 and cologne8)."""
        from aicity.domains.safety.scenarios import builtin_scenarios

        return builtin_scenarios()

    def resolve(self, name_or_path: str) -> Scenario | None:
        """A built-in scenario by name, else None."""
        from aicity.domains.safety.scenarios import resolve

        return resolve(name_or_path)

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> Twin:
        """The EMS twin of ``scenario``; it rides on the city's SUMO when one is shared."""
        from aicity.domains.safety.layout import grid_place, on_this_machine
        from aicity.domains.safety.twin import SafetyTwin

        scenario = on_this_machine(scenario)  # a district's worker on another machine generates its files there
        config = twin_config(options_of(scenario), services.shared)
        place = grid_place(scenario.path)
        if place is not None:  # a generated grid city, whole or one district: laid out block by block
            from aicity.domains.safety.border import GridSafetyTwin

            return GridSafetyTwin(scenario, seed=seed, mode=mode, config=config, place=place)
        return SafetyTwin(scenario, seed=seed, mode=mode, config=config)

    def controllers(self) -> Mapping[str, str]:
        """Named controllers and the twin mode each runs in."""
        from aicity.domains.safety.controllers import MODES

        return MODES

    def controller_parts(self, scenario: Scenario, name: str) -> tuple[list[Planner], list[ForecastProvider]]:
        """Planners and forecast providers of a named controller (``smart``, ``ai``, ``ai_norelocation``)."""
        from aicity.domains.safety.controllers import parts
        from aicity.domains.safety.layout import grid_place, on_this_machine

        scenario = on_this_machine(scenario)
        planners, providers = parts(scenario, name, options_of(scenario))
        place = grid_place(scenario.path)
        if place is not None and place.district is not None:  # a district asks its neighbours for help
            from aicity.domains.safety.districts import district_planner

            planners[0] = district_planner(scenario, place, name, options_of(scenario))
        return planners, providers

    def partition(self, scenario: Scenario, districts: int) -> list[DistrictScenario]:
        """A ``gridcity-<K>-ems`` as districts ``d1``..``dD`` (see :mod:`.districts`); anything else is refused."""
        from aicity.domains.safety.districts import partition

        return partition(scenario, districts)

    def merge_results(self, results: Mapping[str, DomainResult]) -> DomainResult:
        """The whole city's result from its districts' (see :func:`.districts.merge_results`)."""
        from aicity.domains.safety.districts import merge_results

        return merge_results(results)

    def scaling_scenario(self, districts: int) -> str:
        """The EMS on the generated grid city of ``districts`` blocks (scaling benchmarks)."""
        return f"gridcity-{districts}-ems"

    def cities(self) -> list[CityScenario]:
        """Mobility and safety on one SUMO (ambulances get the mobility domain's preemption in AI City mode)."""
        from aicity.domains.safety.scenarios import CITIES

        return list(CITIES)


domain = SafetyDomain()
