"""Offline: how much evening reserve the district's batteries hold back, and how often it falls short, by the past
days it reads.

Usage: python bench/energy_reserve_analogs.py [--draws 1-8] [--json bench/results/energy_reserve_analogs.json]

The AI City MPC keeps battery energy for the evening: what the heaviest of the last 14 days' measured inflexible
load (loads less PV, each quarter-hour at its highest within one step either side) would need above the peak
already paid (``MpcPlanner._reserve``). Energy held back is on-peak arbitrage forgone (RESULTS, "Where the
district's cost gap goes"). This asks, on the billing month's ground truth (28 days after 7 days of history, per
draw), whether fewer, better chosen past days would do: the 7 or 4 days whose 10:00-17:00 load was most like
today's (an analog ensemble, which a city could run: meters only), or the last 7 days. For each day at 17:00 and
each peak level P: the reserve (the most any chosen day's 17:00-24:00 would need above P, kWh), what the day
itself needed (what perfect foresight would keep) and the shortfall (the day's need above the reserve). Battery power and capacity are not modelled: it compares the
scenario sets, not the dispatch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from aicity.domains.energy.district import HISTORY_DAYS, MONTH, build_district, district_scenarios
from aicity.domains.energy.mpc import widen
from aicity.runner import parse_seeds

PER_DAY = 96
"""Quarter-hours a day."""
EVENING = (68, 96)
"""17:00-24:00 in quarter-hours."""
LIKE = (40, 68)
"""10:00-17:00: the part of today an analog is matched on."""
MEMORY = 14
"""Past days the reserve reads (the product's ``past_days``)."""


def days_of(draw: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The month's total inflexible load (kW, loads less PV), history first, one row per day."""
    scen = next(s for s in district_scenarios() if s.name == MONTH)
    site = build_district(scen, {"draw": draw}, history_days=HISTORY_DAYS)
    total = np.concatenate([site.history_kw.sum(axis=0), (site.base_kw - site.pv_kw).sum(axis=0)])
    n = len(total) // PER_DAY
    return np.asarray(total[: n * PER_DAY].reshape(n, PER_DAY), dtype=float)


def need(row: np.ndarray[Any, np.dtype[np.float64]], level: float) -> float:
    """kWh an evening needs above ``level``."""
    return float(np.maximum(row[EVENING[0]:EVENING[1]] - level, 0.0).sum() * 0.25)


def chosen(days: np.ndarray[Any, np.dtype[np.float64]], d: int, rule: str) -> list[int]:
    """The past days ``rule`` reads on day ``d``."""
    past = list(range(max(0, d - MEMORY), d))
    if rule == "last7":
        return past[-7:]
    if rule.startswith("analog"):
        k = int(rule.removeprefix("analog"))
        dist = [float(np.abs(days[c, LIKE[0]:LIKE[1]] - days[d, LIKE[0]:LIKE[1]]).mean()) for c in past]
        return [c for _, c in sorted(zip(dist, past, strict=True))[:k]]
    return past


def main() -> None:
    """Print and write the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", default="1-8")
    ap.add_argument("--json", default="bench/results/energy_reserve_analogs.json")
    args = ap.parse_args()
    draws = parse_seeds(args.draws)
    month = {draw: days_of(draw) for draw in draws}
    records = []
    for level in (180.0, 190.0, 200.0, 210.0):
        for rule in ("all14", "analog7", "analog4", "last7"):
            held, short, needed, days_short, n = [], [], [], 0, 0
            for days in month.values():
                wide = widen(days, 1)
                for d in range(HISTORY_DAYS, len(days)):
                    reserve = max(need(wide[c], level) for c in chosen(days, d, rule))
                    actual = need(days[d], level)
                    held.append(reserve)
                    needed.append(actual)
                    short.append(max(0.0, actual - reserve))
                    days_short += actual > reserve + 1e-9
                    n += 1
            rec = {"level_kw": level, "rule": rule, "days": n, "draws": draws,
                   "mean_reserve_kwh": round(float(np.mean(held)), 2),
                   "mean_need_kwh": round(float(np.mean(needed)), 2),
                   "shortfall_kwh": round(float(np.sum(short)), 2), "days_short": days_short}
            records.append(rec)
            print(f"P {level:.0f} kW  {rule:8s}  reserve {rec['mean_reserve_kwh']:6.1f} kWh a day "
                  f"(needed {rec['mean_need_kwh']:5.1f})  "
                  f"short {rec['shortfall_kwh']:6.1f} kWh on {days_short} of {n} days")
    Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
