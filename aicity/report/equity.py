"""Group-fairness summaries of per-group KPIs (lower is better, e.g. delay per district)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

THRESHOLD = 0.8


def jain(values: list[float]) -> float:
    """Jain's fairness index (Σx)² / (n·Σx²); 1 is perfectly even."""
    if not values:
        return float("nan")
    sq = sum(v * v for v in values)
    return 1.0 if sq == 0 else sum(values) ** 2 / (len(values) * sq)


def summarize(groups: Mapping[str, float]) -> dict[str, Any]:
    """min/max ratio, difference, Jain's index and the worst-off group of a lower-is-better KPI."""
    clean = {k: float(v) for k, v in groups.items() if v == v}
    if not clean:
        return {"n": 0}
    lo, hi = min(clean.values()), max(clean.values())
    worst = max(clean, key=lambda k: clean[k])
    ratio = 1.0 if hi == 0 else lo / hi
    return {"n": len(clean), "min": lo, "max": hi, "ratio": ratio, "difference": hi - lo,
            "jain": jain(list(clean.values())), "worst": worst, "flag": ratio < THRESHOLD}
