"""``aicity bench restarts``: PostgreSQL, NATS and the MQTT broker, each restarted mid-run while data flows.

Each scenario starts its server on 127.0.0.1 and a free port, sends a steady flow through the real component
(the PostgreSQL store with its ledger, the NATS JetStream bus, the MQTT bridge into the platform's store), stops
the server by its PID a third of the way in, starts it again on the same port and data a few seconds later, and
counts what was sent, stored or delivered, duplicated and lost, how long the component was blind and how long
it took to catch up once the server was back (``recover_s``: from the server listening again to the store's buffer
written out, the bus's publish buffer empty, the MQTT bridge connected again).
"""

from __future__ import annotations

import functools
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DOWN_S = 3.0


class NatsProcess:
    """One ``nats-server -js`` on 127.0.0.1 and a free port with its own store folder; stopped by its PID."""

    def __init__(self, folder: Path | None = None) -> None:
        from aicity.platform.mqtt import free_port

        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            raise UserError("nats-server is not installed: apt-get install -y nats-server")
        self.binary = binary
        self.root = folder or Path(tempfile.mkdtemp(prefix="aicity-nats-"))
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> NatsProcess:
        """Start the server and wait until it takes connections."""
        self.proc = subprocess.Popen([self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", str(self.root / "store"), "-l", str(self.root / "log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        log = (self.root / "log").read_text()[-300:] if (self.root / "log").exists() else ""
        raise UserError(f"nats-server did not start on port {self.port}: {' '.join(log.split())}")

    def kill(self) -> None:
        """Stop the server at once by its PID (its store stays)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port and store."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class Flow:
    """Calls ``tick(i)`` every ``period_s`` in a thread until stopped; remembers when each tick ran."""

    def __init__(self, tick: Callable[[int], None], period_s: float) -> None:
        self.tick, self.period_s = tick, period_s
        self.times: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aicity-restarts-flow", daemon=True)

    def _run(self) -> None:
        i, nxt = 0, time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick(i)
            except Exception as exc:  # counted: a scenario reports what its component refused
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self.times.append(time.monotonic())
            i += 1
            nxt += self.period_s
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def run(self, seconds: float, down: Callable[[], object], up: Callable[[], object],
            back: Callable[[], bool]) -> tuple[float, float, float]:
        """Run the flow for ``seconds``, the server down from a third of the way in for :data:`DOWN_S`; returns the
        monotonic times it went down, came back, and the component was ``back`` to normal (inf: never)."""
        self._thread.start()
        try:
            time.sleep(seconds / 3)
            t_down = time.monotonic()
            down()
            time.sleep(DOWN_S)
            up()
            t_up = time.monotonic()
            end = t_down + seconds * 2 / 3
            t_back = float("inf")
            while time.monotonic() < end + 30:
                if back():
                    t_back = time.monotonic()
                    break
                time.sleep(0.02)
            time.sleep(max(0.0, end - time.monotonic()))
        finally:
            self._stop.set()
            self._thread.join(30)
        return t_down, t_up, t_back

    def during(self, start: float, end: float) -> int:
        """Ticks that ran in ``[start, end]``."""
        return sum(start <= t <= end for t in self.times)


def _wait(cond: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)
    return True


def _since(start: float, end: float) -> float | None:
    """Seconds from ``start`` to ``end`` (None when ``end`` never came)."""
    return None if end == float("inf") else round(end - start, 3)


def _record(server: str, component: str, sent: int, stored: int, distinct: int, **extra: Any) -> dict[str, Any]:
    lost, duplicates = sent - distinct, stored - distinct
    return {"server": server, "component": component, "sent": sent, "stored": stored, "duplicates": duplicates,
            "lost": lost, **extra, "ok": lost == 0 and duplicates == 0 and not extra.get("errors")}


# ---- PostgreSQL: the store the loop writes ------------------------------------------------------------------
@dataclass
class _Held:
    """The stand-in loop's decisions: taken, steps held blind, a record whose append must be tried again."""

    decided: int = 0
    blind_ticks: int = 0
    pending: dict[str, str] | None = None


def restart_postgres(seconds: float, *, crash: bool = False, entities: int = 20,
                     period_s: float = 0.05) -> dict[str, Any]:
    """Observations, events, dead letters and ledger records written as the loop writes them, the server stopped
    by PID mid-run (a fast shutdown; ``crash``: an immediate one, on a durable cluster with
    ``synchronous_commit=on``): writes buffered while it is away, actuation held (blind) until the store is
    writable again."""
    import psycopg
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from aicity.core.context import Actor, ActorKind, Context
    from aicity.core.entity import Entity, Property
    from aicity.core.event import Event, EventType
    from aicity.core.pgcluster import LocalPostgres
    from aicity.core.store import StoreUnavailable
    from aicity.core.store_pg import PostgresStore
    from aicity.governance.ledger import Ledger, verify_store

    cluster = LocalPostgres("restarts", durable=crash).start()
    try:
        # a crash loses what was acknowledged but not yet on disk unless every commit waits for the WAL
        store = PostgresStore(cluster.url + ("?options=-csynchronous_commit%3Don" if crash else ""))
        ledger = Ledger(store, key=Ed25519PrivateKey.generate())
        sensor = Actor(ActorKind.SENSOR, "restarts.twin")
        state = _Held()

        def tick(i: int) -> None:
            now = T0 + timedelta(seconds=i)
            batch = [Entity(f"urn:ngsi-ld:Sensor:{k}", "Sensor", {"v": Property(i, observed_at=now)})
                     for k in range(entities)]
            store.upsert_many(batch, now=now, context_id=f"obs-{i}")
            store.append_event(Event(EventType.OBSERVATION, {"domain": "restarts", "entities": [e.id for e in batch]},
                                     Context(sensor, None, f"obs-{i}"), now))
            if i % 25 == 0:
                store.dead_letter("restarts.twin", ValueError(f"bad reading {i}"), {"i": i}, now=now)
            if not store.writable():  # blind: actuators held in their safe state, nothing decided
                state.blind_ticks += 1
                return
            record = state.pending or {"id": f"decision-{i}", "kind": "decision", "time": now.isoformat()}
            try:  # the decision record first; the same record again after a failure (stored once)
                state.pending = record
                ledger.append(record)
            except StoreUnavailable:
                state.blind_ticks += 1
                return
            state.pending = None
            state.decided += 1
            store.append_event(Event(EventType.DECISION, {"record": record["id"]},
                                     Context(sensor, f"obs-{i}", f"dec-{i}"), now))

        flow = Flow(tick, period_s)
        t_down, t_up, t_back = flow.run(seconds, lambda: cluster.kill(signal.SIGQUIT if crash else signal.SIGINT),
                                        cluster.start_again, lambda: store.outage.since is None)
        recovered = _wait(store.writable, 30)
        outage = store.outage.to_dict()
        ticks = len(flow.times)
        with psycopg.connect(cluster.url) as raw:
            def one(q: str) -> tuple[int, int]:
                row = raw.execute(q.encode()).fetchone()
                return (int(row[0]), int(row[1])) if row else (0, 0)
            series = one("SELECT COUNT(*), COUNT(DISTINCT (entity_id, t)) FROM series")
            events = one("SELECT COUNT(*), COUNT(DISTINCT id) FROM events WHERE type = 'observation'")
            decisions = one("SELECT COUNT(*), COUNT(DISTINCT id) FROM events WHERE type = 'decision'")
            dead = one("SELECT COUNT(*), COUNT(DISTINCT payload) FROM dead_letters")
            have = {int(r[0]) for r in raw.execute(b"SELECT DISTINCT v FROM (SELECT (t - %s)::bigint AS v "
                                                    b"FROM series) s", (T0.timestamp(),))}
        verified = verify_store(store).ok
        ledger_size = store.ledger_size()
        store.close()
    finally:
        cluster.stop()
    sent = ticks * entities
    return _record(
        "postgresql-crash" if crash else "postgresql", "PostgresStore (observations, events, dead letters, ledger)",
        sent, series[0], series[1], ticks=ticks, missing_ticks=sorted(set(range(ticks)) - have)[:10],
        during_outage=flow.during(t_down, t_up) * entities,
        events={"sent": ticks, "stored": events[0], "distinct": events[1]},
        dead_letters={"sent": (ticks + 24) // 25, "stored": dead[0], "distinct": dead[1]},
        decisions={"taken": state.decided, "ledger": ledger_size, "events": decisions[0],
                   "distinct_events": decisions[1], "ledger_verifies": verified},
        blind_ticks=state.blind_ticks, blind_s=outage["blind_s"], down_s=round(t_up - t_down, 3),
        recover_s=_since(t_up, t_back), recovered=recovered, store=outage, errors=flow.errors[:3],
        consistent=events[0] == events[1] == ticks and decisions[0] == decisions[1] == state.decided == ledger_size
        and dead[0] == dead[1] == (ticks + 24) // 25 and verified)


# ---- NATS: the bus across processes ----------------------------------------------------------------------
def restart_nats(seconds: float, *, period_s: float = 0.01) -> dict[str, Any]:
    """Events published on the bus every ``period_s`` to a durable subscriber, nats-server killed mid-run."""
    from aicity.core.context import Actor, ActorKind, Context
    from aicity.core.event import Event, EventType
    from aicity.core.natsbus import NatsBus, stream_events

    server = NatsProcess().start()
    try:
        pub = NatsBus(server.url, ack_timeout=0.5)
        sub_bus = NatsBus(server.url, ack_wait_s=3.0)
        got: list[int] = []
        sub = sub_bus.subscribe(EventType.OBSERVATION, lambda e: got.append(int(e.data["n"])), durable="restarts")
        ctx = Context(Actor(ActorKind.SENSOR, "restarts"))

        def tick(i: int) -> None:
            pub.publish(Event(EventType.OBSERVATION, {"n": i}, ctx, T0 + timedelta(seconds=i), entity_type="Flow",
                              entity_id=f"urn:ngsi-ld:Flow:{i}"))

        flow = Flow(tick, period_s)
        t_down, t_up, t_back = flow.run(seconds, server.kill, server.start, lambda: pub.pending == 0)
        sent = len(flow.times)
        delivered = _wait(lambda: len(set(got)) >= sent, 30)
        time.sleep(4.0)  # past the acknowledgement wait: anything delivered again would show now
        in_stream = stream_events(server.url)
        record = _record("nats", "NatsBus (JetStream, durable pull consumer)", sent, len(got), len(set(got)),
                         during_outage=flow.during(t_down, t_up), in_stream=in_stream,
                         stream_duplicates=in_stream - sent, publish_retries=pub.retries,
                         redeliveries_dropped=sub.duplicates, blind_s=round(t_up - t_down, 3),
                         down_s=round(t_up - t_down, 3), recover_s=_since(t_up, t_back),
                         recovered=delivered, errors=flow.errors[:3])
        record["ok"] = record["ok"] and in_stream == sent
        pub.close()
        sub_bus.close()
    finally:
        server.stop()
    return record


# ---- MQTT: device ingress -----------------------------------------------------------------------------
def restart_mqtt(seconds: float, *, period_s: float = 0.01) -> dict[str, Any]:
    """A device publishing QoS 1 readings into the MQTT bridge, mosquitto stopped by PID mid-run; a command
    tried while it is down."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from aicity.core.store import open_store
    from aicity.platform.auth import Auth
    from aicity.platform.mqtt import READINGS, BrokerProcess, MqttBridge, free_port
    from aicity.platform.service import Platform

    folder = Path(tempfile.mkdtemp(prefix="aicity-restarts-"))
    broker = BrokerProcess(free_port(), folder / "mosquitto").start()
    store = open_store(folder / "city.db")
    platform = Platform(store, Auth.from_dict({"tokens": {"r" * 20: {"person": "bench", "role": "admin"}}}),
                        location=folder / "city.db")
    entity = "urn:ngsi-ld:Sensor:7"
    try:
        bridge = MqttBridge(platform, port=broker.port).start()
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="restarts-device-7", clean_session=False)
        device.max_queued_messages_set(0)
        device.reconnect_delay_set(1, 1)
        device.connect("127.0.0.1", broker.port)
        device.loop_start()
        command: dict[str, Any] = {}

        def tick(i: int) -> None:
            device.publish(READINGS + "7", json.dumps({
                "id": entity, "type": "Sensor",
                "count": {"type": "Property", "value": i, "observedAt": (T0 + timedelta(seconds=i)).isoformat()}}),
                qos=1)

        def down() -> None:
            broker.stop()
            _wait(lambda: not bridge.connected.is_set(), 5)
            try:
                bridge.command("7", {"set": "safe"}, by="restarts", timeout_s=1)
                command["outcome"] = "sent"
            except UserError as exc:
                command["outcome"], command["error"] = "refused", str(exc)

        flow = Flow(tick, period_s)
        t_down, t_up, t_back = flow.run(seconds, down, broker.start, bridge.connected.is_set)
        sent = len(flow.times)
        reconnected = _wait(bridge.connected.is_set, 30)

        def points() -> list[Any]:
            return [p.value for p in store.series(entity, "count")]
        recovered = _wait(lambda: len(set(points())) >= sent, 30, 0.2)
        time.sleep(1.0)
        values = points()
        device.loop_stop()
        device.disconnect()
        bridge.stop()
        tally = bridge.counts()
        record = _record("mqtt", "MqttBridge (mosquitto, QoS 1, persistent sessions)", sent, len(values),
                         len(set(values)), during_outage=flow.during(t_down, t_up),
                         redeliveries_dropped=tally.get("duplicates", 0), bridge=tally,
                         blind_s=round(t_up - t_down, 3), down_s=round(t_up - t_down, 3), reconnected=reconnected,
                         recover_s=_since(t_up, t_back), recovered=recovered,
                         command_while_down=command, errors=flow.errors[:3])
    finally:
        platform.stop()
        store.close()
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return record


SCENARIOS: dict[str, Callable[[float], dict[str, Any]]] = {
    "postgresql": restart_postgres, "postgresql-crash": functools.partial(restart_postgres, crash=True),
    "nats": restart_nats, "mqtt": restart_mqtt}


def run_restarts(seconds: float = 24.0, servers: tuple[str, ...] = tuple(SCENARIOS)) -> dict[str, Any]:
    """Restart each server in turn mid-run; JSON-ready records, one per server."""
    if not 6 <= seconds <= 600:
        raise UserError(f"--seconds must be 6-600, got {seconds:g}")
    unknown = sorted(set(servers) - set(SCENARIOS))
    if unknown:
        raise UserError(f"unknown server {unknown[0]!r}; known: {', '.join(SCENARIOS)}")
    records = [SCENARIOS[name](seconds) for name in servers]
    return {"benchmark": "restarts", "seconds": seconds, "down_s": DOWN_S,
            "time": datetime.now(UTC).isoformat(timespec="seconds"), "records": records,
            "ok": all(r["ok"] for r in records)}
