"""Preemption benchmark: emergency trips in Smart City mode (fixed time, no preemption) vs AI City mode.

One episode per (seed, mode), with emergency vehicles inserted by the twin (``ev_per_hour``, seeded OD
pairs), run in spawned processes (libsumo allows one simulation per process). :func:`summarize_preemption`
gives the paired differences over seeds with 95 % confidence intervals (Student t).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from aicity.core.errors import UserError

PREEMPTION_KEYS = ("scenario", "seed", "mode", "ev_trips", "ev_travel_s_mean", "ev_travel_s_p90",
                   "others_delay_s", "preemptions", "max_hold_timeouts", "never_inserted")
MODES = {"smart": "fixed", "ai": "ai", "ai_nopreempt": "ai_nopreempt"}
"""Benchmark mode → controller: ``ai_nopreempt`` is AI City control without preemption (to isolate it)."""

# two-sided 95 % Student t quantiles by degrees of freedom (1..30); beyond, the normal 1.96
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def _one(task: tuple[str, int, str, float, float | None, float | None, float]) -> dict[str, Any]:
    scenario, seed, mode, ev_per_hour, interval, duration, ev_speed_factor = task
    from aicity.domains.mobility.bench import run_episode

    options: dict[str, Any] = {"ev_per_hour": ev_per_hour, "ev_speed_factor": ev_speed_factor}
    if interval is not None:
        options["decision_interval_s"] = interval
    result, _wall = run_episode(scenario, MODES[mode], seed, options=options, duration_s=duration)
    k, n = result.kpis, result.extra["counts"]
    return {"scenario": scenario, "seed": seed, "mode": mode, "ev_trips": int(n["ev_trips"]),
            "ev_travel_s_mean": round(k["ev_travel_s_mean"], 3), "ev_travel_s_p90": round(k["ev_travel_s_p90"], 3),
            "others_delay_s": round(k["delay_s"], 3), "preemptions": int(n["preemptions"]),
            "max_hold_timeouts": int(k["max_hold_timeouts"]), "never_inserted": int(k["never_inserted"]),
            "ev_finished": int(k["ev_finished"]), "ev_free_flow_s_mean": round(n["ev_free_flow_s_mean"], 3),
            "ev_wait_s_mean": round(k["ev_wait_s_mean"], 3), "ev_speed_factor": ev_speed_factor}


def run_preemption_bench(scenario: str, seeds: list[int], jobs: int, *,
                         modes: Sequence[str] = ("smart", "ai"), ev_per_hour: float = 10.0,
                         decision_interval_s: float | None = None, duration_s: float | None = None,
                         ev_speed_factor: float = 1.0) -> list[dict[str, Any]]:
    """One record per (seed, mode) with :data:`PREEMPTION_KEYS` (plus ``ev_finished``, ``ev_free_flow_s_mean``:
    the emergency trips' travel time had they driven at the allowed speed all the way — the floor no signal
    control can beat — ``ev_wait_s_mean``, their time standing, and ``ev_speed_factor``), in input order;
    ``decision_interval_s`` overrides the twin's, ``duration_s`` shortens the window, ``ev_speed_factor`` is
    the emergency vehicles' desired speed over the limit in both modes (see :class:`TwinConfig`)."""
    from aicity.domains.mobility.scenarios import require

    require(scenario)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise UserError(f"unknown preemption bench mode(s) {bad}; known: {', '.join(MODES)}")
    if not seeds:
        raise UserError("the preemption benchmark needs at least one seed")
    if not 0 < ev_per_hour <= 360:
        raise UserError(f"ev_per_hour must be a number above 0 and at most 360 veh/h, got {ev_per_hour!r}")
    check_ev_speed_factor(ev_speed_factor)
    tasks = [(scenario, int(s), m, float(ev_per_hour), decision_interval_s, duration_s, float(ev_speed_factor))
             for s in seeds for m in modes]
    from aicity.workers import run_episodes

    return run_episodes(_one, tasks, jobs=jobs)


def check_ev_speed_factor(value: object) -> float:
    """The emergency vehicles' speed factor, checked as the mobility option ``ev_speed_factor`` is."""
    from aicity.domains.mobility.meta import META

    option = META.option("ev_speed_factor")
    assert option is not None
    return float(option.check(value))


def mean_ci95(values: Sequence[float]) -> dict[str, Any]:
    """Mean and 95 % confidence interval (Student t) of ``values``."""
    n = len(values)
    if n == 0:
        return {"mean": None, "ci95": [None, None], "n": 0}
    m = sum(values) / n
    if n == 1:
        return {"mean": round(m, 3), "ci95": [None, None], "n": 1}
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    half = t * sd / math.sqrt(n)
    return {"mean": round(m, 3), "ci95": [round(m - half, 3), round(m + half, 3)], "n": n}


def _measured(v: Any, *, positive: bool = True) -> bool:
    """A number that was measured (not None, not NaN: a seed where no emergency trip finished), above 0 if asked."""
    return isinstance(v, int | float) and math.isfinite(v) and (v > 0 or not positive)


def summarize_preemption(records: Sequence[Mapping[str, Any]], base: str = "smart",
                         treatment: str = "ai") -> dict[str, Any]:
    """Paired differences ``treatment`` − ``base`` over the seeds both ran: emergency travel time change (%),
    everyone else's delay change (s and %), with 95 % confidence intervals."""
    by: dict[tuple[int, str], Mapping[str, Any]] = {(int(r["seed"]), str(r["mode"])): r for r in records}
    seeds = sorted(s for s, m in by if m == base and (s, treatment) in by)
    ev_pct, oth_s, oth_pct, floor_pct = [], [], [], []
    for s in seeds:
        b, t = by[(s, base)], by[(s, treatment)]
        if _measured(b["ev_travel_s_mean"]) and _measured(t["ev_travel_s_mean"]):
            ev_pct.append(100.0 * (t["ev_travel_s_mean"] - b["ev_travel_s_mean"]) / b["ev_travel_s_mean"])
            if _measured(t.get("ev_free_flow_s_mean")):
                floor_pct.append(100.0 * (t["ev_free_flow_s_mean"] - b["ev_travel_s_mean"]) / b["ev_travel_s_mean"])
        oth_s.append(t["others_delay_s"] - b["others_delay_s"])
        if b["others_delay_s"] > 0:
            oth_pct.append(100.0 * (t["others_delay_s"] - b["others_delay_s"]) / b["others_delay_s"])

    def mean_of(mode: str, key: str) -> float | None:  # over the seeds where it was measured (an EV finished)
        vals = [v for s in seeds if _measured(v := by[(s, mode)][key], positive=False)]
        return round(sum(vals) / len(vals), 3) if vals else None

    return {
        "scenario": records[0]["scenario"] if records else None, "base": base, "treatment": treatment,
        "seeds": seeds,
        "ev_travel_s_mean": {m: mean_of(m, "ev_travel_s_mean") for m in (base, treatment)},
        "others_delay_s": {m: mean_of(m, "others_delay_s") for m in (base, treatment)},
        "ev_travel_change_pct": mean_ci95(ev_pct),
        "ev_travel_floor_change_pct": mean_ci95(floor_pct),
        "others_delay_change_s": mean_ci95(oth_s),
        "others_delay_change_pct": mean_ci95(oth_pct),
    }
