from datetime import UTC, datetime, timedelta

import pytest

from aicity.core.clock import Clock, SimClock, WallClock
from aicity.core.context import Actor, ActorKind, Context, IdGenerator
from aicity.core.event import Event, EventType
from aicity.core.store import SqliteStore

T = datetime(2024, 1, 1, tzinfo=UTC)


def test_context_chain_traces_an_actuation_back_to_its_observation():
    ids = IdGenerator(7)
    obs = Context(Actor(ActorKind.SENSOR, "detector"), None, ids())
    decision = obs.child(Actor(ActorKind.MODEL, "planner@1"), ids)
    command = decision.child(Actor(ActorKind.SYSTEM, "edge"), ids)
    ack = command.child(Actor(ActorKind.SYSTEM, "edge"), ids)
    store = SqliteStore()
    for ctx, kind in [(obs, EventType.OBSERVATION), (decision, EventType.DECISION), (command, EventType.COMMAND),
                      (ack, EventType.ACK)]:
        store.append_event(Event(kind, {"k": kind.value}, ctx, T))
    chain = store.trace(ack.id)
    assert [e.type for e in chain] == ["ack", "command", "decision", "observation"]
    assert chain[2].actor == "model:planner@1"
    assert Context.from_dict(decision.to_dict()) == decision


def test_seeded_ids_are_reproducible_and_distinct():
    a, b = IdGenerator(3), IdGenerator(3)
    first = [a() for _ in range(5)]
    assert first == [b() for _ in range(5)]
    assert len(set(first)) == 5 and all(len(i) == 32 for i in first)
    assert IdGenerator()() != IdGenerator()()


def test_clocks():
    clock = SimClock(T)
    assert isinstance(clock, Clock) and isinstance(WallClock(), Clock)
    clock.advance(10)
    assert clock.now() == T + timedelta(seconds=10) and clock.elapsed_s == 10
    clock.set_elapsed(25)
    assert clock.elapsed_s == 25
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set_elapsed(5)
    with pytest.raises(ValueError):
        SimClock(datetime(2024, 1, 1))
    assert WallClock().now().tzinfo is not None
