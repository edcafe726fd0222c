"""The safety KPIs at the end of a run: call-to-arrival times, shares within targets, per-zone p90, coverage,
relocations, busy fraction and the background traffic's queues, as a :class:`DomainResult`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicity.core.domain import DomainResult

STANDARD_S = 900.0
"""Call-to-arrival standard: 15 min (the Netherlands, 95 %; also England's Category 1 p90)."""
NFPA_TRAVEL_S = 240.0
"""NFPA 1710: 240 s travel for the first unit."""


TRAVEL_BUCKET_S = 60.0
"""Bucket of the recorded travel times the traffic-aware oracle reads."""


def edge_time_table(samples: dict[str, list[float]], sample_s: float, bucket_s: float) -> dict[str, Any]:
    """Per-edge mean travel time per bucket from samples taken every ``sample_s`` from the window's begin."""
    per = max(1, round(bucket_s / sample_s))
    edges = {e: [round(float(np.mean(v[k:k + per])), 1) for k in range(0, len(v), per)] for e, v in samples.items()}
    return {"bucket_s": per * sample_s, "edges": edges}


UNDEFINED = math.nan
"""A KPI with nothing to measure in the run (no call, no priority-1 call, no sample): not a zero. The report
shows it as "–" and gives no verdict; a bench record holds it as null."""


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else UNDEFINED


def _share(flags: list[bool]) -> float:
    return float(sum(flags) / len(flags)) if flags else UNDEFINED


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else UNDEFINED


@dataclass(slots=True)
class CallTally:
    """The per-call outcomes behind the response KPIs, call by call in record order."""

    resp: list[float] = field(default_factory=list)
    """Call-to-arrival seconds of the calls reached."""
    late: list[bool] = field(default_factory=list)
    """Per call reached, or not reached and already past its target: late or not."""
    in_target: dict[int, list[bool]] = field(default_factory=lambda: {1: [], 2: []})
    within_std: list[bool] = field(default_factory=list)
    nfpa: list[bool] = field(default_factory=list)
    by_zone: dict[str, list[float]] = field(default_factory=dict)


def tally_calls(records: Iterable[Mapping[str, Any]], end_s: float, targets_s: Mapping[str, float]) -> CallTally:
    """The response outcomes of call records (``call_s``, ``zone``, ``priority``, ``dispatch_s``, ``arrival_s``) at
    the window's end ``end_s``; ``targets_s`` are the call-to-arrival targets by priority (``p1``, ``p2``). A call
    never reached counts as late once it is past its target, and is otherwise left out."""
    out = CallTally()
    for rec in records:
        call_s, prio = float(rec["call_s"]), int(rec["priority"])
        target = float(targets_s["p1" if prio == 1 else "p2"])
        arrival, dispatch = rec["arrival_s"], rec["dispatch_s"]
        if arrival is not None:
            r = float(arrival) - call_s
            out.resp.append(r)
            out.by_zone.setdefault(str(rec["zone"]), []).append(r)
            out.late.append(r > target)
            out.in_target[prio].append(r <= target)
            out.within_std.append(r <= STANDARD_S)
            if dispatch is not None:
                out.nfpa.append(float(arrival) - float(dispatch) <= NFPA_TRAVEL_S)
        elif end_s - call_s > target:  # not reached, and already past its target
            out.late.append(True)
            out.in_target[prio].append(False)
    return out


def traffic_totals(twin: Any) -> tuple[float, int]:
    """The background traffic's seconds lost and its vehicles: the twin's own readings, or a merged run's sums."""
    merged = getattr(twin, "traffic_totals", None)
    if merged is not None:
        return float(merged[0]), int(merged[1])
    lost: Mapping[str, float] = getattr(twin, "_time_loss", {})
    return float(sum(lost.values())), len(lost)


def compute_result(twin: Any) -> DomainResult:
    """KPIs of a finished :class:`~aicity.domains.safety.twin.SafetyTwin` run."""
    c = twin.config
    end = twin.elapsed_s()
    targets = {"p1": c.call_processing_s + c.target_p1_s, "p2": c.call_processing_s + c.target_p2_s}
    records = []
    for cs in sorted(twin.calls.values(), key=lambda x: x.inc.id):
        inc = cs.inc
        if inc.call_s > end:
            continue
        records.append({"id": inc.id, "call_s": inc.call_s, "zone": inc.zone, "priority": inc.priority,
                        "edge": inc.edge, "unit": cs.unit, "dispatch_s": cs.dispatch_s, "arrival_s": cs.arrival_s,
                        "travel_ff_s": None if cs.travel_ff_s is None else round(cs.travel_ff_s, 1)})
    tally = tally_calls(records, end, targets)
    resp, late, in_target, by_zone = tally.resp, tally.late, tally.in_target, tally.by_zone
    within_std, nfpa = tally.within_std, tally.nfpa
    zone_p90 = {z: _p90(v) for z, v in sorted(by_zone.items())}
    worst = max(zone_p90.values()) if zone_p90 else UNDEFINED
    best = min(zone_p90.values()) if zone_p90 else UNDEFINED
    n_units = max(len(twin.units), 1)
    span = max(end, 1.0)
    relocations = sum(1 for o in twin.outcomes if o.action.action == "relocate" and not o.refused)
    n_calls = len(records)
    samples = twin._samples
    lost, n_veh = traffic_totals(twin)
    kpis = {
        "response_mean_s": _mean(resp),
        "response_p90_s": _p90(resp),
        "late_frac": _share(late),
        "within_target_p1": _share(in_target[1]),
        "within_target_p2": _share(in_target[2]),
        "within_15min": _share(within_std),
        "within_nfpa_travel": _share(nfpa),
        "zone_p90_worst_s": worst,
        "zone_p90_best_worst": (best / worst) if worst > 0 else UNDEFINED,
        "coverage": _mean([s[1] for s in samples]),
        "relocations_per_call": relocations / n_calls if n_calls else UNDEFINED,
        "relocation_km": float(sum(u.reloc_km for u in twin.units.values())),
        "busy_frac": twin._busy_s / (n_units * span),
        "traffic_halting_veh": _mean([s[3] for s in samples]),
        "traffic_delay_s": lost / n_veh if n_veh else UNDEFINED,
        "calls_reached": float(len(resp)),
        "calls_unreached": float(n_calls - len(resp)),
    }
    series: dict[str, list[tuple[float, float]]] = {  # over time (the distribution of responses: plots.py)
        "busy_ambulances": [(s[0], s[2]) for s in samples],
        "coverage_share": [(s[0], s[1]) for s in samples],
    }
    for uid, track in sorted(twin._unit_track.items()):
        series[f"ambulance_{uid}_from_home_m"] = track
    smap = twin.map
    extra: dict[str, Any] = {
        "positions": {"zone": {z: list(xy) for z, xy in smap.zone_xy.items()}} if smap else {},
        "edges_xy": [list(map(list, s)) for s in smap.shape.values()] if smap else [],
        "group_metric": "p90 call-to-arrival (s)",
        "traffic": {"time_loss_s": lost, "vehicles": n_veh},  # unrounded: districts' sums give the same KPI
        "counts": {"calls": n_calls, "relocations": relocations, "dead_letters": len(twin.dead_letters),
                   "ambulances": len(twin.units), "stuck_bypasses": len(twin.bypasses)},
        "options": {"load_multiplier": c.load_multiplier, "service_scale": c.service_scale,
                    "call_processing_s": c.call_processing_s, "bluelight": c.bluelight,
                    "stuck_bypass_s": c.stuck_bypass_s,
                    "targets_s": targets},
        "stations": list(twin.stations), "hospitals": list(smap.hospitals) if smap else [],
        "dead_letters": list(twin.dead_letters), "incidents": records, "sim_s": end,
        "stuck_bypasses": list(twin.bypasses),
        "unit_positions": {u: [list(p) for p in v] for u, v in sorted(getattr(twin, "_unit_xy", {}).items())},
    }
    if not n_calls and smap is not None:
        from aicity.domains.safety.incidents import rate_per_h

        expected = sum(rate_per_h(smap, c.load_multiplier, twin.begin_s + t) / 60.0 for t in np.arange(0, end, 60.0))
        extra["notes"] = [f"no call came in this window: {expected:.2g} expected at load ×{c.load_multiplier:g} on "
                          "this map (the rate over Cologne's 509 alarms per km² per year, at this time of day), so no "
                          "response time was measured; --load-multiplier 150 is the benchmark's stress load"]
    if twin._edge_times:
        extra["travel_times"] = edge_time_table(twin._edge_times, twin.decision_interval_s, TRAVEL_BUCKET_S)
    if twin.roadblock is not None:
        extra["road_incident"] = twin.roadblock.record(twin.begin_s)
    return DomainResult(kpis, groups={"zone": zone_p90}, series=series, extra=extra)
