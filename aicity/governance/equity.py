"""Equity audits: per-group KPIs with fairlearn's MetricFrame, min/max ratio, difference, Jain's index, worst-off.

A min/max ratio below the threshold (0.8 by default, the four-fifths rule) raises an alert event and a flag.
Groups are whatever the domain reports (districts, approaches); nothing here knows a domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aicity.core.context import Actor, ActorKind, Context
from aicity.core.errors import UserError
from aicity.core.event import Event, EventType

DEFAULT_THRESHOLD = 0.8


def jain_index(values: Iterable[float]) -> float:
    """Jain's fairness index (Σx)² / (n·Σx²): 1 when all equal, 1/n when one group gets everything.

    The one implementation in aicity. No values, or all zero, is 1.0 (nothing is shared unevenly); a NaN or an
    infinity is refused with :class:`UserError` (drop groups without a value before calling).
    """
    xs = [float(v) for v in values]
    bad = [v for v in xs if not math.isfinite(v)]
    if bad:
        raise UserError(f"Jain's index needs finite values, got {bad[0]!r}")
    sq = sum(v * v for v in xs)
    return 1.0 if not xs or sq == 0 else (sum(xs) ** 2) / (len(xs) * sq)


@dataclass(frozen=True, slots=True)
class EquityResult:
    """The equity audit of one KPI across groups."""

    kpi: str
    by_group: Mapping[str, float]
    ratio: float
    difference: float
    jain: float
    worst_group: str
    worst_value: float
    higher_is_better: bool
    threshold: float
    flagged: bool
    alert: Event | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report."""
        return {"kpi": self.kpi, "by_group": dict(self.by_group), "ratio": self.ratio,
                "difference": self.difference, "jain": self.jain, "worst_group": self.worst_group,
                "worst_value": self.worst_value, "higher_is_better": self.higher_is_better,
                "threshold": self.threshold, "flagged": self.flagged, "note": self.note}


def _frame(values: Sequence[float], groups: Sequence[str]) -> tuple[dict[str, float], float, float]:
    """Per-group means, between-group min/max ratio and difference, computed by fairlearn's MetricFrame."""
    import numpy as np
    import pandas as pd
    from fairlearn.metrics import MetricFrame

    y = np.asarray(values, dtype=float)
    mf = MetricFrame(metrics={"kpi": lambda yt, yp: float(np.mean(yt))}, y_true=y, y_pred=y,
                     sensitive_features=pd.Series(list(groups), name="group"))
    by = {str(g): float(v) for g, v in mf.by_group["kpi"].items()}
    return by, float(mf.ratio(method="between_groups")["kpi"]), float(mf.difference(method="between_groups")["kpi"])


def audit_samples(values: Sequence[float], groups: Sequence[str], *, kpi: str, higher_is_better: bool = False,
                  threshold: float = DEFAULT_THRESHOLD, now: datetime, domain: str = "", mode: str = "",
                  context: Context | None = None, ids: Callable[[], str] | None = None) -> EquityResult:
    """Audit per-sample KPI values (e.g. each vehicle's delay) labelled with their group."""
    if len(values) != len(groups):
        raise UserError(f"equity audit of {kpi}: {len(values)} values but {len(groups)} group labels")
    if not values:
        raise UserError(f"equity audit of {kpi}: no values")
    bad = [v for v in values if not isinstance(v, (int, float)) or not math.isfinite(v)]
    if bad:
        raise UserError(f"equity audit of {kpi}: non-finite values {bad[:3]}")
    by, ratio, diff = _frame(values, groups)
    note = ""
    if any(v < 0 for v in by.values()):
        note = "negative group values: the min/max ratio is not meaningful"
    if math.isnan(ratio):  # every group is 0
        ratio = 1.0
    worst = (min if higher_is_better else max)(sorted(by), key=lambda g: by[g])
    flagged = ratio < threshold
    alert = None
    if flagged:
        actor = Actor(ActorKind.POLICY, "governance.equity")
        ctx = (context.child(actor) if context is not None else
               Context(actor, None, ids()) if ids is not None else Context(actor))
        alert = Event(EventType.ALERT, {
            "alert": "equity", "kpi": kpi, "domain": domain, "mode": mode, "ratio": ratio, "threshold": threshold,
            "worst_group": worst, "worst_value": by[worst],
            "message": f"{kpi}: group ratio {ratio:.2f} is below {threshold:.2f}; worst off: {worst}"},
            ctx, now)
    return EquityResult(kpi, by, ratio, diff, jain_index(list(by.values())), worst, by[worst], higher_is_better,
                        threshold, flagged, alert, note)


def audit_groups(groups: Mapping[str, float], *, kpi: str, **kw: Any) -> EquityResult:
    """Audit one already aggregated value per group (e.g. mean delay per district)."""
    names = sorted(groups)
    return audit_samples([groups[g] for g in names], names, kpi=kpi, **kw)


@dataclass
class EquityAudit:
    """Audits every KPI of a run's per-group results (``DomainResult.groups``: group → KPI → value)."""

    higher_is_better: Mapping[str, bool] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD

    def run(self, groups: Mapping[str, Mapping[str, float]], *, now: datetime, domain: str = "", mode: str = "",
            context: Context | None = None, ids: Callable[[], str] | None = None) -> list[EquityResult]:
        """One result per KPI that at least two groups report."""
        kpis = sorted({k for g in groups.values() for k in g})
        out = []
        for kpi in kpis:
            per = {g: float(v[kpi]) for g, v in groups.items() if kpi in v and math.isfinite(float(v[kpi]))}
            if len(per) < 2:
                continue
            out.append(audit_groups(per, kpi=kpi, higher_is_better=self.higher_is_better.get(kpi, False),
                                    threshold=self.threshold, now=now, domain=domain, mode=mode,
                                    context=context, ids=ids))
        return out
