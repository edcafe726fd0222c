"""The ``aicity`` command. Heavy dependencies are imported inside the commands, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aicity import __version__
from aicity.core.errors import UserError

Command = Callable[[argparse.Namespace], int]

# Sub-packages that add their own commands: (module, function adding parsers).
PLUGGED = (("aicity.forecast.cli", "add_parser"), ("aicity.governance.cli", "add_parsers"))


def _cmd_run(args: argparse.Namespace) -> int:
    from aicity.runner import RunSpec, check_seed, parse_modes, parse_options, prepare_out, resolve, run

    check_seed(args.seed)
    modes = parse_modes(args.mode)
    options = parse_options(args.set or [])
    if args.probes is not None:
        if not 0.0 < args.probes <= 1.0:
            raise UserError(f"--probes takes the connected share of vehicles in (0, 1], got {args.probes}")
        options["probes"] = args.probes
    if args.ev_per_hour is not None:
        options["ev_per_hour"] = args.ev_per_hour
    _domain, scen = resolve(args.scenario)  # fail fast on an unknown scenario, before creating folders
    out = prepare_out(args.out)
    report = run(RunSpec(args.scenario or scen.name, modes, args.seed, out, options),
                 jobs=args.jobs, show_progress=not args.quiet)
    print(f"\nreport: {out / 'report.md'}")
    for key in ("delay_s", "trip_time_s", "wait_s", "ev_travel_s_mean"):
        row = report["comparison"].get(key)
        if row:
            vals = "  ".join(f"{m} {row[m]:.2f}" for m in modes if isinstance(row.get(m), int | float))
            change = f"  ({row['change_pct']:+.1f}%)" if row.get("change_pct") is not None else ""
            print(f"  {key:<18} {vals}{change}")
    return 0


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from aicity.core.domain import discover

    for domain in discover().values():
        for scen in domain.scenarios():
            print(f"{scen.name:<14} {domain.name:<9} {scen.duration_s / 60:>5.0f} min  {scen.description}")
    return 0


def _write_json(path: str | None, records: list[dict[str, Any]]) -> None:
    text = json.dumps(records, indent=2)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    else:
        print(text)


def _cmd_bench_mobility(args: argparse.Namespace) -> int:
    from aicity.domains.mobility.bench import run_mobility_bench
    from aicity.runner import parse_list, parse_seeds

    records = run_mobility_bench(parse_list(args.scenarios, what="scenario"),
                                 parse_list(args.controllers, ("fixed", "maxpressure", "ai"), "controller"),
                                 parse_seeds(args.seeds), jobs=args.jobs)
    _write_json(args.json, records)
    return 0


def _cmd_bench_preemption(args: argparse.Namespace) -> int:
    from aicity.domains.mobility.preemption_bench import run_preemption_bench
    from aicity.runner import parse_seeds

    records = run_preemption_bench(args.scenario, parse_seeds(args.seeds), jobs=args.jobs,
                                   ev_speed_factor=args.ev_speed_factor)
    _write_json(args.json, records)
    return 0


def _cmd_bench_core(args: argparse.Namespace) -> int:
    from aicity.core_bench import run_core_bench

    _write_json(args.json, run_core_bench(n=args.n))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aicity`` command."""
    parser = argparse.ArgumentParser(
        prog="aicity", description="aicity — an AI City operating system: sense, state, forecast, decide, "
        "govern, act, audit. Each run compares Smart City mode with AI City mode on the same twin and seed.")
    parser.add_argument("--version", action="version", version=f"aicity {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run a scenario in Smart City and/or AI City mode and write a report")
    p.add_argument("--scenario", help="scenario name (see `aicity scenarios`) or path to a scenario file")
    p.add_argument("--mode", default="both", help="ai, smart or both (default both)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--out", type=Path, help="output folder (default runs/<timestamp>/)")
    p.add_argument("--jobs", type=int, default=None, help="parallel processes (default: one per mode)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--probes", type=float, metavar="SHARE",
                   help="mobility: connected-vehicle probe data from this share of vehicles (0-1], each with "
                        "recorded consent; the AI controller uses consented probes only")
    p.add_argument("--ev-per-hour", type=float, metavar="N", help="mobility: emergency vehicles per hour")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a scenario parameter in both modes (repeatable), e.g. decision_interval_s=5")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("scenarios", help="list the built-in scenarios")
    p.set_defaults(func=_cmd_scenarios)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", metavar="BENCH", required=True)
    p = bench.add_parser("mobility", help="signal controllers over scenarios and seeds")
    p.add_argument("--scenarios", default="cologne8,ingolstadt7,grid4x4")
    p.add_argument("--controllers", default="fixed,maxpressure,ai")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_cmd_bench_mobility)
    p = bench.add_parser("preemption", help="emergency-vehicle preemption, Smart City vs AI City, paired seeds")
    p.add_argument("--scenario", default="ingolstadt7")
    p.add_argument("--seeds", default="1-8")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--ev-speed-factor", type=float, default=1.0,
                   help="emergency vehicles' desired speed as a multiple of the limit, both modes (default 1.0)")
    p.add_argument("--json")
    p.set_defaults(func=_cmd_bench_preemption)
    p = bench.add_parser("core", help="state-store and bus throughput")
    p.add_argument("--n", type=int, default=50_000, help="entity updates per measurement")
    p.add_argument("--json")
    p.set_defaults(func=_cmd_bench_core)

    for module, fn in PLUGGED:
        try:
            getattr(importlib.import_module(module), fn)(sub)
        except ImportError:
            continue
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; user errors end with one clear line and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"aicity: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aicity: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
