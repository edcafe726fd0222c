"""Measure input plausibility on real mobility runs: degraded decisions on clean runs (false positives) and
with injected sensor faults. ``python bench/mobility_plausibility.py [scenario] [seconds] [faults-json]``."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run(scenario: str, seconds: float, seed: int = 1, faults: dict[str, Any] | None = None,
        out: Path | None = None) -> dict[str, Any]:
    """One governed ai-mode run; returns loop stats, governance counts and the loop itself."""
    from aicity.core.store import SqliteStore
    from aicity.runner import load_city, prepare_run

    city = load_city(f"mobility/{scenario}", {"sensor_faults": faults} if faults else None, seconds)
    out = out or Path(tempfile.mkdtemp(prefix="aicity-plaus-"))
    store = SqliteStore(out / "city.db")
    city_run = prepare_run(city, mode="ai", seed=seed, store=store, out=out)
    t0 = time.perf_counter()
    episode = city_run.run()
    return {"scenario": scenario, "seconds": seconds, "seed": seed, "wall_s": round(time.perf_counter() - t0, 1),
            "loop": episode.stats.to_dict(), "governance": city_run.governance.governor.summary(),
            "kpis": episode.results["mobility"].kpis, "_loop": city_run.loop, "_gov": city_run.governance}


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "grid3x3"
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 600.0
    flt = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    res = run(name, secs, faults=flt)
    print(json.dumps({k: v for k, v in res.items() if not k.startswith("_")}, indent=1, default=str))
