"""The city coordinator: couples mobility, safety and energy on one city and reports the integrated KPIs.

It is a domain of its own (``city``) that plugs in like any other, but it owns no actuator: its twin
(:mod:`.coupler`) rides the other parts' twins and its result is the city's integrated outcome
(:mod:`.integrate`). Its city scenarios (:mod:`.scenarios`) compose the parts; the orchestration stage
(:mod:`aicity.orchestrate`) settles the conflicts between their proposals.
"""

from __future__ import annotations

from aicity.core.domain import CityScenario, ForecastProvider, Planner, RunServices, Scenario, Twin
from aicity.core.meta import check_domain_options, option_values
from aicity.domains.city.meta import DOMAIN, META


class CityDomain:
    """The ``city`` domain plug-in (see the module docstring)."""

    name = DOMAIN
    description = "couples mobility, safety and energy on one city; the integrated KPIs"
    meta = META

    def scenarios(self) -> list[Scenario]:
        """The coordinator's scenarios (each runs inside its city scenario)."""
        from aicity.domains.city.scenarios import builtin_scenarios

        return builtin_scenarios()

    def resolve(self, name_or_path: str) -> Scenario | None:
        """A built-in scenario by name, else None."""
        from aicity.domains.city.scenarios import resolve

        return resolve(name_or_path)

    def cities(self) -> list[CityScenario]:
        """The built-in cities."""
        from aicity.domains.city.scenarios import CITIES

        return list(CITIES)

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> Twin:
        """The coupler of ``scenario``: the same in every mode (it decides nothing)."""
        from aicity.domains.city.coupler import CityCoupler

        params = option_values(META.options, check_domain_options(self.name, META, scenario.params))
        return CityCoupler(scenario, seed=seed, params=params, shared=services.shared)

    def planners(self, scenario: Scenario, mode: str) -> list[Planner]:
        """None: the coordination is the orchestration stage's."""
        return []

    def forecasters(self, scenario: Scenario, mode: str) -> list[ForecastProvider]:
        """None."""
        return []


domain = CityDomain()
