"""Human oversight: autonomy levels from a versioned policy, envelopes, the stop, approvals and overrides.

The run loop calls :meth:`Governor.review` on every proposal and :meth:`Governor.record` after acting (or not);
every decision, stop, approval, override and reversal goes into the ledger.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import sqlite3
import tomllib
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from aicity.core.context import Context
from aicity.core.domain import Outcome, ProposedAction, Snapshot
from aicity.core.errors import UserError
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


class AutonomyLevel(StrEnum):
    """How far the AI may act on its own."""

    OFF = "off"
    ADVISE = "advise"
    APPROVE = "approve-then-act"
    NOTIFY = "act-then-notify"
    AUTONOMOUS = "autonomous-within-envelope"


class Verdict(StrEnum):
    """What the loop must do with a proposal."""

    ACT = "act"
    ADVISE = "advise"
    QUEUE = "queue"
    REFUSE = "refuse"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Autonomy and accountability for one (domain, action type)."""

    domain: str
    action_type: str
    autonomy: AutonomyLevel
    owner_role: str
    contact: str = ""
    appeal: str = ""


@dataclass(frozen=True, slots=True)
class EnvelopeLimit:
    """One explicit limit: allowed actions, a parameter range, or a rate per target."""

    name: str
    domain: str = "*"
    action_type: str = "*"
    actions: Sequence[str] | None = None
    param: str | None = None
    min: float | None = None
    max: float | None = None
    max_per_hour: int | None = None

    def matches(self, domain: str, action_type: str) -> bool:
        """True when this limit applies."""
        return fnmatch.fnmatchcase(domain, self.domain) and fnmatch.fnmatchcase(action_type, self.action_type)


@dataclass(frozen=True, slots=True)
class AccuracyGuard:
    """Declared forecast accuracy a (domain, action type) relies on, and what happens below it.

    When the model's rolling one-step error relative to persistence (``ratio`` of
    :class:`aicity.forecast.accuracy.AccuracyTracker`) exceeds ``max_error_ratio`` over at least ``min_samples``
    scored pairs, the action type is demoted to ``demote_to`` (default ``advise``): a ledgered autonomy change,
    the domain's actuators go to their safe state, and whatever the planners still propose is recorded as advice,
    not acted on, until a person restores the level with a reason.
    """

    name: str
    domain: str
    model: str
    max_error_ratio: float
    action_type: str = "*"
    min_samples: int = 100
    demote_to: AutonomyLevel = AutonomyLevel.ADVISE

    def matches(self, domain: str, model: str) -> bool:
        """True when this guard watches ``model`` in ``domain``."""
        return fnmatch.fnmatchcase(domain, self.domain) and fnmatch.fnmatchcase(model, self.model)


def _guard(data: Mapping[str, Any], where: str) -> AccuracyGuard:
    unknown = set(data) - set(AccuracyGuard.__dataclass_fields__)
    if unknown:
        raise UserError(f"{where}: unknown accuracy guard fields {sorted(unknown)}")
    for key in ("name", "domain", "model"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise UserError(f"{where}: every accuracy guard needs a {key}")
    ratio = data.get("max_error_ratio")
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio <= 0:
        raise UserError(f"{where}: max_error_ratio must be a positive number, got {ratio!r}")
    try:
        level = AutonomyLevel(str(data.get("demote_to", "advise")))
    except ValueError:
        raise UserError(f"{where}: demote_to {data.get('demote_to')!r} is not an autonomy level") from None
    if level not in (AutonomyLevel.OFF, AutonomyLevel.ADVISE, AutonomyLevel.APPROVE):
        raise UserError(f"{where}: demote_to must be off, advise or approve-then-act, got {level.value!r}")
    n = data.get("min_samples", 100)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"{where}: min_samples must be a positive integer, got {n!r}")
    return AccuracyGuard(str(data["name"]), str(data["domain"]), str(data["model"]), float(ratio),
                         str(data.get("action_type", "*")), n, level)


def _rule(data: Mapping[str, Any], where: str, default: Mapping[str, Any] | None = None) -> PolicyRule:
    merged = {**(default or {}), **data}
    try:
        level = AutonomyLevel(str(merged.get("autonomy")))
    except ValueError:
        raise UserError(f"{where}: autonomy {merged.get('autonomy')!r} is not one of "
                        f"{', '.join(a.value for a in AutonomyLevel)}") from None
    owner = merged.get("owner_role")
    if not isinstance(owner, str) or not owner:
        raise UserError(f"{where}: every rule needs an owner_role (accountability map)")
    return PolicyRule(str(merged.get("domain", "*")), str(merged.get("action_type", "*")), level, owner,
                      str(merged.get("contact", "")), str(merged.get("appeal", "")))


def _limit(data: Mapping[str, Any], where: str) -> EnvelopeLimit:
    unknown = set(data) - set(EnvelopeLimit.__dataclass_fields__)
    if unknown:
        raise UserError(f"{where}: unknown envelope fields {sorted(unknown)}")
    if not isinstance(data.get("name"), str):
        raise UserError(f"{where}: every envelope limit needs a name")
    lim = EnvelopeLimit(**dict(data))
    if lim.actions is None and lim.param is None and lim.max_per_hour is None:
        raise UserError(f"{where} ({lim.name}): give actions, param with min/max, or max_per_hour")
    return lim


@dataclass(frozen=True, slots=True)
class Policy:
    """A versioned oversight policy; its version and SHA-256 are referenced from every decision record."""

    version: str
    sha256: str
    source: str
    default: PolicyRule
    rules: Sequence[PolicyRule] = ()
    limits: Sequence[EnvelopeLimit] = ()
    priority: Sequence[str] = ()
    accuracy: Sequence[AccuracyGuard] = ()

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        """Load a policy file (TOML or JSON); the shipped default when ``path`` is None."""
        if path is None:
            data = resources.files("aicity.governance.policy").joinpath("default.toml").read_bytes()
            return cls.parse(data, "aicity/governance/policy/default.toml")
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read policy file {p}: {exc.strerror or exc}") from exc
        return cls.parse(data, str(p))

    @classmethod
    def parse(cls, data: bytes, source: str) -> Policy:
        """Parse policy bytes (JSON when they start with ``{``, else TOML)."""
        try:
            text = data.decode("utf-8")
            raw: dict[str, Any] = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise UserError(f"policy {source} is not valid TOML/JSON: {exc}") from exc
        version = raw.get("version")
        if not isinstance(version, str) or not version:
            raise UserError(f"policy {source} needs a 'version' string")
        dflt = raw.get("default", {})
        default = _rule({"domain": "*", "action_type": "*", **dflt}, f"{source} [default]")
        rules = [_rule(r, f"{source} rules[{i}]", dflt) for i, r in enumerate(raw.get("rules", []))]
        limits = [_limit(e, f"{source} envelope[{i}]") for i, e in enumerate(raw.get("envelope", []))]
        guards = [_guard(g, f"{source} accuracy[{i}]") for i, g in enumerate(raw.get("accuracy", []))]
        return cls(version, hashlib.sha256(data).hexdigest(), source, default, rules, limits,
                   list(raw.get("priority", [])), guards)

    def ref(self) -> dict[str, str]:
        """What a decision record cites."""
        return {"version": self.version, "sha256": self.sha256, "source": self.source}

    def rule_for(self, domain: str, action_type: str) -> PolicyRule:
        """The most specific matching rule (exact beats ``*``; domain beats action type)."""
        best: tuple[int, PolicyRule] = (-1, self.default)
        for rule in self.rules:
            if not (fnmatch.fnmatchcase(domain, rule.domain) and fnmatch.fnmatchcase(action_type, rule.action_type)):
                continue
            rank = 2 * (rule.domain == domain) + (rule.action_type == action_type)
            if rank > best[0]:
                best = (rank, rule)
        return best[1]

    def limits_for(self, domain: str, action_type: str) -> list[EnvelopeLimit]:
        """Every envelope limit that applies."""
        return [lim for lim in self.limits if lim.matches(domain, action_type)]


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


APPROVALS_SCHEMA = """
CREATE TABLE IF NOT EXISTS gov_approvals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, record_id TEXT NOT NULL, domain TEXT NOT NULL, created TEXT NOT NULL,
    proposal TEXT NOT NULL, status TEXT NOT NULL, decided TEXT, by TEXT, reason TEXT, taken INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS gov_stops (
    scope TEXT PRIMARY KEY, active INTEGER NOT NULL, reason TEXT NOT NULL, by TEXT NOT NULL, time TEXT NOT NULL,
    safe_state_done INTEGER NOT NULL DEFAULT 0
);
"""


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
    """Proposals awaiting a human decision, persisted in the run's database; decisions are ledgered."""

    def __init__(self, conn: sqlite3.Connection, ledger: Ledger | None = None) -> None:
        self.conn = conn
        self.ledger = ledger
        conn.executescript(APPROVALS_SCHEMA)

    def enqueue(self, record_id: str, proposal: ProposedAction, *, domain: str, now: datetime) -> int:
        """Queue a proposal; returns its approval id."""
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO gov_approvals(record_id, domain, created, proposal, status) VALUES (?,?,?,?,?)",
                (record_id, domain, iso(now), json.dumps(_proposal_json(proposal)), "pending"))
        return int(cur.lastrowid or 0)

    def _row(self, r: Sequence[Any]) -> Approval:
        return Approval(r[0], r[1], r[2], r[3], _proposal_from_json(json.loads(r[4])), r[5], r[6], r[7], r[8])

    def entries(self, status: str | None = "pending", domain: str | None = None) -> list[Approval]:
        """Queue entries, oldest first."""
        sql = "SELECT id, record_id, domain, created, proposal, status, decided, by, reason FROM gov_approvals"
        cond, params = [], []
        if status is not None:
            cond.append("status = ?")
            params.append(status)
        if domain is not None:
            cond.append("domain = ?")
            params.append(domain)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        return [self._row(r) for r in self.conn.execute(sql + " ORDER BY id", params)]

    def get(self, approval_id: int) -> Approval:
        """One entry; :class:`UserError` when unknown."""
        r = self.conn.execute("SELECT id, record_id, domain, created, proposal, status, decided, by, reason "
                              "FROM gov_approvals WHERE id = ?", (approval_id,)).fetchone()
        if r is None:
            raise UserError(f"no approval {approval_id} in the queue")
        return self._row(r)

    def decide(self, approval_id: int, approve: bool, *, reason: str, by: str, now: datetime) -> Approval:
        """Approve or reject a pending entry (a reason is mandatory); the decision is ledgered."""
        why = _need_reason(reason, "approving" if approve else "rejecting")
        item = self.get(approval_id)
        if item.status != "pending":
            raise UserError(f"approval {approval_id} is already {item.status}")
        status = "approved" if approve else "rejected"
        with self.conn:
            self.conn.execute("UPDATE gov_approvals SET status=?, decided=?, by=?, reason=? WHERE id=?",
                              (status, iso(now), by, why, approval_id))
        if self.ledger is not None:
            self.ledger.append({"id": f"approval-{self.ledger.size:07d}", "kind": "approval", "time": iso(now),
                                "domain": item.domain, "approval_id": approval_id, "refers_to": item.record_id,
                                "decision": status, "by": by, "reason": why})
        return self.get(approval_id)

    def take_approved(self, domain: str, *, now: datetime | None = None,
                      max_age_s: float | None = None) -> list[Approval]:
        """Approved entries not yet actuated (marked taken); too old ones are expired instead."""
        out = []
        for item in self.entries("approved", domain):
            taken = self.conn.execute("SELECT taken FROM gov_approvals WHERE id=?", (item.id,)).fetchone()[0]
            if taken:
                continue
            expired = (now is not None and max_age_s is not None
                       and (now - datetime.fromisoformat(item.created)).total_seconds() > max_age_s)
            with self.conn:
                self.conn.execute("UPDATE gov_approvals SET taken=1, status=? WHERE id=?",
                                  ("expired" if expired else "approved", item.id))
            if not expired:
                out.append(item)
        return out


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
    _snap: tuple[Snapshot | None, PlausibilityReport | None] = (None, None)
    _hashes: dict[str, tuple[Any, str]] = field(default_factory=dict)
    _levels: dict[tuple[str, str], AutonomyLevel] = field(default_factory=dict)
    _demoted: dict[tuple[str, str], str] = field(default_factory=dict)
    conn: sqlite3.Connection = field(init=False)
    queue: ApprovalQueue = field(init=False)

    def __post_init__(self) -> None:
        self.conn = self.ledger.conn
        self.queue = ApprovalQueue(self.conn, self.ledger)

    # ---- stop ---------------------------------------------------------------------------------
    def stop(self, domain: str | None = None, *, reason: str, by: str, now: datetime) -> None:
        """Stop the AI globally (``domain=None``) or for one domain; recorded in the ledger."""
        why = _need_reason(reason, "a stop")
        scope = domain or "*"
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO gov_stops VALUES (?,?,?,?,?,0)", (scope, 1, why, by, iso(now)))
        self._ledger_event("stop", now, {"domain": scope, "by": by, "reason": why})
        self.counts["stops"] += 1

    def resume(self, domain: str | None = None, *, reason: str, by: str, now: datetime) -> None:
        """Lift a stop; recorded in the ledger."""
        why = _need_reason(reason, "resuming")
        scope = domain or "*"
        with self.conn:
            self.conn.execute("UPDATE gov_stops SET active=0 WHERE scope=?", (scope,))
        self._ledger_event("resume", now, {"domain": scope, "by": by, "reason": why})

    def is_stopped(self, domain: str) -> bool:
        """True when a global or per-domain stop is active."""
        row = self.conn.execute("SELECT 1 FROM gov_stops WHERE active=1 AND scope IN ('*', ?)", (domain,)).fetchone()
        return row is not None

    def needs_safe_state(self, domain: str) -> bool:
        """True when a stop covers ``domain`` and its actuators have not yet been returned to the safe state."""
        row = self.conn.execute("SELECT 1 FROM gov_stops WHERE active=1 AND safe_state_done=0 AND scope IN ('*', ?)",
                                (domain,)).fetchone()
        return row is not None

    def confirm_safe_state(self, domain: str, *, now: datetime) -> None:
        """Record that ``twin.safe_state()`` ran for ``domain`` after a stop."""
        with self.conn:
            self.conn.execute("UPDATE gov_stops SET safe_state_done=1 WHERE active=1 AND scope IN ('*', ?)",
                              (domain,))
        self._ledger_event("safe_state", now, {"domain": domain})

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
        if self._snap[0] is not snapshot:
            self._snap = (snapshot, checker.check(snapshot, now))
        return self._snap[1]

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
        refs = tuple(input_refs(proposal, snapshot, self._hashes))
        evaluated, bound = self._envelope(proposal, domain, now)
        base = Review(Verdict.ACT, level, owner_role=rule.owner_role, inputs=refs,
                      limits_evaluated=tuple(evaluated), limits_bound=tuple(bound))
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
            owner_role=review.owner_role, policy=self.policy.ref(), limits_evaluated=review.limits_evaluated,
            limits_bound=review.limits_bound, inputs=review.inputs, context=context)
        rec.approvals = [dict(a) for a in review.approvals]
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
        """Approved proposals to actuate now, each with a review that carries its approval."""
        out = []
        for item in self.queue.take_approved(domain, now=now, max_age_s=max_age_s):
            rule = self.policy.rule_for(domain, item.proposal.action_type)
            approval = {"approval_id": item.id, "refers_to": item.record_id, "by": item.by,
                        "reason": item.reason, "time": item.decided}
            if self.is_stopped(domain):
                continue
            out.append((item.proposal, Review(Verdict.ACT, rule.autonomy, (f"approved by {item.by}",),
                                              owner_role=rule.owner_role, approvals=(approval,))))
        return out

    def summary(self) -> dict[str, Any]:
        """Counts for the run report: verdicts, degraded decisions, plausibility cases, stops, overrides."""
        return {"policy": self.policy.ref(), "counts": dict(sorted(self.counts.items())),
                "plausibility": {d: dict(sorted(c.counts.items())) for d, c in self.plausibility.items()},
                "notifications": len(self.notifications), "ledger_size": self.ledger.size}
