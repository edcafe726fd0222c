"""API subscriptions on NATS JetStream (a real nats-server the test starts): entity changes go on the bus, each
subscription is a durable consumer, and changes published while aicity is down are notified after it restarts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from aicity.core.entity import Entity, Property
from aicity.core.natsbus import NatsBus, stream_events
from aicity.platform.server import ServeOptions, ServerThread, build
from aicity.platform.subscriptions import BUS_DISTRICT, change_event
from tests.core.natsserver import NatsServer

from .conftest import ACCESS, Receiver, headers

V1 = "/ngsi-ld/v1"


class Served:
    """``aicity serve --nats URL`` (no live city), served on a free port."""

    def __init__(self, folder: Path, nats: str) -> None:
        access = folder / "access.json"
        access.write_text(json.dumps(ACCESS))
        from aicity.platform.app import create_app

        self.platform, self.store = build(ServeOptions(store=str(folder / "city.db"), folder=folder, access=access,
                                                       city=False, nats=nats))
        self.platform.start()
        self.server = ServerThread(create_app(self.platform)).start()
        self.http = httpx.Client(base_url=self.server.url, headers=headers("admin"), timeout=10)

    def close(self) -> None:
        """Stop everything (the store and the consumers' places on the server stay)."""
        self.http.close()
        self.server.stop()
        self.platform.stop()
        self.store.close()


def room(v: int) -> dict[str, object]:
    return {"id": "urn:ngsi-ld:Room:1", "type": "Room", "t": {"type": "Property", "value": v}}


def _values(receiver: Receiver) -> list[int]:
    return [n["data"][0]["t"]["value"] for n in receiver.got]


def test_subscriptions_are_durable_consumers_that_survive_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    nats = NatsServer().start()
    try:
        api = Served(tmp_path, nats.url)
        try:
            r = api.http.post(f"{V1}/subscriptions", json={
                "type": "Subscription", "entities": [{"type": "Room"}],
                "notification": {"endpoint": {"uri": receiver.url}}})
            assert r.status_code == 201
            assert api.http.post(f"{V1}/entities", json=room(1)).status_code == 201
            assert api.http.patch(f"{V1}/entities/urn:ngsi-ld:Room:1/attrs", json={"t": 2}).status_code == 204
            receiver.wait(2)
            assert _values(receiver) == [1, 2]
        finally:
            api.close()
        assert stream_events(nats.url, "AICITY_NGSILD") == 2  # the changes went on the bus
        # while aicity is down, another process changes the room (its change goes on the bus)
        other = NatsBus(nats.url, district=BUS_DISTRICT, stream="AICITY_NGSILD", prefix="ngsild")
        old = Entity("urn:ngsi-ld:Room:1", "Room", {"t": Property(2)})
        other.publish(change_event("", old, Entity("urn:ngsi-ld:Room:1", "Room", {"t": Property(3)}), {"t"},
                                   "updated"))
        other.close()
        nats.restart()  # and NATS restarts too
        api = Served(tmp_path, nats.url)
        try:
            receiver.wait(3)
            assert api.http.patch(f"{V1}/entities/urn:ngsi-ld:Room:1/attrs", json={"t": 4}).status_code == 204
            receiver.wait(4)
            time.sleep(0.3)  # nothing is delivered twice
            assert _values(receiver) == [1, 2, 3, 4]
            sid = receiver.got[0]["subscriptionId"]
            assert api.http.delete(f"{V1}/subscriptions/{sid}").status_code == 204
        finally:
            api.close()
    finally:
        nats.stop()
