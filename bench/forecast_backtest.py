"""Forecast benchmark: backtest every registered model on odot-counts (notes' protocol) and time the APIs.

Writes bench/results/forecast.json (backtest records), bench/results/forecast.md (Markdown table) and
bench/results/forecast_timing.json (µs per step per series: many series at once vs one series alone).
Usage: python bench/forecast_backtest.py [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

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


def main() -> int:
    """Run the benchmark and write its files."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = datasets.load("odot-counts")
    records = backtest.backtest(data, "all", (1, 2, 4), seed=args.seed)
    (RESULTS / "forecast.json").write_text(json.dumps(records, indent=2) + "\n")
    md = backtest.table(records)
    note = (f"\n\n{data.name}: {data.report.summary()}. Protocol: last 4 days, hourly rolling origin, "
            f"horizons 1/2/4 steps of 15 min, every model learning online from the first step; seed {args.seed}.\n")
    (RESULTS / "forecast.md").write_text(md + note)
    timing = {name: {"multi_us_per_step_series": next(r["us_per_step"] for r in records if r["model"] == name),
                     "single_us_per_step": single_series_timing(data, name, seed=args.seed)}
              for name in registry.names()}
    (RESULTS / "forecast_timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(md + note)
    print(json.dumps(timing, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
