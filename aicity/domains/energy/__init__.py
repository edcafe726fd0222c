"""The energy domain: EV charging, batteries and PV behind a transformer or on a pandapower feeder; Smart City
(full power on plug-in, self-consumption batteries) vs AI City (online forecasts + MPC), scored against a
perfect-foresight oracle.

Registered as the ``energy`` entry point of ``aicity.domains``; heavy imports (scipy, pandapower, pvlib) happen
at first use. What it declares is in :mod:`.meta`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aicity.core.capabilities import DistrictScenario
from aicity.core.domain import (
    DomainResult,
    ForecastProvider,
    ModeControllers,
    Planner,
    RunServices,
    Scenario,
    Twin,
)
from aicity.core.errors import UserError
from aicity.core.meta import check_domain_options, option_values
from aicity.domains.energy.meta import META

__all__ = ["EnergyDomain", "domain"]


class EnergyDomain(ModeControllers):
    """The energy plug-in: scenarios, the twin, and planners per mode or named controller."""

    name = "energy"
    description = "EV charging, batteries and PV: full power on plug-in (Smart City) vs forecast-driven MPC (AI City)"
    meta = META

    def plots(self, out: Path, results: Mapping[str, DomainResult], prefix: str) -> list[str]:
        """The report's load with each mode's peak and the voltage band (the kernel draws the other series)."""
        from aicity.domains.energy.plots import report_plots

        return report_plots(out, results, prefix)

    def scenarios(self) -> list[Scenario]:
        """Built-in scenarios (ACN Caltech months and day, the district feeders)."""
        from aicity.domains.energy.scenarios import builtin_scenarios

        return builtin_scenarios()

    def resolve(self, name_or_path: str) -> Scenario | None:
        """A built-in scenario by name, else None."""
        from aicity.domains.energy.scenarios import resolve

        return resolve(name_or_path)

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> Twin:
        """An energy twin of ``scenario`` in ``mode`` (its options from ``scenario.params``)."""
        from aicity.domains.energy.faults import MeterFaults
        from aicity.domains.energy.feeders import layout_of
        from aicity.domains.energy.scenarios import build_site
        from aicity.domains.energy.twin import EnergyTwin, TwinConfig

        if mode not in ("smart", "ai"):
            raise UserError(f"unknown mode {mode!r}: use 'smart' or 'ai'")
        city = city_options(scenario)
        p = option_values(META.options, check_domain_options(self.name, META, scenario.params))
        if layout_of(scenario.name) is not None:
            from aicity.domains.energy.feeders import open_twin

            return open_twin(scenario, mode, seed, p, TwinConfig(
                float(p["decision_interval_s"] or 900.0), str(p["user_input"]), float(p["safe_rate_kw"]),
                MeterFaults.parse(p["sensor_faults"]), False))
        site = build_site(scenario, p)
        dt = float(p["decision_interval_s"] or site.step_s)
        if abs(dt / site.step_s - round(dt / site.step_s)) > 1e-9:
            raise UserError(f"option decision_interval_s must be a multiple of {site.step_s:g} s on "
                            f"{scenario.name}, got {dt:g}")
        cfg = TwinConfig(dt, str(p["user_input"]), min(float(p["safe_rate_kw"]), min(
            (c.limits.max_kw for c in site.chargers), default=0.0)), MeterFaults.parse(p["sensor_faults"]),
            bool(p["oracle"]) and not city)
        if city:
            from aicity.domains.energy.city_twin import CityEnergyTwin, CityEvents

            events = CityEvents(str(p["outage_feeder"]), float(p["outage_at_s"]), float(p["outage_duration_s"]),
                                None if p["tie_kw"] is None else float(p["tie_kw"]), float(p["crew_delay_s"]),
                                float(p["driven_share"]))
            return CityEnergyTwin(site, scenario, mode, seed, cfg, events, services.shared)
        return EnergyTwin(site, scenario, mode, seed, cfg)

    def controllers(self) -> Mapping[str, str]:
        """Named controllers and the twin mode each runs in."""
        from aicity.domains.energy.controllers import MODES

        return MODES

    def controller_parts(self, scenario: Scenario, name: str) -> tuple[list[Planner], list[ForecastProvider]]:
        """Planners and forecasters of a named controller (``smart``, ``ai``, ``ai_noforecast``, ``oracle``)."""
        from aicity.domains.energy.controllers import controller_parts

        return controller_parts(scenario, name)

    def partition(self, scenario: Scenario, districts: int) -> list[DistrictScenario]:
        """A ``feeders-<K>`` as ``districts`` districts ``d1``..``dD`` (D divides K; ``d1`` owns the shared
        substation; see :mod:`.energy_districts`); any other scenario is refused with a :class:`UserError`."""
        from aicity.domains.energy.energy_districts import partition

        return partition(scenario, districts)

    def merge_results(self, results: Mapping[str, DomainResult]) -> DomainResult:
        """The whole feeders city's result from its districts' (see :func:`.energy_districts.merge_results`)."""
        from aicity.domains.energy.energy_districts import merge_results

        return merge_results(results)

    def scaling_scenario(self, districts: int) -> str:
        """The city of ``districts`` equal LV districts behind one shared substation (scaling benchmarks)."""
        return f"feeders-{districts}"


def city_options(scenario: Scenario) -> bool:
    """True on the city scenario; elsewhere a city-only option (outages, ties, surges) is a :class:`UserError`."""
    from aicity.domains.energy.city_site import NAME
    from aicity.domains.energy.meta import CITY_OPTIONS

    if scenario.name == NAME:
        return True
    given = sorted(o.name for o in CITY_OPTIONS if o.name in scenario.params)
    if given:
        raise UserError(f"energy option(s) {', '.join(given)} apply only to the {NAME} scenario, not {scenario.name}")
    return False


domain = EnergyDomain()
