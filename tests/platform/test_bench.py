"""The platform benchmark's load generators speak correct protocol: the raw-socket MQTT publisher's readings reach
the bridge valid, every one acknowledged by the broker and stored once."""

from __future__ import annotations

import queue
import time
from pathlib import Path

from aicity.platform.bench import PUBLISHERS, _mqtt_load, _varlen
from aicity.platform.mqtt import BrokerProcess, MqttBridge, free_port
from tests.platform.conftest import Api


def test_varlen_encodes_mqtt_remaining_lengths() -> None:
    assert [_varlen(n) for n in (0, 127, 128, 16_383, 16_384)] == [
        b"\x00", b"\x7f", b"\x80\x01", b"\xff\x7f", b"\x80\x80\x01"]


def test_the_raw_mqtt_publisher_is_acknowledged_and_stored(api: Api, tmp_path: Path) -> None:
    broker = BrokerProcess(free_port(), tmp_path / "mq").start()
    bridge = MqttBridge(api.platform, port=broker.port).start()
    try:
        out: queue.Queue[dict[str, float]] = queue.Queue()
        _mqtt_load(1, broker.port, 1000.0, 0.5, out)
        got = out.get(timeout=30)
        # paced at 1,000 a second for 0.5 s: never more; fewer on a loaded machine (CI sent 300)
        assert 0 < got["sent"] <= 600
        deadline = time.monotonic() + 20
        while bridge.counts().get("stored", 0) < got["sent"] and time.monotonic() < deadline:
            time.sleep(0.05)
        counts = bridge.counts()
        assert counts.get("stored") == got["sent"] and not counts.get("dead_lettered")
        assert not counts.get("duplicates")
        first = f"urn:ngsi-ld:Sensor:d{1 + PUBLISHERS * 0}"
        values = [h.value for h in api.store.history(first, "v")]
        assert values == sorted(values) and values[0] == 0  # in order, from the first reading
    finally:
        bridge.stop()
        broker.stop()
