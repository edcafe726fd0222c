"""Rolling-origin and prequential backtests of registered forecasters, learning online all the way.

Every model sees every step in order (learn, then forecast); only forecasts made inside the evaluation
window are scored. ``protocol="rolling"`` forecasts from an origin every ``origin_every`` steps (hourly by
default: the notes' protocol, last 4 days, horizons 1/2/4 of 15 min); ``"prequential"`` from every step.
Metrics per horizon step: MAE, RMSE, masked MAPE (targets equal to 0 skipped, in %), coverage of the 80 % and
90 % intervals, ``n`` scored values, and ``us_per_step``: wall time of learning plus forecasting per step
per series over the whole run. ``groups`` disaggregates MAE, coverage and ``n`` by ``district`` (the dataset's
``meta["districts"]`` series → site mapping when it has one, else the series id itself: for odot-counts, whose 22
detectors all sit at one intersection, that is the detector) and by ``time_of_day`` (4-hour clock bins of the
forecast target time, labelled ``00–04`` … ``20–24``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicity.core.errors import UserError
from aicity.forecast import registry
from aicity.forecast.datasets import Dataset

PROTOCOLS = ("rolling", "prequential")
TIME_OF_DAY_HOURS = 4


def hour_bin_label(hour: int, width: int = TIME_OF_DAY_HOURS) -> str:
    """The clock bin of ``hour``: ``08–12`` for hours 8 to 11 with 4-hour bins."""
    start = (hour // width) * width
    return f"{start:02d}–{start + width:02d}"


def district_of(data: Dataset) -> dict[str, str]:
    """Series id → district: ``data.meta["districts"]`` where given, else the series id (its own site)."""
    given = data.meta.get("districts") or {}
    return {sid: str(given.get(sid, sid)) for sid in data.series_ids}


def _check(horizons: Sequence[int], protocol: str, data: Dataset, eval_steps: int) -> None:
    if not horizons or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in horizons):
        raise UserError(f"horizons must be positive integers, got {list(horizons)!r}")
    if protocol not in PROTOCOLS:
        raise UserError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if eval_steps < 1 or eval_steps >= len(data.times):
        raise UserError(f"evaluation window of {eval_steps} steps does not fit {len(data.times)} steps "
                        f"of dataset {data.name!r}")


@dataclass(frozen=True, slots=True)
class Run:
    """One model's forecasts at every scored origin: ``pred[i]`` (and bounds per level) has shape ``(hmax, S)``."""

    name: str
    origins: list[int]
    pred: list[np.ndarray[Any, Any]]
    lo: dict[float, list[np.ndarray[Any, Any]]]
    hi: dict[float, list[np.ndarray[Any, Any]]]
    us_per_step: float


def predict(data: Dataset, name: str, hmax: int, *, eval_steps: int | None = None, origin_every: int | None = None,
            protocol: str = "rolling", seed: int = 0) -> Run:
    """Run one registered model online over ``data``, keeping its forecasts at the evaluation origins."""
    period = data.period
    eval_steps = 4 * period if eval_steps is None else eval_steps
    origin_every = max(1, period // 24) if origin_every is None else origin_every
    _check([hmax], protocol, data, eval_steps)
    real = registry.resolve(name)
    model = registry.make_multi(real, period=period, seed=seed)
    model.add_series(list(data.series_ids))
    y_all = data.values
    n_steps, n_series = y_all.shape
    start = n_steps - eval_steps                 # first scored target index
    run = Run(real, [], [], {0.8: [], 0.9: []}, {0.8: [], 0.9: []}, 0.0)
    elapsed = 0.0
    for t in range(n_steps):
        t0 = time.perf_counter()
        model.learn_array(y_all[t], data.times[t])
        step = t + 1 - start                      # forecasts made now target t+1 ...
        is_origin = 0 <= step < eval_steps and (protocol == "prequential" or step % origin_every == 0)
        mean = model.means(hmax) if is_origin or t == n_steps - 1 else None
        elapsed += time.perf_counter() - t0
        if is_origin and mean is not None:
            iv = model.intervals_array(mean)
            run.origins.append(t)
            run.pred.append(mean.copy())
            for level in (0.8, 0.9):
                run.lo[level].append(iv[level][0])
                run.hi[level].append(iv[level][1])
    return Run(real, run.origins, run.pred, run.lo, run.hi, 1e6 * elapsed / (n_steps * n_series))


def run_model(data: Dataset, name: str, horizons: Sequence[int] = (1, 2, 4), *, eval_steps: int | None = None,
              origin_every: int | None = None, protocol: str = "rolling", seed: int = 0) -> list[dict[str, Any]]:
    """Backtest one registered model; one record per horizon."""
    _check(horizons, protocol, data, 4 * data.period if eval_steps is None else eval_steps)
    run = predict(data, name, max(horizons), eval_steps=eval_steps, origin_every=origin_every, protocol=protocol,
                  seed=seed)
    return [{**_score(data, run.name, h, data.values, run.origins, run.pred, run.lo, run.hi, run.us_per_step),
             "seed": seed} for h in horizons]


def _score(data: Dataset, name: str, h: int, y_all: np.ndarray[Any, Any], origins: list[int],
           pred: list[np.ndarray[Any, Any]], lo: dict[float, list[np.ndarray[Any, Any]]],
           hi: dict[float, list[np.ndarray[Any, Any]]], us: float) -> dict[str, Any]:
    keep = [i for i, o in enumerate(origins) if o + h < len(y_all)]
    if not keep:
        raise UserError(f"horizon {h} reaches past the end of dataset {data.name!r}")
    targets = [origins[i] + h for i in keep]
    y = np.stack([y_all[t] for t in targets])
    m = np.stack([pred[i][h - 1] for i in keep])
    ok = ~np.isnan(y)
    abs_err = np.abs(m - y)
    inside = {level: (y >= np.stack([lo[level][i][h - 1] for i in keep]))
              & (y <= np.stack([hi[level][i][h - 1] for i in keep])) for level in (0.8, 0.9)}
    err = (m - y)[ok]
    yy = y[ok]
    nz = yy != 0
    cov = {level: float(np.mean(inside[level][ok])) for level in (0.8, 0.9)}

    def cell(mask: np.ndarray[Any, Any]) -> dict[str, float]:
        sel = mask & ok
        return {"mae": float(np.mean(abs_err[sel])), "coverage80": float(np.mean(inside[0.8][sel])),
                "coverage90": float(np.mean(inside[0.9][sel])), "n": int(sel.sum())}

    rows = np.ones(len(targets), dtype=bool)[:, None]
    cols = np.ones(len(data.series_ids), dtype=bool)[None, :]
    sites = district_of(data)
    site_names = np.array([sites[s] for s in data.series_ids])
    hours = np.array([hour_bin_label(data.times[t].hour) for t in targets])
    groups: dict[str, dict[str, dict[str, float]]] = {"district": {}, "time_of_day": {}}
    for g in sorted(set(site_names)):
        if (ok & (site_names == g)[None, :]).any():
            groups["district"][g] = cell(rows & (site_names == g)[None, :])
    for g in sorted(set(hours)):
        if (ok & (hours == g)[:, None]).any():
            groups["time_of_day"][g] = cell((hours == g)[:, None] & cols)
    return {
        "dataset": data.name, "model": name, "horizon_steps": h,
        "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
        "mape": float(100 * np.mean(np.abs(err[nz] / yy[nz]))) if nz.any() else float("nan"),
        "coverage80": cov[0.8], "coverage90": cov[0.9], "n": int(ok.sum()), "us_per_step": us,
        "groups": groups,
    }


def backtest(data: Dataset, models: str | Sequence[str] = "all", horizons: Sequence[int] = (1, 2, 4),
             **kwargs: Any) -> list[dict[str, Any]]:
    """Backtest several models (comma list, sequence or ``all``); records in model then horizon order."""
    out: list[dict[str, Any]] = []
    for name in registry.expand(models):
        out.extend(run_model(data, name, horizons, **kwargs))
    return out


BASELINES = ("naive", "seasonal_naive_day", "seasonal_naive_week")
"""The simple baselines the default must never lose to."""


def versus_baselines(records: Sequence[dict[str, Any]]) -> str:
    """Per dataset and horizon: the default's MAE over the best simple baseline's, and its 90 % coverage.

    Empty when the records lack the default or all three baselines."""
    by = {(r["dataset"], r["model"], r["horizon_steps"]): r for r in records}
    lines = ["| dataset | h | default MAE | best baseline | its MAE | ratio | default cov90 |",
             "|---|---|---|---|---|---|---|"]
    for (ds, model, h), r in by.items():
        base = [by.get((ds, b, h)) for b in BASELINES]
        if model != registry.DEFAULT or any(b is None for b in base):
            continue
        best = min((b for b in base if b is not None), key=lambda b: b["mae"])
        lines.append(f"| {ds} | {h} | {r['mae']:.3f} | {best['model']} | {best['mae']:.3f} "
                     f"| {r['mae'] / best['mae']:.3f} | {r['coverage90']:.3f} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def table(records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of backtest records."""
    lines = ["| dataset | model | h | MAE | RMSE | MAPE % | cov80 | cov90 | n | µs/step/series |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['dataset']} | {r['model']} | {r['horizon_steps']} | {r['mae']:.2f} | {r['rmse']:.2f} "
                     f"| {r['mape']:.1f} | {r['coverage80']:.3f} | {r['coverage90']:.3f} | {r['n']} "
                     f"| {r['us_per_step']:.1f} |")
    return "\n".join(lines)


def abs_errors(data: Dataset, run: Run, h: int) -> np.ndarray[Any, Any]:
    """Absolute errors of ``run`` at horizon ``h``, shape ``(origins, series)``; NaN where the target is missing."""
    keep = [i for i, o in enumerate(run.origins) if o + h < len(data.values)]
    y = np.stack([data.values[run.origins[i] + h] for i in keep])
    m = np.stack([run.pred[i][h - 1] for i in keep])
    return np.asarray(np.abs(m - y))


def losing_series(model: np.ndarray[Any, Any], refs: Sequence[np.ndarray[Any, Any]], *, seed: int = 0,
                  n_boot: int = 2000) -> list[dict[str, Any]]:
    """Series where ``model``'s MAE is above the best reference's (errors ``(origins, series)``, NaN skipped).

    One entry per such series: its index, the best reference's index ``ref``, ``ratio`` of MAEs, ``n`` paired
    forecasts and ``ci95``, a paired bootstrap 95 % interval of the ratio (origins resampled with replacement,
    generator seeded with ``seed``): an interval reaching below 1 means the loss is not distinguishable from
    sampling noise."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for j in range(model.shape[1]):
        ok = ~np.isnan(model[:, j]) & np.all([~np.isnan(r[:, j]) for r in refs], axis=0)
        if not ok.any():
            continue
        maes = [float(np.mean(r[ok, j])) for r in refs]
        best = int(np.argmin(maes))
        mine = float(np.mean(model[ok, j]))
        if mine <= maes[best]:
            continue
        d, b = model[ok, j], refs[best][ok, j]
        idx = rng.integers(0, d.size, (n_boot, d.size))
        ratios = d[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-12)
        lo, hi = np.percentile(ratios, [2.5, 97.5])
        out.append({"series": j, "ref": best, "ratio": mine / maes[best] if maes[best] > 0 else float("inf"),
                    "n": int(d.size), "ci95": [float(lo), float(hi)]})
    return out
