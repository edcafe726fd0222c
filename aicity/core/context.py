"""Causal context carried by every event: who acted, and what caused it."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class ActorKind(StrEnum):
    """The kind of actor behind an event."""

    SENSOR = "sensor"
    MODEL = "model"
    POLICY = "policy"
    PERSON = "person"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who or what produced an event, e.g. ``Actor(ActorKind.MODEL, "mobility.ai@1")``."""

    kind: ActorKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> Actor:
        """Parse the ``kind:name`` form produced by ``str(actor)``."""
        kind, _, name = text.partition(":")
        return cls(ActorKind(kind), name)


class IdGenerator:
    """Produces 32-hex-digit ids; seeded for reproducible runs, random otherwise."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else None

    def __call__(self) -> str:
        if self._rng is None:
            return uuid.uuid4().hex
        return f"{self._rng.getrandbits(128):032x}"


_default_ids = IdGenerator()


@dataclass(frozen=True, slots=True)
class Context:
    """An event's causal context: its own id, the id of the event that caused it, and the actor."""

    actor: Actor
    parent_id: str | None = None
    id: str = field(default_factory=_default_ids)

    def child(self, actor: Actor, ids: IdGenerator | None = None) -> Context:
        """A new context caused by this one."""
        return Context(actor=actor, parent_id=self.id, id=(ids or _default_ids)())

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready form."""
        return {"id": self.id, "parent_id": self.parent_id, "actor": str(self.actor)}

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> Context:
        """Inverse of :meth:`to_dict`."""
        actor = data.get("actor")
        ident = data.get("id")
        if not isinstance(actor, str) or not isinstance(ident, str):
            raise ValueError("context needs an id and an actor")
        return cls(actor=Actor.parse(actor), parent_id=data.get("parent_id"), id=ident)
