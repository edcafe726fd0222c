"""Events across processes on NATS JetStream: stored publishes per second and delivery to a durable subscriber.

Usage: python bench/bus_nats.py [--url nats://…] [--n 20000] [--json bench/results/bus_nats.json]

Without ``--url`` it starts a throw-away ``nats-server -js`` (file storage) on 127.0.0.1. The publisher is
:class:`aicity.core.natsbus.NatsBus` (publishes acknowledged by the stream, up to 512 in flight); the subscriber
is a durable pull consumer on another connection, acknowledging after its handler ran; the subscriber in another
process resumes a durable subscription that was down while all was published (the catch-up rate, from its start). Short: 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aicity.core.context import Actor, ActorKind, Context
from aicity.core.event import Event, EventType
from aicity.core.natsbus import NatsBus

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CATCH_UP = """
import sys, threading, time
from aicity.core.natsbus import NatsBus
n, done, started = int(sys.argv[2]), threading.Event(), time.perf_counter()
seen = [0]
def handler(_e):
    seen[0] += 1
    if seen[0] >= n:
        done.set()
bus = NatsBus(sys.argv[1])
bus.subscribe("observation", handler, durable=sys.argv[3])
done.wait(120)
print(round(n / (time.perf_counter() - started)))
bus.close()
"""


def _events(n: int) -> list[Event]:
    ctx = Context(Actor(ActorKind.SENSOR, "bench"), None, "0" * 32)
    return [Event(EventType.OBSERVATION, {"part": "mobility", "entity": f"urn:ngsi-ld:TrafficFlowObserved:{i % 500}",
                                          "i": i}, ctx, T0, entity_type="TrafficFlowObserved") for i in range(n)]


def measure(url: str, n: int) -> list[dict[str, Any]]:
    """Publish ``n`` events while a durable subscriber receives them; then a new process catches up on the stream."""
    events, got, done = _events(n), [0], threading.Event()

    def handler(_e: Event) -> None:
        got[0] += 1
        if got[0] >= n:
            done.set()

    sub, pub = NatsBus(url), NatsBus(url, district="north")
    sub.unsubscribe(sub.subscribe(EventType.OBSERVATION, handler, durable="bench-late"))  # its subscriber is down
    sub.subscribe(EventType.OBSERVATION, handler, durable="bench-live")
    started = time.perf_counter()
    for e in events:
        pub.publish(e)
    pub.flush(120)
    stored = n / (time.perf_counter() - started)
    done.wait(120)
    delivered = got[0] / (time.perf_counter() - started)
    pub.close()
    sub.close()
    out = subprocess.run([sys.executable, "-c", CATCH_UP, url, str(n), "bench-late"], capture_output=True, text=True,
                         check=True, timeout=300)
    load = round(os.getloadavg()[0], 1)
    row = {"backend": "nats-server 2.9 JetStream (file)", "batch": 1, "n": n, "load_1m": load}
    return [{"bench": "bus_publish_stored", **row, "per_s": round(stored)},
            {"bench": "bus_delivered_live", **row, "per_s": round(delivered)},
            {"bench": "bus_catch_up_other_process", **row, "per_s": int(out.stdout.strip().splitlines()[-1])}]


def _server() -> tuple[subprocess.Popen[bytes], str, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    root = Path(tempfile.mkdtemp(prefix="aicity-nats-bench-"))
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    return proc, f"nats://127.0.0.1:{port}", root


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark; print the rows and optionally write them as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="an existing NATS server with JetStream (default: a throw-away one)")
    ap.add_argument("--n", type=int, default=20_000, help="events to publish")
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args(argv)
    proc, url, root = (None, args.url, None) if args.url else _server()
    try:
        records = measure(url, args.n)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(10)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
    for r in records:
        print(f"{r['bench']:28} n {r['n']:6}: {r['per_s']:8,}/s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2) + "\n")
    return records


if __name__ == "__main__":
    main(sys.argv[1:])
