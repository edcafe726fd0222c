"""The orchestration stage: one step's proposals of every domain, settled before governance.

:class:`Precedence` is the uncoordinated stage (Smart City mode and the ablation): the first proposal for a
target wins and nothing else is looked at. :class:`PriorityOrchestrator` is the AI City's: it ranks each
proposal by the priority class its action type serves (each domain declares them in ``DomainMeta.priorities``)
in the order of the versioned policy file (``priority = ["life_safety", "grid_stability", "mobility",
"energy_cost"]``), then settles three kinds of conflict between proposals of different classes:

* **same target** — the higher class keeps the target;
* **needs** — a proposal ``affects`` (takes out of service) an entity a higher-class proposal ``needs`` now or
  needed within the last ``needs_hold_s`` (a proposal always needs its own target);
* **capacity** — proposals ``use`` more of a shared capacity (an entity attribute in the snapshot, e.g. a
  transformer's headroom) than there is: higher classes take it first.

A proposal that loses a conflict is replaced by the best-scored of its own alternatives (``candidates`` with
``params``, which its planner scored on a look-ahead of its model from the current state) that fits; when none
fits, the stage scores the joint outcome of each: the needs of higher classes it leaves out of service, each
weighed by how much it is relied on and by what its outage would cost over the look-ahead (the domains' outage
cost models, :mod:`.costs` — e.g. a junction that gridlocks when dark), and keeps the option that harms least.
Every resolution is kept with its rule and a sentence in plain words.

It also picks the most effective response to the events the domains' responders see (:mod:`.respond`):
each candidate response's predicted outcome over a short look-ahead, ranked by the domain's KPIs; the chosen
one's actions go on to governance like any proposal (resolution ``responded``, with what was weighed).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aicity.core.domain import ProposedAction, Snapshot
from aicity.core.meta import DomainMeta
from aicity.orchestrate.costs import OutageCosts
from aicity.orchestrate.respond import Responder, choose, explain

_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Candidate:
    """One domain's proposal entering the orchestration stage."""

    domain: str
    proposal: ProposedAction
    priority: str = ""
    origin: str = ""
    """Where it was proposed when a city runs as districts (the district's name); empty in one process."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """How one conflict was settled: ``kind`` is ``dropped``, ``substituted``, ``kept`` (no option harmed less) or
    ``responded`` (a response the stage chose to an event); ``winner`` the higher-priority proposal it conflicted
    with."""

    kind: str
    lost: Candidate
    winner: Candidate | None
    rule: str
    reason: str
    replacement: ProposedAction | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """What the stage lets through (replacements included) and how each conflict was settled."""

    kept: list[Candidate]
    resolutions: list[Resolution] = field(default_factory=list)


class Orchestrator(Protocol):
    """The orchestration stage: settles competing proposals of all domains before governance."""

    def settle(self, candidates: Sequence[Candidate], snapshot: Snapshot) -> Settled:
        """Which candidates go on to governance (possibly replaced by an alternative), and why others did not."""
        ...


class Precedence:
    """Per-target precedence: the first proposal for a target wins (parts in city order, planners in order).

    Inside one domain this is the planners' own precedence (e.g. emergency preemption before the AI signal
    planner); across domains the earlier part wins. Nothing else is coordinated.
    """

    rule = "precedence: first part, first planner"

    def settle(self, candidates: Sequence[Candidate], snapshot: Snapshot) -> Settled:
        """Keep the first candidate per target."""
        winner: dict[str, Candidate] = {}
        kept: list[Candidate] = []
        out: list[Resolution] = []
        for cand in candidates:
            first = winner.get(cand.proposal.target)
            if first is None:
                winner[cand.proposal.target] = cand
                kept.append(cand)
            else:
                out.append(Resolution("dropped", cand, first, self.rule,
                                      f"{_who(first)} already took {_short(cand.proposal.target)}"))
        return Settled(kept, out)


@dataclass(frozen=True, slots=True)
class PriorityPolicy:
    """The priority order of the versioned policy file (its version and SHA-256 go into every resolution)."""

    order: tuple[str, ...]
    version: str = ""
    sha256: str = ""
    needs_hold_s: float = 300.0

    def rank(self, priority: str) -> int:
        """0 for the first class; classes not in the order rank after every listed one."""
        return self.order.index(priority) if priority in self.order else len(self.order)

    def label(self, priority: str) -> str:
        """The class in plain words."""
        return priority.replace("_", " ") if priority else "unclassed"


def _short(eid: str) -> str:
    return eid.removeprefix("urn:ngsi-ld:")


def _who(c: Candidate) -> str:
    return f"{c.domain}'s {c.proposal.action_type} ({c.proposal.planner or 'planner'})"


def _capacity(snapshot: Snapshot, key: str) -> float | None:
    """The capacity ``"<entity id>#<attribute>"`` names, read from the snapshot (None when not published)."""
    eid, _, attr = key.rpartition("#")
    ent = snapshot.entities.get(eid)
    if ent is None or not attr:
        return None
    value = ent.get(attr)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _overflow(option: ProposedAction, snapshot: Snapshot, used: Mapping[str, float]) -> tuple[str, float] | None:
    """The first capacity ``option`` would take beyond what is left after ``used`` (its key and capacity)."""
    for key, amount in option.uses.items():
        cap = _capacity(snapshot, key)
        if cap is not None and amount > 0 and used.get(key, 0.0) + amount > cap + _EPS:
            return key, cap
    return None


def _alternatives(p: ProposedAction) -> list[ProposedAction]:
    """The proposal's own alternatives that carry ``params``, best score first (the planner's order on ties)."""
    alts: list[tuple[float, int, ProposedAction]] = []
    for i, c in enumerate(p.candidates):
        params = c.get("params")
        if not isinstance(params, Mapping) or dict(params) == dict(p.params):
            continue
        score = c.get("score")
        alt = dataclasses.replace(
            p, params=dict(params), score=float(score) if isinstance(score, (int, float)) else None,
            affects=tuple(str(x) for x in c.get("affects", ())),
            uses={str(k): float(v) for k, v in dict(c.get("uses", {})).items()})
        alts.append((-(alt.score if alt.score is not None else -math.inf), i, alt))
    return [a for _, _, a in sorted(alts, key=lambda t: (t[0], t[1]))]


class PriorityOrchestrator:
    """The AI City's orchestration stage (see the module docstring)."""

    def __init__(self, policy: PriorityPolicy, priorities: Mapping[str, Mapping[str, str]],
                 costs: OutageCosts | None = None) -> None:
        self.policy = policy
        self.priorities = {d: dict(p) for d, p in priorities.items()}
        self.costs = costs if costs is not None else OutageCosts()
        self._held: dict[str, tuple[float, int, Candidate]] = {}  # needed entity -> (until, rank, who needs it)
        self._weight: dict[str, float] = {}  # needed entity -> how much it is relied on (1 for a proposal's own)

    @property
    def rule(self) -> str:
        """The rule named in every resolution: the policy's order and version."""
        return f"priority {' > '.join(self.policy.order)} (policy {self.policy.version})"

    def classify(self, cand: Candidate) -> Candidate:
        """The candidate with its priority class from its domain's declaration."""
        if cand.priority:
            return cand
        cls = self.priorities.get(cand.domain, {}).get(cand.proposal.action_type, "")
        return dataclasses.replace(cand, priority=cls)

    def settle(self, candidates: Sequence[Candidate], snapshot: Snapshot) -> Settled:
        """Rank by class, then settle same-target, needs and capacity conflicts (see the module docstring)."""
        now = snapshot.elapsed_s
        self.costs.update(snapshot)
        ranked = sorted((self.classify(c) for c in candidates), key=lambda c: self.policy.rank(c.priority))
        self._held = {k: v for k, v in self._held.items() if v[0] >= now - _EPS}
        for who, eids, weights in standing_needs(snapshot):  # what a domain publishes it relies on
            rank = self.policy.rank(who.priority)
            for eid in eids:
                held = self._held.get(eid)
                if held is None or rank < held[1]:
                    self._held[eid] = (now, rank, who)
                    self._weight[eid] = weights.get(eid, 1.0)
        for cand in ranked:  # what each proposal needs (its own target included), held for needs_hold_s
            rank = self.policy.rank(cand.priority)
            for eid in (cand.proposal.target, *cand.proposal.needs):
                held = self._held.get(eid)
                if held is None or rank <= held[1]:
                    self._held[eid] = (now + self.policy.needs_hold_s, rank, cand)
                    self._weight[eid] = 1.0
        kept: list[Candidate] = []
        out: list[Resolution] = []
        owner: dict[str, Candidate] = {}
        used: dict[str, float] = {}
        for cand in ranked:
            rank = self.policy.rank(cand.priority)
            first = owner.get(cand.proposal.target)
            if first is not None:
                rule = self.rule if first.priority != cand.priority else Precedence.rule
                out.append(Resolution("dropped", cand, first, rule, self._same_target(cand, first)))
                continue
            options = [cand.proposal, *_alternatives(cand.proposal)]
            chosen: ProposedAction | None = None
            blocker: tuple[Candidate, str] | None = None
            for option in options:
                hit = self._blocked(cand, option, rank, snapshot, used)
                if hit is None:
                    chosen = option
                    break
                if blocker is None:
                    blocker = hit
            if chosen is None:  # nothing fits: the option that harms the fewest needs (setting the proposal
                # aside would not bring back what its options leave out of service), else set it aside
                chosen = self._least_harm(cand, options, rank, snapshot, used)
                if chosen is None:
                    assert blocker is not None
                    out.append(Resolution("dropped", cand, blocker[0], self.rule,
                                          f"{_who(cand)} at {_short(cand.proposal.target)} set aside: {blocker[1]}; "
                                          f"none of its {len(options) - 1} alternatives fits"))
                    continue
                assert blocker is not None
                blocker = (blocker[0], f"{blocker[1]}; no alternative keeps every need, so the one that harms the "
                                       f"least: {self._weighed(cand, cand.proposal, chosen, rank)}")
                if chosen is cand.proposal:
                    out.append(Resolution("kept", cand, blocker[0], self.rule,
                                          f"{_who(cand)} at {_short(cand.proposal.target)} kept: {blocker[1]} "
                                          "(setting it aside would not bring back what it leaves out of service)"))
            if chosen is not cand.proposal:
                assert blocker is not None
                new = dataclasses.replace(chosen, inputs={**chosen.inputs, "orchestration": blocker[1]})
                out.append(Resolution("substituted", cand, blocker[0], self.rule,
                                      f"{_who(cand)} at {_short(cand.proposal.target)}: its first choice "
                                      f"{dict(cand.proposal.params)} gave way ({blocker[1]}); took its alternative "
                                      f"{dict(chosen.params)} instead", new))
                cand = dataclasses.replace(cand, proposal=new)
            owner[cand.proposal.target] = cand
            for key, amount in cand.proposal.uses.items():
                used[key] = used.get(key, 0.0) + float(amount)
            kept.append(cand)
        self._respond(snapshot, owner, kept, out)
        return Settled(kept, out)

    def _respond(self, snapshot: Snapshot, owner: Mapping[str, Candidate], kept: list[Candidate],
                 out: list[Resolution]) -> None:
        """The most effective response to each event a domain's responder sees (:mod:`.respond`): its actions join
        the kept proposals (unless their target is taken) with a ``responded`` resolution saying what was weighed."""
        for model in self.costs.models:
            if not isinstance(model, Responder):
                continue
            for occasion in model.occasions(snapshot):
                chosen = choose(occasion)
                if chosen is None or not chosen.actions:
                    continue
                reason = explain(occasion, chosen)
                for domain, action in chosen.actions:
                    if action.target in owner:
                        continue
                    act = dataclasses.replace(action, inputs={**action.inputs, "orchestration": reason})
                    cand = self.classify(Candidate(domain, act))
                    kept.append(cand)
                    out.append(Resolution("responded", cand, None, self.rule, reason))

    def _least_harm(self, cand: Candidate, options: Sequence[ProposedAction], rank: int, snapshot: Snapshot,
                    used: Mapping[str, float]) -> ProposedAction | None:
        """Among options within every capacity, the one taking the fewest higher-class needs out of service
        (first in order on ties); None when none fits the capacities or every one harms as the first does."""
        best: tuple[float, ProposedAction] | None = None
        for option in options:
            if _overflow(option, snapshot, used) is not None:
                continue
            harm = self._harm(cand, option, rank)
            if best is None or harm < best[0] - _EPS:
                best = (harm, option)
        if best is None:
            return None
        first = self._harm(cand, cand.proposal, rank)
        return best[1] if best[1] is not cand.proposal or abs(first - best[0]) <= _EPS else None

    def _weighed(self, cand: Candidate, first: ProposedAction, chosen: ProposedAction, rank: int) -> str:
        """The harm of the first choice and of the chosen option in plain words, with the costliest need the first
        choice leaves out of service (its weight and what its outage costs each user over the look-ahead)."""
        def worst(option: ProposedAction) -> str:
            hit = [(self._weight.get(e, 1.0) * self.costs.cost(e), e) for e in option.affects
                   if (held := self._held.get(e)) is not None and held[1] < rank and held[2].domain != cand.domain]
            if not hit:
                return ""
            _, eid = max(hit)
            return (f", most of it {_short(eid)} (relied on {self._weight.get(eid, 1.0):g}, its outage costing "
                    f"{self.costs.cost(eid):g} s per user)")
        return (f"weighing each need by how much it is relied on and what its outage costs over the look-ahead, "
                f"the first choice harms {self._harm(cand, first, rank):.3g}{worst(first)}, the option kept "
                f"{self._harm(cand, chosen, rank):.3g}{worst(chosen)}")

    def _harm(self, cand: Candidate, option: ProposedAction, rank: int) -> float:
        """How much of what higher classes of other domains rely on ``option`` takes out of service: each need's
        weight times what its outage costs over the look-ahead."""
        return sum(self._weight.get(eid, 1.0) * self.costs.cost(eid) for eid in option.affects
                   if (held := self._held.get(eid)) is not None and held[1] < rank and held[2].domain != cand.domain)

    def _same_target(self, lost: Candidate, won: Candidate) -> str:
        return (f"{_who(won)} ({self.policy.label(won.priority)}) kept {_short(lost.proposal.target)} over "
                f"{_who(lost)} ({self.policy.label(lost.priority)})")

    def _blocked(self, cand: Candidate, option: ProposedAction, rank: int, snapshot: Snapshot,
                 used: Mapping[str, float]) -> tuple[Candidate, str] | None:
        """The higher-class proposal ``option`` would harm, with why; None when it harms none."""
        for eid in option.affects:
            held = self._held.get(eid)
            if held is not None and held[1] < rank and held[2].domain != cand.domain:
                need = held[2]
                return need, (f"it would take {_short(eid)} out of service, which {_who(need)} needs "
                              f"({self.policy.label(need.priority)} before {self.policy.label(cand.priority)})")
        over = _overflow(option, snapshot, used)
        if over is not None:
            key, cap = over
            return cand, (f"{_short(key)} has {cap:g} left and higher-priority proposals took "
                          f"{used.get(key, 0.0):g} of it")
        return None


def reads(candidates: Sequence[Candidate]) -> set[str]:
    """The entities whose state the stage reads to settle ``candidates``: those named in a ``uses`` key (their own
    or an alternative's). With the entities that carry ``needs`` this is all of the snapshot it reads."""
    out: set[str] = set()
    for cand in candidates:
        keys = list(cand.proposal.uses)
        for c in cand.proposal.candidates:
            keys += [str(k) for k in dict(c.get("uses", {}))]
        out.update(k.split("#", 1)[0] for k in keys)
    return out


def standing_needs(snapshot: Snapshot) -> list[tuple[Candidate, list[str], dict[str, float]]]:
    """Needs a domain publishes as an entity (``needs``: entity ids, ``priorityClass``, optional ``needWeights``
    and ``domain``), e.g. the ambulance service's emergency route network: who relies, on what, how much."""
    out: list[tuple[Candidate, list[str], dict[str, float]]] = []
    for ent in snapshot.entities.values():
        needs, cls = ent.get("needs"), ent.get("priorityClass")
        if not isinstance(needs, list) or not isinstance(cls, str):
            continue
        raw = ent.get("needWeights")
        weights = {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)} \
            if isinstance(raw, Mapping) else {}
        who = Candidate(str(ent.get("domain") or ent.type), ProposedAction(
            ent.id, "standing_need", planner=_short(ent.id), action_type="standing_need"), cls)
        out.append((who, [str(n) for n in needs], weights))
    return out


def violations(kept: Sequence[Candidate], snapshot: Snapshot, policy: PriorityPolicy,
               priorities: Mapping[str, Mapping[str, str]], costs: OutageCosts | None = None) -> list[str]:
    """Conflicts a set of proposals that will act still holds: a lower class taking out of service what a
    higher class of another domain needs while one of its own alternatives within capacity would harm less (each
    need weighed as the stage weighs it, by ``costs``), or taking capacity a higher class needs beyond what there
    is.

    Whichever stage settled them; the benchmark counts these as priority violations (0 expected in AI mode).
    """
    def cls(c: Candidate) -> int:
        return policy.rank(c.priority or priorities.get(c.domain, {}).get(c.proposal.action_type, ""))

    costs = costs if costs is not None else OutageCosts()
    costs.update(snapshot)
    out: list[str] = []
    needs: dict[str, tuple[int, Candidate, float]] = {}
    for who, eids, weights in standing_needs(snapshot):
        for eid in eids:
            if eid not in needs or cls(who) < needs[eid][0]:
                needs[eid] = (cls(who), who, weights.get(eid, 1.0))
    for c in kept:
        for eid in (c.proposal.target, *c.proposal.needs):
            if eid not in needs or cls(c) < needs[eid][0]:
                needs[eid] = (cls(c), c, 1.0)

    def harmed(c: Candidate, option: ProposedAction) -> tuple[float, list[str]]:
        eids = [e for e in option.affects if e in needs and needs[e][0] < cls(c) and needs[e][1].domain != c.domain]
        return sum(needs[e][2] * costs.cost(e) for e in eids), eids

    for c in kept:
        harm, eids = harmed(c, c.proposal)
        if not eids:
            continue
        fitting = [a for a in _alternatives(c.proposal) if _overflow(a, snapshot, {}) is None]
        if any(harmed(c, a)[0] < harm - _EPS for a in fitting):  # avoidable: an alternative of its own harmed less
            out.append(f"{_who(c)} takes {', '.join(_short(e) for e in eids)} out of service, needed by "
                       f"{_who(needs[eids[0]][1])}, while one of its alternatives harmed less")
    by_key: dict[str, list[tuple[int, float, Candidate]]] = {}
    for c in kept:
        for key, amount in c.proposal.uses.items():
            by_key.setdefault(key, []).append((cls(c), float(amount), c))
    for key, uses in by_key.items():
        cap = _capacity(snapshot, key)
        if cap is None:
            continue
        total = 0.0
        for rank, amount, c in sorted(uses, key=lambda t: t[0]):
            total += max(amount, 0.0)
            if total > cap + _EPS and any(r < rank for r, _, _ in uses):
                out.append(f"{_who(c)} takes {amount:g} of {_short(key)} beyond its {cap:g}")
    return out


def priority_table(metas: Mapping[str, DomainMeta]) -> dict[str, dict[str, str]]:
    """Each domain's action type -> priority class, from the domains' metadata (``DomainMeta.priorities``)."""
    return {name: dict(meta.priorities or {}) for name, meta in metas.items()}
