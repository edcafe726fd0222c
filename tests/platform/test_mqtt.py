"""MQTT devices on a real mosquitto: validation and dead letters, QoS 1 with persistent sessions across a
restart of aicity and of the broker (measured: every reading stored), commands with acknowledgements."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aicity.platform.mqtt import ACKS, COMMANDS, MAX_PACKET_BYTES, READINGS, BrokerProcess, MqttBridge, free_port
from tests.platform.conftest import Api

if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
    pytest.fail("mosquitto is missing: .ci/run installs it (apt-get install -y mosquitto)", pytrace=False)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A real mosquitto on 127.0.0.1 and a free port, stopped after the test."""
    proc = BrokerProcess(free_port(), tmp_path / "mosquitto").start()
    yield proc
    proc.stop()


def _publisher(port: int, client_id: str = "device-7") -> object:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(1, 1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _reading(i: int) -> str:
    return json.dumps({"id": "urn:ngsi-ld:Sensor:7", "type": "Sensor",
                       "count": {"type": "Property", "value": i,
                                 "observedAt": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z"}})


def _stored(api: Api) -> int:
    return len(api.store.series("urn:ngsi-ld:Sensor:7", "count"))


def _wait(cond: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_no_reading_lost_across_restarts_of_aicity_and_the_broker(api: Api, broker: BrokerProcess) -> None:
    bridge = MqttBridge(api.platform, port=broker.port).start()
    pub = _publisher(broker.port)
    infos = []
    for i in range(0, 1000):
        infos.append(pub.publish(READINGS + "7", _reading(i), qos=1))  # type: ignore[attr-defined]
    _wait(lambda: _stored(api) >= 1000)
    bridge.stop()  # aicity goes away; its session stays with the broker
    for i in range(1000, 2000):
        infos.append(pub.publish(READINGS + "7", _reading(i), qos=1))  # type: ignore[attr-defined]
    for info in infos:
        info.wait_for_publish(10)
    broker.stop()  # the broker restarts too, with aicity's queued readings in its persistence file
    broker.start()
    for i in range(2000, 3000):  # published while the publisher reconnects: its own session resends them
        infos.append(pub.publish(READINGS + "7", _reading(i), qos=1))  # type: ignore[attr-defined]
    bridge = MqttBridge(api.platform, port=broker.port).start()
    try:
        _wait(lambda: _stored(api) >= 3000, 30)
        values = [p.value for p in api.store.series("urn:ngsi-ld:Sensor:7", "count")]
        assert sorted(values) == list(range(3000)), f"lost {3000 - len(set(values))} readings"
        assert api.store.dead_letter_count == 0
    finally:
        bridge.stop()
        pub.loop_stop()  # type: ignore[attr-defined]
        pub.disconnect()  # type: ignore[attr-defined]


def test_bad_payloads_are_dead_lettered_and_counted(api: Api, broker: BrokerProcess) -> None:
    bridge = MqttBridge(api.platform, port=broker.port).start()
    pub = _publisher(broker.port, "device-x")
    try:
        for payload in (b"{not json", json.dumps({"id": "urn:ngsi-ld:Sensor:7", "type": "Sensor",
                                                   "count": {"type": "Property"}}).encode(),
                        json.dumps({"id": "urn:ngsi-ld:Sensor:8", "type": "Sensor", "count": 1}).encode(),
                        json.dumps({"id": "urn:ngsi-ld:Sensor:7", "type": "Sensor",
                                    "count": float("nan")}).encode(),
                        b'{"a":' * 5000 + b"1" + b"}" * 5000):  # a poison message: Python's parser recurses
            pub.publish(READINGS + "7", payload, qos=1).wait_for_publish(5)  # type: ignore[attr-defined]
        pub.publish(READINGS + "7", _reading(5), qos=1).wait_for_publish(5)  # type: ignore[attr-defined]
        _wait(lambda: bridge.counts().get("dead_lettered", 0) + bridge.counts().get("stored", 0) >= 6)
        assert bridge.counts()["dead_lettered"] == 5 and bridge.counts()["stored"] == 1
        reasons = [d.reason for d in api.store.dead_letters()]
        assert "not JSON" in reasons[0] and "value" in reasons[1] and "may not write" in reasons[2]
        assert "NaN is not a JSON value" in reasons[3] and "nested too deeply" in reasons[4]
        assert bridge.counts().get("write_retries", 0) == 0  # the batch with it was not held back
        assert _stored(api) == 1  # the bad ones were never acted on
    finally:
        bridge.stop()
        pub.loop_stop()  # type: ignore[attr-defined]


def test_a_message_over_the_brokers_packet_limit_never_reaches_aicity(api: Api, broker: BrokerProcess) -> None:
    """A device sending megabytes is disconnected by mosquitto (max_packet_size); aicity reads nothing of it and the
    other devices' readings go on."""
    bridge = MqttBridge(api.platform, port=broker.port).start()
    hog, pub = _publisher(broker.port, "device-hog"), _publisher(broker.port, "device-7")
    try:
        huge = b'{"id":"urn:ngsi-ld:Sensor:7","type":"Sensor","pad":"' + b"x" * (MAX_PACKET_BYTES + 1) + b'"}'
        hog.publish(READINGS + "7", huge, qos=1)  # type: ignore[attr-defined]
        pub.publish(READINGS + "7", _reading(1), qos=1).wait_for_publish(5)  # type: ignore[attr-defined]
        _wait(lambda: bridge.counts().get("stored", 0) >= 1)
        time.sleep(0.5)
        assert bridge.counts().get("stored", 0) == 1 and bridge.counts().get("received", 0) == 1
        assert bridge.counts().get("dead_lettered", 0) == 0 and _stored(api) == 1
    finally:
        bridge.stop()
        for c in (hog, pub):
            c.loop_stop()  # type: ignore[attr-defined]


def test_commands_are_acknowledged_and_audited(api: Api, broker: BrokerProcess) -> None:
    bridge = MqttBridge(api.platform, port=broker.port).start()
    api.platform.mqtt = bridge
    device = _publisher(broker.port, "lamp-3")

    def on_message(client: object, userdata: object, msg: object) -> None:
        cmd = json.loads(msg.payload)  # type: ignore[attr-defined]
        client.publish(ACKS + "3", json.dumps({"id": cmd["id"], "status": "applied"}), qos=1)  # type: ignore[attr-defined]

    device.on_message = on_message  # type: ignore[attr-defined]
    done = threading.Event()
    device.on_subscribe = lambda *a: done.set()  # type: ignore[attr-defined]
    device.subscribe(COMMANDS + "3", qos=1)  # type: ignore[attr-defined]
    done.wait(5)
    try:
        r = api.http.post("/city/commands", json={"device": "3", "command": {"level": 40}})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "acknowledged" and r.json()["ack"]["status"] == "applied"
        assert r.json()["by"] == "ada"
        assert api.store.doc_get("platform.commands", r.json()["id"])["status"] == "acknowledged"
        import httpx

        from tests.platform.conftest import headers
        assert httpx.post(f"{api.url}/city/commands", json={"device": "3", "command": {}},
                          headers=headers("viewer")).status_code == 403
        for bad in ({"device": "#", "command": {}}, {"device": "a/b", "command": {}},  # '#' was a 500
                    {"device": "3", "command": {}, "timeout_s": -1}, {"device": "3", "command": {}, "timeout_s": 1e9},
                    {"device": "3", "command": {}, "timeout_s": "x"}):
            assert api.http.post("/city/commands", json=bad).status_code == 400, bad
        # a command waiting for a device that never answers holds its own request only, not the server
        done: dict[str, float] = {}

        def silent() -> None:
            api.http.post("/city/commands", json={"device": "mute-9", "command": {}, "timeout_s": 3})
            done["command"] = time.monotonic()

        waiting = threading.Thread(target=silent)
        waiting.start()
        time.sleep(0.3)
        assert api.http.get("/ngsi-ld/v1/types").status_code == 200
        done["other"] = time.monotonic()
        waiting.join()
        assert done["other"] < done["command"]  # before: the server answered nothing until the wait ended
    finally:
        bridge.stop()
        device.loop_stop()  # type: ignore[attr-defined]


def test_readings_are_acknowledged_only_once_the_store_has_them_for_good() -> None:
    """While the store's server is away its writes wait in memory: the broker keeps the readings unacknowledged
    (a persistent session redelivers them if this process dies), and they are acknowledged when it is back."""
    from types import SimpleNamespace

    from aicity.platform.mqtt import MqttBridge

    class AwayStore:
        up = False

        def writable(self) -> bool:
            return self.up

    store = AwayStore()
    broker = SimpleNamespace(store=store, codec=lambda _ctx: None)
    bridge = MqttBridge(SimpleNamespace(broker=lambda _tenant, create=False: broker))
    acked: list[int] = []
    bridge._client = SimpleNamespace(ack=lambda mid, qos: acked.append(mid))
    bridge._held = [SimpleNamespace(mid=1, qos=1), SimpleNamespace(mid=2, qos=1)]
    bridge._release_held()
    assert acked == [] and len(bridge._held) == 2
    store.up = True
    bridge._release_held()
    assert acked == [1, 2] and bridge._held == []
