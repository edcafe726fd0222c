"""The ``aicity`` command. Heavy dependencies are imported inside the commands, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from aicity import __version__
from aicity.core.errors import UserError

Command = Callable[[argparse.Namespace], int]

PLUGGED = (("aicity.forecast.cli", "add_parser", None), ("aicity.governance.cli", "add_parsers", None),
           ("aicity.platform.cli", "add_parsers", "add_bench"), ("aicity.scale.cli", "add_parsers", "add_bench"))
"""Sub-packages with their own commands: (module, function adding commands, function adding benchmarks)."""
COMMANDS_GROUP = "aicity.commands"
"""Entry points ``name = "module:add_commands"``; ``add_commands(commands, bench)`` adds a domain's own
commands and benchmarks to the two argparse subparser groups."""


def _cmd_run(args: argparse.Namespace) -> int:
    from aicity.runner import RunSpec, check_seed, load_city, parse_modes, parse_options, prepare_out, run

    check_seed(args.seed)
    options = parse_options(args.set or [])
    for name in args.domain_flags:
        flag = getattr(args, f"opt_{name}", None)
        if flag is not None:
            options[name] = flag
    city = load_city(args.scenario, options, args.duration)  # fail fast (scenario, options, window), before any folder
    modes = parse_modes(args.mode, len(city.parts))
    out = prepare_out(args.out)
    if args.districts is not None:
        from aicity.scale.partition import partition

        partition(city, args.districts)  # refused here, before any folder or cluster, when it cannot split
    if args.checkpoint_every is not None and (args.districts is None or args.checkpoint_every < 0):
        raise UserError("--checkpoint-every takes 0 or more steps, with --districts")
    spec = RunSpec(args.scenario, modes, args.seed, out, options, args.duration, args.store,
                   districts=args.districts, executor=args.executor, ray_address=args.ray_address,
                   checkpoint_every=args.checkpoint_every)
    report = run(spec, jobs=args.jobs, show_progress=not args.quiet)
    print(f"\nreport: {out / 'report.md'}")
    print(summary_text(report, modes))
    return 0


def _value(v: Any) -> str:
    """A KPI's value for the console: two decimals, or "–" where it is undefined (nothing measured)."""
    return f"{v:.2f}" if isinstance(v, int | float) and math.isfinite(v) else "–"


def summary_text(report: dict[str, Any], modes: Sequence[str]) -> str:
    """The headline KPIs of every domain, with unit, direction and AI City's change against Smart City."""
    lines = []
    for domain, table in report["comparison"].items():
        lines.append(f"  {domain}")
        for key, row in table.items():
            if not row["headline"]:
                continue
            vals = "  ".join(f"{m} {_value(row.get(m))}" for m in modes if m in row)
            change = f"  ({row['change_pct']:+.1f}%, {row['verdict']})" if row.get("change_pct") is not None else ""
            lines.append(f"    {key:<18} {vals} {row['unit']}, {row['better']} is better{change}")
    return "\n".join(lines)


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from aicity.core.city import city_scenarios
    from aicity.core.domain import discover, warn_plugin

    domains = discover(on_error=warn_plugin)
    for domain in domains.values():
        for scen in domain.scenarios():
            print(f"{scen.name:<14} {domain.name:<9} {scen.duration_s / 60:>5.0f} min  {scen.description}")
    for city in city_scenarios(domains):
        print(f"{city.name:<14} {'city':<9} {'':>5}      {city.description} ({' + '.join(city.parts)})")
    return 0


def write_json(path: str | None, records: list[dict[str, Any]] | dict[str, Any]) -> None:
    """Write benchmark records as strict JSON to ``path`` (an undefined value, NaN, as null), or print them."""
    from aicity.report.writer import strict

    text = json.dumps(strict(records), indent=2, allow_nan=False)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    else:
        print(text)


def _cmd_bench_core(args: argparse.Namespace) -> int:
    from aicity.core_bench import run_core_bench

    write_json(args.json, run_core_bench(n=args.n))
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
    p.add_argument("--mode", default="auto", help="smart, ablation, ai, both (smart and ai), all, or auto (default: "
                   "all three for a city of several domains, smart and ai for one)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--out", type=Path, help="output folder (default runs/<timestamp>/)")
    p.add_argument("--jobs", type=int, default=None, help="parallel processes (default: one per mode)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--store", metavar="URL",
                   help="keep each mode's state, events and ledger in PostgreSQL (postgresql://…; a schema per run "
                        "folder and mode) instead of <out>/<mode>/city.db")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="run only the first SECONDS of the scenario's window")
    p.add_argument("--districts", type=int, metavar="N",
                   help="run the city as N districts, each in its own worker, exchanging what crosses a border")
    p.add_argument("--executor", default="ray", choices=("ray", "local"),
                   help="where districts run: Ray actors (default) or this process (one district)")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="a running Ray cluster (host:port, ray://host:10001 or auto); default: a local one")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="with --districts: steps between two checkpoints of every district, held by the coordinator "
                        "(default 30; 0: none, a lost district replays its log since the start)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="set a scenario option in both modes (repeatable; KEY or DOMAIN.KEY), see below")
    flags = _domain_options(p)
    p.set_defaults(func=_cmd_run, domain_flags=flags)

    p = sub.add_parser("scenarios", help="list the built-in scenarios")
    p.set_defaults(func=_cmd_scenarios)

    p = sub.add_parser("whatif", help="run candidate responses on copies of a city from one moment, ranked by "
                       "their KPIs (the live run is never touched)")
    p.add_argument("--scenario", help="city or scenario (default: the default city)")
    p.add_argument("--at", type=float, required=True, metavar="SECONDS", help="the moment, seconds into the window")
    p.add_argument("--horizon", type=float, default=900.0, metavar="SECONDS", help="how far ahead (default 900)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mode", default="ai", help="the mode the copies run in after the response (default ai)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a scenario option (the event), repeatable")
    p.add_argument("--response", action="append", metavar="NAME=JSON",
                   help='a candidate: a JSON list of {"domain","target","action","params"}; "NAME=[]" does nothing')
    p.add_argument("--responses", type=Path, metavar="FILE", help="a JSON file {name: [actions]} of candidates")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="write the ranked responses to this file (default: print)")
    p.set_defaults(func=_cmd_whatif)

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", metavar="BENCH", required=True)
    p = bench.add_parser("core", help="state-store and bus throughput")
    p.add_argument("--n", type=int, default=50_000, help="entity updates per measurement")
    p.add_argument("--json")
    p.set_defaults(func=_cmd_bench_core)

    for module, fn, bench_fn in PLUGGED:
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        getattr(mod, fn)(sub)
        if bench_fn is not None:  # the sub-package's own benchmark under `aicity bench`
            getattr(mod, bench_fn)(bench)
    for ep in sorted(metadata.entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        ep.load()(sub, bench)  # a domain's own commands and benchmarks
    return parser


def _cmd_whatif(args: argparse.Namespace) -> int:
    import json

    from aicity.runner import check_seed, parse_modes, parse_options
    from aicity.whatif import Response, WhatIf, what_if

    check_seed(args.seed)
    (mode,) = parse_modes(args.mode)[:1]
    raw: dict[str, Any] = {}
    if args.responses is not None:
        try:
            raw.update(json.loads(args.responses.read_text()))
        except (OSError, ValueError, AttributeError, RecursionError) as exc:
            raise UserError(f"cannot read responses file {str(args.responses)!r}: {exc}") from exc
    for item in args.response or []:
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise UserError(f"--response {item!r}: use NAME=JSON")
        try:
            raw[name] = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise UserError(f"--response {name}: not JSON ({exc})") from exc
    responses = [Response.parse(n, v) for n, v in raw.items()]
    q = WhatIf(args.scenario or _default_city(), parse_options(args.set or []), args.seed, mode, args.at,
               args.horizon)
    write_json(args.json, what_if(q, responses, jobs=args.jobs))
    return 0


def _default_city() -> str:
    from aicity.core.city import default_scenario
    from aicity.core.domain import discover

    return default_scenario(discover())


def _domain_options(p: argparse.ArgumentParser) -> dict[str, str]:
    """``--<option>`` flags for options domains mark as flags, and every domain's options in the help text."""
    from aicity.core.domain import discover, warn_plugin

    try:
        domains = discover(on_error=warn_plugin)
    except Exception as exc:  # a broken plug-in must not break --help; `aicity run` reports it
        p.epilog = f"(domain options unavailable: {exc})"
        return {}
    flags: dict[str, str] = {}
    lines = ["scenario options (--set KEY=VALUE):"]
    for d in domains.values():
        for o in d.meta.options:
            lines.append(f"  {d.name}.{o.name}: {o.help} [{o.range_text()}; default {o.default}]")
            if o.flag and o.name not in flags:
                flags[o.name] = d.name
                kind = o.kind if o.kind in (int, float) else str
                p.add_argument(f"--{o.name.replace('_', '-')}", dest=f"opt_{o.name}", type=kind,
                               metavar=o.unit.upper() or "VALUE", help=f"{d.name}: {o.help} ({o.range_text()})")
    p.epilog = "\n".join(lines)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    return flags


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
    except BrokenPipeError:  # e.g. `aicity audit show | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:  # a full disk, a vanished folder, no permission: one line naming the file
        where = f": {exc.filename}" if exc.filename else ""
        print(f"aicity: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # never a traceback to a user: one line, the traceback kept in a log file
        log = _crash_log()
        print(f"aicity: internal error: {type(exc).__name__}: {exc} (traceback in {log})", file=sys.stderr)
        return 70


def _crash_log() -> str:
    """Write the current exception's traceback to a temporary file; its path."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="aicity-crash-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(traceback.format_exc())
    return path


if __name__ == "__main__":
    sys.exit(main())
