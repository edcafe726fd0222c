"""``aicity bench city``: Smart City vs the ablation vs AI City on scripted events, paired seeds, one loop.

Every episode is :func:`aicity.runner.bench_run` on the city scenario — the loop ``aicity run`` runs — in one
mode: ``smart`` (each domain's baseline, uncoordinated), ``ablation`` (each domain's AI, uncoordinated) or
``ai`` (each domain's AI under the orchestration stage). The same seed draws the same traffic, calls and
sessions for every mode (common random numbers).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

HEADLINES = {"mobility": ("delay_s",), "safety": ("response_p90_s", "late_frac"),
             "energy": ("peak_kw", "energy_cost")}
"""Each domain's headline KPIs in a record (the benchmark names the domains it knows; the city's KPIs are all
recorded under ``city``)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Task:
    """One episode: an event, a mode, a seed (and the window)."""

    event: str
    controller: str
    seed: int
    duration_s: float | None = None
    city: str = "cologne8-city-calm"


def run_task(task: Task) -> dict[str, Any]:
    """One record through the product's loop."""
    from aicity.domains.city.scenarios import event_options
    from aicity.runner import bench_run, load_city

    t0 = time.perf_counter()
    city = load_city(task.city, event_options(task.event), task.duration_s)
    ep = bench_run(city, mode=task.controller, seed=task.seed)
    wall = time.perf_counter() - t0
    rec: dict[str, Any] = {"event": task.event, "controller": task.controller, "seed": task.seed,
                           "city": task.city, "sim_s": ep.stats.sim_s}
    for dom, keys in HEADLINES.items():
        res = ep.results.get(dom)
        for k in keys:
            rec[f"{dom}.{k}"] = None if res is None else res.kpis.get(k)
    res = ep.results.get("city")
    for k, v in (res.kpis.items() if res is not None else ()):
        rec[f"city.{k}"] = v
    rec["priority_violations"] = ep.stats.priority_violations
    rec["orchestration"] = {"substituted": ep.stats.substituted, "overridden": ep.stats.overridden}
    rec["wall_s"] = round(wall, 2)
    rec["x_real_time"] = round(ep.stats.sim_s / max(ep.stats.wall_s, 1e-9), 1)
    return rec


def tasks_for(events: list[str], controllers: list[str], seeds: list[int],
              duration_s: float | None) -> list[Task]:
    """Every episode: events × seeds × controllers (paired: every controller on every seed)."""
    return [Task(e, c, s, duration_s) for e in events for s in seeds for c in controllers]


def run_city_bench(tasks: list[Task], jobs: int) -> list[dict[str, Any]]:
    """Run every task (``jobs`` watched worker processes: libsumo runs one simulation per process), in order."""
    from aicity.workers import run_episodes

    return run_episodes(run_task, tasks, jobs=jobs)
