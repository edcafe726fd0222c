import logging
from datetime import UTC, datetime

from aicity.core.bus import Bus
from aicity.core.context import Actor, ActorKind, Context
from aicity.core.event import Event, EventType

T = datetime(2024, 1, 1, tzinfo=UTC)
CTX = Context(Actor(ActorKind.SENSOR, "t"))


def ev(kind, etype=None, n=0):
    return Event(kind, {"n": n}, CTX, T, entity_type=etype)


def test_delivery_in_order_and_filtered_by_event_and_entity_type():
    bus, got = Bus(), []
    bus.subscribe(EventType.OBSERVATION, lambda e: got.append(("obs", e.data["n"])))
    bus.subscribe(EventType.OBSERVATION, lambda e: got.append(("flow", e.data["n"])), entity_type="Flow")
    bus.subscribe("*", lambda e: got.append(("any", e.data["n"])))
    bus.publish(ev(EventType.OBSERVATION, "Flow", 1))
    bus.publish(ev(EventType.OBSERVATION, "Meter", 2))
    bus.publish(ev(EventType.DECISION, None, 3))
    assert got == [("obs", 1), ("flow", 1), ("any", 1), ("obs", 2), ("any", 2), ("any", 3)]
    assert bus.published[EventType.OBSERVATION] == 2
    assert bus.wants(EventType.DECISION) and not Bus().wants(EventType.DECISION)


def test_failing_subscriber_is_counted_and_others_still_receive(caplog):
    bus, got = Bus(), []

    def broken(_e):
        raise RuntimeError("boom")

    bus.subscribe(EventType.ALERT, broken)
    bus.subscribe(EventType.ALERT, lambda e: got.append(e.data["n"]))
    with caplog.at_level(logging.ERROR):
        assert bus.publish(ev(EventType.ALERT, n=7)) == 1
    assert got == [7]
    assert bus.failure_count == 1
    assert "boom" in caplog.text


def test_unsubscribe():
    bus, got = Bus(), []
    sub = bus.subscribe(EventType.ALERT, got.append)
    bus.unsubscribe(sub)
    bus.publish(ev(EventType.ALERT))
    assert got == []
