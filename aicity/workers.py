"""Worker processes that never outlive the command that started them.

libsumo runs one simulation per process, so runs and benchmarks fan out to spawned processes. Each worker
watches its parent and exits at once when the parent is gone (a killed ``aicity run`` leaves no worker holding
memory); the parent terminates its workers on any error, Ctrl-C or SIGTERM; a worker that dies is reported in one
line, with what it was running.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aicity.core.errors import UserError

Task = tuple[str, Callable[..., Any], tuple[Any, ...]]
"""A tag, a module-level function and its arguments (picklable: workers are spawned)."""
Progress = Callable[[str, float, float], None]


class WorkerError(UserError):
    """A worker failed: the one line names the task and what went wrong."""


def watch_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    """In a worker: exit at once when the parent process is gone (its parent id changes)."""
    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(70)
            time.sleep(interval_s)

    threading.Thread(target=watch, name="aicity-parent-watch", daemon=True).start()


def _entry(tag: str, fn: Callable[..., Any], args: tuple[Any, ...], results: Any, parent_pid: int) -> None:
    watch_parent(parent_pid)
    try:
        out = fn(*args)
    except UserError as exc:
        results.put(("error", tag, str(exc), ""))
    except BaseException as exc:  # reported in one line by the parent; the traceback goes to a log file
        results.put(("error", tag, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    else:
        results.put(("done", tag, out, ""))


@contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_parallel(tasks: Sequence[Task], *, jobs: int, progress: Progress | None = None,
                 crash_log: Callable[[str, str], str] | None = None) -> dict[str, Any]:
    """Run every task in its own spawned process, at most ``jobs`` at a time; results by tag.

    Each task's function gets the results queue as its last argument and may report progress by putting
    ``("progress", tag, done, total)`` on it. A failure raises :class:`WorkerError` after every other worker is
    stopped; ``crash_log(tag, traceback)`` may keep the traceback and return where it is.
    """
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    pending = list(tasks)
    running: dict[str, Any] = {}
    done: dict[str, Any] = {}
    parent = os.getpid()
    try:
        with _terminate_on_sigterm():
            while pending or running:
                while pending and len(running) < max(1, jobs):
                    tag, fn, args = pending.pop(0)
                    proc = ctx.Process(target=_entry, args=(tag, fn, (*args, results), results, parent),
                                       name=f"aicity-{tag}", daemon=True)
                    proc.start()
                    running[tag] = proc
                try:
                    msg = results.get(timeout=0.2)
                except queue.Empty:
                    for tag, proc in list(running.items()):
                        if proc.exitcode is not None and tag not in done:
                            time.sleep(0.2)  # its last message may still be in the pipe
                            if not _drain(results, running, done, progress, crash_log):
                                died = f"{tag}: the worker process died (exit code {proc.exitcode})"
                                raise WorkerError(died) from None
                    continue
                _handle(msg, running, done, progress, crash_log)
    finally:
        for proc in running.values():
            if proc.is_alive():
                proc.terminate()
        for proc in running.values():
            proc.join(timeout=5)
        results.close()
        results.join_thread()
    return done


def _drain(results: Any, running: dict[str, Any], done: dict[str, Any], progress: Progress | None,
           crash_log: Callable[[str, str], str] | None) -> bool:
    got = False
    while True:
        try:
            msg = results.get_nowait()
        except queue.Empty:
            return got
        _handle(msg, running, done, progress, crash_log)
        got = True


def _handle(msg: tuple[Any, ...], running: dict[str, Any], done: dict[str, Any], progress: Progress | None,
            crash_log: Callable[[str, str], str] | None) -> None:
    kind, tag = msg[0], msg[1]
    if kind == "progress":
        if progress is not None:
            progress(tag, float(msg[2]), float(msg[3]))
        return
    proc = running.pop(tag, None)
    if proc is not None:
        proc.join(timeout=5)
    if kind == "done":
        done[tag] = msg[2]
        return
    text, trace = str(msg[2]), str(msg[3])
    where = f" (traceback in {crash_log(tag, trace)})" if trace and crash_log is not None else ""
    raise WorkerError(f"{tag}: {text}{where}")


def run_episodes(fn: Callable[[Any], Any], tasks: Sequence[Any], *, jobs: int) -> list[Any]:
    """``fn(task)`` for every task, each in a fresh worker process (libsumo keeps state between simulations in
    one process, so benchmark episodes never share one), at most ``jobs`` at a time; results in task order.
    ``fn`` is a module-level function (workers are spawned)."""
    done = run_parallel([(f"episode-{i}", _episode, (fn, t)) for i, t in enumerate(tasks)], jobs=jobs)
    return [done[f"episode-{i}"] for i in range(len(tasks))]


def _episode(fn: Callable[[Any], Any], task: Any, results: Any) -> Any:
    return fn(task)
