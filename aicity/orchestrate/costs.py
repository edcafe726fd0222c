"""Outage costs: what taking an entity out of service would cost those who rely on it, over a short look-ahead.

A domain may declare (``DomainMeta.outage_costs``) a factory of an :class:`OutageCostModel`: a small model that
learns from every snapshot (sensor view only) and answers, for an entity it knows, the expected delay in seconds
each user of it would suffer over its look-ahead if it went (or stayed) out of service now — e.g. mobility's
queueing model of a signal going dark. The orchestration stage weighs every need by it: a need on a junction that
would gridlock when dark outweighs several needs on junctions that would barely notice. An entity no model knows
costs 1 (the need's weight alone decides, as without models).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from aicity.core.domain import Snapshot
from aicity.core.meta import DomainMeta


class LookAhead(Protocol):
    """A domain's look-ahead model of any kind (an outage cost model, a responder): it learns every step."""

    def update(self, snapshot: Snapshot) -> None:
        """Learn from one step's snapshot."""
        ...


@runtime_checkable
class OutageCostModel(Protocol):
    """A domain's look-ahead model of what an entity out of service costs its users."""

    def update(self, snapshot: Snapshot) -> None:
        """Learn from one step's snapshot."""
        ...

    def cost_s(self, entity_id: str) -> float | None:
        """Expected seconds each user of ``entity_id`` loses over the look-ahead if it is out of service now
        (None: not an entity this model knows)."""
        ...


class OutageCosts:
    """Every domain's look-ahead models of one run (outage cost models, responders), updated once per step."""

    def __init__(self, models: Iterable[LookAhead] = ()) -> None:
        self.models: list[LookAhead] = list(models)
        self._at: float | None = None
        self._cache: dict[str, float] = {}

    @classmethod
    def from_metas(cls, metas: Mapping[str, DomainMeta]) -> OutageCosts:
        """Every domain's look-ahead models, in domain order: its outage cost model (``DomainMeta.outage_costs``)
        and its responder (``DomainMeta.responders``), which learn from every step's snapshot alike."""
        return cls(f() for _, m in sorted(metas.items()) for f in (m.outage_costs, m.responders) if f is not None)

    def update(self, snapshot: Snapshot) -> None:
        """Let every model learn from ``snapshot`` (once per step: a second call at the same time is ignored)."""
        if self._at is not None and abs(snapshot.elapsed_s - self._at) < 1e-9:
            return
        self._at = snapshot.elapsed_s
        self._cache = {}
        for m in self.models:
            m.update(snapshot)

    def cost(self, entity_id: str) -> float:
        """The first model's answer for ``entity_id``; 1 when no model knows it."""
        hit = self._cache.get(entity_id)
        if hit is not None:
            return hit
        out = 1.0
        for m in self.models:
            if not isinstance(m, OutageCostModel):
                continue
            c = m.cost_s(entity_id)
            if c is not None and math.isfinite(c) and c >= 0:
                out = float(c)
                break
        self._cache[entity_id] = out
        return out


__all__ = ["OutageCostModel", "OutageCosts"]
