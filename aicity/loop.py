"""The city loop: sense → state → forecast → decide → orchestrate → govern → act → audit, for any city.

One :class:`CityLoop` drives every part of a city (one domain's twin, planners and forecast providers each) in
one mode, on one clock, one state store and one governance layer. Each step, every part that is due reads its
sensors into the store; the snapshot covers the whole city, so one domain reads what another publishes; the
forecast providers learn; the planners (pure functions) propose; the orchestration stage settles proposals that
compete for one target; governance reviews each; approved ones go to the twin's actuator edge; everything is
recorded with its causal chain: observation → decision → command → acknowledgement or refusal.
"""

from __future__ import annotations

import io
import pickle
import time as _time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aicity.core.bus import Bus
from aicity.core.capabilities import (
    AccuracyReporting,
    Checkpointable,
    Clocked,
    DeadLetterSource,
    EdgeEventSource,
    Integrates,
    Resumable,
    SensorFeeds,
    TargetSafeState,
)
from aicity.core.city import City, Part
from aicity.core.clock import SimClock
from aicity.core.context import Actor, ActorKind, Context, IdGenerator
from aicity.core.domain import (
    Controllers,
    DomainResult,
    ForecastProvider,
    Outcome,
    Planner,
    ProposedAction,
    RunServices,
    Snapshot,
    Twin,
)
from aicity.core.entity import Entity
from aicity.core.errors import ObservationError, UserError, ValidationError
from aicity.core.event import (
    AckData,
    CommandData,
    DecisionData,
    Event,
    EventType,
    ObservationBatchData,
    OrchestrationData,
    observation_event,
)
from aicity.core.heap import long_lived
from aicity.core.store import ChangeKind, Interruptible, StateStore, StoreUnavailable
from aicity.orchestrate.costs import OutageCosts
from aicity.orchestrate.stage import (
    Candidate,
    Orchestrator,
    Precedence,
    PriorityPolicy,
    Resolution,
    priority_table,
    violations,
)

__all__ = ["Candidate", "CityLoop", "LoopStats", "Orchestrator", "PartRun", "Precedence", "Settler", "open_parts"]

Progress = Callable[[float, float], None]
TwinCall = tuple[str, str, Any]
"""One call the loop made on a twin: (part, ``actuate``/``safe_state_for``/``safe_state``/``resume``, argument)."""
_EPS = 1e-6


def _entity_or_none(item: Any) -> Entity | None:
    try:
        return Entity.from_ngsi(item)
    except ValidationError:
        return None


_VALUES = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)
"""Immutable values: pickled as they are, never taken for one of a twin's objects."""


def _twin_objects(parts: Sequence[PartRun]) -> dict[int, tuple[str, str]]:
    """Every twin and the objects its attributes hold, by identity: ``(part, attribute)`` (``""``: the twin)."""
    refs: dict[int, tuple[str, str]] = {}
    for run in parts:
        for attr, value in getattr(run.twin, "__dict__", {}).items():
            if not isinstance(value, _VALUES):
                refs.setdefault(id(value), (run.name, attr))
        refs[id(run.twin)] = (run.name, "")
    return refs


class _TwinRefPickler(pickle.Pickler):
    """Pickles a loop's forecast providers, writing what they hold of a twin as a reference to it."""

    def __init__(self, file: io.BytesIO, parts: Sequence[PartRun]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._refs = _twin_objects(parts)

    def persistent_id(self, obj: Any) -> tuple[str, str] | None:
        """A twin's object as ``(part, attribute)``; None: pickled as usual."""
        return None if isinstance(obj, _VALUES) else self._refs.get(id(obj))


class _TwinRefUnpickler(pickle.Unpickler):
    """Reads what :class:`_TwinRefPickler` wrote, a twin's object resolved on the twin now in its place."""

    def __init__(self, file: io.BytesIO, parts: Sequence[PartRun]) -> None:
        super().__init__(file)
        self._twins = {r.name: r.twin for r in parts}

    def persistent_load(self, pid: Any) -> Any:
        """The object ``(part, attribute)`` of the twin now running that part."""
        part, attr = pid
        twin = self._twins[part]
        return twin if not attr else getattr(twin, attr)


class StaleObservation(ValidationError):
    """An observation repeating the stored one, timestamps included (a frozen sensor)."""


def _stale_repeat(entity: Entity, kinds: Any) -> bool:
    """True when nothing in ``entity`` is newer than what the store holds, and it carries observation times."""
    return (all(k is ChangeKind.UNCHANGED for k in kinds)
            and any(a.observed_at is not None for a in entity.attrs.values()))


class Review(Protocol):
    """A governance verdict on one proposal."""

    @property
    def verdict(self) -> str:
        """act, advise, queue, refuse or stopped."""
        ...

    @property
    def degraded(self) -> bool:
        """True when the proposal rested on implausible inputs (its target goes to its safe state)."""
        ...


class Governance(Protocol):
    """What the loop needs from the governance layer (:mod:`aicity.governance.runtime`)."""

    def review(self, proposal: ProposedAction, snapshot: Snapshot, *, domain: str, now: datetime) -> Review:
        """A verdict on one proposal: act, advise, queue, refuse or stopped."""
        ...

    def record(self, proposal: ProposedAction, review: Any, outcome: Outcome | None, *, domain: str,
               now: datetime, context: Mapping[str, str | None]) -> object:
        """Keep the decision record of one proposal."""
        ...

    def is_stopped(self, domain: str) -> bool:
        """True while the stop button is pressed for ``domain`` (or globally)."""
        ...

    def is_demoted(self, domain: str) -> bool:
        """True while an accuracy guard holds ``domain``'s actuators in their safe state."""
        ...

    def check_accuracy(self, domain: str, model: str, stats: Mapping[str, float], *,
                       now: datetime) -> list[dict[str, Any]]:
        """Compare a model's live accuracy with the declared one; the demotions it caused."""
        ...

    def confirm_safe_state(self, domain: str, *, now: datetime) -> None:
        """Record that the domain's safe state was reached after a stop."""
        ...

    def take_approved(self, domain: str, *, now: datetime) -> Sequence[tuple[ProposedAction, Any]]:
        """Proposals a person approved since the last step, to actuate now."""
        ...


@dataclass
class LoopStats:
    """Counters of one loop run, shown in the report."""

    steps: int = 0
    observations: int = 0
    rejected_observations: int = 0
    stale_observations: int = 0
    proposals: int = 0
    overridden: int = 0
    substituted: int = 0
    priority_violations: int = 0
    actuated: int = 0
    clamped: int = 0
    refused: int = 0
    refused_by_edge: int = 0
    refused_by_governance: int = 0
    advised: int = 0
    queued: int = 0
    degraded: int = 0
    stopped_steps: int = 0
    demotions: int = 0
    demoted_steps: int = 0
    blind_steps: int = 0
    records_retried: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    by_domain: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_s: float = 0.0
    sim_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return dict(self.__dict__)

    def count(self, domain: str, key: str) -> None:
        """Count one ``key`` (proposals, actuated) for ``domain``."""
        per = self.by_domain.setdefault(domain, {"proposals": 0, "actuated": 0})
        per[key] = per.get(key, 0) + 1


@dataclass
class Settler:
    """The orchestration stage of a loop: settles a step's proposals, records resolutions between domains as
    ``orchestration`` events and counts priority violations (in one process, or at a district coordinator)."""

    orchestrator: Orchestrator
    priority: PriorityPolicy | None
    priorities: Mapping[str, Mapping[str, str]]
    store: StateStore
    ids: IdGenerator
    stats: LoopStats
    actor: Actor = field(default_factory=lambda: Actor(ActorKind.SYSTEM, "orchestration"))
    costs: OutageCosts = field(default_factory=OutageCosts)
    """The domains' outage cost models, which priority violations are weighed by (as the stage weighs needs)."""

    def __call__(self, candidates: Sequence[Candidate], snapshot: Snapshot) -> list[Candidate]:
        """What is kept of ``candidates`` (replacements included)."""
        settled = self.orchestrator.settle(list(candidates), snapshot)
        self._record(settled.resolutions, snapshot.time)
        if self.priority is not None:
            self.stats.priority_violations += len(violations(settled.kept, snapshot, self.priority,
                                                             self.priorities, self.costs))
        return settled.kept

    def _record(self, resolutions: Sequence[Resolution], now: datetime) -> None:
        """Count every resolution; record those between domains (with their rule and reason) as events."""
        events = []
        version = self.priority.version if self.priority is not None else ""
        for res in resolutions:
            if res.kind == "substituted":
                self.stats.substituted += 1
            elif res.kind == "dropped":
                self.stats.overridden += 1
            won = res.winner or res.lost
            if res.kind == "dropped" and won.domain == res.lost.domain:
                continue  # inside one domain, planner precedence is routine and not recorded
            data: OrchestrationData = {
                "target": res.lost.proposal.target, "kept_domain": won.domain, "kept_planner": won.proposal.planner,
                "dropped_domain": res.lost.domain, "dropped_planner": res.lost.proposal.planner, "rule": res.rule,
                "resolution": res.kind, "reason": res.reason, "policy_version": version,
                "kept_priority": won.priority, "dropped_priority": res.lost.priority}
            events.append(Event(EventType.ORCHESTRATION, data, Context(self.actor, None, self.ids()),
                                now, entity_id=res.lost.proposal.target))
        if events:
            self.store.append_events(events)


@dataclass
class PartRun:
    """One part of the city while it runs: its twin, planners, providers and step bookkeeping."""

    part: Part
    twin: Twin
    planners: list[Planner]
    forecasters: list[ForecastProvider]
    next_due_s: float = 0.0
    was_held: bool = False

    @property
    def name(self) -> str:
        """The part's domain name."""
        return self.part.domain.name

    @classmethod
    def of(cls, part: Part, twin: Twin, planners: list[Planner], forecasters: list[ForecastProvider]) -> PartRun:
        """A part run; a twin with its own feeds (:class:`SensorFeeds`) adds their providers."""
        extra = twin.feed_providers() if isinstance(twin, SensorFeeds) else []
        return cls(part, twin, list(planners), [*forecasters, *extra])


def open_parts(city: City, *, mode: str, seed: int, services: RunServices,
               controllers: Mapping[str, str] | None = None) -> list[PartRun]:
    """Open every part's twin (in city order: the first opens shared simulators) with its mode's planners,
    or with a named controller's where ``controllers`` names one for the part's domain (benchmarks)."""
    runs: list[PartRun] = []
    for part in city:
        dom, scen = part.domain, part.scenario
        name = (controllers or {}).get(dom.name)
        if name is None:
            twin = dom.open_twin(scen, seed=seed, mode=mode, services=services)
            runs.append(PartRun.of(part, twin, dom.planners(scen, mode), dom.forecasters(scen, mode)))
            continue
        if not isinstance(dom, Controllers) or name not in dom.controllers():
            known = ", ".join(dom.controllers()) if isinstance(dom, Controllers) else "none"
            raise UserError(f"domain {dom.name!r} has no controller {name!r}; known: {known}")
        twin = dom.open_twin(scen, seed=seed, mode=dom.controllers()[name], services=services)
        planners, providers = dom.controller_parts(scen, name)
        runs.append(PartRun.of(part, twin, planners, providers))
    return runs


class CityLoop:
    """Runs a city in one mode through the whole governed loop."""

    def __init__(self, parts: Sequence[PartRun], *, mode: str, seed: int, store: StateStore,
                 governance: Governance | None = None, orchestrator: Orchestrator | None = None,
                 bus: Bus | None = None, priority: PriorityPolicy | None = None,
                 costs: OutageCosts | None = None) -> None:
        if not parts:
            raise UserError("a city needs at least one part")
        self.parts = list(parts)
        self.mode = mode
        self.seed = seed
        self.store = store
        self.bus = bus or Bus()
        self.governance = governance
        self.orchestrator: Orchestrator = orchestrator or Precedence()
        self.priority = priority
        self.ids = IdGenerator(seed)
        self.clock = SimClock()
        self.stats = LoopStats()
        self.step_s = min(p.twin.decision_interval_s for p in self.parts)
        if not self.step_s > 0:
            raise UserError(f"decision interval must be positive, got {self.step_s!r}")
        self._latest: dict[str, Entity] = {}
        self._contexts: dict[str, Context] = {}
        self._unrecorded: list[tuple[ProposedAction, Any, Outcome | None, str, datetime, dict[str, str | None]]] = []
        self._opened: list[PartRun] = []
        self._started = _time.perf_counter()
        self._guard = Actor(ActorKind.POLICY, "governance.accuracy-guard")
        self.sensed: list[Entity] = []
        """The entities sensed in the latest step (what a district sends its coordinator)."""
        self.journal: list[TwinCall] | None = None
        """When a list: every call that changed a twin this step, in order (a district's recovery log)."""
        metas = {p.name: p.part.domain.meta for p in self.parts}
        if costs is None:  # the stage's own when the runner built both (then the models learn once a step)
            costs = OutageCosts.from_metas(metas)
        self.settler = Settler(self.orchestrator, priority, priority_table(metas), store, self.ids, self.stats,
                               costs=costs)

    @classmethod
    def for_city(cls, city: City, *, mode: str, seed: int, store: StateStore, services: RunServices | None = None,
                 governance: Governance | None = None, orchestrator: Orchestrator | None = None,
                 priority: PriorityPolicy | None = None) -> CityLoop:
        """Open every part of ``city`` and build its loop."""
        parts = open_parts(city, mode=mode, seed=seed, services=services or RunServices())
        return cls(parts, mode=mode, seed=seed, store=store, governance=governance, orchestrator=orchestrator,
                   priority=priority)

    # ---- sense and learn -----------------------------------------------------------------------
    def _sense(self, run: PartRun, now: datetime) -> Context:
        ctx = Context(Actor(ActorKind.SENSOR, f"{run.name}.twin"), None, self.ids())
        good: list[Entity] = []
        for item in run.twin.observe():
            if isinstance(item, Entity):
                good.append(item)
                continue
            try:  # a twin may hand over raw NGSI-LD dicts; validate them like any other ingress
                good.append(Entity.from_ngsi(item))
            except ValidationError as exc:
                self.store.dead_letter(f"{run.name}.twin", exc, item, now=now)
                self.stats.rejected_observations += 1
        self._drain_rejected(run, now)
        fresh: list[Entity] = []
        for entity, result in zip(good, self.store.upsert_many(good, now=now, context_id=ctx.id), strict=True):
            if _stale_repeat(entity, result.kinds.values()):  # e.g. a frozen sensor: counted and kept apart
                self.stats.stale_observations += 1
                self.store.dead_letter(f"{run.name}.twin", StaleObservation(
                    entity.id, None, "stale: no attribute is newer than the stored observation"),
                    entity.to_ngsi(), now=now)
            else:
                fresh.append(entity)
        good = fresh
        data: ObservationBatchData = {"domain": run.name, "entities": [e.id for e in good]}
        self.store.append_event(Event(EventType.OBSERVATION, data, ctx, now))
        if self.bus.wants(EventType.OBSERVATION, None) or any(
                self.bus.wants(EventType.OBSERVATION, e.type) for e in good[:1]):
            for entity in good:
                self.bus.publish(observation_event(entity, ctx, now))
        self.stats.observations += len(good)
        self.sensed.extend(good)
        for entity in good:
            self._latest[entity.id] = entity
        return ctx

    def _drain_rejected(self, run: PartRun, now: datetime) -> None:
        """Dead-letter and count what the twin refused at its own boundary."""
        if not isinstance(run.twin, DeadLetterSource):
            return
        for item in run.twin.rejected():
            self.store.dead_letter(item["source"] or f"{run.name}.twin",
                                   ObservationError(None, None, item["reason"]), item["payload"], now=now)
            self.stats.rejected_observations += 1

    def _forecast(self, run: PartRun, snapshot: Snapshot) -> dict[str, Any]:
        forecasts: dict[str, Any] = {}
        for provider in run.forecasters:
            provider.learn(snapshot)
            forecasts.update(provider.forecast(snapshot))
        return forecasts

    def _check_accuracy(self, run: PartRun, now: datetime) -> None:
        """Hand each provider's live accuracy to governance; record a drift event for every demotion."""
        if self.governance is None:
            return
        for provider in run.forecasters:
            if not isinstance(provider, AccuracyReporting):
                continue
            for alarm in self.governance.check_accuracy(run.name, provider.name, provider.accuracy(), now=now):
                self.stats.demotions += 1
                self.store.append_event(Event(EventType.DRIFT, dict(alarm), Context(self._guard, None, self.ids()),
                                              now))

    # ---- decide, orchestrate, govern, act -----------------------------------------------------------
    def _propose(self, run: PartRun, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[Candidate]:
        out: list[Candidate] = []
        for planner in run.planners:
            for proposal in planner(snapshot, forecasts):
                self.stats.proposals += 1
                self.stats.count(run.name, "proposals")
                out.append(Candidate(run.name, proposal))
        return out

    def _act(self, run: PartRun, proposal: ProposedAction, obs_ctx: Context, snapshot: Snapshot, now: datetime,
             review: Any = None) -> None:
        name = run.name
        decision_ctx = obs_ctx.child(Actor(ActorKind.MODEL, proposal.planner or f"{name}.planner"), self.ids)
        if review is None and self.governance is not None:
            review = self.governance.review(proposal, snapshot, domain=name, now=now)
        verdict = str(review.verdict) if review is not None else "act"
        self.stats.verdicts[verdict] = self.stats.verdicts.get(verdict, 0) + 1
        if review is not None and review.degraded:
            self.stats.degraded += 1
            if isinstance(run.twin, TargetSafeState):  # implausible inputs: that target's safe plan
                run.twin.safe_state_for(proposal.target)
                self._log(run, "safe_state_for", proposal.target)
        decision: DecisionData = {"domain": name, "target": proposal.target, "action": proposal.action,
                                  "params": dict(proposal.params), "score": proposal.score, "verdict": verdict,
                                  "planner": proposal.planner}
        self.store.append_event(Event(EventType.DECISION, decision, decision_ctx, now, entity_id=proposal.target))
        outcome: Outcome | None = None
        command_ctx: Context | None = None
        ack_ctx: Context | None = None
        edge = Actor(ActorKind.SYSTEM, f"{name}.actuator-edge")
        if verdict == "act":
            command_ctx = decision_ctx.child(edge, self.ids)
            command: CommandData = {"domain": name, "target": proposal.target, "action": proposal.action,
                                    "params": dict(proposal.params)}
            self.store.append_event(Event(EventType.COMMAND, command, command_ctx, now, entity_id=proposal.target))
            outcome = run.twin.actuate(proposal)
            self._log(run, "actuate", proposal)
            ack_ctx = command_ctx.child(edge, self.ids)
            ack: AckData = {"status": outcome.status, "command": dict(outcome.command),
                            "bound_by": list(outcome.bound_by), "reason": outcome.reason}
            kind = EventType.REFUSAL if outcome.refused else EventType.ACK
            self.store.append_event(Event(kind, ack, ack_ctx, now, entity_id=proposal.target))
            if outcome.refused:
                self.stats.refused += 1
                self.stats.refused_by_edge += 1
            else:
                self.stats.actuated += 1
                self.stats.count(name, "actuated")
                if outcome.status == "clamped":
                    self.stats.clamped += 1
        elif verdict == "advise":
            self.stats.advised += 1
        elif verdict == "queue":
            self.stats.queued += 1
        elif verdict == "refuse":
            self.stats.refused += 1
            self.stats.refused_by_governance += 1
        if self.governance is not None:
            record = (proposal, review, outcome, name, now, {
                "observation": obs_ctx.id, "decision": decision_ctx.id,
                "command": command_ctx.id if command_ctx else None, "ack": ack_ctx.id if ack_ctx else None})
            try:
                self.governance.record(proposal, review, outcome, domain=name, now=now, context=record[5])
            except StoreUnavailable:  # the store went away mid-step: kept, recorded first when it is back
                self._unrecorded.append(record)

    def _retry_records(self) -> None:
        """Record the decisions the store could not take when they were made (a retried append is stored once)."""
        while self._unrecorded and self.governance is not None:
            proposal, review, outcome, name, now, context = self._unrecorded[0]
            self.governance.record(proposal, review, outcome, domain=name, now=now, context=context)
            self._unrecorded.pop(0)
            self.stats.records_retried += 1

    def _hold_blind(self, run: PartRun, now: datetime) -> None:
        """Hold ``run``'s twin in its safe state while the store cannot record (``blind`` events, buffered)."""
        if not run.was_held:
            run.twin.safe_state()
            self._log(run, "safe_state", None)
        run.was_held = True  # the next step with the store back hands control back (Resumable twins)
        self.stats.blind_steps += 1
        self.store.append_event(Event(EventType.BLIND, {"domain": run.name, "reason": "the store is unreachable"},
                                      Context(Actor(ActorKind.SYSTEM, "store-watch"), None, self.ids()), now))

    def _hold_or_release(self, run: PartRun, held: bool, now: datetime) -> None:
        """On a stop or demotion, put the twin in its safe state within this step (and record it); on release,
        hand control back."""
        if held and not run.was_held:
            run.twin.safe_state()
            self._log(run, "safe_state", None)
            if self.governance is not None:
                self.governance.confirm_safe_state(run.name, now=now)
        elif not held and run.was_held and isinstance(run.twin, Resumable):
            run.twin.resume()
            self._log(run, "resume", None)
        run.was_held = held

    def _log(self, run: PartRun, call: str, arg: Any) -> None:
        if self.journal is not None:
            self.journal.append((run.name, call, arg))

    def _edge_events(self, run: PartRun, now: datetime) -> None:
        """Record what actuator edges did on their own (forced changes at a limit, ends of holds)."""
        if not isinstance(run.twin, EdgeEventSource):
            return
        edge = Actor(ActorKind.SYSTEM, f"{run.name}.actuator-edge")
        events = [Event(EventType.EDGE_ACTION, dict(item), Context(edge, None, self.ids()), now,
                        entity_id=item["target"] or None) for item in run.twin.edge_events()]
        if events:
            self.store.append_events(events)

    def _elapsed(self) -> float:
        return self.parts[0].twin.elapsed_s()

    def propose(self) -> tuple[list[Candidate], Snapshot]:
        """Sense, learn and decide: every due part's proposals of this step and the snapshot they rest on
        (stops, demotions and approved proposals are handled here)."""
        elapsed = self._elapsed()
        now = self.clock.set_elapsed(elapsed)
        due = [r for r in self.parts if elapsed + _EPS >= r.next_due_s]
        self.sensed = []
        self._contexts = {r.name: self._sense(r, now) for r in due}
        snapshot = Snapshot(now, elapsed, dict(self._latest))
        candidates: list[Candidate] = []
        blind = isinstance(self.store, Interruptible) and not self.store.writable()
        if not blind:
            self._retry_records()
        for run in due:
            run.next_due_s = elapsed + run.twin.decision_interval_s
            forecasts = self._forecast(run, snapshot)
            if blind:  # what it did could not be recorded: its safe state, nothing decided, until the store is back
                self._hold_blind(run, now)
                continue
            self._check_accuracy(run, now)
            stopped = self.governance is not None and self.governance.is_stopped(run.name)
            demoted = self.governance is not None and self.governance.is_demoted(run.name)
            self._hold_or_release(run, stopped or demoted, now)  # demoted: safe state, planners keep advising
            if demoted:
                self.stats.demoted_steps += 1
            if stopped:
                self.stats.stopped_steps += 1
                continue
            if self.governance is not None:
                for proposal, review in self.governance.take_approved(run.name, now=now):
                    self._act(run, proposal, self._contexts[run.name], snapshot, now, review=review)
            candidates.extend(self._propose(run, snapshot, forecasts))
        return candidates, snapshot

    def settle(self, candidates: Sequence[Candidate], snapshot: Snapshot) -> list[Candidate]:
        """The orchestration stage over ``candidates``: resolutions recorded, violations counted; what is kept."""
        return self.settler(candidates, snapshot)

    def act(self, kept: Sequence[Candidate], snapshot: Snapshot) -> None:
        """Govern, actuate and audit every kept proposal of this step."""
        by_name = {r.name: r for r in self.parts}
        for cand in kept:
            run = by_name.get(cand.domain)
            if run is None:
                raise UserError(f"the orchestration stage kept a proposal of {cand.domain!r}, which is not a part of "
                                f"this city ({', '.join(by_name)})")
            ctx = self._contexts.get(cand.domain)
            if ctx is None:  # a part not due this step (e.g. a response the stage picked): it starts the chain
                ctx = self._contexts[cand.domain] = Context(Actor(ActorKind.POLICY, "orchestration"), None, self.ids())
            self._act(run, cand.proposal, ctx, snapshot, snapshot.time)

    def advance(self) -> None:
        """Advance every twin one step and record what the actuator edges did meanwhile."""
        for run in self.parts:
            run.twin.advance(self.step_s)
        after = self.clock.set_elapsed(self._elapsed())
        for run in self.parts:
            self._edge_events(run, after)
        self.stats.steps += 1

    def replay_step(self, calls: Sequence[TwinCall]) -> None:
        """Run one recorded step again without recording anything: due parts sense and their forecast providers
        learn as they did, the twins get the calls the step made on them (``journal``), every twin advances.
        What the twins report on the way (rejects, edge events) was recorded the first time and is dropped."""
        elapsed = self._elapsed()
        now = self.clock.set_elapsed(elapsed)
        due = [r for r in self.parts if elapsed + _EPS >= r.next_due_s]
        for run in due:
            for item in run.twin.observe():
                entity = item if isinstance(item, Entity) else _entity_or_none(item)
                if entity is not None:
                    self._latest[entity.id] = entity
            if isinstance(run.twin, DeadLetterSource):
                run.twin.rejected()
        snapshot = Snapshot(now, elapsed, dict(self._latest))
        for run in due:
            run.next_due_s = elapsed + run.twin.decision_interval_s
            self._forecast(run, snapshot)
        by_name = {r.name: r for r in self.parts}
        for part, call, arg in calls:
            run = by_name[part]
            twin: Any = run.twin
            if call == "actuate":
                twin.actuate(arg)
            elif call == "safe_state_for":
                twin.safe_state_for(arg)
            elif call == "safe_state":
                twin.safe_state()
                run.was_held = True
            elif call == "resume":
                twin.resume()
                run.was_held = False
            else:
                raise ValueError(f"unknown twin call {call!r} in a recovery log")
        for run in self.parts:
            run.twin.advance(self.step_s)
            if isinstance(run.twin, EdgeEventSource):
                run.twin.edge_events()
        self.clock.set_elapsed(self._elapsed())

    def save_checkpoint(self) -> bytes | None:
        """The loop's state between two steps, as bytes another machine can load (:meth:`load_checkpoint`):
        every twin's own (:class:`Checkpointable`), every part's forecast providers (pickled; what they hold of
        their twin is referenced, not copied: all learning state lives there, planners are pure and built again),
        the latest entities and the counters. None when a twin cannot save its state or a provider cannot be
        pickled: only a replay from the start restores it."""
        if not all(isinstance(r.twin, Checkpointable) for r in self.parts):
            return None
        twins: dict[str, bytes] = {}
        for run in self.parts:
            assert isinstance(run.twin, Checkpointable)
            try:
                twins[run.name] = run.twin.save_state()
            except UserError:  # it cannot now (e.g. another twin rides its simulator)
                return None
        governor = getattr(self.governance, "governor", None)
        state = {"latest": self._latest, "stats": self.stats, "unrecorded": self._unrecorded,
                 "parts": [(r.name, r.next_due_s, r.was_held, r.forecasters) for r in self.parts],
                 "governor": None if governor is None else governor.runtime_state()}
        buf = io.BytesIO()
        try:
            _TwinRefPickler(buf, self.parts).dump(state)
        except (pickle.PicklingError, TypeError, AttributeError):  # e.g. a provider holding a live connection
            return None
        return pickle.dumps({"twins": twins, "loop": buf.getvalue()}, protocol=pickle.HIGHEST_PROTOCOL)

    def load_checkpoint(self, data: bytes) -> None:
        """Go on from ``data`` (:meth:`save_checkpoint` of this city's loop in the same mode and seed), right
        after :meth:`open`: each twin loads its state, then the providers, entities and counters."""
        blob = pickle.loads(data)  # written by this deployment's own workers, as Ray's messages are
        saved = blob["twins"]
        for run in self.parts:
            if not isinstance(run.twin, Checkpointable) or run.name not in saved:
                raise UserError(f"the checkpoint holds no state for part {run.name!r}")
            run.twin.load_state(saved[run.name])
        state = _TwinRefUnpickler(io.BytesIO(blob["loop"]), self.parts).load()
        names = [p[0] for p in state["parts"]]
        if names != [r.name for r in self.parts]:
            raise UserError(f"the checkpoint is of parts {names}, not of {[r.name for r in self.parts]}")
        for run, (_, due, held, providers) in zip(self.parts, state["parts"], strict=True):
            run.next_due_s, run.was_held, run.forecasters = due, held, providers
        self._latest, self.stats, self._unrecorded = state["latest"], state["stats"], state["unrecorded"]
        governor = getattr(self.governance, "governor", None)
        if governor is not None and state.get("governor") is not None:
            governor.load_runtime_state(state["governor"])
        self.settler.stats = self.stats
        self.clock.set_elapsed(self._elapsed())

    def step(self) -> None:
        """Run one step of the loop: every due part senses and decides, then every twin advances."""
        candidates, snapshot = self.propose()
        self.act(self.settle(candidates, snapshot), snapshot)
        self.advance()

    def _done(self) -> bool:
        return any(r.twin.done() for r in self.parts)

    def open(self) -> None:
        """Start every twin (in city order); the clock then follows a clocked twin's time of day."""
        self._started = _time.perf_counter()
        for run in self.parts:
            self.stats.by_domain.setdefault(run.name, {"proposals": 0, "actuated": 0})
        for run in self.parts:
            run.twin.start()
            self._opened.append(run)
        clocked = next((r.twin for r in self.parts if isinstance(r.twin, Clocked)), None)
        if clocked is not None:  # observedAt then carries the scenario's real time of day
            self.clock = SimClock(clocked.start_time)

    def done(self) -> bool:
        """True once any part's twin reached its end."""
        return self._done()

    def close(self) -> dict[str, DomainResult]:
        """Close every opened twin (riders first) and integrate; every part's result by domain."""
        results: dict[str, DomainResult] = {}
        try:
            self.stats.sim_s = self._elapsed() if self._opened else 0.0
            for run in reversed(self._opened):  # riders close before the part whose simulator they ride
                results[run.name] = run.twin.close()
            if len(self._opened) == len(self.parts):
                for run in self.parts:  # a coordinating part turns every part's result into the city's
                    if isinstance(run.twin, Integrates):
                        results[run.name] = run.twin.integrate(dict(results), self.stats.to_dict())
        finally:
            self._opened = []
            self.store.flush()
            self.stats.wall_s = _time.perf_counter() - self._started
        return {r.name: results[r.name] for r in self.parts if r.name in results}

    def run(self, progress: Progress | None = None, total_s: float | None = None) -> dict[str, DomainResult]:
        """Run the city to its end; every part's result by domain. ``progress(done_s, total_s)``."""
        try:
            self.open()
            with long_lived():
                if progress is not None:
                    progress(self._elapsed(), total_s or 0.0)
                while not self._done():
                    self.step()
                    if progress is not None:
                        progress(self._elapsed(), total_s or 0.0)
        finally:
            results = self.close()
        return results
