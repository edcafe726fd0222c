"""The feeders-K substation, Smart City against AI City: every episode through ``runner.bench_run``.

``python bench/feeders_substation.py --out bench/results/feeders_substation.json`` runs K = 1, 2, 4 feeders,
draws 1-3 (seed = draw), over the bench's 2 h evening window and the scenario's default 24 h window, and writes one
record per episode (the table in bench/RESULTS.md, "The substation, Smart City against AI City").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

WINDOWS: tuple[float | None, ...] = (7200.0, None)
"""The bench's 2 h evening window, and the scenario's default (24 h)."""


def episode(k: int, draw: int, controller: str, window_s: float | None) -> dict[str, Any]:
    """One episode of ``feeders-k`` at ``draw`` (seed = draw) in ``controller``'s mode, as a record."""
    from aicity.runner import bench_run, load_city

    city = load_city(f"feeders-{k}", {"draw": draw}, window_s)
    start = time.perf_counter()
    ep = bench_run(city, mode=controller, seed=draw)
    wall = time.perf_counter() - start
    result = ep.results["energy"]
    sub = result.extra["substation"]
    kpis = result.kpis
    return {"window_s": city.duration_s, "k": k, "draw": draw, "seed": draw, "controller": controller,
            "substation_peak_kw": sub["peak_kw"], "substation_peak_kva": sub["peak_kva"],
            "substation_overload_min": sub["overload_min"], "peak_kw": kpis["peak_kw"],
            "delivered_frac": kpis["delivered_frac"], "energy_cost": kpis["energy_cost"],
            "transformer_overload_min": kpis["transformer_overload_min"],
            "voltage_violations": kpis["voltage_violations"], "loading_violations": kpis["loading_violations"],
            "loading_worst_pct": kpis["loading_worst_pct"], "wall_s": round(wall, 2)}


def table(records: list[dict[str, Any]]) -> list[str]:
    """The markdown table of bench/RESULTS.md: Smart City and AI City side by side per window, K and draw."""
    lines = ["| window | K | seed = draw | Smart: overload min | Smart: peak kW / kVA | AI: overload min | "
             "AI: peak kW / kVA | delivered Smart / AI | energy cost $ Smart / AI |",
             "|---|---:|---:|---:|---|---:|---|---|---|"]
    by = {(r["window_s"], r["k"], r["draw"], r["controller"]): r for r in records}
    for (window, k, draw, controller), smart in by.items():
        ai = by.get((window, k, draw, "ai"))
        if controller != "smart" or ai is None:
            continue
        name = "17:00-19:00" if window == 7200 else f"{window / 3600:.0f} h (default)"
        lines.append(
            f"| {name} | {k} | {draw} | {smart['substation_overload_min']:.0f} | "
            f"{smart['substation_peak_kw']:.0f} / {smart['substation_peak_kva']:.0f} | "
            f"{ai['substation_overload_min']:.0f} | {ai['substation_peak_kw']:.0f} / {ai['substation_peak_kva']:.0f} | "
            f"{smart['delivered_frac']:.3f} / {ai['delivered_frac']:.3f} | "
            f"{smart['energy_cost']:.0f} / {ai['energy_cost']:.0f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run every (window, K, draw, controller) and write the records as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--sizes", default="1,2,4", help="comma list of K (feeders)")
    parser.add_argument("--draws", default="1,2,3", help="comma list of draws (seed = draw)")
    parser.add_argument("--table", action="store_true", help="print the table of the records in --out, run nothing")
    args = parser.parse_args(argv)
    if args.table:
        print("\n".join(table(json.loads(args.out.read_text()))))
        return 0
    sizes = [int(x) for x in args.sizes.split(",")]
    draws = [int(x) for x in args.draws.split(",")]
    records = [episode(k, draw, controller, window)
               for window in WINDOWS for k in sizes for draw in draws for controller in ("smart", "ai")]
    args.out.write_text(json.dumps(records, indent=1) + "\n")
    for r in records:
        print(f"{r['window_s']:>7.0f} K={r['k']} draw {r['draw']} {r['controller']:>5}: overload "
              f"{r['substation_overload_min']:.0f} min, peak {r['substation_peak_kw']:.0f} kW / "
              f"{r['substation_peak_kva']:.0f} kVA, delivered {r['delivered_frac']:.3f}, "
              f"${r['energy_cost']:.0f}, violations {r['voltage_violations']:.0f}/{r['loading_violations']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
