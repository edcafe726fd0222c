"""Smart City vs AI City in the city scenario, counting only the calls made in the window's first minutes.

Usage: python bench/safety_warmdown.py [--scenario cologne8-ems] [--load 150] [--seeds 1-45] [--jobs 2]
       [--measure 3600,3000,2700] [--json bench/results/safety_city_warmdown.json]

The published comparison (``aicity bench safety --city``) counts every call of the 1-h window, and a call still
waiting at the window's end counts only as a lower bound (its wait so far): 8-9 % of cologne8's calls and 15-23 %
of ingolstadt21's. Here every episode runs exactly as there (the same scenario, options, seeds and loop,
:func:`aicity.runner.bench_run`), every call is still served, and the KPIs count only the calls made in the first
``measure`` seconds: the minutes after are a warm-down in which those calls are reached. Per seed and controller
one record per measured span, with the fields :func:`aicity.domains.safety.bench.city_summary` reads (no oracle
fields: the oracles plan every call of the window).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aicity.runner import parse_seeds

SERVICE_SCALE = 0.25


def episode(args: tuple[str, str, int, float]) -> dict[str, Any]:
    """One city episode as ``aicity bench safety --city`` runs it; its calls one by one."""
    from aicity.domains.safety.bench import Task, online_result

    scenario, controller, seed, load = args
    res = online_result(Task(scenario, controller, seed, load, SERVICE_SCALE, preemption=controller != "smart"),
                        record_travel_times=False)
    return {"scenario": scenario, "controller": controller, "seed": seed, "busy_frac": float(res.kpis["busy_frac"]),
            "mean_response_all_s": float(res.kpis["response_mean_s"]), "sim_s": float(res.extra["sim_s"]),
            "targets_s": res.extra["options"]["targets_s"], "incidents": res.extra["incidents"]}


def measured(ep: dict[str, Any], until_s: float) -> dict[str, Any]:
    """The episode's KPIs over the calls made before ``until_s`` (counted as the product's KPIs count them)."""
    import numpy as np

    from aicity.domains.safety.bench import zone_responses, zone_unreached_waits
    from aicity.domains.safety.kpis import tally_calls

    calls = [i for i in ep["incidents"] if float(i["call_s"]) < until_s]
    end = ep["sim_s"]
    tally = tally_calls(calls, end, ep["targets_s"])
    resp, late = tally.resp, tally.late
    return {"scenario": ep["scenario"], "controller": ep["controller"], "seed": ep["seed"], "measure_s": until_s,
            "calls": len(calls), "busy_frac": ep["busy_frac"],
            "mean_response_s": round(float(np.mean(resp)), 4) if resp else 0.0,
            "p90_response_s": round(float(np.percentile(resp, 90)), 4) if resp else 0.0,
            "late_frac": round(sum(late) / len(late), 4) if late else 0.0, "worst_zone_p90_s": None,
            "zone_responses_s": zone_responses(calls), "zone_unreached_waits_s": zone_unreached_waits(calls, end)}


def main() -> None:
    """Run the paired episodes once and write one record per seed, controller and measured span."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="cologne8-ems")
    ap.add_argument("--load", type=float, default=150.0)
    ap.add_argument("--seeds", default="1-45")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--measure", default="3600,3000,2700")
    ap.add_argument("--json", default="bench/results/safety_city_warmdown.json")
    args = ap.parse_args()
    tasks = [(args.scenario, c, s, args.load) for c in ("smart", "ai") for s in parse_seeds(args.seeds)]
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=mp.get_context("spawn"),
                             max_tasks_per_child=1) as pool:
        episodes = list(pool.map(episode, tasks))
    out = [measured(ep, float(t)) for t in args.measure.split(",") for ep in episodes]
    path = Path(args.json)
    old = json.loads(path.read_text()) if path.exists() else []
    keep = [r for r in old if r["scenario"] != args.scenario]
    path.write_text(json.dumps(keep + out, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
