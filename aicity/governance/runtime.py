"""The governance layer of one run: what ``aicity.runner`` gets from :func:`for_run`.

It reviews and records every proposal (through :class:`Governor`), and at the end exports and verifies the
ledger, audits equity of the run's per-group KPIs and picks explained sample decisions for the report.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aicity.core.context import Context
from aicity.core.domain import DomainResult, Outcome, ProposedAction, Snapshot
from aicity.core.event import Event
from aicity.governance.explain import explain
from aicity.governance.ledger import Ledger, default_key_path, key_id, load_or_create_key, verify_jsonl
from aicity.governance.oversight import Governor, Policy, Review
from aicity.governance.plausibility import PlausibilityChecker
from aicity.governance.records import DecisionRecord


def _domain_plausibility(domain: str) -> PlausibilityChecker | None:
    """The plausibility rules a domain plug-in publishes as data (attribute ``plausibility``), if any."""
    from aicity.core.domain import discover

    try:
        plugin = discover().get(domain)
    except Exception:  # a broken plug-in must not stop governance; the loop reports it elsewhere
        return None
    rules = getattr(plugin, "plausibility", None)
    if callable(rules):
        rules = rules()
    return PlausibilityChecker.from_dict(rules) if isinstance(rules, Mapping) else None


def _key(out: Path) -> Any:
    """The deployment key (``$AICITY_LEDGER_KEY`` or ``~/.aicity``), else one kept next to the run folder."""
    try:
        return load_or_create_key(default_key_path())
    except OSError:
        return load_or_create_key(out.parent / ".aicity-ledger-ed25519.pem")


class GovernanceRuntime:
    """The governed part of one run: review, record, stop, and the end-of-run audit summary."""

    def __init__(self, governor: Governor, *, domain: str, mode: str, out: Path) -> None:
        self.governor = governor
        self.domain = domain
        self.mode = mode
        self.out = out
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

    def equity(self, result: DomainResult, *, now: datetime, kpi: str = "delay_s",
               higher_is_better: bool = False) -> dict[str, dict[str, Any]]:
        """Per group dimension of ``result.groups``: ratio, difference, Jain, worst-off, flag (fairlearn)."""
        from aicity.governance.equity import audit_groups

        out: dict[str, dict[str, Any]] = {}
        for dim, groups in sorted(result.groups.items()):
            clean = {str(g): float(v) for g, v in groups.items()
                     if isinstance(v, (int, float)) and v == v and abs(v) != float("inf")}
            if len(clean) < 2:
                continue
            r = audit_groups(clean, kpi=f"{kpi} by {dim}", higher_is_better=higher_is_better, now=now,
                             domain=self.domain, mode=self.mode)
            if r.alert is not None:
                self.alerts.append(r.alert)
            out[dim] = {"n": len(clean), "min": min(clean.values()), "max": max(clean.values()),
                        "ratio": r.ratio, "difference": r.difference, "jain": r.jain, "worst": r.worst_group,
                        "flag": r.flagged}
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

    def summary(self) -> dict[str, Any]:
        """What the report shows: policy, ledger (exported and verified), verdicts, plausibility, samples."""
        gov = self.governor
        path = self.out / "audit.jsonl"
        n = self.ledger.export_jsonl(path)
        check = verify_jsonl(path, self.ledger.public_key)
        head = self.ledger.tree_head() if n else None
        counts = dict(sorted(gov.counts.items()))
        plaus: dict[str, int] = {}
        for checker in gov.plausibility.values():
            for k, v in checker.counts.items():
                plaus[k] = plaus.get(k, 0) + v
        return {
            "policy": f"{gov.policy.version} (sha256 {gov.policy.sha256[:12]})",
            "ledger_records": n,
            "ledger_verified": check.ok if n else True,
            "ledger_root": head.root.hex()[:16] if head else "",
            "ledger_key": key_id(self.ledger.public_key) if self.ledger.public_key else "",
            "audit_export": str(path),
            "notifications": len(gov.notifications),
            "equity_alerts": len(self.alerts),
            "counts": counts,
            "plausibility": dict(sorted(plaus.items())),
            "samples": self.samples(),
        }


def for_run(*, store: Any, domain: str, mode: str, out: Path, key: Any = None,
            policy: Policy | None = None) -> GovernanceRuntime:
    """The governance layer for one run, on the run's store (``store.connection``)."""
    env_policy = os.environ.get("AICITY_POLICY")
    pol = policy or Policy.load(env_policy or None)
    ledger = Ledger(store.connection, key=key if key is not None else _key(Path(out)))
    checker = _domain_plausibility(domain)
    governor = Governor(ledger, pol, plausibility={domain: checker} if checker else {})
    return GovernanceRuntime(governor, domain=domain, mode=mode, out=Path(out))
