"""Forecast benchmark: backtest every registered model on odot-counts (notes' protocol) and time the APIs.

Writes bench/results/forecast.json (backtest records, each with ``groups``: MAE and 80/90 % coverage per
detector and per 4-hour time of day), bench/results/forecast.md (Markdown tables) and
bench/results/forecast_timing.json (µs per step per series: many series at once vs one series alone).
Usage: python bench/forecast_backtest.py [--seed 0] [--models all] [--no-timing]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from aicity.forecast import backtest, datasets, registry

RESULTS = Path(__file__).resolve().parent / "results"


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
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
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
