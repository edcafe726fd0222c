"""Twins of one city ride on one SUMO: the host steps once per second, whoever asks first."""

from __future__ import annotations

import dataclasses

import pytest

from aicity.core.city import City, Part
from aicity.core.domain import DomainResult, Outcome, ProposedAction, RunServices, Scenario
from aicity.core.entity import Entity, Property, urn
from aicity.core.meta import KPI, Better, DomainMeta
from aicity.core.store import SqliteStore
from aicity.domains.mobility import domain as mobility
from aicity.domains.mobility.scenarios import require
from aicity.domains.mobility.sumo_host import SHARED_NAME, SumoHost
from aicity.loop import CityLoop, open_parts

pytest.importorskip("libsumo")
pytestmark = pytest.mark.sumo


class RiderTwin:
    """Counts vehicles in the shared simulation; never steps it on its own."""

    decision_interval_s = 30.0

    def __init__(self, services: RunServices) -> None:
        self.services = services
        self.host: SumoHost | None = None
        self.begin = 0.0
        self.seen: list[tuple[float, int]] = []

    def start(self) -> None:
        host = self.services.shared.get(SHARED_NAME)
        assert isinstance(host, SumoHost), "mobility opened SUMO first and shared it"
        self.host, self.begin = host, host.t

    def elapsed_s(self) -> float:
        assert self.host is not None
        return self.host.t - self.begin

    def done(self) -> bool:
        assert self.host is not None
        return self.host.t >= self.host.end_s

    def advance(self, seconds: float) -> None:
        assert self.host is not None
        self.host.advance_to(self.host.t)  # already there: mobility stepped it this loop step

    def observe(self) -> list[Entity]:
        assert self.host is not None
        n = len(self.host.api.vehicle.getIDList())
        self.seen.append((self.host.t, n))
        return [Entity(urn("Counter", "c"), "Counter", {"vehicles": Property(n)})]

    def actuate(self, action: ProposedAction) -> Outcome:
        return Outcome(action, "refused", bound_by=("read_only",))

    def safe_state(self) -> None:
        return None

    def close(self) -> DomainResult:
        return DomainResult({"samples": float(len(self.seen))})


class Rider:
    name = "rider"
    description = "counts vehicles"
    meta = DomainMeta(kpis=(KPI("samples", "count", Better.HIGHER, True),), action_types=("none",))

    def __init__(self) -> None:
        self.twin: RiderTwin | None = None

    def scenarios(self) -> list[Scenario]:
        return [Scenario("count", "rider", "", 0.0, 1e9)]

    def resolve(self, name: str) -> Scenario | None:
        return self.scenarios()[0]

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> RiderTwin:
        self.twin = RiderTwin(services)
        return self.twin

    def planners(self, scenario: Scenario, mode: str) -> list:  # type: ignore[type-arg]
        return []

    def forecasters(self, scenario: Scenario, mode: str) -> list:  # type: ignore[type-arg]
        return []


def test_a_second_twin_rides_on_mobility_sumo() -> None:
    scen = dataclasses.replace(require("grid3x3"), end_s=require("grid3x3").begin_s + 120)
    rider = Rider()
    city = City("shared", "", (Part(mobility, scen), Part(rider, rider.scenarios()[0])))  # type: ignore[arg-type]
    services = RunServices()
    loop = CityLoop(open_parts(city, mode="smart", seed=1, services=services), mode="smart", seed=1,
                    store=SqliteStore())
    results = loop.run()
    assert rider.twin is not None
    times = [t for t, _ in rider.twin.seen]
    assert times == [scen.begin_s + 30 * i for i in range(4)]  # one simulation, one clock, every 30 s
    assert any(n > 0 for _, n in rider.twin.seen) and results["rider"].kpis["samples"] == 4
    assert results["mobility"].extra["sim_s"] == 120
