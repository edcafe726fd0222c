"""MQTT devices over a real broker (mosquitto): readings in, commands out with acknowledgements.

Topics: a device publishes readings (one NGSI-LD entity, normalized or concise, or an array of them) to
``aicity/readings/<device>``; commands go to ``aicity/commands/<device>`` and the device answers on
``aicity/acks/<device>`` with ``{"id": <command id>, "status": ...}``. aicity subscribes with QoS 1 in a
persistent session (fixed client id, clean session off) and acknowledges a message to the broker only after its
reading is committed to the store (or dead-lettered): nothing acknowledged is lost when aicity stops, and
mosquitto keeps (and persists) what arrives while aicity is away. Every message is validated; a bad one is
dead-lettered with its reason, counted, and never acted on. A reading delivered again (QoS 1 is at-least-once: a
broker restart resends what it had not seen acknowledged) is recognised by entity and ``observedAt`` and stored
once. While the broker is away the bridge reconnects by itself; a command cannot be sent then and fails at once
with a one-line error (recorded as ``not sent``), never queued where nobody sees it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aicity.core.entity import Entity
from aicity.core.errors import UserError
from aicity.core.store import Interruptible
from aicity.platform.errors import TOO_DEEP, NgsiError, no_constant
from aicity.platform.jsonld import core
from aicity.platform.tenants import DEFAULT

log = logging.getLogger(__name__)
READINGS = "aicity/readings/"
COMMANDS = "aicity/commands/"
ACKS = "aicity/acks/"
COMMAND_DOCS = "platform.commands"
_json = json.JSONDecoder(parse_constant=no_constant)
REMEMBERED = 200_000
"""Readings (entity and observedAt) the bridge remembers to recognise one delivered again."""


MAX_PACKET_BYTES = 1 << 20
"""The largest MQTT packet the broker aicity starts accepts (a device's reading is a few hundred bytes); a client
sending a larger one is disconnected by mosquitto before aicity reads it."""


class DeviceMessageError(ValueError):
    """A device message that failed validation (kept as a dead letter with this reason)."""


@dataclass
class BrokerProcess:
    """A mosquitto process started by aicity (or a test) on 127.0.0.1, with persistence, stopped by its PID."""

    port: int
    folder: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> BrokerProcess:
        """Start mosquitto and wait until it listens."""
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if exe is None:
            raise UserError("mosquitto is not installed: apt-get install -y mosquitto")
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""  # as root it would drop to 'mosquitto' and not save
        conf.write_text(f"{user}listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                        f"persistence_location {self.folder}/\nautosave_interval 1\n"
                        "max_queued_messages 0\nmax_inflight_messages 4000\nlog_dest none\n"
                        f"max_packet_size {MAX_PACKET_BYTES}\n")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace").strip()
                raise UserError(f"mosquitto exited at start: {err or self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise UserError(f"mosquitto did not listen on 127.0.0.1:{self.port} within {timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop it (SIGTERM: it saves its persistence file), by PID."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(port: int, store_path: str | None) -> BrokerProcess:
    """Start mosquitto for ``aicity serve --mqtt`` (its persistence beside the store, else in a temp folder)."""
    folder = Path(store_path).parent / "mosquitto" if store_path else Path(tempfile.mkdtemp(prefix="aicity-mq-"))
    return BrokerProcess(port, folder).start()


def parse_reading(device: str, payload: bytes, codec: Any) -> list[Entity]:
    """Validate one device message: JSON, NGSI-LD entities, each the device's own (id ends with ``:<device>``)."""
    try:
        return _entities(device, payload, codec)
    except RecursionError:  # a poison message must be dead-lettered, not retried with its batch for ever
        raise DeviceMessageError(f"the message is {TOO_DEEP}") from None


def _entities(device: str, payload: bytes, codec: Any) -> list[Entity]:
    try:
        data = _json.decode(payload.decode())  # UTF-8, as MQTT payloads of JSON are (json.loads would guess)
    except ValueError as exc:
        raise DeviceMessageError(f"not JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise DeviceMessageError("an empty array")
    out = []
    for item in items:
        try:
            entity, nulls = codec.entity(item)
        except NgsiError as exc:
            raise DeviceMessageError(exc.detail) from None
        if nulls:
            raise DeviceMessageError(f"{entity.id}: a reading cannot delete attributes")
        if not entity.id.endswith(":" + device):
            raise DeviceMessageError(f"device {device!r} may not write {entity.id} (its own ids end with :{device})")
        out.append(entity)
    return out


class MqttBridge:
    """Subscribes to device readings (QoS 1, persistent session) and sends commands; one writer thread commits
    readings in batches (group commit: a batch gathers for up to ``linger_s``) and acknowledges them to the broker
    after the commit."""

    def __init__(self, platform: Any, *, host: str = "127.0.0.1", port: int = 1883,
                 client_id: str = "aicity-platform", batch: int = 2000, linger_s: float = 0.02) -> None:
        self.platform = platform
        self.host = host
        self.port = port
        self.client_id = client_id
        self.batch = batch
        self.linger_s = linger_s
        self.tally: Counter[str] = Counter()
        self._pending: list[Any] = []
        self._held: list[Any] = []  # stored, not yet acknowledged to the broker (the store's server is away)
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._acks: dict[str, dict[str, Any]] = {}
        self._ack_events: dict[str, threading.Event] = {}
        self._client: Any = None
        self._writer: threading.Thread | None = None
        self._codec = platform.broker(DEFAULT, create=True).codec(core())
        self._seen: OrderedDict[tuple[str, tuple[tuple[str, datetime], ...]], None] = OrderedDict()
        self.connected = threading.Event()

    def counts(self) -> dict[str, int]:
        """Messages received, stored, dead-lettered; commands sent and acknowledged."""
        return dict(self.tally)

    def start(self, timeout_s: float = 10.0) -> MqttBridge:
        """Connect (persistent session) and start the writer."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                             manual_ack=True)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(1, 2)
        self._client = client
        self._writer = threading.Thread(target=self._write_loop, name="aicity-mqtt-writer", daemon=True)
        self._writer.start()
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            raise UserError(f"cannot reach the MQTT broker at {self.host}:{self.port}: {exc}") from exc
        client.loop_start()
        if not self.connected.wait(timeout_s):
            raise UserError(f"no MQTT connection to {self.host}:{self.port} within {timeout_s:.0f} s")
        return self

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT connect refused: %s", reason)
            return
        client.subscribe([(READINGS + "+", 1), (ACKS + "+", 1)])
        self.tally["connects"] += 1

    def _on_subscribe(self, *args: Any) -> None:
        self.connected.set()  # only now does the broker route readings to this session (start() waits for it)

    def _on_disconnect(self, *args: Any) -> None:
        self.tally["disconnects"] += 1
        self.connected.clear()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic.startswith(ACKS):
            self._on_ack(msg)
            client.ack(msg.mid, msg.qos)
            return
        with self._cv:
            self._pending.append(msg)
            if len(self._pending) in (1, self.batch):  # the first starts the writer's wait, a full batch ends it
                self._cv.notify()

    def _on_ack(self, msg: Any) -> None:
        try:
            data = json.loads(msg.payload)
            cid = str(data["id"])
        except (ValueError, KeyError, TypeError):
            self.tally["bad_acks"] += 1
            return
        self._acks[cid] = data
        event = self._ack_events.get(cid)
        if event is not None:
            event.set()

    def _write_loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._stop.is_set():
                    self._cv.wait(0.1)
                    if self._held and not self._pending:
                        self._release_held()
                if not self._pending and self._stop.is_set():
                    return
                # group commit: let a batch gather for up to `linger_s` (one commit serves them all)
                deadline = time.monotonic() + self.linger_s
                while len(self._pending) < self.batch and not self._stop.is_set() and \
                        (left := deadline - time.monotonic()) > 0:
                    self._cv.wait(left)
                msgs, self._pending = self._pending[:self.batch], self._pending[self.batch:]
            try:
                self._write(msgs)
            except Exception as exc:  # not acknowledged: kept and tried again (the broker holds them meanwhile)
                log.warning("MQTT readings could not be stored (%s); trying again", exc)
                self.tally["write_retries"] += 1
                if self._stop.is_set():
                    return  # unacknowledged: the broker delivers them to the next session
                with self._cv:
                    self._pending[:0] = msgs
                self._stop.wait(0.5)
                continue
            self._held += msgs
            self._release_held()

    def _release_held(self) -> None:
        """Acknowledge the readings the store has for good; while its server is away they are only in its
        memory buffer, so the broker keeps them (redelivered to the next session if this process dies)."""
        store = self.platform.broker(DEFAULT, create=True).store
        if isinstance(store, Interruptible) and not store.writable():
            return
        for m in self._held:
            self._client.ack(m.mid, m.qos)
        self._held = []

    def _write(self, msgs: list[Any]) -> None:
        broker = self.platform.broker(DEFAULT, create=True)
        now = datetime.now(UTC)
        good: list[Entity] = []
        self.tally["received"] += len(msgs)
        for m in msgs:
            device = m.topic[len(READINGS):]
            try:
                good += parse_reading(device, m.payload, self._codec)
            except Exception as exc:  # one message's fault, typed or not, never holds back its batch
                if not isinstance(exc, DeviceMessageError):
                    log.warning("MQTT reading on %s could not be read (%s: %s); dead-lettered", m.topic,
                                type(exc).__name__, exc)
                    exc = DeviceMessageError(f"could not be read: {type(exc).__name__}: {exc}")
                self.tally["dead_lettered"] += 1
                broker.store.dead_letter(f"mqtt:{m.topic}", exc, m.payload.decode(errors="replace"), now=now)
        good = self._once(good)
        if good:  # one transaction; several readings of one entity are each kept, in order
            broker.upsert_fast(good, now=now)
            self.tally["stored"] += len(good)

    def _once(self, entities: list[Entity]) -> list[Entity]:
        """The readings not stored before (by entity and observedAt; a reading without observedAt always is)."""
        out = []
        for e in entities:
            stamps = tuple(sorted((n, t) for n, a in e.attrs.items() if (t := a.observed_at) is not None))
            key = (e.id, stamps)
            if stamps and key in self._seen:
                self.tally["duplicates"] += 1
                continue
            if stamps:
                self._seen[key] = None
                if len(self._seen) > REMEMBERED:
                    self._seen.popitem(last=False)
            out.append(e)
        return out

    def command(self, device: str, command: Mapping[str, Any], *, by: str, timeout_s: float = 5.0
                ) -> dict[str, Any]:
        """Send a command (QoS 1) and wait for the device's acknowledgement; audited in the store. While the broker
        is away it is not sent: recorded as ``not sent`` and a one-line :class:`UserError`."""
        cid = str(uuid.uuid4())
        store = self.platform.broker(DEFAULT, create=True).store
        sent = datetime.now(UTC).isoformat()
        if not self.connected.is_set():
            self.tally["commands_not_sent"] += 1
            store.doc_put(COMMAND_DOCS, cid, {"id": cid, "device": device, "command": dict(command), "by": by,
                                              "sent": sent, "status": "not sent", "ack": None, "acked": None})
            raise UserError(f"the MQTT broker at {self.host}:{self.port} is unreachable: command {cid} to {device} "
                            "was not sent")
        event = self._ack_events[cid] = threading.Event()
        info = self._client.publish(COMMANDS + device, json.dumps({"id": cid, "command": dict(command), "by": by}),
                                    qos=1)
        self.tally["commands"] += 1
        ok = event.wait(timeout_s)
        self._ack_events.pop(cid, None)
        ack = self._acks.pop(cid, None)
        result = {"id": cid, "device": device, "command": dict(command), "by": by, "sent": sent,
                  "mid": info.mid, "status": "acknowledged" if ok else "no acknowledgement",
                  "ack": ack, "acked": datetime.now(UTC).isoformat() if ok else None}
        if ok:
            self.tally["commands_acked"] += 1
        store.doc_put(COMMAND_DOCS, cid, result)
        return result

    def stop(self) -> None:
        """Store what was received, acknowledge it, disconnect (the session stays with the broker)."""
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._writer is not None:
            self._writer.join(timeout=30)
        if self._client is not None:
            time.sleep(0.05)  # let the network loop send the last acknowledgements
            self._client.disconnect()
            self._client.loop_stop()
