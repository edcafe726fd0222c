"""Platform throughput, measured on real servers: HTTP batch upsert, MQTT ingest, notification latency and
temporal aggregation. Short runs (the machine is shared); each record names its measurement, n, lost, duration."""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 3)


def run_platform_bench(seconds: float = 10.0) -> list[dict[str, Any]]:
    """Run every measurement once; returns JSON-ready records."""
    import httpx

    from aicity.core.store import open_store
    from aicity.platform.app import create_app
    from aicity.platform.auth import Auth
    from aicity.platform.mqtt import READINGS, BrokerProcess, MqttBridge, free_port
    from aicity.platform.server import ServerThread
    from aicity.platform.service import Platform

    token = "b" * 24
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="aicity-bench-platform-") as tmp:
        folder = Path(tmp)
        store = open_store(folder / "city.db")
        platform = Platform(store, Auth.from_dict({"tokens": {token: {"person": "bench", "role": "admin"}}}),
                            location=folder / "city.db")
        platform.start()
        server = ServerThread(create_app(platform)).start()
        http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        try:
            # HTTP batch upsert (options=update), 1,000 entities a request
            n, lat, started, i = 0, [], time.perf_counter(), 0
            while time.perf_counter() - started < seconds:
                batch = [{"id": f"urn:ngsi-ld:Meter:{k}", "type": "Meter",
                          "power": {"type": "Property", "value": i + k}} for k in range(1000)]
                t0 = time.perf_counter()
                r = http.post("/ngsi-ld/v1/entityOperations/upsert", params={"options": "update"}, json=batch)
                lat.append((time.perf_counter() - t0) * 1000)
                assert r.status_code in (201, 204), r.text
                n += len(batch)
                i += 1
            dur = time.perf_counter() - started
            stored = sum(1 for k in range(1000) if store.history_attrs(f"urn:ngsi-ld:Meter:{k}"))
            out.append({"measurement": "http_upsert", "rate_per_s": round(n / dur), "n": n, "lost": 1000 - stored,
                        "duration_s": round(dur, 2), "latency_ms": {"p50": _pct(lat, .5), "p99": _pct(lat, .99)},
                        "note": "entity updates/s, 1,000 per request, one httpx client"})
            # MQTT ingest, QoS 1, one reading a message
            broker = BrokerProcess(free_port(), folder / "mq").start()
            bridge = MqttBridge(platform, port=broker.port).start()
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion

            pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", clean_session=False)
            pub.max_inflight_messages_set(1000)
            pub.max_queued_messages_set(0)
            pub.connect("127.0.0.1", broker.port)
            pub.loop_start()
            total = 20_000
            started = time.perf_counter()
            infos = [pub.publish(READINGS + "1", json.dumps({"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor",
                                                            "v": {"type": "Property", "value": k}}), qos=1)
                     for k in range(total)]
            for info in infos:
                info.wait_for_publish(60)
            deadline = time.monotonic() + 120
            while bridge.counts().get("received", 0) < total and time.monotonic() < deadline:
                time.sleep(0.01)
            dur = time.perf_counter() - started
            got = len(store.series("urn:ngsi-ld:Sensor:1", "v"))
            out.append({"measurement": "mqtt_ingest", "rate_per_s": round(total / dur), "n": total,
                        "lost": total - got, "duration_s": round(dur, 2),
                        "note": "publish → stored in history, QoS 1, ack after commit"})
            pub.loop_stop()
            bridge.stop()
            broker.stop()
            out.append(_notification_latency(http))
            base = datetime(2026, 1, 1, tzinfo=UTC)
            from aicity.core.entity import Entity, Property

            store.upsert_many([Entity("urn:ngsi-ld:Agg:1", "Agg", {"p": Property(float(k % 97),
                                                                                   base + timedelta(seconds=k))})
                               for k in range(100_000)], now=base)
            lat = []
            for _ in range(5):
                t0 = time.perf_counter()
                r = http.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:Agg:1",
                             params={"aggrMethods": "avg,min,max,totalCount", "aggrPeriodDuration": "PT1H",
                                     "timerel": "after", "timeAt": "2026-01-01T00:00:00Z"})
                lat.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
            out.append({"measurement": "temporal_aggregation", "n": 100_000, "lost": 0,
                        "latency_ms": {"p50": _pct(lat, .5), "p99": _pct(lat, .99)},
                        "duration_s": round(sum(lat) / 1000, 3), "note": "4 methods, hourly buckets, over HTTP"})
        finally:
            http.close()
            server.stop()
            platform.stop()
            store.close()
    return out


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
