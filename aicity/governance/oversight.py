"""Human oversight: autonomy levels from a versioned policy, envelopes, the stop, approvals and overrides.

The run loop calls :meth:`Governor.review` on every proposal and :meth:`Governor.record` after acting (or not);
every decision, stop, approval, override and reversal goes into the ledger. Stops, approvals and the domains
seen live in the run's state store as documents (collections ``stops``, ``approvals``, ``domains``), so a stop
pressed from another process is seen at the next step and survives into the next run (see ``carry_stops``).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from aicity.core.context import Context
from aicity.core.domain import Outcome, ProposedAction, Snapshot
from aicity.core.errors import UserError
from aicity.core.store import StateStore
from aicity.governance.ledger import Ledger
from aicity.governance.plausibility import PlausibilityChecker, PlausibilityReport
from aicity.governance.records import (
    DecisionRecord,
    InputRef,
    ModelInfo,
    build_record,
    input_entity_id,
    input_refs,
    iso,
    jsonable,
)
from aicity.governance.rules import (
    AccuracyGuard,
    AutonomyLevel,
    DomainPolicy,
    EnvelopeLimit,
    Policy,
    PolicyRule,
    PolicySource,
)

__all__ = ["AccuracyGuard", "Approval", "ApprovalQueue", "AutonomyLevel", "DomainPolicy", "EnvelopeLimit",
           "Governor", "Policy", "PolicyRule", "PolicySource", "Review", "Verdict"]


class Verdict(StrEnum):
    """What the loop must do with a proposal."""

    ACT = "act"
    ADVISE = "advise"
    QUEUE = "queue"
    REFUSE = "refuse"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Review:
    """The governor's verdict on one proposal."""

    verdict: Verdict
    autonomy: AutonomyLevel
    reasons: tuple[str, ...] = ()
    degraded: bool = False
    owner_role: str = ""
    limits_evaluated: tuple[str, ...] = ()
    limits_bound: tuple[str, ...] = ()
    issues: tuple[str, ...] = ()
    inputs: tuple[InputRef, ...] = ()
    notify: bool = False
    approvals: tuple[Mapping[str, Any], ...] = ()
    rule: Mapping[str, str] = field(default_factory=dict)

    @property
    def act(self) -> bool:
        """True when the loop may actuate the proposal now."""
        return self.verdict is Verdict.ACT


def _proposal_json(p: ProposedAction) -> dict[str, Any]:
    out: dict[str, Any] = jsonable({"target": p.target, "action": p.action, "params": p.params, "score": p.score,
                     "candidates": list(p.candidates), "inputs": p.inputs, "forecasts": p.forecasts,
                     "planner": p.planner, "action_type": p.action_type})
    return out


def _proposal_from_json(d: Mapping[str, Any]) -> ProposedAction:
    return ProposedAction(d["target"], d["action"], d.get("params", {}), d.get("score"), d.get("candidates", ()),
                          d.get("inputs", {}), d.get("forecasts", {}), d.get("planner", ""),
                          d.get("action_type", "default"))


APPROVALS, STOPS, DOMAINS = "approvals", "stops", "domains"


@dataclass(frozen=True, slots=True)
class Approval:
    """One entry of the approvals queue."""

    id: int
    record_id: str
    domain: str
    created: str
    proposal: ProposedAction
    status: str
    decided: str | None = None
    by: str | None = None
    reason: str | None = None


def _need_reason(reason: str | None, what: str) -> str:
    if reason is None or not reason.strip():
        raise UserError(f"{what} needs a reason (give --reason TEXT)")
    return reason.strip()


class ApprovalQueue:
    """Proposals awaiting a human decision, kept in the run's store; decisions are ledgered."""

    def __init__(self, store: StateStore, ledger: Ledger | None = None) -> None:
        self.store = store
        self.ledger = ledger

    def enqueue(self, record_id: str, proposal: ProposedAction, *, domain: str, now: datetime) -> int:
        """Queue a proposal; returns its approval id."""
        return self.store.doc_add(APPROVALS, {
            "record_id": record_id, "domain": domain, "created": iso(now), "proposal": _proposal_json(proposal),
            "status": "pending", "decided": None, "by": None, "reason": None, "taken": False})

    @staticmethod
    def _item(key: str, d: Mapping[str, Any]) -> Approval:
        return Approval(int(key), d["record_id"], d["domain"], d["created"], _proposal_from_json(d["proposal"]),
                        d["status"], d.get("decided"), d.get("by"), d.get("reason"))

    def entries(self, status: str | None = "pending", domain: str | None = None) -> list[Approval]:
        """Queue entries, oldest first."""
        where: dict[str, Any] = {}
        if status is not None:
            where["status"] = status
        if domain is not None:
            where["domain"] = domain
        items = [self._item(k, d) for k, d in self.store.doc_query(APPROVALS, where)]
        return sorted(items, key=lambda a: a.id)

    def get(self, approval_id: int) -> Approval:
        """One entry; :class:`UserError` when unknown."""
        d = self.store.doc_get(APPROVALS, str(approval_id))
        if d is None:
            raise UserError(f"no approval {approval_id} in the queue")
        return self._item(str(approval_id), d)

    def decide(self, approval_id: int, approve: bool, *, reason: str, by: str, now: datetime) -> Approval:
        """Approve or reject a pending entry (a reason is mandatory; decided once, even by racing processes);
        the decision is ledgered."""
        why = _need_reason(reason, "approving" if approve else "rejecting")
        item = self.get(approval_id)
        if item.status != "pending":
            raise UserError(f"approval {approval_id} is already {item.status}")
        status = "approved" if approve else "rejected"
        doc = self.store.doc_get(APPROVALS, str(approval_id)) or {}
        new = {**doc, "status": status, "decided": iso(now), "by": by, "reason": why}
        if not self.store.doc_cas(APPROVALS, str(approval_id), {"status": "pending"}, new):
            raise UserError(f"approval {approval_id} is already {self.get(approval_id).status}")
        if self.ledger is not None:
            self.ledger.append({"id": f"approval-{self.ledger.size:07d}", "kind": "approval", "time": iso(now),
                                "domain": item.domain, "approval_id": approval_id, "refers_to": item.record_id,
                                "decision": status, "by": by, "reason": why})
        return self.get(approval_id)

    def take_approved(self, domain: str, *, now: datetime | None = None,
                      max_age_s: float | None = None) -> list[Approval]:
        """Approved entries not yet actuated (each taken once, compare-and-set); too old ones are expired."""
        out = []
        for key, doc in self.store.doc_query(APPROVALS, {"status": "approved", "domain": domain, "taken": False}):
            item = self._item(key, doc)
            expired = (now is not None and max_age_s is not None
                       and (now - datetime.fromisoformat(item.created)).total_seconds() > max_age_s)
            new = {**doc, "taken": True, "status": "expired" if expired else "approved"}
            if self.store.doc_cas(APPROVALS, key, {"status": "approved", "taken": False}, new) and not expired:
                out.append(item)
        return out


def _stop_text(d: Mapping[str, Any]) -> str:
    return f"{d.get('scope')} since {d.get('time')} by {d.get('by')}: {d.get('reason')}"


@dataclass
class Governor:
    """Reviews every proposal (stop, autonomy, plausibility, envelope) and ledgers every decision."""

    ledger: Ledger
    policy: Policy = field(default_factory=Policy.load)
    plausibility: Mapping[str, PlausibilityChecker] = field(default_factory=dict)
    models: Mapping[str, ModelInfo] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    _acts: dict[tuple[str, str], deque[datetime]] = field(default_factory=dict)
    _snap: dict[str, tuple[Snapshot, PlausibilityReport]] = field(default_factory=dict)
    _hashes: dict[str, tuple[Any, str]] = field(default_factory=dict)
    _levels: dict[tuple[str, str], AutonomyLevel] = field(default_factory=dict)
    _demoted: dict[tuple[str, str], str] = field(default_factory=dict)
    _known: set[str] = field(default_factory=set)
    _noticed: set[tuple[str, str]] = field(default_factory=set)
    notices: list[str] = field(default_factory=list)
    store: StateStore = field(init=False)
    queue: ApprovalQueue = field(init=False)

    def __post_init__(self) -> None:
        self.store = self.ledger.store
        self.queue = ApprovalQueue(self.store, self.ledger)

    # ---- checkpoints --------------------------------------------------------------------------
    def runtime_state(self) -> dict[str, Any]:
        """What this governor holds in memory between steps (counters, rate windows, autonomy changed at run
        time, demotions, plausibility memories), for a district's checkpoint; the store and ledger are kept apart."""
        return {"counts": Counter(self.counts), "notifications": list(self.notifications),
                "acts": {k: deque(v, maxlen=v.maxlen) for k, v in self._acts.items()},
                "levels": dict(self._levels), "demoted": dict(self._demoted), "known": set(self._known),
                "noticed": set(self._noticed), "notices": list(self.notices),
                "plausibility": {d: (Counter(c.counts), dict(c._last)) for d, c in self.plausibility.items()}}

    def load_runtime_state(self, state: Mapping[str, Any]) -> None:
        """Go on from :meth:`runtime_state` of the governor this one replaces (same domains and policy)."""
        self.counts, self.notifications = Counter(state["counts"]), list(state["notifications"])
        self._acts = dict(state["acts"])
        self._levels, self._demoted = dict(state["levels"]), dict(state["demoted"])
        self._known, self._noticed, self.notices = set(state["known"]), set(state["noticed"]), list(state["notices"])
        for domain, (counts, last) in state["plausibility"].items():
            checker = self.plausibility.get(domain)
            if checker is not None:
                checker.counts, checker._last = Counter(counts), dict(last)
        self._snap.clear()

    # ---- domains ------------------------------------------------------------------------------
    def register_domains(self, names: Iterable[str], *, now: datetime) -> None:
        """Record the domains governed in this store (the stop button refuses any other name)."""
        for name in names:
            if name not in self._known and self.store.doc_get(DOMAINS, name) is None:
                self.store.doc_put(DOMAINS, name, {"name": name, "first_seen": iso(now)})
            self._known.add(name)

    def known_domains(self) -> list[str]:
        """The domains recorded in this store."""
        return sorted({k for k, _ in self.store.doc_query(DOMAINS)} | self._known)

    # ---- stop ---------------------------------------------------------------------------------
    def stop(self, domain: str | None = None, *, reason: str, by: str, now: datetime,
             known: Iterable[str] = ()) -> None:
        """Stop the AI globally (``domain=None``) or for one known domain (recorded in this store, or in
        ``known``: e.g. the installed domain plug-ins); an unknown name is refused. Recorded in the ledger."""
        why = _need_reason(reason, "a stop")
        if domain is not None:
            allowed = set(known) | set(self.known_domains())
            if domain not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                raise UserError(f"unknown domain {domain!r}: nothing stopped (known domains: {names})")
        scope = domain or "*"
        self.store.doc_put(STOPS, scope, {"scope": scope, "active": True, "reason": why, "by": by,
                                          "time": iso(now), "safe_state_done": False, "safe_state_time": None})
        self._ledger_event("stop", now, {"domain": scope, "by": by, "reason": why})
        self.counts["stops"] += 1

    def resume(self, domain: str | None = None, *, reason: str, by: str, now: datetime) -> None:
        """Lift an active stop (a person, with a reason); recorded in the ledger."""
        why = _need_reason(reason, "resuming")
        scope = domain or "*"
        doc = self.store.doc_get(STOPS, scope)
        if doc is None or not doc.get("active"):
            active = [str(d["scope"]) for _, d in self.store.doc_query(STOPS, {"active": True})]
            raise UserError(f"no active stop for {'every domain' if scope == '*' else scope!r} to resume "
                            f"(active stops: {', '.join(active) or 'none'})")
        self.store.doc_put(STOPS, scope, {**doc, "active": False, "resumed_by": by, "resumed_reason": why,
                                          "resumed_time": iso(now)})
        self._ledger_event("resume", now, {"domain": scope, "by": by, "reason": why})
        self.counts["resumes"] += 1

    def stops(self, *, active: bool | None = True) -> list[dict[str, Any]]:
        """Stop documents (active ones by default)."""
        where = None if active is None else {"active": active}
        return [d for _, d in self.store.doc_query(STOPS, where)]

    def _active(self, domain: str) -> list[dict[str, Any]]:
        out = []
        for scope in ("*", domain):
            doc = self.store.doc_get(STOPS, scope)
            if doc is not None and doc.get("active"):
                out.append(doc)
        return out

    def is_stopped(self, domain: str) -> bool:
        """True when a global or per-domain stop is active."""
        return bool(self._active(domain))

    def needs_safe_state(self, domain: str) -> bool:
        """True when a stop covers ``domain`` and its actuators have not yet been returned to the safe state."""
        return any(not d.get("safe_state_done") for d in self._active(domain))

    def confirm_safe_state(self, domain: str, *, now: datetime) -> None:
        """Record that ``twin.safe_state()`` ran for ``domain`` after a stop."""
        for doc in self._active(domain):
            if not doc.get("safe_state_done"):
                self.store.doc_put(STOPS, str(doc["scope"]), {**doc, "safe_state_done": True,
                                                               "safe_state_time": iso(now)})
        self._ledger_event("safe_state", now, {"domain": domain})

    def carry_stops(self, previous: StateStore, *, source: str, now: datetime) -> list[str]:
        """Carry the active stops of a previous run's store into this one (ledgered): a stop lasts until a
        person resumes it, whatever runs in between. Returns the scopes carried."""
        carried = []
        for _, doc in previous.doc_query(STOPS, {"active": True}):
            scope = str(doc["scope"])
            if scope != "*":
                self.register_domains([scope], now=now)
            self.store.doc_put(STOPS, scope, {**doc, "safe_state_done": False, "safe_state_time": None,
                                              "carried_over_from": source})
            self._ledger_event("stop", now, {"domain": scope, "by": doc.get("by"), "reason": doc.get("reason"),
                                             "stopped_at": doc.get("time"), "carried_over_from": source})
            carried.append(scope)
        for name, _ in previous.doc_query(DOMAINS):
            self.register_domains([name], now=now)
        return carried

    # ---- autonomy changes at run time ------------------------------------------------------------
    def set_autonomy(self, domain: str, level: AutonomyLevel | str, *, reason: str, by: str, now: datetime,
                     action_type: str = "*") -> None:
        """Change the autonomy level at run time (e.g. demote to advise when forecast accuracy drops); ledgered."""
        why = _need_reason(reason, "changing the autonomy level")
        try:
            lvl = AutonomyLevel(level)
        except ValueError:
            raise UserError(f"autonomy {level!r} is not one of {', '.join(a.value for a in AutonomyLevel)}") from None
        self._levels[(domain, action_type)] = lvl
        if lvl in (AutonomyLevel.NOTIFY, AutonomyLevel.AUTONOMOUS):
            self._demoted.pop((domain, action_type), None)  # a person (or policy) restored acting
        self._ledger_event("autonomy", now, {"domain": domain, "action_type": action_type, "level": lvl.value,
                                             "by": by, "reason": why})

    # ---- forecast accuracy guards ----------------------------------------------------------------
    def check_accuracy(self, domain: str, model: str, stats: Mapping[str, float], *,
                       now: datetime) -> list[dict[str, Any]]:
        """Compare a model's live accuracy with the policy's guards; demote (ledgered) where it is worse than
        declared. Returns one alarm per new demotion (the loop records it as a drift event)."""
        alarms: list[dict[str, Any]] = []
        for guard in self.policy.accuracy:
            key = (domain, guard.action_type)
            if key in self._demoted or not guard.matches(domain, model):
                continue
            n, ratio = float(stats.get("n", 0.0)), float(stats.get("ratio", 1.0))
            if n < guard.min_samples or ratio <= guard.max_error_ratio:
                continue
            reason = (f"forecast accuracy of {model} below the declared level: one-step error {ratio:.2f}x "
                      f"persistence over {n:.0f} forecasts (guard {guard.name}: at most "
                      f"{guard.max_error_ratio:g}x)")
            self.set_autonomy(domain, guard.demote_to, reason=reason, by="governance.accuracy-guard", now=now,
                              action_type=guard.action_type)
            self._demoted[key] = guard.name
            self.counts["accuracy_demotions"] += 1
            alarms.append({"guard": guard.name, "domain": domain, "model": model, "action_type": guard.action_type,
                           "level": guard.demote_to.value, "ratio": round(ratio, 4), "n": n,
                           "mae": stats.get("mae"), "naive_mae": stats.get("naive_mae"), "reason": reason})
        return alarms

    def is_demoted(self, domain: str) -> bool:
        """True while an accuracy guard holds an action type of ``domain`` below acting."""
        return any(d == domain for d, _ in self._demoted)

    # ---- rules that fall back to the site default ----------------------------------------------
    def check_rules(self, domain: str, action_types: Iterable[str], *, now: datetime) -> list[str]:
        """Ledger an explicit notice for each declared action type that no rule (site or domain) covers."""
        return [n for t in action_types if (n := self._fallback_notice(domain, t, now, declared=True))]

    def _fallback_notice(self, domain: str, action_type: str, now: datetime, *, declared: bool) -> str:
        rule = self.policy.rule_for(domain, action_type)
        if not self.policy.is_fallback(rule) or (domain, action_type) in self._noticed:
            return ""
        self._noticed.add((domain, action_type))
        what = "declared" if declared else "undeclared (not in the domain's meta.action_types)"
        text = (f"{domain}/{action_type} ({what}) has no rule in the site policy or the {domain} domain defaults: "
                f"the site [default] applies ({rule.autonomy.value}, owner {rule.owner_role}; {rule.source})")
        self._ledger_event("policy_notice", now, {"domain": domain, "action_type": action_type,
                                                  "declared": declared, "rule": rule.ref(), "notice": text})
        self.counts["policy_default_fallbacks"] += 1
        self.notices.append(text)
        return text

    def autonomy(self, domain: str, action_type: str) -> tuple[AutonomyLevel, PolicyRule]:
        """The effective autonomy level (a run-time change wins over the policy) and the policy rule."""
        rule = self.policy.rule_for(domain, action_type)
        level = self._levels.get((domain, action_type)) or self._levels.get((domain, "*")) or rule.autonomy
        return level, rule

    # ---- overrides ----------------------------------------------------------------------------
    def override(self, record_id: str, *, reason: str, by: str, now: datetime,
                 replacement: ProposedAction | None = None) -> str:
        """Override a decision (optionally with a replacement action); the reason is mandatory."""
        return self._correction("override", record_id, reason, by, now, replacement)

    def reverse(self, record_id: str, *, reason: str, by: str, now: datetime) -> str:
        """Reverse an actuated decision; the reason is mandatory."""
        return self._correction("reversal", record_id, reason, by, now, None)

    def _correction(self, kind: str, record_id: str, reason: str, by: str, now: datetime,
                    replacement: ProposedAction | None) -> str:
        why = _need_reason(reason, f"an {kind}" if kind[0] in "aeiou" else f"a {kind}")
        target = self.ledger.get(record_id)
        if target is None or target.get("kind") != "decision":
            raise UserError(f"no decision record {record_id!r} in the ledger")
        extra: dict[str, Any] = {"domain": target.get("domain"), "refers_to": record_id, "by": by, "reason": why}
        if replacement is not None:
            extra["replacement"] = _proposal_json(replacement)
        self.counts[kind + "s"] += 1
        return self._ledger_event(kind, now, extra)

    def _ledger_event(self, kind: str, now: datetime, data: Mapping[str, Any]) -> str:
        rid = f"{kind}-{self.ledger.size:07d}"
        self.ledger.append({"id": rid, "kind": kind, "time": iso(now), **jsonable(data)})
        return rid

    # ---- review -------------------------------------------------------------------------------
    def _plausibility(self, snapshot: Snapshot, domain: str, now: datetime) -> PlausibilityReport | None:
        checker = self.plausibility.get(domain)
        if checker is None:
            return None
        cached = self._snap.get(domain)
        if cached is None or cached[0] is not snapshot:
            cached = self._snap[domain] = (snapshot, checker.check(snapshot, now))
        return cached[1]

    def _envelope(self, proposal: ProposedAction, domain: str, now: datetime) -> tuple[list[str], list[str]]:
        evaluated, bound = [], []
        for lim in self.policy.limits_for(domain, proposal.action_type):
            evaluated.append(lim.name)
            problem = None
            if lim.actions is not None and proposal.action not in lim.actions:
                problem = f"action {proposal.action!r} not in {list(lim.actions)}"
            elif lim.param is not None and lim.param in proposal.params:
                v = proposal.params[lim.param]
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    problem = f"{lim.param}={v!r} is not a number"
                elif (lim.min is not None and v < lim.min) or (lim.max is not None and v > lim.max):
                    problem = f"{lim.param}={v} outside [{lim.min}, {lim.max}]"
            elif lim.max_per_hour is not None:
                recent = self._acts.get((domain, proposal.target))
                n = sum(1 for t in recent if now - t < timedelta(hours=1)) if recent else 0
                if n >= lim.max_per_hour:
                    problem = f"{n} actions on {proposal.target} in the last hour (max {lim.max_per_hour})"
            if problem:
                bound.append(f"{lim.name}: {problem}")
        return evaluated, bound

    def review(self, proposal: ProposedAction, snapshot: Snapshot, *, domain: str, now: datetime) -> Review:
        """Decide what may happen to a proposal: act, advise, queue for approval, refuse, or stopped."""
        level, rule = self.autonomy(domain, proposal.action_type)
        self._fallback_notice(domain, proposal.action_type, now, declared=False)
        refs = tuple(input_refs(proposal, snapshot, self._hashes))
        evaluated, bound = self._envelope(proposal, domain, now)
        base = Review(Verdict.ACT, level, owner_role=rule.owner_role, inputs=refs,
                      limits_evaluated=tuple(evaluated), limits_bound=tuple(bound), rule=rule.ref())
        if self.is_stopped(domain):
            return self._count(replace(base, verdict=Verdict.STOPPED, reasons=("stop is active: safe state",)))
        if level is AutonomyLevel.OFF:
            return self._count(replace(base, verdict=Verdict.REFUSE, reasons=(f"autonomy is off for {domain}/"
                                                               f"{proposal.action_type}",)))
        report = self._plausibility(snapshot, domain, now)
        if report is not None and not report.ok:
            ids = {input_entity_id(k, snapshot) or k for k in proposal.inputs}
            issues = report.for_entities(ids) if ids else list(report.issues)
            if issues:
                self.counts["degraded"] += 1
                return self._count(replace(
                    base, verdict=Verdict.REFUSE, degraded=True, issues=tuple(str(i) for i in issues),
                    reasons=("implausible inputs: falling back to the safe plan",)))
        if bound:
            self.counts["out_of_envelope"] += 1
            return self._count(replace(base, verdict=Verdict.REFUSE, reasons=("outside the envelope", *bound)))
        if level is AutonomyLevel.ADVISE:
            return self._count(replace(base, verdict=Verdict.ADVISE, reasons=("advise only: recorded, not actuated",)))
        if level is AutonomyLevel.APPROVE:
            return self._count(replace(base, verdict=Verdict.QUEUE, reasons=("awaiting human approval",)))
        notify = level is AutonomyLevel.NOTIFY
        return self._count(replace(base, verdict=Verdict.ACT, reasons=("within the envelope",), notify=notify))

    def _count(self, review: Review) -> Review:
        self.counts[f"verdict_{review.verdict.value}"] += 1
        return review

    def record(self, proposal: ProposedAction, review: Review, outcome: Outcome | None, *, domain: str,
               now: datetime, context: Context | Mapping[str, Any] | None = None) -> DecisionRecord:
        """Build the decision record, append it to the ledger, queue it or notify its owner as the review says."""
        if outcome is not None and review.verdict is not Verdict.ACT and not outcome.refused:
            raise UserError(f"{proposal.target}: an outcome was actuated although the verdict was "
                            f"{review.verdict.value}")
        rec = build_record(
            proposal, None, record_id=f"dec-{self.ledger.size:07d}", domain=domain, now=now,
            model=self.models.get(proposal.planner), outcome=outcome, autonomy_level=review.autonomy.value,
            verdict=review.verdict.value, degraded=review.degraded, reasons=[*review.reasons, *review.issues],
            owner_role=review.owner_role, policy={**self.policy.ref(), "rule": dict(review.rule)},
            limits_evaluated=review.limits_evaluated,
            limits_bound=review.limits_bound, inputs=review.inputs, context=context)
        rec.approvals = [dict(a) for a in review.approvals]
        if domain not in self._known:
            self.register_domains([domain], now=now)
        self.ledger.append(rec.to_dict())
        if review.verdict is Verdict.QUEUE:
            self.queue.enqueue(rec.id, proposal, domain=domain, now=now)
        if outcome is not None and not outcome.refused:
            self._acts.setdefault((domain, proposal.target), deque(maxlen=10_000)).append(now)
            self.counts["actuated"] += 1
            if review.notify:
                self.notifications.append({"time": iso(now), "domain": domain, "owner_role": review.owner_role,
                                           "record_id": rec.id, "target": proposal.target,
                                           "action": proposal.action})
        return rec

    def take_approved(self, domain: str, *, now: datetime,
                      max_age_s: float | None = None) -> list[tuple[ProposedAction, Review]]:
        """Approved proposals to actuate now, each with a review that carries its approval (none while stopped:
        they stay approved and are taken after the resume, unless they expire)."""
        if self.is_stopped(domain):
            return []
        out = []
        for item in self.queue.take_approved(domain, now=now, max_age_s=max_age_s):
            rule = self.policy.rule_for(domain, item.proposal.action_type)
            approval = {"approval_id": item.id, "refers_to": item.record_id, "by": item.by,
                        "reason": item.reason, "time": item.decided}
            out.append((item.proposal, Review(Verdict.ACT, rule.autonomy, (f"approved by {item.by}",),
                                              owner_role=rule.owner_role, approvals=(approval,), rule=rule.ref())))
        return out

    def summary(self) -> dict[str, Any]:
        """Counts for the run report: verdicts, degraded decisions, plausibility cases, stops, overrides."""
        return {"policy": self.policy.ref(), "counts": dict(sorted(self.counts.items())),
                "plausibility": {d: dict(sorted(c.counts.items())) for d, c in self.plausibility.items()},
                "notifications": len(self.notifications), "ledger_size": self.ledger.size,
                "policy_notices": list(self.notices)}
