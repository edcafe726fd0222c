"""The mobility domain: a SUMO traffic twin, Smart City (fixed-time) vs AI City signal control.

Registered as the ``mobility`` entry point of ``aicity.domains``; heavy imports (libsumo) happen at first use.
What it declares (KPIs, options, equity groups, policy, plausibility rules) is in :mod:`.meta`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from aicity.core.capabilities import DistrictScenario
from aicity.core.domain import DomainResult, ForecastProvider, ModeControllers, Planner, RunServices, Scenario, Twin
from aicity.core.meta import check_domain_options, parse_epoch
from aicity.domains.mobility.meta import META, PLAUSIBILITY, edge_limits

__all__ = ["PLAUSIBILITY", "MobilityDomain", "domain"]


class MobilityDomain(ModeControllers):
    """The mobility plug-in: scenarios, the SUMO twin, and planners per mode."""

    name = "mobility"
    description = "Traffic signals on SUMO: fixed-time plans (Smart City) vs adaptive control (AI City)"
    meta = META
    mode_controllers = MappingProxyType({"smart": "fixed", "ai": "ai"})

    def scenarios(self) -> list[Scenario]:
        """Built-in scenarios (grid3x3 and the maps of the sumo-rl wheel)."""
        from aicity.domains.mobility.scenarios import builtin_scenarios

        return builtin_scenarios()

    def resolve(self, name_or_path: str) -> Scenario | None:
        """A scenario by name or ``.sumocfg`` path, else None."""
        from aicity.domains.mobility.scenarios import resolve

        return resolve(name_or_path)

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> Twin:
        """A SUMO twin of ``scenario`` in ``mode`` (``smart`` or ``ai``), its options from ``scenario.params``.

        Probe consents go to ``services.consent`` (a :class:`aicity.governance.consent.ConsentRegistry`).
        """
        from aicity.domains.mobility.districts import on_this_machine
        from aicity.domains.mobility.twin import SumoTwin

        scenario = on_this_machine(scenario)  # a district's worker on another machine generates its files there
        cfg = twin_config(scenario.params, services.consent)
        cfg.shared = services.shared
        return SumoTwin(scenario, seed=seed, mode=mode, config=cfg)

    def controllers(self) -> Mapping[str, str]:
        """Named controllers and the twin mode each runs in (benchmarks compare them through the one loop)."""
        from aicity.domains.mobility.controllers import MODES

        return MODES

    def controller_parts(self, scenario: Scenario, name: str) -> tuple[list[Planner], list[ForecastProvider]]:
        """Planners and forecasters of a named controller (``fixed``, ``maxpressure``, ``ai``, ``ai_nopreempt``)."""
        from aicity.domains.mobility.controllers import controller

        return controller(name)(scenario)

    def partition(self, scenario: Scenario, districts: int) -> list[DistrictScenario]:
        """A ``gridcity-<K>`` as ``districts`` districts ``d1``..``dD`` west to east (D divides K; see
        :mod:`.districts`); any other scenario is refused with a :class:`UserError`."""
        from aicity.domains.mobility.districts import partition

        return partition(scenario, districts)

    def merge_results(self, results: Mapping[str, DomainResult]) -> DomainResult:
        """The whole city's result from its districts' (see :func:`.merge.merge_results`)."""
        from aicity.domains.mobility.merge import merge_results

        return merge_results(results)

    def scaling_scenario(self, districts: int) -> str:
        """The generated grid city of ``districts`` equal 3x3-signal districts (scaling benchmarks)."""
        return f"gridcity-{districts}"


def twin_config(params: Mapping[str, Any], consent: object | None = None) -> Any:
    """The :class:`~aicity.domains.mobility.twin.TwinConfig` for validated scenario options."""
    from aicity.domains.mobility.faults import SensorFaults
    from aicity.domains.mobility.probes import ProbeConfig
    from aicity.domains.mobility.twin import TwinConfig

    p = check_domain_options("mobility", META, params)
    cfg = TwinConfig()
    cfg.sensor_faults = SensorFaults.parse(p.get("sensor_faults"))
    cfg.probes = ProbeConfig.parse(p.get("probes"))
    cfg.consent = consent if cfg.probes is not None else None
    if "ev_per_hour" in p:
        cfg.ev_per_hour = float(p["ev_per_hour"])
    if "decision_interval_s" in p:
        cfg.decision_interval_s = float(p["decision_interval_s"])
    if "ev_speed_factor" in p:
        cfg.ev_speed_factor = float(p["ev_speed_factor"])
    if "epoch" in p:
        cfg.epoch = parse_epoch(p["epoch"])
    if "signal_backup_s" in p:
        cfg.signal_backup_s = float(p["signal_backup_s"])
    if p.get("borders"):
        cfg.borders = p["borders"]
    cfg.limits = edge_limits(p)  # already checked to fit together by META.validate
    return cfg


domain = MobilityDomain()
