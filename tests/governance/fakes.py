"""A tiny generic domain (tank levels and valves) to drive governance without any real domain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from aicity.core.entity import Entity, Property
from aicity.core.meta import KPI, Better, DomainMeta

from .conftest import T0

POLICY = """
version = "test-1"
[default]
autonomy = "autonomous-within-envelope"
owner_role = "water duty officer"

[[rules]]
domain = "water"
action_type = "valve"
autonomy = "autonomous-within-envelope"
owner_role = "water duty officer"

[[rules]]
domain = "water"
action_type = "flush"
autonomy = "approve-then-act"
owner_role = "network engineer"

[[rules]]
domain = "water"
action_type = "survey"
autonomy = "advise"
owner_role = "network engineer"

[[envelope]]
name = "valve_opening"
domain = "water"
param = "opening"
min = 0
max = 90

[[envelope]]
name = "valve_actions"
domain = "water"
actions = ["set_opening", "flush", "survey"]
"""


def sensor(i: int, level: float, when: datetime) -> Entity:
    """A tank level sensor observation."""
    return Entity(f"urn:ngsi-ld:Tank:t{i}", "Tank", {"level": Property(level, observed_at=when)})


@dataclass
class TankTwin:
    """Two tanks, two valves; the edge clamps openings above 80 (a hard limit)."""

    levels: list[float] = field(default_factory=lambda: [20.0, 35.0])
    openings: dict[str, float] = field(default_factory=lambda: {"v0": 50.0, "v1": 50.0})
    elapsed: float = 0.0
    log: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    frozen: set[int] = field(default_factory=set)
    decision_interval_s: float = 60.0
    end_s: float = float("inf")
    start_time: datetime = T0

    def start(self) -> None:
        """Nothing to load."""

    def elapsed_s(self) -> float:
        """Seconds since T0."""
        return self.elapsed

    def done(self) -> bool:
        """True at ``end_s``."""
        return self.elapsed >= self.end_s

    def close(self) -> DomainResult:
        """The valves' final openings."""
        return DomainResult({"opening": sum(self.openings.values()) / len(self.openings)})

    @property
    def now(self) -> datetime:
        """Simulated time."""
        return T0 + timedelta(seconds=self.elapsed)

    def observe(self) -> list[Entity]:
        """Sensor entities (a frozen sensor keeps its first observation time)."""
        return [sensor(i, lv, T0 if i in self.frozen else self.now) for i, lv in enumerate(self.levels)]

    def snapshot(self) -> Snapshot:
        """What a planner sees."""
        return Snapshot(self.now, self.elapsed, {e.id: e for e in self.observe()})

    def actuate(self, p: ProposedAction) -> Outcome:
        """Apply an opening, clamped to 80."""
        opening = float(p.params.get("opening", 0))
        if opening > 80:
            out = Outcome(p, "clamped", {"valve": p.target, "opening": 80.0}, ("max_opening",), "clamped to 80")
        else:
            out = Outcome(p, "applied", {"valve": p.target, "opening": opening})
        self.openings[p.target] = float(out.command["opening"])
        self.log.append((self.now.isoformat(), p.target, dict(out.command)))
        return out

    def safe_state(self) -> None:
        """Every valve to 50 %."""
        self.openings = dict.fromkeys(self.openings, 50.0)

    def advance(self, seconds: float) -> None:
        """Levels rise with inflow and fall with valve opening."""
        self.elapsed += seconds
        for i, v in enumerate(("v0", "v1")):
            self.levels[i] = max(0.0, self.levels[i] + 3.0 - self.openings[v] * 0.05)


def planner(snapshot: Snapshot, forecasts: Mapping[str, Any] | None = None) -> list[ProposedAction]:
    """Open each valve in proportion to its tank level; candidates carry per-input score terms."""
    out = []
    for i, tank in enumerate(snapshot.of_type("Tank")):
        level = float(tank.get("level"))
        key = f"{tank.id}#level"
        cands: list[dict[str, Any]] = [
            {"opening": 30, "score": round(level * 0.5, 3), "terms": {key: round(level * 0.5, 3)}},
            {"opening": 85, "score": round(level * 1.0 - 15, 3), "terms": {key: round(level * 1.0, 3),
                                                                            "bias": -15}},
        ]
        best = max(cands, key=lambda c: float(c["score"]))
        out.append(ProposedAction(f"v{i}", "set_opening", {"opening": best["opening"]}, best["score"], cands,
                                  {key: level}, {}, "proportional", "valve"))
    return out


class Water:
    """The tanks as a domain plug-in, so tests drive them through the product's loop."""

    name = "water"
    description = "two tanks, two valves"
    meta = DomainMeta(kpis=(KPI("opening", "%", Better.LOWER, True),), action_types=("set_opening",))

    def scenarios(self) -> list[Scenario]:
        """One open-ended scenario."""
        return [Scenario("tanks", "water", "two tanks", 0.0, 1e9)]

    def resolve(self, name: str) -> Scenario | None:
        """The one scenario."""
        return self.scenarios()[0] if name == "tanks" else None

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> TankTwin:
        """A fresh twin."""
        return TankTwin()

    def planners(self, scenario: Scenario, mode: str) -> list[Planner]:
        """The valve planner."""
        return [planner]

    def forecasters(self, scenario: Scenario, mode: str) -> list[ForecastProvider]:
        """None."""
        return []


def run(gov: Any, twin: TankTwin, steps: int, *, stop_at: int | None = None) -> list[str]:
    """Run ``steps`` decision steps of the product's loop over ``twin`` with ``gov`` governing (a stop pressed
    before step ``stop_at``); the verdicts of the decisions, in order."""
    from aicity.core.city import Part
    from aicity.core.store import SqliteStore
    from aicity.loop import CityLoop, PartRun

    dom = Water()
    begin = twin.elapsed
    twin.end_s = begin + steps * twin.decision_interval_s
    store = SqliteStore()
    part = PartRun.of(Part(dom, dom.scenarios()[0]), twin, dom.planners(dom.scenarios()[0], "ai"), [])
    loop = CityLoop([part], mode="ai", seed=1, store=store, governance=gov)

    def progress(done: float, total: float) -> None:
        if stop_at is not None and done - begin == stop_at * twin.decision_interval_s:
            gov.stop("water", reason="operator saw a leak", by="op1", now=twin.now)

    if stop_at == 0:
        gov.stop("water", reason="operator saw a leak", by="op1", now=twin.now)
    loop.run(progress)
    return [str(e.data["verdict"]) for e in store.events(type="decision")]
