"""Districts on a Ray cluster of two nodes, each started by ``ray start`` as on two machines: the districts are
spread over both, the result equals the whole-city run, and losing a whole node (its raylet and every worker on
it, killed) mid-run brings its districts back on the surviving node from their checkpoints."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aicity.core.store import SqliteStore
from aicity.runner import bench_run
from aicity.scale.coordinator import DistrictCity
from aicity.scale.executors import RayExecutor
from tests.scale.test_coordinator import _city, _key

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]
SECOND = "second_machine"
"""A custom resource only the second node has: how the test tells the nodes apart."""


@dataclass
class TwoNodes:
    """The head's address and the second node's process group (to kill it like a machine that fails)."""

    address: str
    second: subprocess.Popen[bytes]
    second_id: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    return subprocess.Popen([ray_cli, "start", "--block", "--num-cpus=1", "--node-ip-address=127.0.0.1",
                             "--disable-usage-stats", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _second_alive() -> list[str]:
    """The ids of the live nodes that carry :data:`SECOND` (this process is the cluster's driver)."""
    import ray

    return [str(n["NodeID"]) for n in ray.nodes() if n["Alive"] and SECOND in n.get("Resources", {})]


@pytest.fixture()
def two_nodes() -> Iterator[TwoNodes]:
    """A head node and a second node joined to it by address, each its own ``ray start`` process group."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    head = _start(["--head", f"--port={port}", "--include-dashboard=false"], env)
    second: subprocess.Popen[bytes] | None = None
    address = f"127.0.0.1:{port}"
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]  # this process's drivers find the tests' toy domain too
    try:
        deadline = time.monotonic() + 90
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the head node did not start")
            time.sleep(0.5)
        time.sleep(2.0)
        second = _start([f"--address={address}", f"--resources={{\"{SECOND}\": 1}}"], env)
        import ray

        ray.init(address=address, logging_level="ERROR", log_to_driver=False)  # the executors then share it
        while not _second_alive() or SECOND not in ray.available_resources():  # joined, and schedulable
            if second.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the second node did not join the cluster")
            time.sleep(0.5)
        yield TwoNodes(address, second, _second_alive()[0])
    finally:
        import ray

        ray.shutdown()
        if second is not None:
            _stop(second)
        _stop(head)
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


class NodeFailure(RayExecutor):
    """Ray executor whose fault is a whole machine lost: the second node's processes are killed (SIGKILL), and the
    run goes on once the cluster has noticed."""

    def __init__(self, nodes: TwoNodes) -> None:
        super().__init__(nodes.address)
        self.nodes = nodes

    def kill(self, index: int, timeout_s: float = 120.0) -> None:
        """Kill the second node (``index`` is ignored: every district there is lost together)."""
        os.killpg(self.nodes.second.pid, signal.SIGKILL)
        self.nodes.second.wait(timeout=30)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _second_alive():
                return
            time.sleep(0.5)
        raise AssertionError(f"the cluster still listed the killed node after {timeout_s:g} s")


def _on(run: DistrictCity, node: str) -> set[str]:
    """The districts the run placed on ``node`` at the start."""
    return {d for d, w in run.scale.placement.items() if w["node"] == node}


def test_districts_spread_over_two_nodes_equal_the_whole_city(tmp_path: Path, two_nodes: TwoNodes) -> None:
    whole = bench_run(_city(8), mode="ai", seed=3).results["belt"]
    run = DistrictCity(_city(8), districts=4, mode="ai", seed=3, store=SqliteStore(":memory:"), out=tmp_path,
                       executor=RayExecutor(two_nodes.address), key=_key())
    ep = run.run()
    assert ep.results["belt"].kpis == whole.kpis
    nodes = {w["node"] for w in run.scale.placement.values()}
    assert len(nodes) == 2 and None not in nodes  # SPREAD put districts on both machines
    assert 0 < len(_on(run, two_nodes.second_id)) < 4
    assert len({w["pid"] for w in run.scale.placement.values()}) == 4


def test_losing_a_node_recovers_its_districts_on_the_other(tmp_path: Path, two_nodes: TwoNodes) -> None:
    """The second machine dies at step 12 of 30 (checkpoints every 5 steps): each district it held comes back on
    the head node from its checkpoint of step 10, replays 2 steps, and the run ends like the undisturbed one."""
    clean = DistrictCity(_city(8), districts=4, mode="ai", seed=3, store=SqliteStore(":memory:"),
                         out=tmp_path / "clean", executor=RayExecutor(two_nodes.address), key=_key(),
                         checkpoint_every=5).run()
    run = DistrictCity(_city(8), districts=4, mode="ai", seed=3, store=SqliteStore(":memory:"), out=tmp_path / "f",
                       executor=NodeFailure(two_nodes), key=_key(), kill={12: "d1"}, checkpoint_every=5)
    ep = run.run()
    lost = _on(run, two_nodes.second_id)
    assert lost, "no district was on the second node"
    recovered = {r["district"]: r for r in ep.scale.recoveries}
    assert set(recovered) == lost
    for rec in recovered.values():
        assert rec["worker"]["node"] != two_nodes.second_id  # on the surviving machine
        assert rec["safe_state_within_steps"] == 1
        assert (rec["checkpoint_step"], rec["replayed_steps"]) == (10, 2)
    assert ep.results["belt"].kpis == clean.results["belt"].kpis
    assert all(d["governance"]["ledger_verified"] is True for d in ep.districts)
