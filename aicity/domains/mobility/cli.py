"""The mobility domain's own commands: ``aicity bench mobility`` and ``aicity bench preemption``.

Registered under the ``aicity.commands`` entry-point group; the kernel's CLI names no domain.
"""

from __future__ import annotations

import argparse
from typing import Any

from aicity.cli import write_json


def add_commands(commands: Any, bench: Any) -> None:
    """Add the mobility benchmarks to ``aicity bench``."""
    p = bench.add_parser("mobility", help="signal controllers over scenarios and seeds, through the one loop")
    p.add_argument("--scenarios", default="cologne8,ingolstadt7,grid4x4")
    p.add_argument("--controllers", default="fixed,maxpressure,ai")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_bench_mobility)
    p = bench.add_parser("preemption", help="emergency-vehicle preemption, Smart City vs AI City, paired seeds")
    p.add_argument("--scenario", default="ingolstadt7")
    p.add_argument("--seeds", default="1-8")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--ev-speed-factor", type=float, default=1.0,
                   help="emergency vehicles' desired speed as a multiple of the limit, both modes (default 1.0)")
    p.add_argument("--json")
    p.set_defaults(func=_bench_preemption)


def _bench_mobility(args: argparse.Namespace) -> int:
    from aicity.domains.mobility.bench import run_mobility_bench
    from aicity.domains.mobility.controllers import CONTROLLERS
    from aicity.runner import parse_list, parse_seeds

    records = run_mobility_bench(parse_list(args.scenarios, what="scenario"),
                                 parse_list(args.controllers, tuple(CONTROLLERS), "controller"),
                                 parse_seeds(args.seeds), jobs=args.jobs)
    write_json(args.json, records)
    return 0


def _bench_preemption(args: argparse.Namespace) -> int:
    from aicity.domains.mobility.preemption_bench import run_preemption_bench
    from aicity.runner import parse_seeds

    records = run_preemption_bench(args.scenario, parse_seeds(args.seeds), jobs=args.jobs,
                                   ev_speed_factor=args.ev_speed_factor)
    write_json(args.json, records)
    return 0
