"""Regenerates the model cards in bench/results/model-cards from bench/results/mobility.json and forecast.json.

Each card is built by ``aicity modelcard build`` (the commands are printed), disaggregated by map, by district
per map and by 15-min time of day per map (signal controllers), or by horizon, detector and 4-hour time of day
(forecasters). Usage: python bench/model_cards.py [--only ai,maxpressure,rls,spatial]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import resources
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MOBILITY = ("--results", str(RESULTS / "mobility.json"), "--baseline", "controller=fixed",
            "--factors", "scenario,scenario/district,scenario/time_of_day", "--worst", "delay_s", "--equity-threshold", "0.8")
FORECAST = ("--results", str(RESULTS / "forecast.json"), "--metrics", "mae,rmse,coverage80,coverage90",
            "--factors", "horizon_steps,district,time_of_day", "--worst", "mae,coverage90:min")
CARDS: dict[str, tuple[str, ...]] = {
    "ai": (*MOBILITY, "--select", "controller=ai", "--metrics", "delay_s,trip_time_s,wait_s,never_inserted"),
    "maxpressure": (*MOBILITY, "--select", "controller=maxpressure", "--metrics", "delay_s,trip_time_s,wait_s"),
    "rls": (*FORECAST, "--select", "model=rls", "--baseline", "model=seasonal_naive_week"),
    "spatial": (*FORECAST, "--select", "model=spatial", "--baseline", "model=naive"),
}


def build(name: str, out: Path = RESULTS / "model-cards") -> None:
    """Build one card with the shipped metadata ``aicity/governance/policy/modelcards/<name>.toml``."""
    meta = resources.files("aicity.governance.policy").joinpath(f"modelcards/{name}.toml")
    cmd = [sys.executable, "-m", "aicity.cli", "modelcard", "build", "--meta", str(meta), *CARDS[name],
           "--out", str(out)]
    print("+", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def main() -> int:
    """Build the selected cards."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(CARDS))
    args = parser.parse_args()
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        build(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
