"""One whole-city mobility result from the results of its districts (each with ``extra["segments"]``).

A vehicle that crossed borders is one trip: it departs when it first departed (its first departure delay is its
``departDelay``), arrives when it last arrived, and its time loss and waiting are the sums over its passages (a
later passage's insertion delay at a border is time lost too). Its trip is finished when its last passage
arrived at its destination; unfinished when it is still driving, waiting to enter a district, or was in flight
between districts at the end; never inserted when it never entered its first district. The KPIs then follow
:func:`aicity.domains.mobility.kpis.trip_kpis`, like the whole-city run's.

Merged as they are: per-signal delay (every signal is in one district), the queue series (summed at each decision
time: every approach is in one district), action and power counters (summed). Not merged honestly, so left out or
approximate: the districts' ``edges_xy``, ``ev_plan`` and ``ev_trips`` (gridcity has no emergency vehicles) are
concatenated; a signal's delay counts only the part of its 200 m detection range that lies in its own district's
net (the few metres beyond a border edge's far end are cut off).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from aicity.core.domain import DomainResult
from aicity.core.errors import UserError
from aicity.domains.mobility.kpis import Occupancy, Trip, pop_counts, signal_kpis, trip_kpis

SUMMED = ("dark_signal_s", "battery_signal_s", "max_hold_timeouts")
SUMMED_COUNTS = ("preemptions", "actions_applied", "actions_clamped", "actions_refused")


def whole_trips(segments: list[dict[str, Any]], end_s: float) -> tuple[list[Trip], list[tuple[str, float]]]:
    """Trips (and never-inserted vehicles with their delay) from every district's passages."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in segments:
        by[str(s["id"])].append(s)
    trips: list[Trip] = []
    never: list[tuple[str, float]] = []
    for vid, segs in sorted(by.items()):
        segs.sort(key=lambda s: (float(s["depart"]), s["status"] == "pending"))
        first, last = segs[0], segs[-1]
        if len(segs) == 1 and first["status"] == "pending":
            never.append((vid, float(first["depart_delay"])))
            continue
        driven = [s for s in segs if s["status"] != "pending"]
        start = driven[0]
        later_delay = sum(float(s["depart_delay"]) for s in segs if s is not start)
        arrival = end_s if last["status"] == "pending" else float(last["depart"]) + float(last["duration"])
        trips.append(Trip(
            vid, "", float(start["depart"]), arrival - float(start["depart"]),
            sum(float(s["time_loss"]) for s in segs) + later_delay, float(start["depart_delay"]),
            sum(float(s["waiting"]) for s in segs), last["status"] == "arrived", str(start.get("block") or "")))
    return trips, never


def merge_results(results: Mapping[str, DomainResult]) -> DomainResult:
    """The whole city's :class:`DomainResult` from each district's (by district name), same KPI names."""
    if not results:
        raise UserError("merge_results needs the result of at least one district")
    missing = sorted(d for d, r in results.items() if "segments" not in r.extra)
    if missing:
        raise UserError(f"district result(s) {', '.join(missing)} carry no segments: not from a district twin")
    parts = [results[d] for d in sorted(results, key=_order)]
    begin_s = float(parts[0].extra.get("begin_s", 0.0))
    sim_s = max(float(r.extra.get("sim_s", 0.0)) for r in parts)
    segs = [s for r in parts for s in r.extra["segments"]]
    trips, never = whole_trips(segs, begin_s + sim_s)
    blocks = {t.depart_edge: t.depart_edge for t in trips if t.depart_edge}
    kpis, groups, counts, delays = trip_kpis(trips, never, Occupancy({}, {}, {}), blocks, begin_s, begin_s + sim_s)
    per_signal = {s: v for r in parts for s, v in r.groups.get("signal", {}).items()}
    signal_kpis(kpis, per_signal)
    for k in SUMMED:
        kpis[k] = sum(float(r.kpis.get(k, 0.0)) for r in parts)
    for k in SUMMED_COUNTS:
        kpis[k] = sum(float(r.extra.get("counts", {}).get(k, 0.0)) for r in parts)
    queue: dict[float, float] = defaultdict(float)
    for r in parts:
        for t, q in r.series.get("queue_veh", []):
            queue[t] += q
    borders = [r.extra.get("border", {}) for r in parts]
    first = parts[0].extra
    extra: dict[str, Any] = {
        "counts": pop_counts(kpis), "sim_s": sim_s, "begin_s": begin_s,
        "scenario": str(first.get("scenario", "")).rsplit(".", 1)[0], "mode": first.get("mode"),
        "seed": first.get("seed"), "districts_merged": sorted(results, key=_order),
        "signal_xy": {s: xy for r in parts for s, xy in r.extra.get("signal_xy", {}).items()},
        "positions": {"signal": {s: xy for r in parts for s, xy in r.extra.get("signal_xy", {}).items()}},
        "group_metric": "delay s", "time_of_day_bin_s": first.get("time_of_day_bin_s"), "group_counts": counts,
        "districts": {"rule": "the generated city's blocks b1..bK, by the trip's first departure edge",
                      "signals": {}},
        "edges_xy": [e for r in parts for e in r.extra.get("edges_xy", [])],
        "ev_plan": [e for r in parts for e in r.extra.get("ev_plan", [])],
        "ev_trips": [e for r in parts for e in r.extra.get("ev_trips", [])],
        "border": {"crossings": sum(int(b.get("crossed_in", 0)) for b in borders),
                   "retried": sum(int(b.get("retried", 0)) for b in borders),
                   "border_lag_s": sum(float(b.get("border_lag_s", 0.0)) for b in borders),
                   "border_lag_n": sum(int(b.get("border_lag_n", 0)) for b in borders)},
    }
    series = {"delay_s": delays, "queue_veh": sorted(queue.items())}
    return DomainResult(kpis=kpis, groups={"signal": per_signal, **groups}, series=series, extra=extra)


def _order(name: str) -> tuple[int, str]:
    digits = name.lstrip("d")
    return (int(digits), name) if digits.isdigit() else (1 << 30, name)
