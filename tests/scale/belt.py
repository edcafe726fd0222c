"""A toy partitionable domain for the district coordinator's tests: a conveyor belt of stations across the city.

Parcels arrive at the west end (seeded), every step each station passes up to ``rate`` parcels east; the last
station of a district hands them through its border to the next district, the city's last station delivers them.
It is deterministic and has no simulator, so a partitioned run must equal the whole-city run exactly.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.capabilities import Crossing, DistrictScenario, RejectedInput
from aicity.core.domain import (
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
from aicity.core.errors import UserError
from aicity.core.meta import KPI, Better, DomainMeta, Option, check_options

STATION = "BeltStation"
META = DomainMeta(
    kpis=(KPI("delivered", "parcels", Better.HIGHER, True, "parcels delivered at the east end"),
          KPI("mean_wait_s", "s", Better.LOWER, True, "mean time from arrival to delivery")),
    options=(Option("decision_interval_s", float, 10.0, "seconds per step", "s", minimum=1, maximum=60),
             Option("stations", int, 6, "stations along the belt", "stations", minimum=1, maximum=100),
             Option("first", int, 0, "first station of this twin", "", minimum=0, maximum=100),
             Option("last", int, -1, "last station of this twin (-1: the end)", "", minimum=-1, maximum=100),
             Option("border", str, "", "border id the last station hands parcels through", ""),
             Option("checkpoints", int, 1, "1: the twin can save and load its state (Checkpointable)", "",
                    minimum=0, maximum=1)),
    action_types=("belt_speed",),
    policy=Path(__file__).with_name("belt_policy.toml"),
    entity_types=(STATION,),
    test_scenario="belt",
    test_duration_s=300.0,
)


class BeltTwin:
    """Stations ``first``..``last`` of the belt."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        p = check_options("belt", META.options, scenario.params)
        self.step_s = self.decision_interval_s = float(p.get("decision_interval_s", 10.0))
        total = int(p.get("stations", 6))
        self.first = int(p.get("first", 0))
        self.last = int(p.get("last", -1)) % total if int(p.get("last", -1)) >= 0 else total - 1
        self.total, self.border = total, str(p.get("border", ""))
        self.end = scenario.end_s - scenario.begin_s
        self.rng = random.Random(seed)
        self.t = 0.0
        self.queues: dict[int, list[tuple[str, float]]] = {i: [] for i in range(self.first, self.last + 1)}
        self.rate = {i: 1 for i in self.queues}
        self.out: list[Crossing] = []
        self.waits: list[float] = []
        self.made = 0

    def start(self) -> None:
        """Nothing to load."""

    def elapsed_s(self) -> float:
        """Seconds since the begin."""
        return self.t

    def done(self) -> bool:
        """True at the end of the window."""
        return self.t >= self.end - 1e-9

    def advance(self, seconds: float) -> None:
        """Move parcels one station east (east end first), then new arrivals at the west end."""
        for i in sorted(self.queues, reverse=True):
            moving, self.queues[i] = self.queues[i][:self.rate[i]], self.queues[i][self.rate[i]:]
            for parcel in moving:
                if i < self.last:
                    self.queues[i + 1].append(parcel)
                elif self.last == self.total - 1:
                    self.waits.append(self.t + seconds - parcel[1])
                else:
                    self.out.append(Crossing(via=self.border, kind="parcel", at_s=self.t + seconds,
                                             payload={"id": parcel[0], "since": parcel[1]}))
        self.t += seconds
        if self.first == 0:
            for _ in range(self.rng.choice((0, 1, 1, 2))):
                self.made += 1
                self.queues[0].append((f"p{self.made}", self.t))

    def observe(self) -> list[Entity]:
        """Each station's load."""
        return [Entity(urn(STATION, str(i)), STATION, {"load": Property(len(q))}) for i, q in self.queues.items()]

    def actuate(self, action: ProposedAction) -> Outcome:
        """Set a station's rate (1 or 2)."""
        i = int(action.target.rsplit(":", 1)[1])
        if i not in self.rate:
            return Outcome(action, "refused", bound_by=("known_station",), reason=f"no station {i} here")
        self.rate[i] = 2 if float(action.params["rate"]) >= 2 else 1
        return Outcome(action, "applied", {"rate": self.rate[i]})

    def safe_state(self) -> None:
        """Every station at rate 1."""
        self.rate = {i: 1 for i in self.rate}

    def outbound(self) -> list[Crossing]:
        """Parcels handed through the border since the last call."""
        out, self.out = self.out, []
        return out

    def inbound(self, crossings: list[Crossing]) -> list[RejectedInput]:
        """Parcels from the west join the first station's queue; malformed ones are returned."""
        bad: list[RejectedInput] = []
        for c in crossings:
            pay = c.get("payload", {})
            if c.get("kind") != "parcel" or not isinstance(pay.get("id"), str) or not isinstance(
                    pay.get("since"), int | float):
                bad.append({"source": "belt.border", "reason": f"malformed parcel crossing {c!r}"[:200],
                            "payload": dict(c)})
                continue
            self.queues[self.first].append((pay["id"], float(pay["since"])))
        return bad

    def close(self) -> DomainResult:
        """Delivered parcels and their mean wait (per-parcel sums in extra, for merging)."""
        n = len(self.waits)
        return DomainResult({"delivered": float(n), "mean_wait_s": sum(self.waits) / n if n else 0.0},
                            extra={"wait_sum": sum(self.waits), "made": self.made,
                                   "queued": sum(len(q) for q in self.queues.values())})


class CheckpointBeltTwin(BeltTwin):
    """A belt twin that saves its whole state (queues, rates, the arrivals' RNG) as bytes."""

    _STATE = ("rng", "t", "queues", "rate", "out", "waits", "made")

    def save_state(self) -> bytes:
        """Every attribute that changes, pickled."""
        return pickle.dumps({k: getattr(self, k) for k in self._STATE})

    def load_state(self, state: bytes) -> None:
        """Take them back; anything else is refused in one line."""
        try:
            saved = pickle.loads(state)
        except (pickle.UnpicklingError, EOFError) as exc:
            raise UserError(f"not a belt checkpoint: {exc}") from exc
        for k in self._STATE:
            setattr(self, k, saved[k])


def boost_when_loaded(snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
    """Rate 2 at a station holding more than two parcels, else 1."""
    return [ProposedAction(e.id, "rate", {"rate": 2 if float(e.get("load") or 0) > 2 else 1},
                           planner="belt.boost@1", action_type="belt_speed")
            for e in snapshot.of_type(STATION)]


class BeltDomain:
    """The toy plug-in: partitionable into districts of equal numbers of stations."""

    name = "belt"
    description = "Toy conveyor belt across the city (district coordinator tests)"
    meta = META

    def scenarios(self) -> list[Scenario]:
        """Six stations for five minutes."""
        return [Scenario("belt", "belt", "six stations", 0.0, 300.0, params={"stations": 6})]

    def resolve(self, name_or_path: str) -> Scenario | None:
        """The scenario called ``name_or_path``."""
        return next((s for s in self.scenarios() if s.name == name_or_path), None)

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> BeltTwin:
        """A belt twin (one that can save its state unless the scenario's ``checkpoints`` is 0)."""
        return (CheckpointBeltTwin if int(scenario.params.get("checkpoints", 1)) else BeltTwin)(scenario, seed)

    def planners(self, scenario: Scenario, mode: str) -> list[Planner]:
        """Boosting in AI City mode, nothing in Smart City mode."""
        return [boost_when_loaded] if mode == "ai" else []

    def forecasters(self, scenario: Scenario, mode: str) -> list[ForecastProvider]:
        """None."""
        return []

    def partition(self, scenario: Scenario, districts: int) -> list[DistrictScenario]:
        """Equal runs of stations, west to east, named d1..dN."""
        total = int(scenario.params.get("stations", 6))
        if total % districts:
            raise UserError(f"{total} stations do not split into {districts} districts")
        size = total // districts
        out = []
        for k in range(districts):
            border = f"belt-{k + 1}" if k < districts - 1 else ""
            params = {**scenario.params, "first": k * size, "last": (k + 1) * size - 1, "border": border}
            out.append(DistrictScenario(f"d{k + 1}", Scenario(f"{scenario.name}-d{k + 1}", "belt", "", 0.0,
                                                              scenario.end_s, params=params),
                                        {border: f"d{k + 2}"} if border else {}))
        return out

    def merge_results(self, results: Mapping[str, DomainResult]) -> DomainResult:
        """Delivered at the east end, waits summed over parcels."""
        n = sum(r.kpis["delivered"] for r in results.values())
        wait = sum(float(r.extra["wait_sum"]) for r in results.values())
        return DomainResult({"delivered": n, "mean_wait_s": wait / n if n else 0.0},
                            extra={"wait_sum": wait, "made": sum(int(r.extra["made"]) for r in results.values()),
                                   "queued": sum(int(r.extra["queued"]) for r in results.values())})


domain = BeltDomain()
