"""The energy domain's own command: ``aicity bench energy`` (registered under ``aicity.commands``)."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any, bench: Any) -> None:
    """Add the energy benchmark to ``aicity bench``."""
    p = bench.add_parser("energy", help="energy controllers (smart, ai, oracle) over scenarios and seeds, "
                                        "through the one loop")
    p.add_argument("--scenarios", default="acn-caltech-2019-09")
    p.add_argument("--controllers", default="smart,ai,oracle")
    p.add_argument("--seeds", default="1")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--duration", type=float, default=None, help="run only the first SECONDS of each scenario")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="scenario option, repeatable")
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_bench_energy)


def _bench_energy(args: argparse.Namespace) -> int:
    from aicity.cli import write_json
    from aicity.domains.energy.bench import run_energy_bench
    from aicity.domains.energy.controllers import MODES
    from aicity.runner import parse_list, parse_options, parse_seeds

    records = run_energy_bench(parse_list(args.scenarios, what="scenario"),
                               parse_list(args.controllers, tuple(MODES), "controller"),
                               parse_seeds(args.seeds), jobs=max(1, args.jobs), options=parse_options(args.set),
                               duration_s=args.duration)
    write_json(args.json, records)
    return 0
