"""Kernel throughput: entity updates per second into the state store, events per second through the bus."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aicity.core.bus import Bus
from aicity.core.context import Actor, ActorKind, Context
from aicity.core.entity import Entity, Property, Relationship, urn
from aicity.core.event import Event, EventType
from aicity.core.store import SqliteStore

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sensor_updates(n: int, sensors: int = 500) -> list[Entity]:
    """``n`` TrafficFlowObserved-like updates over ``sensors`` sensors (values vary, so most are changes)."""
    signal = urn("TrafficSignal", "s0")
    return [Entity(urn("TrafficFlowObserved", f"lane{i % sensors}"), "TrafficFlowObserved", {
        "intensity": Property(i % 7, T0 + timedelta(seconds=i), "E50"),
        "occupancy": Property((i % 11) / 10, T0 + timedelta(seconds=i), "P1"),
        "averageVehicleSpeed": Property(float(i % 13), T0 + timedelta(seconds=i), "MTS"),
        "queue": Property(i % 5, T0 + timedelta(seconds=i)),
        "refTrafficSignal": Relationship(signal),
    }) for i in range(n)]


def _store_rate(path: str, updates: list[Entity], batch: int) -> float:
    store = SqliteStore(path)
    started = time.perf_counter()
    if batch <= 1:
        for entity in updates:
            store.upsert(entity, now=T0)
    else:
        for k in range(0, len(updates), batch):
            store.upsert_many(updates[k:k + batch], now=T0)
    store.flush()
    rate = len(updates) / (time.perf_counter() - started)
    store.close()
    return rate


def _bus_rate(n: int) -> float:
    bus = Bus()
    seen = [0]

    def handler(_event: Event) -> None:
        seen[0] += 1

    bus.subscribe(EventType.OBSERVATION, handler, entity_type="TrafficFlowObserved")
    bus.subscribe(EventType.DECISION, handler)
    ctx = Context(Actor(ActorKind.SENSOR, "bench"), None, "0" * 32)
    events = [Event(EventType.OBSERVATION, {"i": i}, ctx, T0, entity_type="TrafficFlowObserved") for i in range(n)]
    started = time.perf_counter()
    for event in events:
        bus.publish(event)
    rate = n / (time.perf_counter() - started)
    if seen[0] != n:
        raise RuntimeError(f"bus delivered {seen[0]} of {n} events")
    return rate


def run_core_bench(n: int = 50_000) -> list[dict[str, Any]]:
    """Measure store and bus throughput; one record per measurement."""
    updates = sensor_updates(n)
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("memory", "file"):
            for batch in (1, 1000):
                path = ":memory:" if backend == "memory" else os.path.join(tmp, f"b{batch}.db")
                count = n if batch > 1 else min(n, 10_000)
                rate = _store_rate(path, updates[:count], batch)
                records.append({"bench": "store_upsert", "backend": backend, "batch": batch, "n": count,
                                "per_s": round(rate)})
    records.append({"bench": "bus_publish", "backend": "in-process", "batch": 1, "n": n, "per_s": round(_bus_rate(n))})
    return records
