"""``aicity bench safety``: Smart City vs AI City dispatch (and the oracle) on paired seeds, through the one loop.

Every online episode runs through :func:`aicity.runner.bench_run` (governance, precedence, an in-memory store);
the same seed draws the same incidents and service times for every controller (common random numbers). The
factorial {SUMO bluelight on/off} × {signal preemption on/off} runs the city scenario (mobility + safety on one
SUMO, mobility's AI signal control with or without its preemption planner), so each gain is credited where it
belongs. The oracle is the perfect-foresight MIP of :mod:`aicity.domains.safety.oracle` on the same incidents.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicity.core.domain import DomainResult

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
    res = online_result(task)
    k = res.kpis
    rec = _record(task, busy=k["busy_frac"], mean=k["response_mean_s"], p90=k["response_p90_s"], late=k["late_frac"],
                  worst=k["zone_p90_worst_s"], calls=int(res.extra["counts"]["calls"]),
                  relocations=int(res.extra["counts"]["relocations"]), coverage=k["coverage"],
                  wall=time.perf_counter() - t0)
    rec["stuck_bypasses"] = int(res.extra["counts"]["stuck_bypasses"])
    delay = float(k["traffic_delay_s"])
    rec["traffic_delay_s"] = round(delay, 4) if math.isfinite(delay) else None  # the background traffic's, s/veh
    rec["zone_responses_s"] = zone_responses(res.extra["incidents"])
    rec["zone_unreached_waits_s"] = zone_unreached_waits(res.extra["incidents"], float(res.extra["sim_s"]))
    rec.update(response_parts(res.extra["incidents"], float(res.extra["options"]["call_processing_s"])))
    if "travel_times" in res.extra:
        rec.update(oracle_fields(task, res.extra["travel_times"]))
    return rec


def online_result(task: Task, *, record_travel_times: bool = True) -> DomainResult:
    """The safety result of ``task``'s online episode through :func:`aicity.runner.bench_run`: the safety scenario
    alone, or (``task.preemption`` set) the city scenario beside mobility's signals, recording SUMO's travel times for
    the traffic-aware oracle unless ``record_travel_times`` is off (they are ground truth no planner reads)."""
    from aicity.runner import bench_run, load_city

    opts: dict[str, Any] = {"load_multiplier": task.load_multiplier, "service_scale": task.service_scale,
                            "bluelight": task.bluelight}
    if task.preemption is None:
        city = load_city(f"safety/{task.scenario}", opts)
        controllers = {"safety": task.controller}
    else:
        opts["record_travel_times"] = record_travel_times
        city = load_city(f"{task.scenario}-city", {f"safety.{k}": v for k, v in opts.items()})
        signals = "fixed" if task.controller == "smart" else ("ai" if task.preemption else "ai_nopreempt")
        controllers = {"safety": task.controller, "mobility": signals}
    ep = bench_run(city, mode="ai", seed=task.seed, controllers=controllers)
    return ep.results["safety"]


def oracle_fields(task: Task, travel_times: dict[str, Any]) -> dict[str, Any]:
    """The oracles on this day's calls: free flow, and the traffic-aware one on the travel times recorded in this
    episode's simulation (late fraction, mean and p90, relocations); each also dispatch only (``oracle_dispatch_*``:
    no unit moved towards a call, the literature's offline yardstick)."""
    from aicity.domains.safety.travel_times import Recorded

    inputs = _oracle_inputs(task)  # the map, the day's calls and the stations: read once for the four solves
    recorded = Recorded(inputs[0], float(travel_times["bucket_s"]), travel_times["edges"])
    out: dict[str, Any] = {}
    for key, travel, relocate in (("oracle_ff", None, True), ("oracle_traffic", recorded, True),
                                  ("oracle_dispatch_ff", None, False), ("oracle_dispatch_traffic", recorded, False)):
        res = _solve(task, travel, relocate=relocate, inputs=inputs)
        out |= {f"{key}_late_frac": round(res.late_frac, 4), f"{key}_mean_response_s": round(res.mean_response_s, 4),
                f"{key}_p90_response_s": round(res.p90_response_s, 4), f"{key}_relocations": res.relocations,
                f"{key}_status": res.status}
    return out


def zone_responses(incidents: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """Call-to-arrival seconds of each zone's calls (None: not reached in the window), for per-zone p90s pooled
    over seeds."""
    out: dict[str, list[float | None]] = {}
    for inc in incidents:
        arr = inc["arrival_s"]
        out.setdefault(str(inc["zone"]), []).append(None if arr is None else round(arr - inc["call_s"], 1))
    return dict(sorted(out.items()))


def zone_unreached_waits(incidents: list[dict[str, Any]], end_s: float) -> dict[str, list[float]]:
    """Per zone, how long each call not reached in the window had waited at its end: a lower bound on its
    call-to-arrival time (a censored observation)."""
    out: dict[str, list[float]] = {}
    for inc in incidents:
        if inc["arrival_s"] is None:
            out.setdefault(str(inc["zone"]), []).append(round(max(end_s - float(inc["call_s"]), 0.0), 1))
    return dict(sorted(out.items()))


def response_parts(incidents: list[dict[str, Any]], processing_s: float) -> dict[str, float | None]:
    """Where the reached calls' response time goes, mean seconds: the wait from the report to the dispatch (the
    queue when every unit is busy, plus the time to the next decision) and the drive; the rest is call processing.
    ``drive_vs_free_flow``: the drives' total over their free-flow total from where each unit was (the factor of
    :func:`scaled_oracle`)."""
    reached = [i for i in incidents if i.get("arrival_s") is not None and i.get("dispatch_s") is not None]
    if not reached:
        return {"wait_mean_s": None, "travel_mean_s": None, "drive_vs_free_flow": None}
    wait = sum(float(i["dispatch_s"]) - float(i["call_s"]) - processing_s for i in reached) / len(reached)
    drives = [float(i["arrival_s"]) - float(i["dispatch_s"]) for i in reached]
    free = [(d, float(i["travel_ff_s"])) for d, i in zip(drives, reached, strict=True) if i.get("travel_ff_s")]
    ratio = sum(d for d, _ in free) / sum(f for _, f in free) if free else None
    return {"wait_mean_s": round(wait, 2), "travel_mean_s": round(sum(drives) / len(drives), 2),
            "drive_vs_free_flow": None if ratio is None else round(ratio, 3)}


def _record(task: Task, *, busy: float | None, mean: float, p90: float, late: float, worst: float | None, calls: int,
            relocations: int, coverage: float | None, wall: float) -> dict[str, Any]:
    def r(v: float | None) -> float | None:  # undefined (NaN: no call that day) is null, as the report has it
        return None if v is None or not math.isfinite(v) else round(v, 4)

    return {"scenario": task.scenario, "controller": task.controller, "seed": task.seed,
            "load_multiplier": task.load_multiplier, "service_scale": task.service_scale, "bluelight": task.bluelight,
            "preemption": bool(task.preemption), "city": task.preemption is not None, "busy_frac": r(busy),
            "mean_response_s": r(mean), "p90_response_s": r(p90), "late_frac": r(late), "worst_zone_p90_s": r(worst),
            "calls": calls, "relocations": relocations, "coverage": r(coverage), "wall_s": round(wall, 2)}


def _oracle(task: Task, t0: float) -> dict[str, Any]:
    res = _solve(task, None)
    return _record(task, busy=None, mean=res.mean_response_s, p90=res.p90_response_s, late=res.late_frac,
                   worst=None, calls=len(res.late), relocations=res.relocations, coverage=None,
                   wall=time.perf_counter() - t0)


OracleInputs = tuple[Any, list[Any], list[str], dict[str, Any], float]
"""What the oracle solves on: the map, the day's calls, the home stations, the options and the window's span."""


def _oracle_inputs(task: Task) -> OracleInputs:
    """The map, the day's incidents, Smart City's home stations, the options and the window's length."""
    from aicity.domains.mobility.scenarios import read_sumocfg
    from aicity.domains.safety import domain, options_of
    from aicity.domains.safety.geo import load_map
    from aicity.domains.safety.incidents import generate
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
    return smap, incidents, homes, p, span


def _solve(task: Task, travel: Any, *, relocate: bool = True, inputs: OracleInputs | None = None) -> Any:
    from aicity.domains.safety.oracle import solve

    smap, incidents, homes, p, span = inputs if inputs is not None else _oracle_inputs(task)
    return solve(smap, incidents, homes, horizon_s=span, call_processing_s=float(p["call_processing_s"]),
                 target_p1_s=float(p["target_p1_s"]), target_p2_s=float(p["target_p2_s"]), travel=travel,
                 relocate=relocate)


def scaled_oracle(task: Task, factor: float, *, relocate: bool = True) -> Any:
    """The oracle on ``task``'s calls with every drive at free flow × ``factor`` (:class:`.travel_times.Scaled`):
    the optimum if its drives took as long as the ambulances' measured ones."""
    from aicity.domains.safety.travel_times import Scaled

    inputs = _oracle_inputs(task)
    return _solve(task, Scaled(inputs[0], factor), relocate=relocate, inputs=inputs)


def tasks_for(scenarios: list[str], controllers: list[str], seeds: list[int], loads: list[float],
              service_scale: float, factorial: bool, city: bool = False, *, bluelight: bool = False) -> list[Task]:
    """Every episode of a benchmark: controllers × seeds × loads per scenario alone (or, with ``city``, in the city
    scenario: Smart City as a whole against AI City as a whole, the ambulances' ``bluelight`` as given), then the
    factorial (AI only)."""
    if city:
        arms = {"smart": False, "ai": True, "ai_norelocation": True}
        out = [Task(s, c, seed, load, service_scale, bluelight, arms[c]) if c in arms else
               Task(s, c, seed, load, service_scale) for s in scenarios for load in loads for c in controllers
               for seed in seeds]
    else:
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


def _ci95(diffs: list[float]) -> tuple[float, float, float]:
    """Mean and a t-based 95 % interval of paired differences."""
    import numpy as np
    from scipy import stats

    arr = np.asarray(diffs, dtype=float)
    m = float(arr.mean())
    if len(arr) < 2:
        return m, float("nan"), float("nan")
    h = float(arr.std(ddof=1) / np.sqrt(len(arr)) * stats.t.ppf(0.975, len(arr) - 1))
    return m, m - h, m + h


def zone_p90s(records: list[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Per zone, pooled over ``records``' days: p90 call-to-arrival of the calls reached (``p90_s``), the p90 that
    also counts each call not reached at how long it had waited at the window's end (``p90_censored_s``: a lower
    bound on its time, so a call never reached cannot make a zone look faster; None when a record predates it),
    calls, calls unreached."""
    import numpy as np

    pooled: dict[str, list[float | None]] = {}
    waits: dict[str, list[float]] = {}
    censored = all("zone_unreached_waits_s" in r for r in records)
    for r in records:
        for z, vals in r.get("zone_responses_s", {}).items():
            pooled.setdefault(z, []).extend(vals)
        for z, vals in r.get("zone_unreached_waits_s", {}).items():
            waits.setdefault(z, []).extend(vals)
    out: dict[str, dict[str, float | int | None]] = {}
    for z, vals in sorted(pooled.items()):
        reached = [v for v in vals if v is not None]
        bounded = reached + waits.get(z, [])
        out[z] = {"p90_s": round(float(np.percentile(reached, 90)), 1) if reached else None,
                  "p90_censored_s": round(float(np.percentile(bounded, 90)), 1) if censored and bounded else None,
                  "calls": len(vals), "unreached": len(vals) - len(reached)}
    return out


def city_summary(records: list[dict[str, Any]], a: str = "ai", b: str = "smart") -> dict[str, Any]:
    """Controller ``a`` against ``b`` on their paired days: means, paired differences with 95 % intervals, late
    against both oracles, and per-zone p90 pooled over the days, zone by zone (a zone is worse on the p90 that
    counts unreached calls at their wait so far, when every record has it)."""
    import numpy as np

    by: dict[str, dict[int, dict[str, Any]]] = {}
    for r in records:
        by.setdefault(str(r["controller"]), {})[int(r["seed"])] = r
    seeds = sorted(s for s in by.get(a, {}) if s in by.get(b, {}) and by[b][s]["calls"])
    pa, pb = [by[a][s] for s in seeds], [by[b][s] for s in seeds]
    out: dict[str, Any] = {"seeds": seeds, "pairs": len(seeds)}
    if not seeds:
        return out

    def mean(rs: list[dict[str, Any]], key: str) -> float:
        vals = [float(r[key]) for r in rs if r.get(key) is not None]
        return float(np.mean(vals)) if vals else float("nan")

    keys = ("busy_frac", "mean_response_s", "p90_response_s", "late_frac", "worst_zone_p90_s",
            "oracle_ff_late_frac", "oracle_traffic_late_frac", "oracle_traffic_mean_response_s",
            "oracle_dispatch_ff_late_frac", "oracle_dispatch_traffic_late_frac")
    for name, rs in ((a, pa), (b, pb)):
        out[name] = {k: round(mean(rs, k), 4) for k in keys}
        for o in ("oracle_ff", "oracle_traffic", "oracle_dispatch_ff", "oracle_dispatch_traffic"):
            ol = out[name][f"{o}_late_frac"]
            out[name][f"late_vs_{o}"] = round(out[name]["late_frac"] / ol, 3) if ol > 0 else None
    for key in ("late_frac", "mean_response_s", "p90_response_s"):
        d, lo, hi = _ci95([float(x[key]) - float(y[key]) for x, y in zip(pa, pb, strict=True)])
        base = mean(pb, key)
        out[f"diff_{key}"] = {"mean": round(d, 4), "ci95": [round(lo, 4), round(hi, 4)],
                              "relative": round(d / base, 4) if base else None}
    za, zb = zone_p90s(pa), zone_p90s(pb)
    zones = []
    key90 = "p90_censored_s" if all(v["p90_censored_s"] is not None for v in (*za.values(), *zb.values())) \
        else "p90_s"
    out["zone_p90_counts_unreached"] = key90 == "p90_censored_s"
    for z in sorted(set(za) | set(zb)):
        pa90, pb90 = za.get(z, {}).get(key90), zb.get(z, {}).get(key90)
        worse = pa90 is not None and pb90 is not None and pa90 > pb90
        zones.append({"zone": z, f"{a}_p90_s": za.get(z, {}).get("p90_s"), f"{b}_p90_s": zb.get(z, {}).get("p90_s"),
                      f"{a}_p90_censored_s": za.get(z, {}).get("p90_censored_s"),
                      f"{b}_p90_censored_s": zb.get(z, {}).get("p90_censored_s"),
                      "calls": za.get(z, {}).get("calls", 0),
                      f"{a}_unreached": za.get(z, {}).get("unreached", 0),
                      f"{b}_unreached": zb.get(z, {}).get("unreached", 0), f"{a}_worse": worse})
    out["zones"] = zones
    out["zones_worse"] = sum(1 for z in zones if z[f"{a}_worse"])
    return out
