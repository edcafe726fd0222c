"""The one event type of aicity: observations, forecasts, decisions, commands, acks and alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from aicity.core.context import Context
from aicity.core.entity import Entity


class EventType(StrEnum):
    """Kernel event types; domains may publish any other string type too."""

    OBSERVATION = "observation"
    STATE_CHANGED = "state_changed"
    STATE_REPORTED = "state_reported"
    FORECAST = "forecast"
    DECISION = "decision"
    COMMAND = "command"
    ACK = "ack"
    REFUSAL = "refusal"
    ALERT = "alert"
    DEAD_LETTER = "dead_letter"
    DRIFT = "drift"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a type, its data, its causal context and its (clock) time.

    ``entity_type`` and ``entity_id`` are set when the event concerns one entity, so subscribers can
    filter by entity type.
    """

    type: str
    data: Mapping[str, Any]
    context: Context
    time: datetime
    entity_type: str | None = None
    entity_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "type": str(self.type),
            "data": dict(self.data),
            "context": self.context.to_dict(),
            "time": self.time.isoformat(),
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
        }


def observation_event(entity: Entity, context: Context, time: datetime) -> Event:
    """The observation event of one entity: ``data["entity"]`` holds it in normalized NGSI-LD form."""
    return Event(EventType.OBSERVATION, {"entity": entity.to_ngsi()}, context, time,
                 entity_type=entity.type, entity_id=entity.id)
