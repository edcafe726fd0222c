"""Forecast benchmark: backtest every registered model on odot-counts (notes' protocol) and time the APIs;
with ``--general``, the default against the simple baselines and statsforecast peers on every dataset.

Writes bench/results/forecast.json (backtest records, each with ``groups``: MAE and 80/90 % coverage per
detector and per 4-hour time of day), bench/results/forecast.md (Markdown tables) and
bench/results/forecast_timing.json (µs per step per series: many series at once vs one series alone).

``--general`` writes bench/results/forecast_general.json instead: per dataset (``GENERAL``) and horizon 1–4, the
MAE and 80/90 % coverage of the default, naive and seasonal naive by day and by week over the evaluation window
(all models learning online from the first step), and statsforecast's AutoETS and MSTL as offline peers. The
peers are refitted at ``--peer-origins`` origins drawn with ``--seed`` from the evaluation window, on up to
``--peer-series`` series drawn likewise, on the last 28 days before each origin; they run in the Python given by
``--peers-python`` (or $AICITY_PEERS_PYTHON), because statsforecast needs pandas < 3 (see aicity/forecast/peers.py).
The default and the best baseline are scored on the same sample beside them.
Usage: python bench/forecast_backtest.py [--seed 0] [--models all] [--no-timing]
       python bench/forecast_backtest.py --general [--seed 0] [--peers-python PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from aicity.forecast import backtest, datasets, peers, registry

RESULTS = Path(__file__).resolve().parent / "results"
GENERAL: dict[str, tuple[int, str]] = {"odot-counts": (4, "rolling"), "taylor": (28, "prequential"),
                                       "vic-elec": (56, "prequential"), "acn-arrivals": (56, "prequential"),
                                       "waterflow": (21, "prequential")}
"""Dataset -> (evaluation days at the end, protocol). odot-counts keeps the notes' protocol (hourly origins)."""
HORIZONS = (1, 2, 3, 4)


def _cells(data: datasets.Dataset, run: backtest.Run, h: int, origins: list[int] | None = None,
           series: list[int] | None = None) -> dict[str, Any]:
    """MAE, 80/90 % coverage and n of ``run`` at horizon ``h`` (optionally on some origins and series only)."""
    keep = [i for i, o in enumerate(run.origins) if o + h < len(data.values) and (origins is None or o in origins)]
    cols = list(range(len(data.series_ids))) if series is None else series
    y = np.stack([data.values[run.origins[i] + h, cols] for i in keep])
    m = np.stack([run.pred[i][h - 1, cols] for i in keep])
    ok = ~np.isnan(y)
    out: dict[str, Any] = {"mae": float(np.mean(np.abs(m - y)[ok])), "n": int(ok.sum())}
    for level in (0.8, 0.9):
        lo = np.stack([run.lo[level][i][h - 1, cols] for i in keep])
        hi = np.stack([run.hi[level][i][h - 1, cols] for i in keep])
        out[f"coverage{round(100 * level)}"] = float(np.mean(((y >= lo) & (y <= hi))[ok]))
    out["series_mae"] = [float(np.mean(np.abs(m - y)[:, j][ok[:, j]])) for j in range(len(cols))]
    return out


def _peer_sample(data: datasets.Dataset, run: backtest.Run, args: argparse.Namespace) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(args.seed)
    usable = [o for o in run.origins if o + max(HORIZONS) < len(data.values)]
    origins = sorted(int(o) for o in rng.choice(usable, size=min(args.peer_origins, len(usable)), replace=False))
    n = len(data.series_ids)
    series = sorted(int(s) for s in rng.choice(n, size=min(args.peer_series, n), replace=False))
    return origins, series


def general_dataset(name: str, args: argparse.Namespace, python: str | None) -> list[dict[str, Any]]:
    """Records for one dataset: one per horizon."""
    data = datasets.load(name)
    days, protocol = GENERAL[name]
    models = [registry.DEFAULT, *backtest.BASELINES]
    runs = {m: backtest.predict(data, m, max(HORIZONS), eval_steps=days * data.period, protocol=protocol,
                                seed=args.seed) for m in models}
    every = (runs if protocol == "prequential" else  # the same window scored from every step, 4x the forecasts
             {m: backtest.predict(data, m, max(HORIZONS), eval_steps=days * data.period, protocol="prequential",
                                  seed=args.seed) for m in models})
    origins, series = _peer_sample(data, runs[registry.DEFAULT], args)
    history = 28 * data.period
    peer_out = (peers.run_peers(python, data.values, series, origins, data.period, history, max(HORIZONS))
                if python else None)
    records = []
    for h in HORIZONS:
        cells = {m: _cells(data, runs[m], h) for m in models}
        best = min(backtest.BASELINES, key=lambda b: cells[b]["mae"])
        d = cells[registry.DEFAULT]
        floor = np.min([cells[x]["series_mae"] for x in backtest.BASELINES], axis=0)
        losing = int(np.sum(np.array(d["series_mae"]) > floor))
        detail = [{"series": data.series_ids[x["series"]], "baseline": backtest.BASELINES[x["ref"]],
                   "ratio": x["ratio"], "n": x["n"], "ci95": x["ci95"]}
                  for x in backtest.losing_series(backtest.abs_errors(data, runs[registry.DEFAULT], h),
                                                  [backtest.abs_errors(data, runs[b], h) for b in backtest.BASELINES],
                                                  seed=args.seed)]
        ev = {m: _cells(data, every[m], h) for m in models}
        ev_ratio = np.array(ev[registry.DEFAULT]["series_mae"]) / np.min(
            [ev[b]["series_mae"] for b in backtest.BASELINES], axis=0)
        rec: dict[str, Any] = {
            "dataset": name, "horizon_steps": h, "step_minutes": data.freq.total_seconds() / 60,
            "period": data.period, "series": len(data.series_ids), "eval_days": days, "protocol": protocol,
            "seed": args.seed, "default": registry.DEFAULT, "best_baseline": best,
            "mae": {m: cells[m]["mae"] for m in models}, "n": d["n"],
            "ratio_to_best_baseline": d["mae"] / cells[best]["mae"],
            "coverage80": d["coverage80"], "coverage90": d["coverage90"],
            "series_losing_to_a_baseline": losing, "losing_series": detail,
            "max_series_ratio": float(np.max(np.array(d["series_mae"]) / floor)),
            "every_step": {"series_losing_to_a_baseline": int(np.sum(ev_ratio > 1)),
                           "max_series_ratio": float(np.max(ev_ratio)), "coverage90": ev[registry.DEFAULT]["coverage90"],
                           "ratio_to_best_baseline": ev[registry.DEFAULT]["mae"] / min(ev[b]["mae"]
                                                                                      for b in backtest.BASELINES)},
            "us_per_step": runs[registry.DEFAULT].us_per_step,
            "data": data.report.summary(), "licence": data.meta.get("licence", ""),
        }
        if peer_out is not None:
            sub = {m: _cells(data, runs[m], h, origins, series) for m in (registry.DEFAULT, best)}
            mean, lo, hi = (peer_out[k][:, :, :, h - 1] for k in ("mean", "lo", "hi"))   # (peer, series, origin)
            y = np.stack([data.values[np.array(origins) + h, s] for s in series])     # (series, origin)
            ok = ~np.isnan(y)
            rec["peers"] = {
                "origins": len(origins), "series": [data.series_ids[s] for s in series], "history_steps": history,
                "n": int(ok.sum()),
                "mae": {registry.DEFAULT: sub[registry.DEFAULT]["mae"], best: sub[best]["mae"],
                        **{p: float(np.mean(np.abs(mean[k] - y)[ok])) for k, p in enumerate(peers.PEERS)}},
                "coverage90": {registry.DEFAULT: sub[registry.DEFAULT]["coverage90"],
                               **{p: float(np.mean(((y >= lo[k]) & (y <= hi[k]))[ok]))
                                  for k, p in enumerate(peers.PEERS)}},
                "fit_seconds": {p: float(peer_out["seconds"][k]) for k, p in enumerate(peers.PEERS)},
            }
        records.append(rec)
    return records


def general(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every dataset of ``GENERAL`` that loads; a dataset whose package is missing is recorded as skipped."""
    python = args.peers_python or os.environ.get("AICITY_PEERS_PYTHON")
    version = peers.version(python) if python else None
    if python and version is None:
        print(f"statsforecast cannot be imported by {python}: peers not run")
        python = None
    out: list[dict[str, Any]] = []
    for name in (args.datasets.split(",") if args.datasets else GENERAL):
        started = time.perf_counter()
        try:
            recs = general_dataset(name, args, python)
        except datasets.DatasetError as exc:
            out.append({"dataset": name, "skipped": str(exc)})
            continue
        for r in recs:
            r["statsforecast"] = version
        out.extend(recs)
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    return out


def single_series_timing(data: datasets.Dataset, name: str, steps: int = 2000, seed: int = 0) -> float:
    """µs per learn_one + forecast(4) through the single-series API, on the first detector."""
    model = registry.make(name, period=data.period, seed=seed)
    col = data.values[:steps, 0]
    t0 = time.perf_counter()
    for t, y in zip(data.times[:steps], col, strict=False):
        if y == y:
            model.learn_one(float(y), None, t)
        model.forecast(4)
    return 1e6 * (time.perf_counter() - t0) / steps


def group_tables(records: list[dict[str, Any]]) -> str:
    """MAE and 90 % coverage per detector and per 4-hour time of day (mean over horizons), one column per model."""
    models = list(dict.fromkeys(r["model"] for r in records))
    out = []
    for factor, title in (("district", "detector (the site key: all 22 detectors are at intersection 85)"),
                          ("time_of_day", "4-hour time of day of the forecast target")):
        cells: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for r in records:
            for g, v in r.get("groups", {}).get(factor, {}).items():
                cells.setdefault(g, {}).setdefault(r["model"], []).append((v["mae"], v["coverage90"]))
        if not cells:
            continue
        out += [f"MAE / 90 % coverage by {title}, mean over horizons 1/2/4:", "",
                "| " + " | ".join([factor, *models]) + " |", "|---|" + "---:|" * len(models)]
        for g, by_model in sorted(cells.items()):
            row = [g]
            for m in models:
                vals = by_model.get(m, [])
                row.append(f"{sum(a for a, _ in vals) / len(vals):.2f} / {sum(c for _, c in vals) / len(vals):.2f}"
                           if vals else "")
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return "\n".join(out)


def main() -> int:
    """Run the benchmark and write its files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="all", help="comma list of registered models, or all")
    parser.add_argument("--no-timing", action="store_true", help="do not rewrite forecast_timing.json")
    parser.add_argument("--general", action="store_true", help="default vs baselines and peers on every dataset")
    parser.add_argument("--datasets", default="", help="with --general: comma list (default: all of GENERAL)")
    parser.add_argument("--peers-python", default=None, help="a Python with statsforecast (pandas < 3)")
    parser.add_argument("--peer-origins", type=int, default=16)
    parser.add_argument("--peer-series", type=int, default=3)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.general:
        recs = general(args)
        (RESULTS / "forecast_general.json").write_text(json.dumps(recs, indent=2, ensure_ascii=False) + "\n")
        for r in recs:
            if "skipped" not in r:
                print(r["dataset"], r["horizon_steps"], f"ratio {r['ratio_to_best_baseline']:.3f}",
                      f"cov90 {r['coverage90']:.3f}", json.dumps(r.get("peers", {}).get("mae", {})))
        return 0
    data = datasets.load("odot-counts")
    records = backtest.backtest(data, args.models, (1, 2, 4), seed=args.seed)
    (RESULTS / "forecast.json").write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    md = backtest.table(records)
    note = (f"\n\n{data.name}: {data.report.summary()}. Protocol: last 4 days, hourly rolling origin, "
            f"horizons 1/2/4 steps of 15 min, every model learning online from the first step; seed {args.seed}.\n")
    md += note + "\n" + group_tables(records)
    (RESULTS / "forecast.md").write_text(md)
    if args.no_timing:
        print(md)
        return 0
    timing = {name: {"multi_us_per_step_series": next(r["us_per_step"] for r in records if r["model"] == name),
                     "single_us_per_step": single_series_timing(data, name, seed=args.seed)}
              for name in dict.fromkeys(r["model"] for r in records)}
    (RESULTS / "forecast_timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(md)
    print(json.dumps(timing, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
