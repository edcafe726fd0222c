"""A toy street-lighting domain (not traffic), used to prove that a domain plugs in from its own folder only.

Lamps in four districts report their dimming level; Smart City mode keeps them at full power, AI City mode dims
them by the traffic the city's detectors report (whatever domain publishes ``TrafficFlowObserved``), never below
a safety floor the actuator edge enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.domain import (
    CityScenario,
    DomainResult,
    ForecastProvider,
    Outcome,
    Planner,
    ProposedAction,
    RunServices,
    Scenario,
    Snapshot,
)
from aicity.core.entity import Entity, Property, urn
from aicity.core.meta import KPI, Better, DomainMeta, EquityGroup, Option, check_options

LAMP = "Streetlight"
DISTRICTS = ("north", "east", "south", "west")
FLOOR = 30.0
META = DomainMeta(
    kpis=(KPI("energy_kwh", "kWh", Better.LOWER, True, "energy drawn by all lamps"),
          KPI("mean_level_pct", "%", Better.HIGHER, True, "mean dimming level"),
          KPI("min_level_pct", "%", Better.HIGHER, False, "lowest level any lamp had")),
    options=(Option("decision_interval_s", float, 60.0, "seconds between dimming decisions", "s", minimum=10,
                    maximum=3600, step=10),
             Option("lamps_per_district", int, 3, "lamps in each district", "lamps", minimum=1, maximum=50)),
    equity=(EquityGroup("district", "mean_level_pct", "mean level per district"),),
    action_types=("lamp_dimming",),
    policy=Path(__file__).with_name("policy.toml"),
    entity_types=(LAMP,),
    test_scenario="lamps",
    test_duration_s=600.0,
)


class LampTwin:
    """Lamps with an actuator edge that never dims below the floor."""

    def __init__(self, scenario: Scenario, seed: int, mode: str) -> None:
        params = check_options("lighting", META.options, scenario.params)
        self.decision_interval_s = float(params.get("decision_interval_s", 60.0))
        n = int(params.get("lamps_per_district", 3))
        self.end = scenario.end_s - scenario.begin_s
        self.mode = mode
        self.t = 0.0
        self.levels = {f"{d}-{i}": 100.0 for d in DISTRICTS for i in range(n)}
        self.energy = 0.0
        self.sum_level = {k: 0.0 for k in self.levels}
        self.lowest = 100.0

    def start(self) -> None:
        """Nothing to load."""

    def elapsed_s(self) -> float:
        """Seconds since the begin."""
        return self.t

    def done(self) -> bool:
        """True at the end of the window."""
        return self.t >= self.end - 1e-9

    def advance(self, seconds: float) -> None:
        """Burn energy at the current levels."""
        for k, lv in self.levels.items():
            self.energy += 0.1 * lv / 100.0 * seconds / 3600.0
            self.sum_level[k] += lv * seconds
            self.lowest = min(self.lowest, lv)
        self.t += seconds

    def observe(self) -> list[Entity]:
        """Each lamp's level."""
        return [Entity(urn(LAMP, k), LAMP, {"dimmingLevel": Property(lv, unit_code="P1"),
                                            "district": Property(k.split("-")[0])})
                for k, lv in sorted(self.levels.items())]

    def actuate(self, action: ProposedAction) -> Outcome:
        """Set a lamp's level, clamped to the floor; unknown lamps are refused."""
        key = action.target.removeprefix(f"urn:ngsi-ld:{LAMP}:")
        if key not in self.levels or action.action != "dim":
            return Outcome(action, "refused", bound_by=("known_lamp",), reason=f"no lamp {action.target}")
        level = float(action.params["level"])
        if level < FLOOR:
            self.levels[key] = FLOOR
            return Outcome(action, "clamped", {"level": FLOOR}, bound_by=("safety_floor",))
        self.levels[key] = min(level, 100.0)
        return Outcome(action, "applied", {"level": self.levels[key]})

    def safe_state(self) -> None:
        """Full light everywhere."""
        for k in self.levels:
            self.levels[k] = 100.0

    def close(self) -> DomainResult:
        """Energy and light levels."""
        span = max(self.t, 1e-9)
        by_district = {d: sum(v for k, v in self.sum_level.items() if k.startswith(d)) / span
                       / sum(1 for k in self.levels if k.startswith(d)) for d in DISTRICTS}
        mean = sum(by_district.values()) / len(by_district) if self.t else 100.0
        return DomainResult({"energy_kwh": self.energy, "mean_level_pct": mean, "min_level_pct": self.lowest},
                            groups={"district": by_district if self.t else {d: 100.0 for d in DISTRICTS}})


def dim_by_traffic(snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
    """Dim every lamp by the traffic detectors report (any domain's ``TrafficFlowObserved``)."""
    flows = snapshot.of_type("TrafficFlowObserved")
    vehicles = sum(float(e.get("vehicleCount") or 0) for e in flows)
    level = 60.0 if not flows else min(100.0, 20.0 + 2.0 * vehicles)
    return [ProposedAction(e.id, "dim", {"level": level}, inputs={"vehicles": vehicles},
                           planner="lighting.dim-by-traffic@1", action_type="lamp_dimming")
            for e in snapshot.of_type(LAMP)]


class LightingDomain:
    """The toy plug-in object."""

    name = "lighting"
    description = "Toy street lighting: full power (Smart City) vs traffic-aware dimming (AI City)"
    meta = META

    def scenarios(self) -> list[Scenario]:
        """One hour of lamps."""
        return [Scenario("lamps", "lighting", "twelve lamps for an hour", 0.0, 3600.0)]

    def resolve(self, name_or_path: str) -> Scenario | None:
        """The scenario called ``name_or_path``."""
        return next((s for s in self.scenarios() if s.name == name_or_path), None)

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> LampTwin:
        """A lamp twin."""
        return LampTwin(scenario, seed, mode)

    def planners(self, scenario: Scenario, mode: str) -> list[Planner]:
        """No planner in Smart City mode (full power); dimming by traffic in AI City mode."""
        return [dim_by_traffic] if mode == "ai" else []

    def forecasters(self, scenario: Scenario, mode: str) -> list[ForecastProvider]:
        """None."""
        return []

    def cities(self) -> list[CityScenario]:
        """Traffic and lamps on the built-in grid."""
        return [CityScenario("lit-grid", "traffic signals and street lighting on the 3x3 grid",
                             ("mobility/grid3x3", "lighting/lamps"))]


domain = LightingDomain()
