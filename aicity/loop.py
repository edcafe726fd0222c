"""The city loop: sense → state → forecast → decide → govern → act → audit, for any domain.

One :class:`CityLoop` drives one twin in one mode. Every step it reads the sensors, writes the state store,
lets forecast providers learn and forecast, asks the planners (pure functions) for proposals, passes each
through governance (autonomy level, stop button, input plausibility, envelope), sends the approved ones to
the twin's actuator edge, and records the decision with its causal chain: observation → decision → command →
acknowledgement or refusal.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aicity.core.bus import Bus
from aicity.core.clock import SimClock
from aicity.core.context import Actor, ActorKind, Context, IdGenerator
from aicity.core.domain import (
    Domain,
    DomainResult,
    ForecastProvider,
    Outcome,
    Planner,
    ProposedAction,
    Scenario,
    Snapshot,
    Twin,
)
from aicity.core.entity import Entity
from aicity.core.errors import ValidationError
from aicity.core.event import Event, EventType, observation_event
from aicity.core.store import SqliteStore

Progress = Callable[[float, float], None]


class Governance(Protocol):
    """What the loop needs from the governance layer."""

    def review(self, proposal: ProposedAction, snapshot: Snapshot, *, domain: str, now: datetime) -> Any:
        """A verdict on one proposal: an object with ``verdict`` (act|advise|queue|refuse|stopped)."""
        ...

    def record(self, proposal: ProposedAction, review: Any, outcome: Outcome | None, *, domain: str,
               now: datetime, context: Mapping[str, str | None]) -> Any:
        """Keep the decision record of one proposal."""
        ...

    def is_stopped(self, domain: str) -> bool:
        """True while the stop button is pressed for ``domain`` (or globally)."""
        ...


@dataclass
class LoopStats:
    """Counters of one loop run, shown in the report."""

    steps: int = 0
    observations: int = 0
    rejected_observations: int = 0
    proposals: int = 0
    actuated: int = 0
    clamped: int = 0
    refused: int = 0
    advised: int = 0
    queued: int = 0
    degraded: int = 0
    stopped_steps: int = 0
    demotions: int = 0
    demoted_steps: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    sim_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return dict(self.__dict__)


class CityLoop:
    """Runs one scenario of one domain in one mode, through the whole governed loop."""

    def __init__(self, domain: Domain, scenario: Scenario, *, mode: str, seed: int, store: SqliteStore,
                 bus: Bus | None = None, governance: Governance | None = None,
                 planners: list[Planner] | None = None, forecasters: list[ForecastProvider] | None = None,
                 twin: Twin | None = None) -> None:
        self.domain = domain
        self.scenario = scenario
        self.mode = mode
        self.seed = seed
        self.store = store
        self.bus = bus or Bus()
        self.governance = governance
        self.ids = IdGenerator(seed)
        self.clock = SimClock()
        self.twin = twin or domain.open_twin(scenario, seed=seed, mode=mode)
        self.planners = planners if planners is not None else domain.planners(scenario, mode)
        self.forecasters = forecasters if forecasters is not None else domain.forecasters(scenario, mode)
        self.stats = LoopStats()
        self._sensor = Actor(ActorKind.SENSOR, f"{domain.name}.twin")
        self._edge = Actor(ActorKind.SYSTEM, f"{domain.name}.actuator-edge")
        self._was_stopped = False
        self._guard = Actor(ActorKind.POLICY, "governance.accuracy-guard")

    # ---- one step ------------------------------------------------------------------------------
    def _sense(self, now: datetime) -> tuple[Context, dict[str, Entity]]:
        ctx = Context(self._sensor, None, self.ids())
        raw = self.twin.observe()
        good: list[Entity] = []
        for item in raw:
            if isinstance(item, Entity):
                good.append(item)
                continue
            try:  # a twin may hand over raw NGSI-LD dicts; validate them like any other ingress
                good.append(Entity.from_ngsi(item))
            except ValidationError as exc:
                self.store.dead_letter(f"{self.domain.name}.twin", exc, item, now=now)
                self.stats.rejected_observations += 1
        self.store.upsert_many(good, now=now, context_id=ctx.id)
        self.store.append_event(Event(EventType.OBSERVATION, {"entities": [e.id for e in good]}, ctx, now))
        if self.bus.wants(EventType.OBSERVATION, None) or any(
                self.bus.wants(EventType.OBSERVATION, e.type) for e in good[:1]):
            for entity in good:
                self.bus.publish(observation_event(entity, ctx, now))
        self.stats.observations += len(good)
        return ctx, {e.id: e for e in good}

    def _forecast(self, snapshot: Snapshot) -> dict[str, Any]:
        forecasts: dict[str, Any] = {}
        for provider in self.forecasters:
            provider.learn(snapshot)
            forecasts.update(provider.forecast(snapshot))
        return forecasts

    def _check_accuracy(self, now: datetime) -> None:
        """Hand each provider's live accuracy to governance; record a drift event for every demotion."""
        check = getattr(self.governance, "check_accuracy", None)
        if not callable(check):
            return
        for provider in self.forecasters:
            accuracy = getattr(provider, "accuracy", None)
            if not callable(accuracy):
                continue
            name = str(getattr(provider, "name", type(provider).__name__))
            for alarm in check(self.domain.name, name, accuracy(), now=now):
                self.stats.demotions += 1
                self.store.append_event(Event(EventType.DRIFT, dict(alarm), Context(self._guard, None, self.ids()),
                                              now))

    def _decide(self, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        proposals: list[ProposedAction] = []
        claimed: set[str] = set()
        for planner in self.planners:  # earlier planners take precedence for a target (e.g. preemption)
            for proposal in planner(snapshot, forecasts):
                if proposal.target in claimed:
                    continue
                claimed.add(proposal.target)
                proposals.append(proposal)
        return proposals

    def _act(self, proposal: ProposedAction, obs_ctx: Context, snapshot: Snapshot, now: datetime,
             review: Any = None) -> None:
        name = self.domain.name
        model = Actor(ActorKind.MODEL, proposal.planner or f"{name}.planner")
        decision_ctx = obs_ctx.child(model, self.ids)
        if review is None and self.governance is not None:
            review = self.governance.review(proposal, snapshot, domain=name, now=now)
        verdict = getattr(review, "verdict", "act")
        self.stats.verdicts[verdict] = self.stats.verdicts.get(verdict, 0) + 1
        if getattr(review, "degraded", False):
            self.stats.degraded += 1
            safe = getattr(self.twin, "safe_state_for", None)  # implausible inputs: that target's safe plan
            if callable(safe):
                safe(proposal.target)
        self.store.append_event(Event(EventType.DECISION, {
            "target": proposal.target, "action": proposal.action, "params": dict(proposal.params),
            "score": proposal.score, "verdict": verdict, "planner": proposal.planner,
        }, decision_ctx, now, entity_id=proposal.target))
        outcome: Outcome | None = None
        command_ctx: Context | None = None
        ack_ctx: Context | None = None
        if verdict == "act":
            command_ctx = decision_ctx.child(self._edge, self.ids)
            self.store.append_event(Event(EventType.COMMAND, {
                "target": proposal.target, "action": proposal.action, "params": dict(proposal.params),
            }, command_ctx, now, entity_id=proposal.target))
            outcome = self.twin.actuate(proposal)
            ack_ctx = command_ctx.child(self._edge, self.ids)
            kind = EventType.REFUSAL if outcome.refused else EventType.ACK
            self.store.append_event(Event(kind, {
                "status": outcome.status, "command": dict(outcome.command), "bound_by": list(outcome.bound_by),
                "reason": outcome.reason,
            }, ack_ctx, now, entity_id=proposal.target))
            if outcome.refused:
                self.stats.refused += 1
            else:
                self.stats.actuated += 1
                if outcome.status == "clamped":
                    self.stats.clamped += 1
        elif verdict == "advise":
            self.stats.advised += 1
        elif verdict == "queue":
            self.stats.queued += 1
        if self.governance is not None:
            self.governance.record(proposal, review, outcome, domain=name, now=now, context={
                "observation": obs_ctx.id, "decision": decision_ctx.id,
                "command": command_ctx.id if command_ctx else None, "ack": ack_ctx.id if ack_ctx else None})

    def _stop_or_resume(self, stopped: bool, now: datetime) -> None:
        """On a stop, put the twin in its safe state within this step (and record it); on release, resume."""
        if stopped and not self._was_stopped:
            self.twin.safe_state()
            confirm = getattr(self.governance, "confirm_safe_state", None)
            if callable(confirm):
                confirm(self.domain.name, now=now)
        elif not stopped and self._was_stopped:
            resume = getattr(self.twin, "resume", None)
            if callable(resume):
                resume()
        self._was_stopped = stopped

    def _approved(self, obs_ctx: Context, snapshot: Snapshot, now: datetime) -> None:
        """Actuate proposals a person approved since the last step (approve-then-act)."""
        take = getattr(self.governance, "take_approved", None)
        if not callable(take):
            return
        for proposal, review in take(self.domain.name, now=now):
            self._act(proposal, obs_ctx, snapshot, now, review=review)

    def _edge_events(self, now: datetime) -> None:
        """Record what actuator edges did on their own (forced changes at max green, preemption ends)."""
        drain = getattr(self.twin, "edge_events", None)
        if not callable(drain):
            return
        events = [Event("edge_action", dict(item), Context(self._edge, None, self.ids()), now,
                        entity_id=str(item.get("signal", "")) or None) for item in drain()]
        if events:
            self.store.append_events(events)

    def step(self) -> None:
        """Run one decision step of the loop."""
        now = self.clock.set_elapsed(self.twin.elapsed_s())
        obs_ctx, entities = self._sense(now)
        snapshot = Snapshot(now, self.twin.elapsed_s(), entities)
        forecasts = self._forecast(snapshot)
        self._check_accuracy(now)
        stopped = self.governance is not None and self.governance.is_stopped(self.domain.name)
        is_demoted = getattr(self.governance, "is_demoted", None)
        demoted = bool(is_demoted(self.domain.name)) if callable(is_demoted) else False
        self._stop_or_resume(stopped or demoted, now)  # demoted: safe state, planners keep advising
        if demoted:
            self.stats.demoted_steps += 1
        if stopped:
            self.stats.stopped_steps += 1
        else:
            self._approved(obs_ctx, snapshot, now)
            for proposal in self._decide(snapshot, forecasts):
                self.stats.proposals += 1
                self._act(proposal, obs_ctx, snapshot, now)
        self.twin.advance(self.twin.decision_interval_s)
        self._edge_events(self.clock.now())
        self.stats.steps += 1

    def run(self, progress: Progress | None = None) -> DomainResult:
        """Run the scenario to its end and return the twin's result; ``progress(done_s, total_s)``."""
        started = _time.perf_counter()
        self.twin.start()
        start_time = getattr(self.twin, "start_time", None)
        if isinstance(start_time, datetime):  # observedAt then carries the scenario's real time of day
            self.clock = SimClock(start_time)
        try:
            total = self.scenario.duration_s
            while not self.twin.done():
                self.step()
                if progress is not None:
                    progress(self.twin.elapsed_s(), total)
        finally:
            result = self.twin.close()
            self.store.flush()
        self.stats.wall_s = _time.perf_counter() - started
        self.stats.sim_s = self.twin.elapsed_s() if hasattr(self.twin, "elapsed_s") else 0.0
        return result
