"""Districts on a real Ray cluster, reached by its address as a multi-machine one would be: the partitioned run
equals the whole-city run, and a district whose worker is killed is reported in one line."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.runner import bench_run
from aicity.scale.coordinator import DistrictCity
from aicity.scale.executors import RayExecutor
from tests.scale.test_coordinator import _city, _key

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Ray head started apart from the test process (``ray start --head --block``), stopped by PID."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen([ray_cli, "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
                             "--disable-usage-stats"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail(f"ray start exited with {proc.returncode}")
        time.sleep(0.5)
    time.sleep(2.0)  # the GCS listens before the raylet registers
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]  # this process's drivers find the tests' toy domain too
    try:
        yield address
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _district_city(tmp_path: Path, address: str, districts: int = 3) -> DistrictCity:
    return DistrictCity(_city(), districts=districts, mode="ai", seed=3, store=SqliteStore(":memory:"),
                        out=tmp_path, executor=RayExecutor(address), key=_key())


def test_districts_on_a_cluster_by_address_equal_the_whole_city(tmp_path: Path, cluster: str) -> None:
    whole = bench_run(_city(), mode="ai", seed=3).results["belt"]
    run = _district_city(tmp_path, cluster)
    ep = run.run()
    assert ep.results["belt"].kpis == whole.kpis
    assert ep.scale.executor == "ray" and ep.scale.crossings > 0
    assert {c["district"] for c in ep.districts} == {"d1", "d2", "d3"}
    assert all(Path(c["db"]).is_file() for c in ep.districts)


def test_a_killed_district_worker_is_recovered_on_the_cluster(tmp_path: Path, cluster: str) -> None:
    """ray.kill on d2's actor mid-run: a new actor replays d2's log, the run completes with every parcel
    accounted for, d2's ledger keeps what the lost worker recorded and adds one recovery record."""
    store = SqliteStore(":memory:")
    run = DistrictCity(_city(), districts=2, mode="ai", seed=3, store=store, out=tmp_path,
                       executor=RayExecutor(cluster), key=_key(), kill={12: "d2"})
    ep = run.run()
    (rec,) = ep.scale.recoveries
    assert rec["district"] == "d2" and rec["replayed_steps"] == 12 and rec["safe_state_within_steps"] == 1
    merged = ep.results["belt"]
    assert merged.extra["made"] == merged.kpis["delivered"] + merged.extra["queued"] + ep.scale.in_flight_at_end
    d2 = next(c for c in ep.districts if c["district"] == "d2")
    assert d2["governance"]["ledger_verified"] is True
    assert d2["stats"]["recovered"]["ledger_records_found"] > 0


def test_a_district_that_cannot_start_is_one_line(tmp_path: Path, cluster: str) -> None:
    (tmp_path / "districts" / "d1").mkdir(parents=True)
    (tmp_path / "districts" / "d1" / "city.db").write_text("not a database")
    with pytest.raises(UserError) as err:
        _district_city(tmp_path, cluster, districts=2).run()
    assert "district 'd1'" in str(err.value) and "\n" not in str(err.value)


def test_aicity_run_districts_on_a_local_cluster_matches_one_process(tmp_path: Path) -> None:
    """The real thing: SUMO districts as Ray actors through ``aicity run --districts``, against one process."""
    import json

    from aicity.cli import main

    base = ["run", "--scenario", "gridcity-2", "--duration", "300", "--mode", "ai", "--quiet", "--seed", "2"]
    assert main([*base, "--districts", "2", "--out", str(tmp_path / "d")]) == 0
    assert main([*base, "--out", str(tmp_path / "one")]) == 0
    split = json.loads((tmp_path / "d" / "report.json").read_text())
    one = json.loads((tmp_path / "one" / "report.json").read_text())
    scale = split["modes"]["ai"]["scale"]
    assert scale["districts"] == 2 and scale["executor"] == "ray" and scale["crossings"] > 0
    assert scale["unrouted"] == 0 and scale["bytes_per_step"] > 0
    a, b = (r["modes"]["ai"]["domains"]["mobility"]["kpis"] for r in (split, one))
    assert set(a) == set(b)
    assert abs(a["delay_s"] - b["delay_s"]) <= 0.15 * b["delay_s"] + 1.0  # measured: within 3 % at 600 s
    assert split["modes"]["ai"]["governance"]["ledger_verified"] is True
    assert set(split["modes"]["ai"]["governance"]["district_ledgers"]) == {"d1", "d2"}
    assert "## Districts" in (tmp_path / "d" / "report.md").read_text()
