"""Same seed, same result, across processes: a short episode of each domain run in two fresh interpreters, each with
its own hash seed and global random state, gives the same KPIs to the last digit (a library drawing from Python's
unseeded global random, as pandapower's Kerber feeders do, made two runs of the village differ)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_RUN = """
import json, random, sys
random.seed(int(sys.argv[3]))  # a different global random state in each process
from aicity.runner import bench_run, load_city
city = load_city(sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[4]))
ep = bench_run(city, mode="ai", seed=1)
print(json.dumps({d: r.kpis for d, r in sorted(ep.results.items())}, sort_keys=True, default=str))
"""


def _kpis(scenario: str, options: dict[str, object], duration_s: float, salt: int) -> str:
    env = {**os.environ, "PYTHONHASHSEED": str(salt)}
    out = subprocess.run([sys.executable, "-c", _RUN, scenario, json.dumps(options), str(salt), str(duration_s)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("scenario", "options", "duration_s"), [
    ("energy/district-kerber-village", {"oracle": False, "draw": 2, "history_days": 0}, 4 * 3600.0),
    ("cologne8-ems-city", {"safety.load_multiplier": 150}, 600.0),
])
def test_two_processes_give_the_same_kpis(scenario: str, options: dict[str, object], duration_s: float) -> None:
    pytest.importorskip("pandapower" if scenario.startswith("energy") else "libsumo")
    first, second = (_kpis(scenario, options, duration_s, salt) for salt in (1, 2))
    assert json.loads(first) and first == second
