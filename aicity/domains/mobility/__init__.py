"""The mobility domain: a SUMO traffic twin, Smart City (fixed-time) vs AI City signal control.

Registered as the ``mobility`` entry point of ``aicity.domains``; heavy imports (libsumo) happen at first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicity.core.domain import ForecastProvider, Planner, Scenario, Twin
from aicity.core.errors import UserError

SCENARIO_OPTIONS = frozenset({"ev_per_hour", "ev_speed_factor", "decision_interval_s", "sensor_faults", "probes"})
"""Scenario parameters :meth:`MobilityDomain.open_twin` reads (besides the edge limits)."""
_FLOW_AGE = 30.0  # s: a detector group not updated for longer is stale
PLAUSIBILITY: dict[str, Any] = {
    "rules": [
        {"entity_type": "TrafficFlowObserved", "attribute": "queue", "min": 0, "max": 200,
         "max_age_s": _FLOW_AGE, "nullable": False},
        {"entity_type": "TrafficFlowObserved", "attribute": "vehicleCount", "min": 0, "max": 500,
         "max_age_s": _FLOW_AGE, "nullable": False},
        {"entity_type": "TrafficFlowObserved", "attribute": "occupancy", "min": 0, "max": 1,  # 0..100 %
         "max_age_s": _FLOW_AGE, "nullable": False},
        {"entity_type": "TrafficFlowObserved", "attribute": "averageVehicleSpeed", "min": 0, "max": 70,
         "max_age_s": _FLOW_AGE},  # null when no vehicle is on the detector
        {"entity_type": "TrafficSignal", "attribute": "timeInPhase", "min": 0, "max_age_s": _FLOW_AGE,
         "nullable": False},
    ],
    "required": ["urn:ngsi-ld:TrafficSignal:*", "urn:ngsi-ld:TrafficFlowObserved:in:*"],
}
"""Input plausibility rules (format of :meth:`aicity.governance.plausibility.PlausibilityChecker.from_dict`)."""


class MobilityDomain:
    """The mobility plug-in: scenarios, the SUMO twin, and planners per mode."""

    name = "mobility"
    description = "Traffic signals on SUMO: fixed-time plans (Smart City) vs adaptive control (AI City)"
    plausibility = PLAUSIBILITY
    default_scenario = "cologne8"  # `aicity run` with no --scenario: a real network, 10 emergency vehicles/h
    _probes_on = False  # set by open_twin: the last twin opened has probe data

    def scenarios(self) -> list[Scenario]:
        """Built-in scenarios (grid3x3 and the RESCO maps of the sumo-rl wheel)."""
        from aicity.domains.mobility.scenarios import builtin_scenarios

        return builtin_scenarios()

    def resolve(self, name_or_path: str) -> Scenario | None:
        """A scenario by name or ``.sumocfg`` path, else None."""
        from aicity.domains.mobility.scenarios import resolve

        return resolve(name_or_path)

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, ev_per_hour: float | None = None,
                  sensor_faults: Mapping[str, Any] | None = None, probes: Any = None, consent: Any = None) -> Twin:
        """A SUMO twin of ``scenario`` in ``mode`` (``smart`` or ``ai``).

        ``scenario.params`` may set ``ev_per_hour``, ``ev_speed_factor``, ``decision_interval_s``, the edge limits
        (``yellow_s``, ``min_green_s``, ``max_green_s``, ``max_hold_s``, ``cooldown_s``) and
        ``sensor_faults`` (``{"freeze": [ids], "impossible": [ids], "after_s": s}``, see
        :mod:`aicity.domains.mobility.faults`) and ``probes`` (``True``, a fraction or ``{"fraction": f}``:
        connected-vehicle probe data, see :mod:`aicity.domains.mobility.probes`); keywords win over params.
        ``consent`` is the :class:`aicity.governance.consent.ConsentRegistry` probe consents go to (default: an
        in-memory one without ledger).
        """
        import dataclasses

        from aicity.domains.mobility.faults import SensorFaults
        from aicity.domains.mobility.twin import SumoTwin, TwinConfig

        cfg = TwinConfig()
        params = dict(scenario.params)
        if ev_per_hour is not None:
            params["ev_per_hour"] = ev_per_hour
        if sensor_faults is not None:
            params["sensor_faults"] = sensor_faults
        limit_names = self.check_params(params)
        cfg.sensor_faults = SensorFaults.parse(params.get("sensor_faults"))
        if probes is not None:
            params["probes"] = probes
        if params.get("probes") not in (None, False):
            from aicity.domains.mobility.probes import ProbeConfig

            cfg.probes = ProbeConfig.parse(params["probes"])
            cfg.consent = consent
        self._probes_on = cfg.probes is not None
        if "ev_per_hour" in params:
            cfg.ev_per_hour = float(params["ev_per_hour"])
        if "decision_interval_s" in params:
            cfg.decision_interval_s = float(params["decision_interval_s"])
        if "ev_speed_factor" in params:
            from aicity.domains.mobility.preemption_bench import check_ev_speed_factor

            cfg.ev_speed_factor = check_ev_speed_factor(params["ev_speed_factor"])
        limits = {k: float(v) for k, v in params.items() if k in limit_names}
        if limits:
            try:
                cfg.limits = dataclasses.replace(cfg.limits, **limits)
            except ValueError as exc:
                raise UserError(str(exc)) from exc
        return SumoTwin(scenario, seed=seed, mode=mode, config=cfg)

    @staticmethod
    def check_params(params: Mapping[str, Any]) -> set[str]:
        """Refuse unknown scenario options and non-numeric numbers (:class:`UserError`); returns the limit names."""
        import dataclasses

        from aicity.domains.mobility.edge import EdgeLimits
        from aicity.domains.mobility.probes import ProbeConfig

        limit_names = {f.name for f in dataclasses.fields(EdgeLimits)} - {"all_red_s"}
        unknown = sorted(set(params) - limit_names - SCENARIO_OPTIONS)
        if unknown:
            known = ", ".join(sorted(SCENARIO_OPTIONS | limit_names))
            raise UserError(f"unknown mobility scenario option(s) {', '.join(unknown)}; known: {known}")
        for key in ("ev_per_hour", "decision_interval_s", *sorted(limit_names)):
            val = params.get(key)
            if key in params and (isinstance(val, bool) or not isinstance(val, int | float) or val < 0
                                  or (key == "decision_interval_s" and val < 1)):
                raise UserError(f"mobility option {key} must be a non-negative number"
                                f"{' (at least 1 s)' if key == 'decision_interval_s' else ''}, got {val!r}")
        if "probes" in params:
            ProbeConfig.parse(params["probes"])
        if "ev_speed_factor" in params:
            from aicity.domains.mobility.preemption_bench import check_ev_speed_factor

            check_ev_speed_factor(params["ev_speed_factor"])
        return limit_names

    def planners(self, scenario: Scenario, mode: str) -> list[Planner]:
        """``smart``: none (fixed-time programs); ``ai``: the AI controller's planners."""
        return self.controller_parts(scenario, self._controller_for(mode))[0]

    def forecasters(self, scenario: Scenario, mode: str) -> list[ForecastProvider]:
        """Forecast providers of the mode's controller (none for ``smart``); probe features when probes are on."""
        found = self.controller_parts(scenario, self._controller_for(mode))[1]
        if mode == "ai" and self._probes_on:
            from aicity.domains.mobility.probes import ProbeFeatures

            if not any(isinstance(f, ProbeFeatures) for f in found):
                found.append(ProbeFeatures())
        return found

    def controller_parts(self, scenario: Scenario, name: str) -> tuple[list[Planner], list[ForecastProvider]]:
        """Planners and forecasters of a named controller (``fixed``, ``maxpressure``, ``ai``)."""
        from aicity.domains.mobility.controllers import controller

        factory, _ = controller(name)
        return factory(scenario)

    @staticmethod
    def _controller_for(mode: str) -> str:
        if mode == "smart":
            return "fixed"
        if mode == "ai":
            return "ai"
        raise UserError(f"unknown mode {mode!r}: use 'smart' or 'ai'")


domain = MobilityDomain()
