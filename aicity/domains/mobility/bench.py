"""Benchmark harness: one episode per (scenario, controller, seed), in parallel processes (libsumo: one
simulation per process). Every episode runs through the product's loop (:func:`aicity.runner.bench_run`:
governance, precedence, an in-memory store), with the controller named for the mobility part."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aicity.core.domain import DomainResult

BENCH_KEYS = ("scenario", "controller", "seed", "delay_s", "trip_time_s", "wait_s", "finished", "unfinished",
              "never_inserted", "wall_s", "sim_s")
GROUP_FACTORS = ("district", "time_of_day")


def run_episode(scenario: str, controller: str, seed: int, *, options: Mapping[str, Any] | None = None,
                duration_s: float | None = None) -> tuple[DomainResult, float]:
    """Run one episode of ``controller`` through the governed loop; returns the result and wall seconds."""
    from aicity.runner import bench_run, load_city

    city = load_city(f"mobility/{scenario}" if "/" not in scenario and not scenario.endswith(".sumocfg")
                     else scenario, options, duration_s)
    t0 = time.perf_counter()
    episode = bench_run(city, mode="ai", seed=seed, controllers={"mobility": controller})
    return episode.results["mobility"], time.perf_counter() - t0


def bench_record(scenario: str, controller: str, seed: int, result: DomainResult, wall_s: float) -> dict[str, Any]:
    """The benchmark record of one episode: :data:`BENCH_KEYS`, then ``groups`` (see :func:`record_groups`)."""
    k: Mapping[str, float] = result.kpis
    return {"scenario": scenario, "controller": controller, "seed": seed,
            "delay_s": round(k["delay_s"], 3), "trip_time_s": round(k["trip_time_s"], 3),
            "wait_s": round(k["wait_s"], 3), "finished": int(k["finished"]), "unfinished": int(k["unfinished"]),
            "never_inserted": int(k["never_inserted"]), "wall_s": round(wall_s, 3), "sim_s": result.extra.get("sim_s"),
            "groups": record_groups(result)}


def record_groups(result: DomainResult) -> dict[str, dict[str, dict[str, float]]]:
    """RESCO delay (and the number of trips) by district and by 15-min time of day:
    ``{factor: {group: {"delay_s": v, "trips": n}}}``."""
    counts = result.extra.get("group_counts") or {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for dim in GROUP_FACTORS:
        if dim in result.groups:
            out[dim] = {}
            for g, v in result.groups[dim].items():
                out[dim][g] = {"delay_s": round(v, 3)}
                if g in counts.get(dim, {}):
                    out[dim][g]["trips"] = int(counts[dim][g])
    return out


def _one(args: tuple[str, str, int]) -> dict[str, Any]:
    scenario, controller, seed = args
    result, wall = run_episode(scenario, controller, seed, options={"ev_per_hour": 0})  # signal control alone
    return bench_record(scenario, controller, seed, result, wall)


def run_mobility_bench(scenarios: list[str], controllers: list[str], seeds: list[int],
                       jobs: int) -> list[dict[str, Any]]:
    """One record per (scenario, controller, seed), run in ``jobs`` spawned processes, in input order."""
    from aicity.domains.mobility.controllers import controller as get_controller
    from aicity.domains.mobility.scenarios import require

    for s in scenarios:
        require(s)
    for c in controllers:
        get_controller(c)  # fail fast on a typo, before any process starts
    tasks = [(s, c, int(seed)) for s in scenarios for c in controllers for seed in seeds]
    from aicity.workers import run_episodes

    return run_episodes(_one, tasks, jobs=jobs)
