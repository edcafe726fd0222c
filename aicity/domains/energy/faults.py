"""Injected meter faults (negative, NaN, frozen, stale readings), to test that bad input never drives a dispatch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aicity.core.errors import UserError

KINDS = ("negative", "nan", "freeze", "stale")


@dataclass(frozen=True, slots=True)
class MeterFaults:
    """Which meters (local ids: ``site``, a charger id) go bad, how, and from which elapsed second."""

    negative: frozenset[str] = frozenset()
    nan: frozenset[str] = frozenset()
    freeze: frozenset[str] = frozenset()
    stale: frozenset[str] = frozenset()
    after_s: float = 0.0

    @classmethod
    def parse(cls, value: Any) -> MeterFaults | None:
        """From ``{"negative": [ids], "nan": [...], "freeze": [...], "stale": [...], "after_s": s}``."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise UserError(f"option sensor_faults must be an object like {{\"nan\": [\"site\"]}}, got {value!r}")
        unknown = set(value) - {*KINDS, "after_s"}
        if unknown:
            raise UserError(f"option sensor_faults: unknown keys {sorted(unknown)}; known: {', '.join(KINDS)}, after_s")
        sets: dict[str, frozenset[str]] = {}
        for kind in KINDS:
            ids = value.get(kind, [])
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise UserError(f"option sensor_faults.{kind} must be a list of meter ids, got {ids!r}")
            sets[kind] = frozenset(ids)
        after = value.get("after_s", 0.0)
        if isinstance(after, bool) or not isinstance(after, int | float) or not 0 <= after < float("inf"):
            raise UserError(f"option sensor_faults.after_s must be a number of seconds >= 0, got {after!r}")
        return cls(sets["negative"], sets["nan"], sets["freeze"], sets["stale"], float(after))

    def kind(self, meter: str, elapsed_s: float) -> str | None:
        """The fault of ``meter`` at ``elapsed_s``, if any."""
        if elapsed_s < self.after_s:
            return None
        for kind in KINDS:
            if meter in getattr(self, kind):
                return kind
        return None
