"""The safety oracle with its drives as slow as the ambulances' measured ones (free flow × a factor).

Usage: python bench/safety_oracle_scaled.py [--scenario cologne8-ems] [--load 150] [--seeds 1-45]
       [--factors 1.40,1.77] [--json bench/results/safety_oracle_scaled.json]

The perfect-foresight MIP of :mod:`aicity.domains.safety.oracle` on each day's calls (the same calls as every
controller's episode of that seed), every drive at free flow × the factor (:class:`aicity.domains.safety.travel_times.
Scaled`): a calibration of the yardstick to the drive times the ambulances were measured to take, not a bound.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aicity.domains.safety.bench import Task, scaled_oracle
from aicity.runner import parse_seeds


def main() -> None:
    """Solve the scaled oracle for every seed and factor; write one record each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="cologne8-ems")
    ap.add_argument("--load", type=float, default=150.0)
    ap.add_argument("--seeds", default="1-45")
    ap.add_argument("--factors", default="1.40,1.77")
    ap.add_argument("--json", default="bench/results/safety_oracle_scaled.json")
    args = ap.parse_args()
    out = []
    for factor in (float(f) for f in args.factors.split(",")):
        for seed in parse_seeds(args.seeds):
            res = scaled_oracle(Task(args.scenario, "oracle", seed, args.load, 0.25), factor)
            out.append({"scenario": args.scenario, "controller": "oracle_scaled", "drive_factor": factor, "seed": seed,
                        "load_multiplier": args.load, "service_scale": 0.25, "calls": len(res.late),
                        "late_frac": round(res.late_frac, 4), "mean_response_s": round(res.mean_response_s, 4),
                        "relocations": res.relocations, "status": res.status})
            print(f"x{factor:g} seed {seed}: late {res.late_frac:.3f} ({res.status})", flush=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
