"""The forecast service learns from observation events and publishes caused forecast events."""

from datetime import UTC, datetime, timedelta

import pytest

from aicity.core.bus import Bus
from aicity.core.context import IdGenerator
from aicity.core.domain import ForecastProvider, Snapshot
from aicity.core.entity import Entity, Property, urn
from aicity.core.errors import ObservationError
from aicity.core.event import Event, EventType
from aicity.forecast.service import ForecastService, observation_event

T0 = datetime(2024, 4, 1, tzinfo=UTC)


def detector(i: int, count: float) -> Entity:
    return Entity(urn("TrafficFlowObserved", f"d{i}"), "TrafficFlowObserved",
                  {"intensity": Property(count), "name": Property(f"d{i}")})


def test_publishes_forecasts_caused_by_observations() -> None:
    bus = Bus()
    svc = ForecastService({"TrafficFlowObserved": ["intensity"]}, horizon=3, period=96, bus=bus,
                          ids=IdGenerator(1))
    got: list[Event] = []
    bus.subscribe(EventType.FORECAST, got.append)
    obs: dict[str, Event] = {}
    for step in range(3):
        for i in range(2):
            ev = observation_event(detector(i, 10.0 + step + i), T0 + step * timedelta(minutes=15),
                                   ids=IdGenerator(100 * step + i))
            obs[ev.context.id] = ev
            bus.publish(ev)
    svc.flush()
    assert len(got) == 6
    for fc in got:
        cause = obs[fc.context.parent_id]                  # causal parent is an observation
        assert fc.data["observations"] == [cause.context.id]
        assert fc.entity_id == cause.entity_id
        assert fc.data["model"] == svc.model_name and fc.data["version"]
        assert fc.data["series"] == f"{cause.entity_id}#intensity"
        assert len(fc.data["forecast"]["mean"]) == 3
    assert bus.failure_count == 0


def test_is_a_forecast_provider() -> None:
    svc = ForecastService({"TrafficFlowObserved": ["intensity"]}, model="naive", horizon=2)
    assert isinstance(svc, ForecastProvider)
    snap = Snapshot(T0, 0.0, {e.id: e for e in (detector(0, 4.0), detector(1, 8.0))})
    svc.learn(snap)
    out = svc.forecast(snap)
    assert out[f"{urn('TrafficFlowObserved', 'd1')}#intensity"].mean == (8.0, 8.0)


def test_malformed_observation_is_an_error() -> None:
    svc = ForecastService({"TrafficFlowObserved": ["intensity"]})
    ent = Entity(urn("TrafficFlowObserved", "x"), "TrafficFlowObserved", {"intensity": Property("many")})
    with pytest.raises(ObservationError, match="not a number"):
        svc.on_observation(observation_event(ent, T0))


def test_drift_event_reaches_the_bus() -> None:
    bus = Bus()
    svc = ForecastService({"TrafficFlowObserved": ["intensity"]}, model="seasonal_average", period=96,
                          bus=bus)
    drifts: list[Event] = []
    bus.subscribe(EventType.DRIFT, drifts.append)
    for step in range(400):
        level = 10.0 if step < 300 else 60.0
        bus.publish(observation_event(detector(0, level + (step % 3)), T0 + step * timedelta(minutes=15)))
    svc.close()
    assert drifts and all(d.time >= T0 + 300 * timedelta(minutes=15) for d in drifts)
    assert drifts[0].context.parent_id is not None
