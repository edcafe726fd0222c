"""``aicity bench energy``: controllers over energy scenarios and seeds, every episode through the product's loop
(:func:`aicity.runner.bench_run`: governance, precedence, an in-memory store), one process per episode.

Each record names ``scenario``, ``controller``, ``seed``, the KPIs (``peak_kw``, ``delivered_frac``,
``energy_cost``, ``co2_kg``, ``violations`` …), wall time per decision step, and for every controller other than
``smart`` and ``oracle`` the gap it closes between Smart City and the oracle on cost and peak.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from aicity.domains.energy.kpis import gap_closed

KEYS = ("peak_kw", "energy_cost", "demand_cost", "bill", "co2_kg", "delivered_frac", "unserved_kwh",
        "voltage_violations", "voltage_worst_pu", "loading_violations", "loading_worst_pct", "battery_throughput_kwh")


def run_episode(scenario: str, controller: str, seed: int, options: Mapping[str, Any] | None = None,
                duration_s: float | None = None) -> dict[str, Any]:
    """One episode of ``controller`` through the governed loop; its record (without gaps)."""
    from aicity.runner import bench_run, load_city

    name = scenario if scenario.startswith("energy/") else f"energy/{scenario}"
    city = load_city(name, {"oracle": False, **(options or {})}, duration_s)
    t0 = time.perf_counter()
    ep = bench_run(city, mode="ai", seed=seed, controllers={"energy": controller})
    wall = time.perf_counter() - t0
    res = ep.results["energy"]
    k = res.kpis
    rec: dict[str, Any] = {"scenario": scenario, "controller": controller, "seed": seed,
                           **{key: round(float(k[key]), 4) for key in KEYS},
                           "violations": int(k["voltage_violations"] + k["loading_violations"]),
                           "steps": ep.stats.steps, "wall_s": round(wall, 2),
                           "wall_ms_per_step": round(1000 * wall / max(1, ep.stats.steps), 2),
                           "refused": ep.stats.refused, "degraded": ep.stats.degraded,
                           "demotions": ep.stats.demotions, "groups": res.groups,
                           "options": dict(options or {})}
    return rec


def add_gaps(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``gap_closed_cost`` / ``gap_closed_peak`` (and CO2, and the whole bill) of each controller against smart and
    oracle of the same scenario, seed and options."""
    def key(r: Mapping[str, Any]) -> tuple[str, int, str]:
        return r["scenario"], r["seed"], repr(sorted(r["options"].items()))

    base = {key(r): r for r in records if r["controller"] == "smart"}
    best = {key(r): r for r in records if r["controller"] == "oracle"}
    out = []
    for r in records:
        r = dict(r)
        b, o = base.get(key(r)), best.get(key(r))
        if r["controller"] not in ("smart", "oracle") and b is not None and o is not None:
            for kpi, short in (("energy_cost", "cost"), ("peak_kw", "peak"), ("co2_kg", "co2"), ("bill", "bill")):
                if kpi not in b or kpi not in r or kpi not in o:
                    continue
                g = gap_closed(b[kpi], r[kpi], o[kpi])
                r[f"gap_closed_{short}"] = None if g is None else round(g, 3)
        out.append(r)
    return out


def _one(task: tuple[str, str, int, dict[str, Any], float | None]) -> dict[str, Any]:
    scenario, controller, seed, options, duration = task
    return run_episode(scenario, controller, seed, options, duration)


def run_energy_bench(scenarios: list[str], controllers: list[str], seeds: list[int], *, jobs: int = 1,
                     options: Mapping[str, Any] | None = None, duration_s: float | None = None) -> list[dict[str, Any]]:
    """One record per (scenario, controller, seed), in input order, gaps added."""
    from aicity.core.errors import UserError
    from aicity.domains.energy.controllers import MODES
    from aicity.domains.energy.scenarios import resolve

    for s in scenarios:
        if resolve(s) is None:
            raise UserError(f"unknown energy scenario {s!r}")
    for c in controllers:
        if c not in MODES:
            raise UserError(f"unknown energy controller {c!r}; known: {', '.join(MODES)}")
    opts = dict(options or {})
    tasks = [(s, c, int(seed), {**opts, **({"draw": int(seed)} if s.startswith("district") else {})}, duration_s)
             for s in scenarios for c in controllers for seed in seeds]
    if jobs <= 1 or len(tasks) == 1:
        records = [_one(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                 max_tasks_per_child=1) as pool:
            records = list(pool.map(_one, tasks))
    return add_gaps(records)
