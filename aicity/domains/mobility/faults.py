"""Sensor-fault injection for the twin: detectors that freeze or report impossible values after a time.

A frozen detector group keeps reporting its last entity (values and ``observedAt``), so it goes stale; an
impossible one reports a negative queue and an occupancy of 2.5 (250 %). Used to test input plausibility.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aicity.core.errors import UserError
from aicity.domains.mobility.const import FLOW_PREFIX, SIGNAL_PREFIX
from aicity.domains.mobility.network import Network

IMPOSSIBLE_QUEUE = -3
IMPOSSIBLE_OCCUPANCY = 2.5


@dataclass(frozen=True, slots=True)
class SensorFaults:
    """Which detector groups freeze or turn impossible, from ``after_s`` simulated seconds on."""

    freeze: tuple[str, ...] = ()
    impossible: tuple[str, ...] = ()
    after_s: float = 0.0

    @classmethod
    def parse(cls, data: SensorFaults | Mapping[str, Any] | None) -> SensorFaults | None:
        """From ``{"freeze": [ids], "impossible": [ids], "after_s": s}``; :class:`UserError` when malformed."""
        if data is None or isinstance(data, SensorFaults):
            return data
        if not isinstance(data, Mapping):
            raise UserError(f"sensor_faults must be a mapping, got {type(data).__name__}")
        unknown = set(data) - {"freeze", "impossible", "after_s"}
        if unknown:
            raise UserError(f"sensor_faults has unknown keys {sorted(unknown)} (freeze, impossible, after_s)")
        lists = {}
        for key in ("freeze", "impossible"):
            v = data.get(key, [])
            if isinstance(v, str) or not isinstance(v, (list, tuple)) or not all(isinstance(i, str) for i in v):
                raise UserError(f"sensor_faults.{key} must be a list of detector or signal ids, got {v!r}")
            lists[key] = tuple(v)
        after = data.get("after_s", 0.0)
        if isinstance(after, bool) or not isinstance(after, (int, float)) or after < 0:
            raise UserError(f"sensor_faults.after_s must be a number >= 0, got {after!r}")
        return cls(lists["freeze"], lists["impossible"], float(after))

    def resolve(self, net: Network) -> tuple[set[str], set[str]]:
        """Detector-group keys (``in:<lane>`` / ``out:<lane>``) that freeze and that turn impossible."""
        return _keys(self.freeze, net, "freeze"), _keys(self.impossible, net, "impossible")


def _keys(ids: tuple[str, ...], net: Network, what: str) -> set[str]:
    """Accepts flow entity ids, ``in:``/``out:`` keys, incoming lane ids, signal entity ids or signal ids."""
    out: set[str] = set()
    for raw in ids:
        key = raw.removeprefix(FLOW_PREFIX)
        sid = raw.removeprefix(SIGNAL_PREFIX)
        direction, _, lane = key.partition(":")
        if (direction == "in" and lane in net.in_groups) or (direction == "out" and lane in net.out_groups):
            out.add(key)
        elif key in net.in_groups:
            out.add(f"in:{key}")
        elif sid in net.signals:
            out.update(f"in:{ln}" for ln, s in net.lane_signal.items() if s == sid and ln in net.in_groups)
        else:
            raise UserError(f"sensor_faults.{what}: {raw!r} is no detector group, incoming lane or signal "
                            "of this scenario")
    return out
