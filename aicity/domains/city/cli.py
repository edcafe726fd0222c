"""The city's commands: ``aicity bench city`` and ``aicity whatif`` (``aicity.commands`` entry point)."""

from __future__ import annotations

import argparse
from typing import Any

from aicity.cli import write_json


def add_commands(commands: Any, bench: Any) -> None:
    """Add ``aicity bench city``."""
    p = bench.add_parser("city", help="Smart City vs ablation vs AI City on scripted events, paired seeds")
    p.add_argument("--events", default="outage,incident,surge", help="outage, incident, surge, none")
    p.add_argument("--controllers", default="smart,ablation,ai")
    p.add_argument("--seeds", default="1-10")
    p.add_argument("--duration", type=float, default=None, help="seconds of the window (default: all of it)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="write the records to this file (default: print)")
    p.set_defaults(func=_bench_city)


def _bench_city(args: argparse.Namespace) -> int:
    from aicity.domains.city.bench import run_city_bench, tasks_for
    from aicity.domains.city.scenarios import EVENTS
    from aicity.runner import MODES, parse_list, parse_seeds

    tasks = tasks_for(parse_list(args.events, (*EVENTS, "none"), "event"),
                      parse_list(args.controllers, MODES, "controller"), parse_seeds(args.seeds), args.duration)
    write_json(args.json, run_city_bench(tasks, jobs=args.jobs))
    return 0
