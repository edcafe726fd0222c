"""Forecasting in the loop: learn from observation events on the bus, publish forecast and drift events.

An observation event (build one with :func:`observation_event`) has type ``EventType.OBSERVATION``,
``entity_type``/``entity_id`` set, and ``data`` either ``{"entity": <normalized NGSI-LD entity>}`` or
``{"values": {attribute: number}}``. :class:`ForecastService` forecasts the numeric attributes named in
``targets`` (entity type -> attribute names); each series is keyed ``"<entity id>#<attribute>"``.
Observations with the same event time form one step; the step is learned when a later time arrives (or on
:meth:`ForecastService.flush`), then one ``EventType.FORECAST`` event per series is published, caused by
(context parent =) the last observation of that series, naming the model, its version and the ids of the
observation events used. The service is also a :class:`aicity.core.domain.ForecastProvider`: use
``learn(snapshot)``/``forecast(snapshot)`` *instead of* the bus, not both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aicity.core.bus import Bus, Subscription
from aicity.core.context import Actor, ActorKind, Context, IdGenerator
from aicity.core.domain import Snapshot
from aicity.core.entity import Entity
from aicity.core.errors import ObservationError
from aicity.core.event import Event, EventType
from aicity.core.event import observation_event as core_observation_event
from aicity.forecast import registry
from aicity.forecast.base import Forecast
from aicity.forecast.drift import DriftMonitor


def observation_event(entity: Entity, time: datetime, *, parent: Context | None = None,
                      actor: Actor | None = None, ids: IdGenerator | None = None) -> Event:
    """An ``OBSERVATION`` event carrying ``entity`` in normalized NGSI-LD form (``data["entity"]``)."""
    who = actor or Actor(ActorKind.SENSOR, entity.type)
    ctx = parent.child(who, ids) if parent is not None else Context(who, None, (ids or IdGenerator())())
    return core_observation_event(entity, ctx, time)


def series_key(entity_id: str, attribute: str) -> str:
    """The key of one forecast series: ``"<entity id>#<attribute>"``."""
    return f"{entity_id}#{attribute}"


def _number(entity_id: str, attr: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ObservationError(entity_id, attr, f"value {value!r} is not a number")
    return float(value)


class ForecastService:
    """Learns the ``targets`` attributes online and publishes their forecasts (and drift alarms)."""

    def __init__(self, targets: Mapping[str, Sequence[str]], *, model: str = "default", period: int = 96,
                 horizon: int = 4, seed: int = 0, drift: str | None = "page_hinkley", bus: Bus | None = None,
                 ids: IdGenerator | None = None) -> None:
        self.targets = {etype: tuple(attrs) for etype, attrs in targets.items()}
        self.model_name = registry.resolve(model)
        self.model = registry.make_multi(self.model_name, period=period, seed=seed)
        self.name = f"forecast.{self.model_name}"
        self.horizon = horizon
        self.ids = ids or IdGenerator(seed)
        self.actor = Actor(ActorKind.MODEL, f"{self.name}@{self.model.version}")
        self.monitor = (DriftMonitor(self.model_name, self.model.version, drift, ids=self.ids)
                        if drift else None)
        self.bus = bus
        self._subs: list[Subscription] = []
        self._step: dict[str, float] = {}
        self._step_events: dict[str, Event] = {}
        self._step_time: datetime | None = None
        self._last: dict[str, Forecast] = {}
        self.published: list[Event] = []
        if bus is not None:
            self.subscribe(bus)

    # -- bus -------------------------------------------------------------------------------------------
    def subscribe(self, bus: Bus) -> None:
        """Subscribe to observation events of every target entity type."""
        self.bus = bus
        for etype in self.targets:
            self._subs.append(bus.subscribe(EventType.OBSERVATION, self.on_observation, entity_type=etype))

    def close(self) -> None:
        """Learn any pending step and unsubscribe."""
        self.flush()
        if self.bus is not None:
            for sub in self._subs:
                self.bus.unsubscribe(sub)
        self._subs = []

    def values_of(self, event: Event) -> dict[str, float]:
        """The target values an observation event carries, keyed by series; ``ObservationError`` if malformed."""
        etype, eid = event.entity_type, event.entity_id
        data = event.data
        if "entity" in data:
            ent = data["entity"]
            if not isinstance(ent, Mapping):
                raise ObservationError(eid, None, "observation 'entity' is not an NGSI-LD object")
            etype = etype or ent.get("type")
            eid = eid or ent.get("id")
            raw = {k: v for k, v in ent.items() if k not in ("id", "type")}
        elif "values" in data and isinstance(data["values"], Mapping):
            raw = dict(data["values"])
        else:
            raise ObservationError(eid, None, "observation has neither 'entity' nor 'values'")
        if not isinstance(eid, str) or not isinstance(etype, str):
            raise ObservationError(None, None, "observation names no entity id and type")
        out: dict[str, float] = {}
        for attr in self.targets.get(etype, ()):
            if attr in raw:
                val = _number(eid, attr, raw[attr])
                if val is not None:
                    out[series_key(eid, attr)] = val
        return out

    def on_observation(self, event: Event) -> None:
        """Buffer an observation; a later time first learns the buffered step."""
        if self._step_time is not None and event.time != self._step_time:
            self.flush()
        values = self.values_of(event)
        self._step_time = event.time
        for key, val in values.items():
            self._step[key] = val
            self._step_events[key] = event

    def flush(self) -> list[Event]:
        """Learn the buffered step now and publish its forecasts; returns the events published."""
        if not self._step or self._step_time is None:
            return []
        values, events, when = self._step, self._step_events, self._step_time
        self._step, self._step_events, self._step_time = {}, {}, None
        out: list[Event] = []
        for key, val in values.items():
            prev = self._last.get(key)
            if self.monitor is not None and prev is not None:
                eid, _, _ = key.partition("#")
                alarm = self.monitor.update(key, val - prev.mean[0], when, events[key].context, eid,
                                            events[key].entity_type)
                if alarm is not None:
                    out.append(alarm)
        self.model.learn_step(values, when)
        fcs = self.model.forecast_all(self.horizon)
        self._last.update(fcs)
        for key, ev in events.items():
            out.append(self._forecast_event(key, fcs[key], ev, when))
        for ev in out:
            self.published.append(ev)
            if self.bus is not None:
                self.bus.publish(ev)
        return out

    def _forecast_event(self, key: str, fc: Forecast, cause: Event, when: datetime) -> Event:
        eid, _, attr = key.partition("#")
        data = {"series": key, "entity_id": eid, "attribute": attr, "model": fc.model, "version": fc.version,
                "horizon": fc.horizon, "observations": [cause.context.id], "forecast": fc.to_dict()}
        return Event(EventType.FORECAST, data, cause.context.child(self.actor, self.ids), when,
                     cause.entity_type, eid)

    # -- ForecastProvider ------------------------------------------------------------------------------
    def learn(self, snapshot: Snapshot) -> None:
        """Learn the target attributes of every entity in ``snapshot`` (one step at ``snapshot.time``)."""
        values: dict[str, float] = {}
        for eid, ent in sorted(snapshot.entities.items()):
            for attr in self.targets.get(ent.type, ()):
                val = _number(eid, attr, ent.get(attr))
                if val is not None:
                    values[series_key(eid, attr)] = val
        if values:
            self.model.learn_step(values, snapshot.time)

    def forecast(self, snapshot: Snapshot) -> Mapping[str, Forecast]:
        """Forecasts of every learned series, keyed ``"<entity id>#<attribute>"``."""
        if not self.model.series_ids:
            return {}
        return self.model.forecast_all(self.horizon)
