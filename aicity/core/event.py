"""The one event type of aicity: observations, forecasts, decisions, commands, acks and alerts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypedDict

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
    EDGE_ACTION = "edge_action"
    ORCHESTRATION = "orchestration"
    BLIND = "blind"


class ObservationBatchData(TypedDict):
    """An ``observation`` event of one batch: the ids of the entities a domain's sensors reported."""

    domain: str
    entities: list[str]


class DecisionData(TypedDict):
    """A ``decision`` event: a planner's proposal for one target and the governance verdict on it."""

    domain: str
    target: str
    action: str
    params: dict[str, Any]
    score: float | None
    verdict: str
    planner: str


class CommandData(TypedDict):
    """A ``command`` event: what was sent to the actuator edge."""

    domain: str
    target: str
    action: str
    params: dict[str, Any]


class AckData(TypedDict):
    """An ``ack`` or ``refusal`` event: the edge's answer with the limits that bound it."""

    status: str
    command: dict[str, Any]
    bound_by: list[str]
    reason: str


class OrchestrationData(TypedDict):
    """An ``orchestration`` event: a proposal set aside or replaced by its alternative in a conflict with another
    domain's, with the policy rule and version that decided and the reason in plain words."""

    target: str
    kept_domain: str
    kept_planner: str
    dropped_domain: str
    dropped_planner: str
    rule: str
    resolution: str
    reason: str
    policy_version: str
    kept_priority: str
    dropped_priority: str


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
