"""Platform throughput, measured on real servers: HTTP batch upsert, MQTT ingest, notification latency and
temporal aggregation. The load generators (the HTTP client, the MQTT publisher) run in processes of their own, as
IoT agents and devices do; each record names its measurement, n, lost, duration and latency percentiles."""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

METERS = 1000
"""Entities per HTTP batch (each request updates every one of them)."""
DEVICES = 100
"""MQTT devices, each publishing one reading a message to its own topic."""
CLIENTS = 2
"""HTTP client processes, each with one connection and one request at a time (as IoT agents run several)."""
PUBLISHERS = 2
"""Processes publishing the devices' readings (each its own MQTT connection)."""
OFFERED = 15_000
"""Readings a second the publishers offer together (above the target: a bridge that cannot keep up leaves a backlog
the rate's clock waits for)."""


def _load() -> float:
    """The machine's 1-minute load average (the machine is shared: every record says what it was)."""
    return round(os.getloadavg()[0], 2)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3) if s else float("nan")


def _http_load(part: int, url: str, token: str, seconds: float, out: Any) -> None:
    """One client, one request at a time: ``options=update`` batches of its own :data:`METERS` entities (a
    process, one of :data:`CLIENTS`)."""
    import httpx

    lat: list[float] = []
    n = i = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            batch = [{"id": f"urn:ngsi-ld:Meter:{part}-{k}", "type": "Meter",
                      "power": {"type": "Property", "value": i + k}} for k in range(METERS)]
            t0 = time.perf_counter()
            r = http.post("/ngsi-ld/v1/entityOperations/upsert", params={"options": "update"}, json=batch)
            lat.append((time.perf_counter() - t0) * 1000)
            if r.status_code not in (201, 204):
                out.put({"error": f"HTTP {r.status_code}: {r.text[:200]}"})
                return
            n += METERS
            i += 1
        out.put({"n": n, "requests": i, "latency": lat, "duration": time.perf_counter() - started})


def _varlen(n: int) -> bytes:
    """An MQTT remaining length (1 to 4 bytes)."""
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _Acks:
    """The PUBACKs a publisher's socket brings back (MQTT 3.1.1), counted by packet id."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.buf = b""
        self.waiting: set[int] = set()

    def read(self, *, block: bool) -> None:
        """Take what has arrived (waiting for some when ``block``)."""
        import socket

        try:
            got = self.sock.recv(1 << 16) if block else self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if not got:
            raise ConnectionError("the broker closed the connection")
        buf = self.buf + got
        i = 0
        while len(buf) - i >= 4:  # a PUBACK is 4 bytes: 0x40, 2, packet id
            if buf[i] != 0x40 or buf[i + 1] != 2:
                raise ConnectionError(f"unexpected MQTT packet 0x{buf[i]:02x} from the broker")
            self.waiting.discard((buf[i + 2] << 8) | buf[i + 3])
            i += 4
        self.buf = buf[i:]


def _mqtt_load(part: int, port: int, offered: float, seconds: float, out: Any) -> None:
    """Publish QoS 1 readings round-robin over this publisher's share of :data:`DEVICES` devices for ``seconds``
    at ``offered`` readings a second (a process, one of :data:`PUBLISHERS`); counts what the broker acknowledged
    (PUBACK). A minimal MQTT 3.1.1
    publisher on a raw socket, as lean as a device's firmware: paho's per-message work in Python took most of the
    CPU the machine has, and the load generator shares it with the server it measures."""
    import socket
    import struct

    from aicity.platform.mqtt import READINGS

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cid = f"bench-pub-{part}".encode()
    connect = b"\x00\x04MQTT\x04\x02\x00\x00" + struct.pack("!H", len(cid)) + cid  # clean session, no keepalive
    sock.sendall(b"\x10" + _varlen(len(connect)) + connect)
    if sock.recv(4) != b"\x20\x02\x00\x00":
        out.put({"error": "the broker refused the publisher's connection"})
        return
    acks = _Acks(sock)
    window, burst = 2000, 50  # at most this many unacknowledged; messages written per send
    share = DEVICES // PUBLISHERS
    topics = [(READINGS + f"d{part + PUBLISHERS * k}").encode() for k in range(share)]
    sent = pid = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        if sent > offered * elapsed:
            time.sleep(min(0.05, sent / offered - elapsed))
            continue
        while len(acks.waiting) > window - burst:
            acks.read(block=True)
        packets: list[bytes] = []
        for _ in range(burst):
            k = sent % share
            pid = pid % 0xFFFF + 1
            payload = (f'{{"id":"urn:ngsi-ld:Sensor:d{part + PUBLISHERS * k}","type":"Sensor","v":{{"type":'
                       f'"Property","value":{sent},"observedAt":"{datetime.now(UTC).isoformat()}"}}}}').encode()
            topic = topics[k]
            packets += (b"\x32", _varlen(4 + len(topic) + len(payload)), struct.pack("!H", len(topic)), topic,
                        struct.pack("!H", pid), payload)
            acks.waiting.add(pid)
            sent += 1
        sock.sendall(b"".join(packets))
        acks.read(block=False)
    deadline = time.monotonic() + 120
    sock.settimeout(5)
    while acks.waiting and time.monotonic() < deadline:
        acks.read(block=True)
    out.put({"sent": sent - len(acks.waiting), "duration": time.perf_counter() - started})
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()


def _in_process(target: Any, *args: Any, copies: int = 1) -> dict[str, Any]:
    """Run ``target(*args, queue)`` in ``copies`` fresh processes (copy ``i`` gets ``i`` first when several);
    their results summed (numbers and lists), durations the longest."""
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=target, args=((i, *args) if copies > 1 else args) + (q,), daemon=True)
             for i in range(copies)]
    for proc in procs:
        proc.start()
    result: dict[str, Any] = {}
    for _ in procs:
        got = q.get(timeout=float(args[-1]) + 300)
        for k, v in got.items():
            result[k] = max(result.get(k, 0), v) if k == "duration" else (result[k] + v if k in result else v)
    for proc in procs:
        proc.join(timeout=30)
    return result


def _count(store: Any, ident: str, attr: str) -> int:
    return sum(b.count for b in store.aggregate(ident, attr, start=0.0, end=None, period_s=1e12))


@contextmanager
def served(prefix: str, token: str) -> Iterator[tuple[Path, Any, Any, Any]]:
    """A real server in a temporary folder: (folder, store, platform, server), ``token`` an admin's; stopped
    and closed on the way out."""
    from aicity.core.store import open_store
    from aicity.platform.app import create_app
    from aicity.platform.auth import Auth
    from aicity.platform.server import ServerThread
    from aicity.platform.service import Platform

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        folder = Path(tmp)
        store = open_store(folder / "city.db")
        platform = Platform(store, Auth.from_dict({"tokens": {token: {"person": "bench", "role": "admin"}}}),
                            location=folder / "city.db")
        platform.start()
        server = ServerThread(create_app(platform)).start()
        try:
            yield folder, store, platform, server
        finally:
            server.stop()
            platform.stop()
            store.close()


def run_platform_bench(seconds: float = 10.0) -> list[dict[str, Any]]:
    """Run every measurement once; returns JSON-ready records."""
    import httpx

    from aicity.platform.mqtt import BrokerProcess, MqttBridge, free_port

    token = "b" * 24
    out: list[dict[str, Any]] = []
    with served("aicity-bench-platform-", token) as (folder, store, platform, server):
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        try:
            load = _load()
            got = _in_process(_http_load, server.url, token, seconds, copies=CLIENTS)
            if "error" in got:
                raise RuntimeError(got["error"])
            stored = sum(_count(store, f"urn:ngsi-ld:Meter:{c}-{k}", "power") for c in range(CLIENTS)
                         for k in range(METERS))
            out.append({"measurement": "http_upsert", "rate_per_s": round(got["n"] / got["duration"]),
                        "clients": CLIENTS, "load_1min": [load, _load()],
                        "n": got["n"], "lost": got["n"] - stored, "duration_s": round(got["duration"], 2),
                        "latency_ms": {"p50": _pct(got["latency"], .5), "p99": _pct(got["latency"], .99)},
                        "note": f"entity updates/s, {METERS:,} per request (options=update), {CLIENTS} client "
                                "processes, one request at a time each; latency per request, answered after the "
                                "commit"})
            broker = BrokerProcess(free_port(), folder / "mq").start()
            bridge = MqttBridge(platform, port=broker.port).start()
            try:
                load = _load()
                started = time.perf_counter()
                got = _in_process(_mqtt_load, broker.port, OFFERED / PUBLISHERS, seconds, copies=PUBLISHERS)
                deadline = time.monotonic() + 300
                while bridge.counts().get("stored", 0) < got["sent"] and time.monotonic() < deadline:
                    time.sleep(0.01)
                dur = time.perf_counter() - started
            finally:
                bridge.stop()
                broker.stop()
            sensors = [f"urn:ngsi-ld:Sensor:d{d}" for d in range(DEVICES)]
            stored = sum(_count(store, s, "v") for s in sensors)
            lat = [(h.recorded_at - h.observed_at).total_seconds() * 1000
                   for s in sensors[:10] for h in store.history(s, "v") if h.observed_at is not None]
            tally = bridge.counts()
            out.append({"measurement": "mqtt_ingest", "rate_per_s": round(got["sent"] / dur), "n": got["sent"],
                        "lost": got["sent"] - stored, "duration_s": round(dur, 2), "load_1min": [load, _load()],
                        "offered_per_s": OFFERED, "publishing_s": round(got["duration"], 2),
                        "duplicates": tally.get("duplicates", 0), "dead_lettered": tally.get("dead_lettered", 0),
                        "latency_ms": {"p50": _pct(lat, .5), "p99": _pct(lat, .99)},
                        "note": f"QoS 1, one reading a message, {DEVICES} devices, {PUBLISHERS} publisher processes "
                                f"(minimal MQTT 3.1.1 publishers on raw sockets) offering {OFFERED:,}/s together; "
                                "rate = readings published / time until all were stored; acknowledged to the "
                                "broker after the commit; latency: observedAt at publish → the batch's record "
                                "time (10 devices' readings)"})
            out.append(_notification_latency(http))
            out.append(_temporal(store, http))
        finally:
            http.close()
    return out


def _temporal(store: Any, http: Any) -> dict[str, Any]:
    from aicity.core.entity import Entity, Property

    base = datetime(2026, 1, 1, tzinfo=UTC)
    store.upsert_many([Entity("urn:ngsi-ld:Agg:1", "Agg", {"p": Property(float(k % 97), base + timedelta(seconds=k))})
                       for k in range(100_000)], now=base)
    lat = []
    for _ in range(20):
        t0 = time.perf_counter()
        r = http.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Agg:1",
                     params={"aggrMethods": "avg,min,max,totalCount", "aggrPeriodDuration": "PT1H",
                             "timerel": "after", "timeAt": "2026-01-01T00:00:00Z"})
        lat.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200 or sum(v[0] for v in r.json()["p"]["totalCount"]) != 100_000:
            raise RuntimeError(f"temporal aggregation answered {r.status_code}: {r.text[:200]}")
    return {"measurement": "temporal_aggregation", "n": 100_000, "lost": 0,
            "latency_ms": {"p50": _pct(lat, .5), "p99": _pct(lat, .99)},
            "duration_s": round(sum(lat) / 1000, 3),
            "note": "4 methods, hourly buckets (28), over HTTP, 20 requests; SQL over the (entity, attribute, time) "
                    "index"}


def _notification_latency(http: Any, n: int = 200) -> dict[str, Any]:
    arrived: dict[int, float] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            arrived[int(body["data"][0]["seq"])] = time.perf_counter()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        http.post("/ngsi-ld/v1/subscriptions", json={
            "type": "Subscription", "entities": [{"type": "Probe"}], "watchedAttributes": ["seq"],
            "notification": {"endpoint": {"uri": f"http://127.0.0.1:{httpd.server_address[1]}/n"},
                             "format": "keyValues"}})
        sent: dict[int, float] = {}
        started = time.perf_counter()
        for k in range(n):
            sent[k] = time.perf_counter()
            http.post("/ngsi-ld/v1/entityOperations/upsert", params={"options": "update"},
                      json=[{"id": "urn:ngsi-ld:Probe:1", "type": "Probe", "seq": {"type": "Property", "value": k}}])
            time.sleep(0.005)
        deadline = time.monotonic() + 30
        while len(arrived) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        lat = [(arrived[k] - sent[k]) * 1000 for k in arrived]
        return {"measurement": "notification", "n": n, "lost": n - len(arrived),
                "latency_ms": {"p50": _pct(lat, .5), "p99": _pct(lat, .99), "mean": round(statistics.fmean(lat), 3)},
                "duration_s": round(time.perf_counter() - started, 2),
                "note": "update request sent → notification received, through the durable outbox"}
    finally:
        httpd.shutdown()
        httpd.server_close()
