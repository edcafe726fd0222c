"""``aicity districts`` (how a city splits) and ``aicity bench scale`` (strong and weak scaling on Ray)."""

from __future__ import annotations

import argparse
from typing import Any

from aicity.core.errors import UserError


def add_parsers(sub: Any) -> None:
    """Add ``aicity districts``."""
    p = sub.add_parser("districts", help="show how a city splits into districts: their parts and borders")
    p.add_argument("--scenario", help="city or scenario (default: the default city)")
    p.add_argument("--districts", type=int, required=True, metavar="N")
    p.set_defaults(func=_cmd_districts)


def add_bench(bench: Any) -> None:
    """Add ``aicity bench scale``."""
    p = bench.add_parser("scale", help="strong and weak scaling of a city run as districts on Ray, against one "
                         "process: time per step, bytes moved, real-time factor, KPIs")
    p.add_argument("--scenario", metavar="TEMPLATE",
                   help="scenario name with {k} for the number of districts (default: the installed family)")
    p.add_argument("--domain", help="whose family of equal-district scenarios to run (default: mobility)")
    p.add_argument("--sizes", default="1,2,4", help="district counts (default 1,2,4)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, metavar="SECONDS", help="the first SECONDS of each scenario")
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_bench_scale)
    p = bench.add_parser("faults", help="kill a district's Ray worker mid-run and late: recovery in the same "
                         "step from its last checkpoint, the ledger intact, KPIs against a clean run")
    p.add_argument("--scenario", help="a partitionable scenario (default: the installed family's)")
    p.add_argument("--districts", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, metavar="SECONDS", help="the first SECONDS of the scenario")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="steps between two checkpoints of every district (default 30; 0: none, a lost district "
                        "replays its log since the start)")
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_bench_faults)


def _bench_faults(args: argparse.Namespace) -> int:
    from aicity.cli import write_json
    from aicity.runner import check_seed
    from aicity.scale.bench import run_faults

    check_seed(args.seed)
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise UserError(f"--checkpoint-every must be 0 (none) or more steps, not {args.checkpoint_every}")
    write_json(args.json, run_faults(args.scenario, args.districts, args.seed, args.duration,
                                     checkpoint_every=args.checkpoint_every))
    return 0


def _cmd_districts(args: argparse.Namespace) -> int:
    from aicity.runner import load_city
    from aicity.scale.partition import partition

    city = load_city(args.scenario)
    for d in partition(city, args.districts):
        borders = sum(len(t) for t in d.borders.values())
        leads = sorted({to for t in d.borders.values() for to in t.values()})
        parts = ", ".join(f"{p.name}/{p.scenario.name}" for p in d.city)
        print(f"{d.name}: {parts}; {borders} border(s) to {', '.join(leads) or 'none'}")
    return 0


def _bench_scale(args: argparse.Namespace) -> int:
    from aicity.cli import write_json
    from aicity.runner import check_seed, parse_seeds
    from aicity.scale.bench import run_scale

    check_seed(args.seed)
    sizes = parse_seeds(args.sizes)
    write_json(args.json, run_scale(args.scenario, sizes, args.seed, args.duration, args.domain))
    return 0
