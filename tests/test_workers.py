"""Worker processes never outlive their command, and a failing worker is one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aicity.workers import WorkerError, run_episodes, run_parallel


def _square(x: int, results) -> int:  # type: ignore[no-untyped-def]
    results.put(("progress", f"t{x}", 1.0, 1.0))
    return x * x


def _boom(x: int, results) -> int:  # type: ignore[no-untyped-def]
    raise RuntimeError(f"bad input {x}")


def _die(x: int, results) -> int:  # type: ignore[no-untyped-def]
    os._exit(9)


def test_results_by_tag_and_progress() -> None:
    seen: list[str] = []
    out = run_parallel([(f"t{i}", _square, (i,)) for i in range(3)], jobs=2,
                       progress=lambda tag, d, t: seen.append(tag))
    assert out == {"t0": 0, "t1": 1, "t2": 4} and sorted(seen) == ["t0", "t1", "t2"]


def test_a_failing_worker_is_one_line_with_its_traceback_kept(tmp_path: Path) -> None:
    logs: dict[str, str] = {}

    def keep(tag: str, trace: str) -> str:
        logs[tag] = trace
        return str(tmp_path / f"{tag}.log")

    with pytest.raises(WorkerError, match=r"^boom: RuntimeError: bad input 1 \(traceback in .*boom.log\)$"):
        run_parallel([("boom", _boom, (1,))], jobs=1, crash_log=keep)
    assert "Traceback" in logs["boom"]


def test_a_dead_worker_is_reported() -> None:
    with pytest.raises(WorkerError, match=r"died \(exit code 9\)"):
        run_parallel([("die", _die, (1,))], jobs=1)


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.sumo
def test_killing_the_main_process_leaves_no_worker(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "aicity.cli", "run", "--scenario", "cologne8", "--quiet",
                             "--out", str(tmp_path / "run")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2:
            workers = {c for c in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()}
            time.sleep(0.2)
        assert len(workers) == 2, "the two mode workers did not start"
        time.sleep(2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "a worker outlived the killed command"
    finally:
        if proc.poll() is None:
            proc.kill()


def _pid_of(task: int) -> tuple[int, int]:
    return task, os.getpid()


def test_run_episodes_keeps_task_order_and_never_shares_a_process() -> None:
    got = run_episodes(_pid_of, [3, 1, 2], jobs=1)
    assert [t for t, _ in got] == [3, 1, 2]
    pids = [p for _, p in got]
    assert len(set(pids)) == 3 and os.getpid() not in pids  # one fresh process per episode, even with one job
