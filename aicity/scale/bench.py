"""``aicity bench scale``: strong and weak scaling of a city run as districts on Ray, against one process.

Every episode runs the product's loop — :func:`aicity.runner.bench_run` for one process,
:class:`aicity.scale.coordinator.DistrictCity` (the code ``aicity run --districts`` runs) for districts — in a
fresh worker process, one at a time (each district run starts its own local Ray cluster, not counted in the
loop's time). Weak scaling: a city of ``k`` equal districts as ``k`` districts, for each ``k``; strong scaling:
the largest city as 1, 2, 4 … districts. Each record carries the loop's time per step, the bytes moved per step,
the crossings, the real-time factor and the headline KPIs beside the one-process run's.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError


@dataclasses.dataclass(frozen=True, slots=True)
class ScaleTask:
    """One episode: ``districts`` = 0 runs the city in one process (the reference)."""

    scenario: str
    districts: int
    seed: int
    duration_s: float | None
    mode: str = "ai"
    study: str = "weak"


DEFAULT_DOMAIN = "mobility"
"""The family ``aicity bench scale`` runs when no ``--domain`` is given (if that domain is installed)."""


def default_family(domain: str | None = None) -> tuple[str, Any]:
    """The family of equal-district scenarios of ``domain`` (None: mobility's if installed, else the first
    installed domain that has one), and that domain."""
    from aicity.core.capabilities import ScalingFamily
    from aicity.core.domain import discover, warn_plugin

    found = {n: d for n, d in discover(on_error=warn_plugin).items() if isinstance(d, ScalingFamily)}
    if domain is not None:
        if domain not in found:
            raise UserError(f"domain {domain!r} has no family of equal-district scenarios; those that do: "
                            f"{', '.join(sorted(found)) or 'none'}")
        return domain, found[domain]
    if DEFAULT_DOMAIN in found:
        return DEFAULT_DOMAIN, found[DEFAULT_DOMAIN]
    for name, dom in found.items():
        return name, dom
    raise UserError("no installed domain has a family of equal-district scenarios; pass --scenario with {k}")


def _headlines(city: Any, results: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in city:
        for kpi in part.domain.meta.headline():
            value = results[part.name].kpis.get(kpi.name)
            if value is not None:
                out[f"{part.name}.{kpi.name}"] = float(value)
    return out


@contextmanager
def district_episode(city: Any, districts: int, mode: str, seed: int, kill: Mapping[int, str] | None = None, *,
                     checkpoint_every: int | None = None) -> Iterator[Any]:
    """``city`` run as ``districts`` districts on a local Ray cluster (``aicity run --districts``' code, with its
    checkpoints every ``checkpoint_every`` steps; None: its default): its episode, whose districts' stores and
    ledgers are there until the block ends."""
    import tempfile

    from aicity.core.store import SqliteStore
    from aicity.scale.coordinator import CHECKPOINT_EVERY, DistrictCity
    from aicity.scale.district import new_key
    from aicity.scale.executors import RayExecutor

    every = CHECKPOINT_EVERY if checkpoint_every is None else checkpoint_every
    with tempfile.TemporaryDirectory(prefix="aicity-districts-") as tmp:
        store = SqliteStore(":memory:", series=False)
        try:
            run = DistrictCity(city, districts=districts, mode=mode, seed=seed, store=store, out=Path(tmp),
                               executor=RayExecutor(), key=new_key(), kill=kill, checkpoint_every=every)
            episode = run.run()
        finally:
            store.close()
        yield episode


def run_scale_task(task: ScaleTask) -> dict[str, Any]:
    """One record (a module-level function: episodes run in spawned workers)."""
    from aicity.runner import bench_run, load_city

    city = load_city(task.scenario, None, task.duration_s)
    rec: dict[str, Any] = {"study": task.study, "scenario": task.scenario, "districts": task.districts,
                           "seed": task.seed, "mode": task.mode}
    t0 = time.perf_counter()
    if task.districts == 0:
        ep = bench_run(city, mode=task.mode, seed=task.seed)
        stats = ep.stats
        rec.update(sim_s=stats.sim_s, loop_s=stats.wall_s, steps=stats.steps,
                   step_ms=1000 * stats.wall_s / max(1, stats.steps), bytes_per_step=0.0, crossings=0,
                   observations_per_step=stats.observations / max(1, stats.steps),
                   proposals=stats.proposals, actuated=stats.actuated)
        rec["kpis"] = _headlines(city, ep.results)
    else:
        with district_episode(city, task.districts, task.mode, task.seed) as dep:
            sc = dep.scale.to_dict()
        rec.update(sim_s=sc["sim_s"], loop_s=sc["loop_s"], open_s=sc["open_s"], steps=sc["steps"],
                   step_ms=sc["step_ms"]["mean"], step_p95_ms=sc["step_ms"]["p95"],
                   bytes_per_step=sc["bytes_per_step"], crossings=sc["crossings"],
                   in_flight_at_end=sc["in_flight_at_end"],
                   district_compute_ms=1000 * max(sc["compute_s"].values()) / max(1, sc["steps"]),
                   observations_per_step=dep.stats["observations"] / max(1, sc["steps"]),
                   proposals=dep.stats["proposals"], actuated=dep.stats["actuated"])
        rec["kpis"] = _headlines(city, dep.results)
    rec["x_real_time"] = rec["sim_s"] / rec["loop_s"] if rec["loop_s"] > 0 else 0.0
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def tasks_for(name_of: Callable[[int], str], sizes: Sequence[int], seed: int,
              duration_s: float | None) -> list[ScaleTask]:
    """Weak scaling over ``sizes`` (one process and as many districts), then strong scaling of the largest."""
    tasks: list[ScaleTask] = []
    for k in sizes:
        tasks += [ScaleTask(name_of(k), 0, seed, duration_s), ScaleTask(name_of(k), k, seed, duration_s)]
    big = max(sizes)
    for d in sorted(d for d in sizes if big % d == 0 and d != big):
        tasks.append(ScaleTask(name_of(big), d, seed, duration_s, study="strong"))
    return tasks


def run_scale(template: str | None, sizes: Sequence[int], seed: int, duration_s: float | None,
              domain: str | None = None) -> dict[str, Any]:
    """Every episode of the study, one at a time; the records and the machine they ran on (``domain``: whose
    family of equal-district scenarios, when no ``template`` is given)."""
    import os
    import platform

    from aicity.workers import run_episodes

    if not sizes or min(sizes) < 1:
        raise UserError("--sizes must be whole numbers of districts, 1 or more")
    if template is None:
        name_of = default_family(domain)[1].scaling_scenario
    elif "{k}" not in template:
        raise UserError(f"--scenario {template!r} must contain {{k}} (the number of districts)")
    else:
        def name_of(k: int, t: str = template) -> str:
            return t.replace("{k}", str(k))
    records = run_episodes(run_scale_task, tasks_for(name_of, sizes, seed, duration_s), jobs=1)
    return {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "family": name_of(1), "seed": seed, "records": records}


@dataclasses.dataclass(frozen=True, slots=True)
class FaultTask:
    """One episode of the faults study: ``kill_at_step`` None is the clean run it is compared with."""

    scenario: str
    districts: int
    seed: int
    duration_s: float | None
    kill_at_step: int | None
    district: str = "d2"
    mode: str = "ai"
    checkpoint_every: int | None = None
    """Steps between checkpoints (0: none, the recovery log runs from the start; None: the default)."""


def run_fault_task(task: FaultTask) -> dict[str, Any]:
    """One record: the city as districts on Ray, with one district's worker killed mid-run (or not)."""
    from aicity.core.store import SqliteStore
    from aicity.governance.ledger import Ledger
    from aicity.runner import load_city

    city = load_city(task.scenario, None, task.duration_s)
    kill = {task.kill_at_step: task.district} if task.kill_at_step is not None else None
    rec: dict[str, Any] = dataclasses.asdict(task)
    with district_episode(city, task.districts, task.mode, task.seed, kill,
                          checkpoint_every=task.checkpoint_every) as ep:
        ledgers = {}
        for c in ep.districts:
            db = SqliteStore(c["db"], series=False)
            try:
                ledger = Ledger(db, key=None)
                digests = [_digest(r) for r in ledger.records()]
                found = [int(r["ledger_records_found"]) for r in ledger.records("recovery")]
                ledgers[c["district"]] = {"records": ledger.size, "verified": c["governance"]["ledger_verified"],
                                          "recovery_records": len(found), "found_at_recovery": found,
                                          "recorded_twice": len(digests) - len(set(digests)), "digests": digests}
            finally:
                db.close()
    sc = ep.scale.to_dict()
    rec.update(checkpoint_every=sc["checkpoint_every"], checkpoints=sc["checkpoints"],
               checkpoint_bytes_max=sc["checkpoint_bytes_max"], checkpoint_s=sc["checkpoint_s"],
               without_checkpoint=sc["without_checkpoint"],
               recoveries=sc["recoveries"], steps=sc["steps"], sim_s=sc["sim_s"], loop_s=sc["loop_s"],
               in_flight_at_end=sc["in_flight_at_end"], unrouted=sc["unrouted"], crossings=sc["crossings"],
               recovered={c["district"]: c["stats"]["recovered"] for c in ep.districts if c["stats"].get("recovered")},
               ledgers=ledgers, kpis=_headlines(city, ep.results),
               all_kpis={f"{d}.{k}": v for d, r in ep.results.items() for k, v in r.kpis.items()})
    return rec


def _digest(record: Mapping[str, Any]) -> str:
    """A record's content without its id (the ledger's position), hashed: the same decision recorded twice has
    the same digest."""
    import hashlib
    import json

    body = json.dumps({k: v for k, v in record.items() if k != "id"}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def run_faults(scenario: str | None, districts: int, seed: int, duration_s: float | None,
               at_fraction: float = 0.5, late_fraction: float = 0.96,
               checkpoint_every: int | None = None) -> dict[str, Any]:
    """A clean run; district ``d2``'s worker killed ``at_fraction`` of the way through and again, in another
    run, ``late_fraction`` of the way, both with checkpoints every ``checkpoint_every`` steps (None: the
    default); for comparison the late kill without checkpoints (its log since the start) and a clean run
    without checkpoints (what they cost, and whether they change any decision)."""
    from aicity.runner import load_city
    from aicity.scale.coordinator import CHECKPOINT_EVERY
    from aicity.workers import run_episodes

    name = scenario or default_family()[1].scaling_scenario(districts)
    city = load_city(name, None, duration_s)
    step_s = min(float(p.scenario.params.get("decision_interval_s", 10.0) or 10.0) for p in city)
    every = CHECKPOINT_EVERY if checkpoint_every is None else checkpoint_every
    at, late = (int(f * city.duration_s / step_s) for f in (at_fraction, late_fraction))
    tasks = [FaultTask(name, districts, seed, duration_s, kill, checkpoint_every=ck)
             for kill, ck in ((None, every), (at, every), (late, every), (late, 0), (None, 0))]
    clean, fault, fault_late, late_no_checkpoints, plain = run_episodes(run_fault_task, tasks, jobs=1)
    want = {d: led.pop("digests") for d, led in clean["ledgers"].items()}
    for d, led in plain["ledgers"].items():  # do checkpoints change any decision? (the clean runs, record by record)
        got = led.pop("digests")
        led["differ_from_clean_with_checkpoints"] = sum(x != y for x, y in zip(want[d], got, strict=False)) + abs(
            len(want[d]) - len(got))
    for rec in (fault, fault_late, late_no_checkpoints):
        for d, led in rec["ledgers"].items():
            got = led.pop("digests")
            if not led["found_at_recovery"]:
                continue
            n = led["found_at_recovery"][0]  # until the loss the same run as the clean one: the same records
            a, b = want[d][:n], got[:n]
            led["differ_from_clean_before_loss"] = sum(x != y for x, y in zip(a, b, strict=False)) + abs(
                len(a) - len(b))
    return {"scenario": name, "seed": seed, "checkpoint_every": every, "killed_at_step": at,
            "killed_late_at_step": late, "clean": clean, "fault": fault, "fault_late": fault_late,
            "fault_late_without_checkpoints": late_no_checkpoints, "clean_without_checkpoints": plain}
