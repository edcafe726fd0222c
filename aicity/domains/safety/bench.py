"""``aicity bench safety``: Smart City vs AI City dispatch (and the oracle) on paired seeds, through the one loop.

Every online episode runs through :func:`aicity.runner.bench_run` (governance, precedence, an in-memory store);
the same seed draws the same incidents and service times for every controller (common random numbers). The
factorial {SUMO bluelight on/off} × {signal preemption on/off} runs the city scenario (mobility + safety on one
SUMO, mobility's AI signal control with or without its preemption planner), so each gain is credited where it
belongs. The oracle is the perfect-foresight MIP of :mod:`aicity.domains.safety.oracle` on the same incidents.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

BENCH_KEYS = ("scenario", "controller", "seed", "load_multiplier", "service_scale", "bluelight", "preemption",
              "busy_frac", "mean_response_s", "p90_response_s", "late_frac", "worst_zone_p90_s", "calls",
              "relocations", "coverage", "wall_s")


@dataclasses.dataclass(frozen=True, slots=True)
class Task:
    """One episode: a safety scenario, a controller, a seed, the load and the factorial arm."""

    scenario: str
    controller: str
    seed: int
    load_multiplier: float
    service_scale: float
    bluelight: bool = False
    preemption: bool | None = None
    """None: the safety scenario alone (no signals controlled); True/False: the city scenario with mobility's
    AI signal control with / without its preemption planner (Smart City dispatch runs beside mobility's fixed-time
    plans: Smart City as a whole)."""


def run_task(task: Task) -> dict[str, Any]:
    """One record (an online episode through the loop, or the oracle)."""
    t0 = time.perf_counter()
    if task.controller == "oracle":
        return _oracle(task, t0)
    from aicity.runner import bench_run, load_city

    opts = {"load_multiplier": task.load_multiplier, "service_scale": task.service_scale,
            "bluelight": task.bluelight}
    if task.preemption is None:
        city = load_city(f"safety/{task.scenario}", opts)
        controllers = {"safety": task.controller}
    else:
        city = load_city(f"{task.scenario}-city", {f"safety.{k}": v for k, v in opts.items()})
        signals = "fixed" if task.controller == "smart" else ("ai" if task.preemption else "ai_nopreempt")
        controllers = {"safety": task.controller, "mobility": signals}
    ep = bench_run(city, mode="ai", seed=task.seed, controllers=controllers)
    res = ep.results["safety"]
    k = res.kpis
    return _record(task, busy=k["busy_frac"], mean=k["response_mean_s"], p90=k["response_p90_s"], late=k["late_frac"],
                   worst=k["zone_p90_worst_s"], calls=int(res.extra["counts"]["calls"]),
                   relocations=int(res.extra["counts"]["relocations"]), coverage=k["coverage"],
                   wall=time.perf_counter() - t0)


def _record(task: Task, *, busy: float | None, mean: float, p90: float, late: float, worst: float | None, calls: int,
            relocations: int, coverage: float | None, wall: float) -> dict[str, Any]:
    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 4)

    return {"scenario": task.scenario, "controller": task.controller, "seed": task.seed,
            "load_multiplier": task.load_multiplier, "service_scale": task.service_scale, "bluelight": task.bluelight,
            "preemption": bool(task.preemption), "city": task.preemption is not None, "busy_frac": r(busy),
            "mean_response_s": r(mean), "p90_response_s": r(p90), "late_frac": r(late), "worst_zone_p90_s": r(worst),
            "calls": calls, "relocations": relocations, "coverage": r(coverage), "wall_s": round(wall, 2)}


def _oracle(task: Task, t0: float) -> dict[str, Any]:
    from aicity.domains.mobility.scenarios import read_sumocfg
    from aicity.domains.safety import domain, options_of
    from aicity.domains.safety.geo import load_map
    from aicity.domains.safety.incidents import generate
    from aicity.domains.safety.oracle import solve
    from aicity.domains.safety.planning import historical_demand, home_stations

    scen = domain.resolve(task.scenario)
    assert scen is not None
    p = options_of(dataclasses.replace(scen, params={**scen.params, "load_multiplier": task.load_multiplier,
                                                      "service_scale": task.service_scale}))
    smap = load_map(read_sumocfg(str(scen.path)).net, int(p["zones_per_side"]), int(p["hospitals"]))
    span = scen.end_s - scen.begin_s
    incidents = generate(smap, begin_s=scen.begin_s, duration_s=span, seed=task.seed,
                         load_multiplier=task.load_multiplier, service_scale=task.service_scale,
                         call_processing_s=float(p["call_processing_s"]))
    homes = home_stations(smap, historical_demand(smap, task.load_multiplier), int(p["ambulances"]),
                          float(p["coverage_radius_s"]), 0.3)
    res = solve(smap, incidents, homes, horizon_s=span, call_processing_s=float(p["call_processing_s"]),
                target_p1_s=float(p["target_p1_s"]), target_p2_s=float(p["target_p2_s"]))
    return _record(task, busy=None, mean=res.mean_response_s, p90=res.p90_response_s, late=res.late_frac,
                   worst=None, calls=len(incidents), relocations=res.relocations, coverage=None,
                   wall=time.perf_counter() - t0)


def tasks_for(scenarios: list[str], controllers: list[str], seeds: list[int], loads: list[float],
              service_scale: float, factorial: bool) -> list[Task]:
    """Every episode of a benchmark: controllers × seeds × loads per scenario, then the factorial (AI only)."""
    out = [Task(s, c, seed, load, service_scale) for s in scenarios for load in loads for c in controllers
           for seed in seeds]
    if factorial:
        out += [Task(s, "ai", seed, load, service_scale, blue, pre) for s in scenarios for load in loads[-1:]
                for blue in (False, True) for pre in (False, True) for seed in seeds]
        out += [Task(s, "smart", seed, load, service_scale, False, False) for s in scenarios for load in loads[-1:]
                for seed in seeds]  # Smart City as a whole: closest idle beside fixed-time signals
    return out


def run_safety_bench(tasks: list[Task], jobs: int) -> list[dict[str, Any]]:
    """Run every task (``jobs`` watched worker processes: libsumo runs one simulation per process), in order."""
    from aicity.workers import run_episodes

    return run_episodes(run_task, tasks, jobs=jobs)
