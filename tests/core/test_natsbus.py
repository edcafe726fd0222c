"""The bus on NATS JetStream, against a real nats-server the tests start: subjects, durability, restarts."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from aicity.core.context import Actor, ActorKind, Context
from aicity.core.errors import UserError
from aicity.core.event import Event, EventType
from aicity.core.natsbus import NatsBus, event_from_bytes, event_to_bytes, stream_events, token

from .natsserver import NatsServer

T = datetime(2024, 1, 1, tzinfo=UTC)
CTX = Context(Actor(ActorKind.SENSOR, "t"))


def ev(kind, etype=None, n=0):
    return Event(kind, {"n": n}, CTX, T, entity_type=etype, entity_id=None if etype is None else f"urn:x:{n}")


@pytest.fixture
def server() -> Iterator[NatsServer]:
    s = NatsServer().start()
    yield s
    s.stop()


class Inbox:
    """What a handler received, with a wait for the count expected."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self._cv = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cv:
            self.items.append(event)
            self._cv.notify_all()

    def wait(self, n: int, timeout: float = 10.0) -> list[int]:
        with self._cv:
            self._cv.wait_for(lambda: len(self.items) >= n, timeout)
        return [e.data["n"] for e in self.items]


def test_events_round_trip_on_the_wire():
    e = Event(EventType.DECISION, {"x": [1, 2.5, None]}, CTX.child(Actor(ActorKind.MODEL, "p")), T,
              entity_type="TrafficSignal", entity_id="urn:ngsi-ld:TrafficSignal:j1")
    back = event_from_bytes(event_to_bytes(e))
    assert back.to_dict() == e.to_dict()
    assert token("a.b c*>") == "a_b_c__" and token("") == "_"


def test_subjects_by_district_event_type_and_entity_type(server):
    north, south = NatsBus(server.url, district="north"), NatsBus(server.url, district="south")
    flows, north_any, all_obs = Inbox(), Inbox(), Inbox()
    south.subscribe(EventType.OBSERVATION, flows, entity_type="Flow")
    south.subscribe(handler=north_any, district="north")
    south.subscribe(EventType.OBSERVATION, all_obs)
    assert north.subject(EventType.OBSERVATION, "Flow") == "aicity.north.observation.Flow"
    north.publish(ev(EventType.OBSERVATION, "Flow", 1))
    north.publish(ev(EventType.OBSERVATION, "Meter", 2))
    south.publish(ev(EventType.OBSERVATION, "Flow", 3))
    north.publish(ev(EventType.DECISION, None, 4))
    north.flush()
    south.flush()
    assert sorted(flows.wait(2)) == [1, 3]
    assert north_any.wait(3) == [1, 2, 4]
    assert sorted(all_obs.wait(3)) == [1, 2, 3]
    time.sleep(0.3)  # nothing more arrives
    assert len(flows.items) == 2 and len(north_any.items) == 3 and len(all_obs.items) == 3
    assert north_any.items[0].entity_id == "urn:x:1" and north_any.items[0].context == CTX
    north.close()
    south.close()


def test_a_failing_handler_is_counted_and_the_others_still_receive(server):
    bus = NatsBus(server.url)

    def broken(_e):
        raise RuntimeError("boom")

    got = Inbox()
    bus.subscribe(EventType.ALERT, broken)
    bus.subscribe(EventType.ALERT, got)
    bus.publish(ev(EventType.ALERT, n=7))
    assert got.wait(1) == [7]
    deadline = time.monotonic() + 5
    while bus.failure_count < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bus.failure_count == 1
    bus.close()


def test_messages_that_are_not_events_are_kept_and_the_subscription_goes_on(server):
    """Anyone who may publish on the stream can send garbage or a poison message (nesting Python's parser
    refuses with RecursionError): it is counted and kept, and the events after it still arrive."""
    import asyncio

    import nats

    bus = NatsBus(server.url)
    got = Inbox()
    sub = bus.subscribe(EventType.ALERT, got)
    subject = bus.subject(EventType.ALERT, None)

    async def send() -> None:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        for payload in (b"{not json", b'{"type": "alert"}', b"[" * 5000 + b"1" + b"]" * 5000):
            await js.publish(subject, payload)
        await nc.close()

    asyncio.run(send())
    bus.publish(ev(EventType.ALERT, n=9))
    assert got.wait(1) == [9]
    assert sub.rejected == 3 and len(bus.rejected) == 3
    reasons = [r for _, r, _ in bus.rejected]
    assert reasons[0].startswith("not an event: JSONDecodeError") and "KeyError" in reasons[1]
    assert reasons[2] == "not an event: nested too deeply" and bus.rejected[0][2] == b"{not json"
    bus.close()


def test_a_durable_subscription_resumes_after_the_subscriber_restarts(server):
    pub = NatsBus(server.url, district="d1")
    first = Inbox()
    api = NatsBus(server.url)
    api.subscribe(EventType.OBSERVATION, first, durable="api-sub-1")
    for n in range(3):
        pub.publish(ev(EventType.OBSERVATION, "Flow", n))
    assert first.wait(3) == [0, 1, 2]
    time.sleep(0.2)  # acks out
    api.close()  # the subscriber goes away; events go on
    for n in range(3, 8):
        pub.publish(ev(EventType.OBSERVATION, "Flow", n))
    pub.flush()
    again = Inbox()
    api = NatsBus(server.url)
    api.subscribe(EventType.OBSERVATION, again, durable="api-sub-1")
    assert again.wait(5) == [3, 4, 5, 6, 7]  # exactly what it missed, in order
    fresh, history = Inbox(), Inbox()
    api.subscribe(EventType.OBSERVATION, fresh)  # not durable: from now on only
    api.subscribe(EventType.OBSERVATION, history, replay=True)  # all the stream holds
    pub.publish(ev(EventType.OBSERVATION, "Flow", 8))
    assert fresh.wait(1) == [8] and again.wait(6)[-1] == 8 and history.wait(9) == list(range(9))
    api.close()
    pub.close()


def test_the_server_restarting_loses_and_duplicates_nothing(server):
    pub = NatsBus(server.url, ack_timeout=0.5)
    sub_bus = NatsBus(server.url)
    got = Inbox()
    sub_bus.subscribe(EventType.OBSERVATION, got, durable="keeper")
    for n in range(50):
        pub.publish(ev(EventType.OBSERVATION, "Flow", n))
    pub.flush()
    server.kill()  # blind: publishing goes on into the buffer
    for n in range(50, 100):
        pub.publish(ev(EventType.OBSERVATION, "Flow", n))
    time.sleep(0.5)
    assert pub.pending > 0
    server.start()
    pub.flush(20)
    assert pub.pending == 0
    for n in range(90, 100):  # a replay of events already sent: stored once
        pub.publish(ev(EventType.OBSERVATION, "Flow", n))
    pub.flush()
    assert stream_events(server.url) == 100
    seen = got.wait(100, timeout=20)
    assert sorted(set(seen)) == list(range(100))
    pub.close()
    sub_bus.close()


def test_events_cross_processes(server):
    got = Inbox()
    bus = NatsBus(server.url)
    bus.subscribe(EventType.COMMAND, got, entity_type="Valve", district="west")
    code = ("import sys; from datetime import datetime, UTC\n"
            "from aicity.core.natsbus import NatsBus\n"
            "from aicity.core.context import Actor, ActorKind, Context\n"
            "from aicity.core.event import Event\n"
            "bus = NatsBus(sys.argv[1], district='west')\n"
            "for n in range(20):\n"
            "    bus.publish(Event('command', {'n': n}, Context(Actor(ActorKind.MODEL, 'p')),"
            " datetime(2024, 1, 1, tzinfo=UTC), entity_type='Valve'))\n"
            "bus.close()\n")
    subprocess.run([sys.executable, "-c", code, server.url], check=True, timeout=60)
    assert got.wait(20) == list(range(20))
    bus.close()


def test_an_unreachable_server_is_one_line():
    started = time.monotonic()
    with pytest.raises(UserError, match=re.escape("cannot connect to NATS JetStream at nats://127.0.0.1:1")) as info:
        NatsBus("nats://127.0.0.1:1", connect_timeout=1.0)
    assert "\n" not in str(info.value) and time.monotonic() - started < 10
