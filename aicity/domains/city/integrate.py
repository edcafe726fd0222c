"""The integrated KPIs of a city: each domain's outcome in one table, and the violations of every kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from aicity.core.domain import DomainResult


def _kpi(results: Mapping[str, DomainResult], domain: str, *names: str) -> float:
    res = results.get(domain)
    if res is None:
        return 0.0
    for name in names:
        value = res.kpis.get(name)
        if isinstance(value, int | float):
            return float(value)
    return 0.0


def ems_by_district(safety: DomainResult | None, district_of: Callable[[tuple[float, float]], str]
                    ) -> dict[str, float]:
    """p90 call-to-arrival per district (the calls reached, each in the district of its zone's centre)."""
    if safety is None:
        return {}
    zones = (safety.extra.get("positions") or {}).get("zone") or {}
    by: dict[str, list[float]] = {}
    for rec in safety.extra.get("incidents") or []:
        xy = zones.get(rec.get("zone"))
        if xy is None or rec.get("arrival_s") is None:
            continue
        by.setdefault(district_of((float(xy[0]), float(xy[1]))), []).append(float(rec["arrival_s"]) -
                                                                           float(rec["call_s"]))
    return {d: float(np.percentile(v, 90)) for d, v in sorted(by.items())}


def integrated(results: Mapping[str, DomainResult], loop: Mapping[str, Any], late_min: Sequence[float],
               extra: Mapping[str, Any], notes: Sequence[str],
               district_of: Callable[[tuple[float, float]], str] | None = None) -> DomainResult:
    """The city's result: person delay, EMS p90, energy cost and peak, unserved energy, violations."""
    prio = float(loop.get("priority_violations", 0) or 0)
    edge = float(loop.get("refused_by_edge", 0) or 0)
    grid = _kpi(results, "energy", "loading_violations") + _kpi(results, "energy", "voltage_violations")
    kpis = {
        "person_delay_s": _kpi(results, "mobility", "person_delay_s", "delay_s"),
        "ems_p90_s": _kpi(results, "safety", "response_p90_s"),
        "ems_late_frac": _kpi(results, "safety", "late_frac"),
        "energy_cost": _kpi(results, "energy", "energy_cost"),
        "peak_kw": _kpi(results, "energy", "peak_kw"),
        "critical_unserved_kwh": _kpi(results, "energy", "critical_unserved_kwh"),
        "unserved_kwh": _kpi(results, "energy", "unserved_kwh"),
        "violations": prio + grid + edge,
        "priority_violations": prio,
        "dark_signal_s": _kpi(results, "mobility", "dark_signal_s"),
        "ev_trips": float(len(late_min)),
        "ev_late_min": float(sum(late_min) / len(late_min)) if late_min else 0.0,
    }
    mob = results.get("mobility")
    groups = {"district": dict(mob.groups.get("district", {}))} if mob is not None else {}
    if district_of is not None:
        groups["district_ems"] = ems_by_district(results.get("safety"), district_of)
    return DomainResult({k: round(v, 4) for k, v in kpis.items()}, groups=groups,
                        extra={**dict(extra), "notes": list(notes),
                               "violations_by_kind": {"priority": prio, "grid": grid, "edge_refusals": edge}})
