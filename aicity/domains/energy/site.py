"""The physical model a twin runs and the oracle optimises: chargers, sessions, batteries, loads, PV, prices.

:class:`Site` is ground truth (it holds future arrivals, loads and weather): the twin and the oracle read it,
planners never do. Nodes are the grid buses assets hang on (one node for a site with a single meter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from aicity.domains.energy.data import Session
from aicity.domains.energy.edge import BatteryLimits, ChargerLimits

FArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class Charger:
    """One charger: its id, limits, node and equity group."""

    cid: str
    limits: ChargerLimits
    node: int = 0
    group: str = "all"


@dataclass(frozen=True, slots=True)
class Battery:
    """One stationary battery: id, limits, initial state of charge (share), node."""

    bid: str
    limits: BatteryLimits
    soc0: float = 0.5
    node: int = 0


@dataclass(frozen=True, slots=True)
class Site:
    """Everything the twin simulates, indexed by step from ``epoch`` (``step_s`` seconds each).

    ``sessions`` name their charger in ``Session.station``; ``base_kw`` and ``pv_kw`` are per node × step
    (kW, ground truth); ``price`` ($/kWh) and ``carbon`` (kg/kWh) per step; ``demand_charge`` in $ per kW of
    the window's peak; ``limit_kw`` the transformer's rating.
    """

    name: str
    epoch: datetime
    step_s: float
    n_steps: int
    chargers: tuple[Charger, ...]
    sessions: tuple[Session, ...]
    price: FArray
    carbon: FArray
    limit_kw: float
    demand_charge: float
    nodes: tuple[str, ...] = ("site",)
    base_kw: FArray = field(default_factory=lambda: np.zeros((1, 0)))
    pv_kw: FArray = field(default_factory=lambda: np.zeros((1, 0)))
    batteries: tuple[Battery, ...] = ()
    grid: Any = None
    node_districts: tuple[str, ...] = ("site",)
    pv_kwp: tuple[float, ...] = ()
    history_kw: FArray = field(default_factory=lambda: np.zeros((1, 0)))
    """What the bus meters read over the steps before the window (net load per node × step, kW): the past
    readings a real grid operator has, for forecasters to learn from before the window (empty: none)."""
    history_arrivals: tuple[tuple[float, float], ...] = ()
    """Past sessions' ``(arrival s after the epoch, negative; kWh)`` over the same span (the chargers' records)."""

    @property
    def dt_h(self) -> float:
        """Step length in hours."""
        return self.step_s / 3600.0

    def step_of(self, t_s: float) -> int:
        """The step containing epoch second ``t_s``."""
        return math.floor(t_s / self.step_s + 1e-9)

    def base_at(self, k: int) -> FArray:
        """Inflexible load per node at step ``k`` (kW)."""
        return self.base_kw[:, k] if self.base_kw.shape[1] > k else np.zeros(len(self.nodes))

    def pv_at(self, k: int) -> FArray:
        """PV output per node at step ``k`` (kW)."""
        return self.pv_kw[:, k] if self.pv_kw.shape[1] > k else np.zeros(len(self.nodes))

    def charger(self, cid: str) -> Charger | None:
        """The charger called ``cid``."""
        return next((c for c in self.chargers if c.cid == cid), None)


def availability(arrival_s: float, departure_s: float, begin_step: int, n: int, step_s: float) -> FArray:
    """Share of each of ``n`` steps from ``begin_step`` an EV can be dispatched: whole steps from the first
    decision after it plugs in, the last step up to its departure."""
    out = np.zeros(n)
    first = math.ceil(arrival_s / step_s - 1e-9) - begin_step
    last = departure_s / step_s - begin_step
    for k in range(max(0, first), min(n, math.ceil(last))):
        out[k] = min(1.0, last - k)
    return out
