"""Mobility benchmark: fixed-time vs max-pressure (and ai) on RESCO maps; prints a table, writes JSON.

Usage: python bench/mobility_bench.py [--scenarios cologne8,ingolstadt7,grid4x4] [--controllers fixed,maxpressure]
                                      [--seeds 1,2,3] [--jobs 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from typing import Any

from aicity.domains.mobility.bench import run_mobility_bench


def main() -> None:
    """Run the benchmark and print mean KPIs per (scenario, controller)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenarios", default="cologne8,ingolstadt7,grid4x4")
    ap.add_argument("--controllers", default="fixed,maxpressure")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    recs = run_mobility_bench(a.scenarios.split(","), a.controllers.split(","),
                              [int(s) for s in a.seeds.split(",")], a.jobs)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(recs, fh, indent=1)
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        by[(r["scenario"], r["controller"])].append(r)
    print("| scenario | controller | delay s | trip s | wait s | never inserted | sim/wall |")
    print("|---|---|---|---|---|---|---|")
    for (s, c), rs in by.items():
        def m(k: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.fmean(r[k] for r in rs)
        print(f"| {s} | {c} | {m('delay_s'):.1f} | {m('trip_time_s'):.1f} | {m('wait_s'):.1f} | "
              f"{m('never_inserted'):.1f} | {m('sim_s') / m('wall_s'):.0f}x |")


if __name__ == "__main__":
    main()
