"""``aicity forecast backtest``: the lead wires :func:`add_parser` and :func:`run` into aicity/cli.py."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``forecast backtest`` to an argparse subparsers object; returns the ``forecast`` parser."""
    p: argparse.ArgumentParser = subparsers.add_parser("forecast", help="online forecasting: backtests on real data")
    sub = p.add_subparsers(dest="forecast_command", required=True)
    b = sub.add_parser("backtest", help="rolling-origin / prequential backtest of registered forecasters")
    b.add_argument("--dataset", default="odot-counts",
                   help="registered dataset (odot-counts, taylor, vic-elec, acn-arrivals, waterflow) "
                        "or a CSV/parquet path with unique_id, ds, y")
    b.add_argument("--models", default="all", help="comma list of model names, 'default' or 'all'")
    b.add_argument("--horizons", default="1,2,4", help="comma list of horizons in steps (default 1,2,4)")
    b.add_argument("--protocol", default="rolling", choices=("rolling", "prequential"))
    b.add_argument("--eval-days", type=float, default=4.0, help="evaluation window at the end, in days")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--json", dest="json_path", default=None, help="write the records to this JSON file")
    b.add_argument("--markdown", default=None, help="write a Markdown table to this file")
    b.set_defaults(func=run)
    return p


def parse_horizons(text: str) -> list[int]:
    """``"1,2,4"`` -> ``[1, 2, 4]``; ``UserError`` naming the bad item."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or int(item) < 1:
            raise UserError(f"--horizons: {item!r} is not a positive whole number of steps")
        out.append(int(item))
    if not out:
        raise UserError("--horizons: give at least one horizon, e.g. 1,2,4")
    return out


def _write(path: str, text: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from exc


def run(args: argparse.Namespace) -> int:
    """Run the backtest described by ``args``; prints a table, writes JSON/Markdown when asked."""
    from aicity.forecast import backtest, datasets, registry

    horizons = parse_horizons(args.horizons)
    names = registry.expand(args.models)
    data = datasets.load(args.dataset)
    if args.eval_days <= 0:
        raise UserError("--eval-days must be positive")
    eval_steps = max(1, round(args.eval_days * data.period)) if data.period > 1 else None
    print(f"dataset {data.name}: {len(data.series_ids)} series, {len(data.times)} steps of {data.freq}; "
          f"{data.report.summary()}")
    records = backtest.backtest(data, names, horizons, eval_steps=eval_steps, protocol=args.protocol,
                                seed=args.seed)
    md = backtest.table(records)
    versus = backtest.versus_baselines(records)
    if versus:
        md += "\n\nThe default against the best simple baseline (naive, seasonal naive day or week):\n\n" + versus
    print(md)
    if args.json_path:
        _write(args.json_path, json.dumps(records, indent=2) + "\n")
    if args.markdown:
        _write(args.markdown, md + "\n")
    return 0
