"""The safety domain's command: ``aicity bench safety`` (registered under the ``aicity.commands`` entry point)."""

from __future__ import annotations

import argparse
from typing import Any

from aicity.cli import write_json


def add_commands(commands: Any, bench: Any) -> None:
    """Add the safety benchmark to ``aicity bench``."""
    p = bench.add_parser("safety", help="EMS dispatch: Smart City vs AI City (and the oracle), paired seeds")
    p.add_argument("--scenarios", default="cologne8-ems")
    p.add_argument("--controllers", default="smart,ai,oracle")
    p.add_argument("--seeds", default="1-30")
    p.add_argument("--loads", default="1,200", help="load multipliers (incident rate over Cologne's density)")
    p.add_argument("--service-scale", type=float, default=0.25,
                   help="scale of on-scene and handover times, reported in every record (default 0.25)")
    p.add_argument("--factorial", action="store_true",
                   help="add the {bluelight} x {preemption} factorial in the city scenario (AI, highest load) "
                        "and Smart City as a whole there (closest idle beside fixed-time signals)")
    p.add_argument("--city", action="store_true",
                   help="run the controllers in the city scenario (mobility + safety on one SUMO): smart beside "
                        "fixed-time signals, ai beside AI signals with preemption (Smart City vs AI City as a whole)")
    p.add_argument("--bluelight", action="store_true",
                   help="with --city: both cities' ambulances run SUMO's bluelight device (sirens: traffic makes way "
                        "and they may pass a red light); default off, as in bench/RESULTS.md's city table")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_bench_safety)


def _bench_safety(args: argparse.Namespace) -> int:
    from aicity.core.errors import UserError
    from aicity.domains.safety.bench import run_safety_bench, tasks_for
    from aicity.domains.safety.controllers import MODES
    from aicity.domains.safety.scenarios import LAYOUTS
    from aicity.runner import parse_list, parse_seeds

    try:
        loads = [float(x) for x in parse_list(args.loads, what="load")]
    except ValueError as exc:
        raise UserError(f"bad --loads {args.loads!r}: use numbers such as 1,200") from exc
    if any(not 0 <= x <= 1000 for x in loads) or not 0.05 <= args.service_scale <= 2:
        raise UserError("loads must be from 0 to 1000 and --service-scale from 0.05 to 2")
    if args.bluelight and not args.city:
        raise UserError("--bluelight applies to the city scenario: add --city (the factorial runs both settings)")
    tasks = tasks_for(parse_list(args.scenarios, tuple(LAYOUTS), "scenario"),
                      parse_list(args.controllers, (*MODES, "oracle"), "controller"), parse_seeds(args.seeds),
                      loads, args.service_scale, args.factorial, args.city, bluelight=args.bluelight)
    write_json(args.json, run_safety_bench(tasks, jobs=args.jobs))
    return 0
