"""What a dark signal costs: mobility's outage cost model for the orchestration stage (:mod:`aicity.orchestrate.costs`).

From the detectors only: each signal's arrival rate is the vehicles entering its incoming detector groups per
second, smoothed over ``tau_s`` and frozen while the signal has no power (a dark junction's entries measure its
queue, not its demand). A dark signal is an all-way stop; its capacity is taken as ``DARK_CAPACITY_VEH_S`` for the
whole junction (an assumption: the Highway Capacity Manual's all-way-stop departure headways of about 4 s per
vehicle across conflicting approaches, with some multi-lane approaches).

The expected extra delay per vehicle over the look-ahead ``horizon_s`` (``H``) is the Highway Capacity Manual's
time-dependent queueing delay (Kimber–Hollis), with degree of saturation ``x = λ / c`` for arrival rate ``λ`` and
capacity ``c``: a stop (``STOP_DELAY_S``) plus ``H/4 · [(x − 1) + √((x − 1)² + 4x / (c·H))]``. Light traffic
waits about ``x / (2c(1 − x))``; past capacity the queue grows and the mean wait tends to ``(x − 1)·H / 2``.

A junction whose demand exceeds what an all-way stop serves gridlocks; one with light traffic barely notices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aicity.core.domain import Snapshot
from aicity.domains.mobility.const import FLOW_TYPE, POWER_NONE, SIGNAL_TYPE

DARK_CAPACITY_VEH_S = 0.3
"""Vehicles per second an all-way stop serves through a whole junction (assumption, see the module docstring)."""
STOP_DELAY_S = 4.0
"""The delay of stopping and starting again at an all-way stop, per vehicle."""


@dataclass
class DarkSignalDelay:
    """Mobility's outage cost model: expected extra seconds per vehicle if a signal is dark over the look-ahead."""

    horizon_s: float = 900.0
    tau_s: float = 120.0
    capacity_veh_s: float = DARK_CAPACITY_VEH_S
    _rate: dict[str, float] = field(default_factory=dict)
    _dark: set[str] = field(default_factory=set)

    def update(self, snapshot: Snapshot) -> None:
        """Smooth each powered signal's measured arrival rate (vehicles entering its incoming detectors)."""
        self._dark = set()
        entered: dict[str, float] = {}
        period: dict[str, float] = {}
        for e in snapshot.entities.values():  # one pass, in no particular order (sums only)
            if e.type == SIGNAL_TYPE and e.get("powerSource") == POWER_NONE:
                self._dark.add(e.id)
            if e.type != FLOW_TYPE:
                continue
            sig, n, p = e.get("refTrafficSignal"), e.get("intensity"), e.get("observationPeriod")
            if e.get("flowDirection") != "incoming" or not isinstance(sig, str) or not _num(n) or not _num(p) \
                    or p <= 0:
                continue
            entered[sig] = entered.get(sig, 0.0) + float(n)
            period[sig] = float(p)
        for sig, n in entered.items():
            if sig in self._dark:
                continue
            rate = n / period[sig]
            prev = self._rate.get(sig)
            a = 1.0 - math.exp(-period[sig] / self.tau_s)
            self._rate[sig] = rate if prev is None else prev + a * (rate - prev)

    def cost_s(self, entity_id: str) -> float | None:
        """Expected extra seconds per vehicle over the look-ahead if signal ``entity_id`` is dark (None: not a
        signal whose arrivals were measured)."""
        rate = self._rate.get(entity_id)
        if rate is None:
            return None
        return round(dark_delay_s(rate, self.capacity_veh_s, self.horizon_s), 3)


def dark_delay_s(rate: float, capacity: float, horizon_s: float) -> float:
    """Mean extra delay per vehicle at an all-way stop of ``capacity`` veh/s with ``rate`` veh/s arriving over
    ``horizon_s`` (the time-dependent formula in the module docstring)."""
    x = max(0.0, rate) / capacity
    return STOP_DELAY_S + horizon_s / 4.0 * ((x - 1.0) + math.sqrt((x - 1.0) ** 2 + 4.0 * x / (capacity * horizon_s)))


def _num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


__all__ = ["DARK_CAPACITY_VEH_S", "DarkSignalDelay", "dark_delay_s"]
