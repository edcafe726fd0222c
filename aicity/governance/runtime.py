"""The governance layer of one run: what the runner gets from :func:`for_run`, city-wide over every domain.

It reviews and records every proposal (through :class:`Governor`) under the site policy composed with each
domain's shipped defaults, checks inputs with each domain's plausibility rules, carries active stops over from
the previous run into the same folder, and at the end exports and verifies the ledger, publishes its signed tree
head (``<out>/ledger-head.json`` and the summary), audits each domain's equity groups and picks explained samples.
Everything domain-specific comes from the domains' :class:`aicity.core.meta.DomainMeta`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.context import Context
from aicity.core.domain import DomainResult, Outcome, ProposedAction, Snapshot
from aicity.core.errors import UserError
from aicity.core.event import Event
from aicity.core.meta import Better, DomainMeta
from aicity.core.store import SqliteStore, StateStore
from aicity.governance.explain import explain
from aicity.governance.ledger import HEAD_FILE, Ledger, deployment_key, key_id, read_head, verify_jsonl
from aicity.governance.oversight import DomainPolicy, Governor, Policy, Review
from aicity.governance.plausibility import PlausibilityChecker
from aicity.governance.records import DecisionRecord


class GovernedDomain(Protocol):
    """What governance needs of a domain plug-in: its name and its metadata."""

    @property
    def name(self) -> str:
        """The domain's name."""
        ...

    @property
    def meta(self) -> DomainMeta:
        """What the domain declares about itself."""
        ...


class GovernanceRuntime:
    """The governed part of one run: review, record, stop, and the end-of-run audit summary."""

    def __init__(self, governor: Governor, *, domains: Mapping[str, DomainMeta], mode: str, out: Path,
                 key_created: Path | None = None, carried: Sequence[str] = ()) -> None:
        self.governor = governor
        self.domains = dict(domains)
        self.mode = mode
        self.out = out
        self.key_created = key_created
        self.carried = list(carried)
        self.alerts: list[Event] = []

    @property
    def ledger(self) -> Ledger:
        """The run's ledger."""
        return self.governor.ledger

    def review(self, proposal: ProposedAction, snapshot: Snapshot, *, domain: str, now: datetime) -> Review:
        """See :meth:`Governor.review`."""
        return self.governor.review(proposal, snapshot, domain=domain, now=now)

    def record(self, proposal: ProposedAction, review: Review, outcome: Outcome | None, *, domain: str,
               now: datetime, context: Context | Mapping[str, Any] | None = None) -> DecisionRecord:
        """See :meth:`Governor.record`."""
        return self.governor.record(proposal, review, outcome, domain=domain, now=now, context=context)

    def is_stopped(self, domain: str) -> bool:
        """See :meth:`Governor.is_stopped`."""
        return self.governor.is_stopped(domain)

    def check_accuracy(self, domain: str, model: str, stats: Mapping[str, float], *,
                       now: datetime) -> list[dict[str, Any]]:
        """See :meth:`Governor.check_accuracy`."""
        return self.governor.check_accuracy(domain, model, stats, now=now)

    def is_demoted(self, domain: str) -> bool:
        """See :meth:`Governor.is_demoted`."""
        return self.governor.is_demoted(domain)

    def needs_safe_state(self, domain: str) -> bool:
        """See :meth:`Governor.needs_safe_state`."""
        return self.governor.needs_safe_state(domain)

    def confirm_safe_state(self, domain: str, *, now: datetime) -> None:
        """Record that the twin's safe state was applied after a stop (see :meth:`Governor.confirm_safe_state`)."""
        self.governor.confirm_safe_state(domain, now=now)

    def take_approved(self, domain: str, *, now: datetime,
                      max_age_s: float | None = None) -> list[tuple[ProposedAction, Review]]:
        """Approved proposals to actuate now (see :meth:`Governor.take_approved`)."""
        return self.governor.take_approved(domain, now=now, max_age_s=max_age_s)

    def equity(self, domain_name: str, result: DomainResult, *, now: datetime) -> dict[str, dict[str, Any]]:
        """Per equity group the domain declares (``meta.equity``): ratio, difference, Jain, worst-off and flag,
        with the direction of the group's KPI (``meta.kpis``); groups with fewer than two finite values are
        reported as not audited."""
        from aicity.governance.equity import audit_groups

        meta = self.domains.get(domain_name)
        if meta is None:
            raise UserError(f"equity audit of unknown domain {domain_name!r} (governed: "
                            f"{', '.join(sorted(self.domains)) or 'none'})")
        out: dict[str, dict[str, Any]] = {}
        for group in meta.equity:
            kpi = meta.kpi(group.kpi)
            if kpi is None:
                raise UserError(f"{domain_name}: equity group {group.dimension!r} names KPI {group.kpi!r}, which "
                                "the domain does not declare")
            values = result.groups.get(group.dimension, {})
            clean = {str(g): float(v) for g, v in values.items()
                     if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}
            base = {"kpi": kpi.name, "unit": kpi.unit, "better": kpi.better.value, "n": len(clean)}
            if len(clean) < 2:
                out[group.dimension] = {**base, "audited": False,
                                        "note": f"{len(clean)} group(s) with a finite {kpi.name}: nothing to compare"}
                continue
            r = audit_groups(clean, kpi=f"{kpi.name} by {group.dimension}",
                             higher_is_better=kpi.better is Better.HIGHER, now=now, domain=domain_name, mode=self.mode)
            if r.alert is not None:
                self.alerts.append(r.alert)
            out[group.dimension] = {**base, "audited": True, "min": min(clean.values()), "max": max(clean.values()),
                                    "ratio": r.ratio, "difference": r.difference, "jain": r.jain,
                                    "worst": r.worst_group, "flag": r.flagged}
        return out

    def samples(self, limit: int = 3) -> list[str]:
        """Explanations of a few telling decisions: an actuated one, one bound by a limit, a refused one."""
        picks: dict[str, dict[str, Any]] = {}
        for rec in self.ledger.records("decision"):
            act = rec.get("actuation") or {}
            if "acted" not in picks and act.get("status") == "applied":
                picks["acted"] = rec
            elif "bound" not in picks and rec.get("limits_bound"):
                picks["bound"] = rec
            elif "refused" not in picks and rec.get("verdict") != "act":
                picks["refused"] = rec
            if len(picks) == 3:
                break
        return [f"`{r['id']}`: " + explain(r).text.replace("\n", " ") for r in list(picks.values())[:limit]]

    def oversight(self) -> list[dict[str, Any]]:
        """Every stop of this ledger with who, why, when, the safe state reached and its resume (if any)."""
        events: list[tuple[int, dict[str, Any]]] = []
        for kind in ("stop", "resume", "safe_state"):
            events += [(self.ledger.index_of(r["id"]), r) for r in self.ledger.records(kind)]
        events.sort(key=lambda e: e[0])
        stops: list[dict[str, Any]] = []
        for _, rec in events:
            scope = rec.get("domain")
            if rec["kind"] == "stop":
                stops.append({"domain": scope, "by": rec.get("by"), "reason": rec.get("reason"),
                              "time": rec.get("stopped_at") or rec["time"], "recorded": rec["id"],
                              "carried_over_from": rec.get("carried_over_from"), "safe_state": None, "resume": None})
                continue
            for stop in reversed(stops):
                if rec["kind"] == "safe_state" and stop["resume"] is None and stop["safe_state"] is None \
                        and stop["domain"] in ("*", scope):
                    stop["safe_state"] = {"domain": scope, "time": rec["time"]}
                    break
                if rec["kind"] == "resume" and stop["resume"] is None and stop["domain"] == scope:
                    stop["resume"] = {"by": rec.get("by"), "reason": rec.get("reason"), "time": rec["time"]}
                    break
        for stop in stops:
            stop["text"] = _stop_text(stop)
        return stops

    def summary(self) -> dict[str, Any]:
        """What the report shows: policy, ledger (exported, verified, signed head published), verdicts,
        plausibility, stops and resumes, policy notices, samples."""
        gov = self.governor
        path = self.out / "audit.jsonl"
        n = self.ledger.export_jsonl(path)
        check = verify_jsonl(path, self.ledger.public_key)
        head_path = self.out / HEAD_FILE
        head = self.ledger.publish_head(head_path, now=datetime.now(UTC), mode=self.mode, records=n)
        counts = dict(sorted(gov.counts.items()))
        plaus: dict[str, int] = {}
        for checker in gov.plausibility.values():
            for k, v in checker.counts.items():
                plaus[k] = plaus.get(k, 0) + v
        pol = gov.policy
        policy = f"{pol.version} (sha256 {pol.sha256[:12]})"
        for name, src in sorted(pol.domains.items()):
            policy += f"; {name} defaults {src.version} (sha256 {src.sha256[:12]})"
        return {
            "policy": policy,
            "policy_notices": list(gov.notices),
            "ledger_records": n,
            "ledger_verified": check.ok if n else True,
            "ledger_pruned": check.pruned,
            "ledger_prunings": list(check.prunings),
            "ledger_root": head.root.hex()[:16] if head else "",
            "ledger_head": ({**head.to_dict(), "file": str(head_path), "mode": self.mode} if head else None),
            "ledger_key": key_id(self.ledger.public_key) if self.ledger.public_key else "",
            "ledger_key_created": str(self.key_created) if self.key_created else None,
            "audit_export": str(path),
            "notifications": len(gov.notifications),
            "equity_alerts": len(self.alerts),
            "counts": counts,
            "plausibility": dict(sorted(plaus.items())),
            "oversight": self.oversight(),
            "stops_carried_over": list(self.carried),
            "samples": self.samples(),
        }


def _stop_text(stop: Mapping[str, Any]) -> str:
    scope = "every domain" if stop["domain"] == "*" else stop["domain"]
    text = f"stop of {scope} by {stop['by']} at {stop['time']}: {stop['reason']}"
    if stop.get("carried_over_from"):
        text += f" (still active from the previous run, {stop['carried_over_from']})"
    safe = stop.get("safe_state")
    text += f"; safe state reached at {safe['time']}" if safe else "; safe state not reached in this run"
    resume = stop.get("resume")
    text += (f"; resumed by {resume['by']} at {resume['time']}: {resume['reason']}" if resume
             else "; still active")
    return text


def _check_stale_head(path: Path, ledger: Ledger) -> None:
    """Refuse to run into a folder whose published head belongs to another ledger (a previous run's)."""
    if not path.is_file():
        return
    head = read_head(path)
    if head.public_key == ledger.public_key and ledger.size >= head.size and (
            head.size == 0 or ledger.root_at(head.size) == head.root):
        return
    raise UserError(f"{path} is the signed tree head of another ledger ({head.size} records): move the previous "
                    f"run's city.db, {HEAD_FILE} and audit.jsonl aside together, or remove them on purpose")


def _metas(domains: Sequence[GovernedDomain]) -> dict[str, DomainMeta]:
    metas: dict[str, DomainMeta] = {}
    for d in domains:
        if d.name in metas:
            raise UserError(f"domain {d.name!r} is given twice")
        metas[d.name] = d.meta
    return metas


def for_run(*, store: StateStore, domains: Sequence[GovernedDomain], mode: str, out: Path,
            key: Ed25519PrivateKey | None = None, policy: Policy | None = None,
            previous: Path | None = None) -> GovernanceRuntime:
    """The governance layer for one run over ``domains``, in the run's store.

    ``policy`` is the site policy (default ``$AICITY_POLICY`` or the shipped one), composed with each domain's
    ``meta.policy``; ``key`` the ledger key (default the deployment key, created in ``~/.aicity`` on first use
    and said so); ``previous`` the previous run's database in the same folder, whose active stops carry over.
    """
    metas = _metas(domains)
    site = policy or Policy.load(os.environ.get("AICITY_POLICY") or None)
    shipped = [DomainPolicy.load(name, m.policy) for name, m in metas.items() if m.policy is not None]
    pol = site.with_domains(shipped)
    created = None
    if key is None:
        dk = deployment_key()
        key, created = dk.key, (dk.path if dk.created else None)
    ledger = Ledger(store, key=key)
    _check_stale_head(Path(out) / HEAD_FILE, ledger)
    checkers = {name: PlausibilityChecker.from_dict(m.plausibility) for name, m in metas.items()
                if m.plausibility is not None}
    governor = Governor(ledger, pol, plausibility=checkers)
    now = datetime.now(UTC)
    governor.register_domains(metas, now=now)
    carried: list[str] = []
    if previous is not None:
        prev = SqliteStore.open(previous, readonly=True)
        try:
            carried = governor.carry_stops(prev, source=str(previous), now=now)
        finally:
            prev.close()
    for name, m in metas.items():
        governor.check_rules(name, m.action_types, now=now)
    return GovernanceRuntime(governor, domains=metas, mode=mode, out=Path(out), key_created=created, carried=carried)
