"""The actuator edge of chargers and batteries: hard limits whatever a planner asks, with the limit named.

Pure functions over frozen limits: :func:`charger_command` (per-charger current limits and steps, no power to a
departed or full EV, no discharge) and :func:`battery_command` (power, ramp and state-of-charge limits). Each
answers the power it will apply, ``applied`` / ``clamped`` / ``refused`` and the limits that bound it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_TOL = 1e-9


@dataclass(frozen=True, slots=True)
class Command:
    """What the edge does with a requested power: the power applied, the status, the limits that bound it."""

    kw: float
    status: str
    bound_by: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ChargerLimits:
    """One charger's limits: maximum power, the smallest non-zero power (6 A), the step (1 A), the safe rate."""

    max_kw: float
    min_kw: float
    step_kw: float
    safe_kw: float

    def __post_init__(self) -> None:
        if not 0 < self.min_kw <= self.max_kw or self.step_kw <= 0 or not 0 <= self.safe_kw <= self.max_kw:
            raise ValueError(f"charger limits do not fit together: {self}")

    def quantize(self, kw: float) -> float:
        """The nearest power the charger can honour (0, or a step from the minimum up to the maximum)."""
        if kw < self.min_kw / 2:
            return 0.0
        steps = round((min(kw, self.max_kw) - self.min_kw) / self.step_kw)
        return min(self.max_kw, self.min_kw + max(0, steps) * self.step_kw)


def charger_command(limits: ChargerLimits, kw: object, *, connected: bool, full: bool) -> Command:
    """The power a charger applies for a requested ``kw``."""
    if isinstance(kw, bool) or not isinstance(kw, int | float) or not math.isfinite(kw):
        return Command(0.0, "refused", ("finite_setpoint",), f"setpoint {kw!r} is not a finite number of kW")
    want = float(kw)
    if not connected:
        if want > _TOL:
            return Command(0.0, "refused", ("no_ev_connected",), "no EV is connected: no power to a departed EV")
        return Command(0.0, "applied")
    bound: list[str] = []
    if want < -_TOL:
        bound.append("no_discharge")
        want = 0.0
    if full and want > _TOL:
        return Command(0.0, "clamped", ("ev_full",), "the EV is full: it takes no more power")
    if want > limits.max_kw + _TOL:
        bound.append(f"max_power {limits.max_kw:g} kW")
    got = limits.quantize(max(0.0, want))
    if 0 < want < limits.min_kw - _TOL:
        bound.append(f"min_power {limits.min_kw:g} kW")
    elif abs(got - min(want, limits.max_kw)) > 1e-6 and not bound:
        bound.append(f"power_step {limits.step_kw:g} kW")
    return Command(got, "clamped" if bound else "applied", tuple(bound))


@dataclass(frozen=True, slots=True)
class BatteryLimits:
    """A battery's limits: power, energy, state-of-charge band, ramp per decision, one-way efficiency."""

    power_kw: float
    capacity_kwh: float
    soc_min: float = 0.1
    soc_max: float = 0.95
    ramp_kw: float = math.inf
    efficiency: float = 0.95

    def __post_init__(self) -> None:
        if not (self.power_kw > 0 and self.capacity_kwh > 0 and 0 <= self.soc_min < self.soc_max <= 1
                and self.ramp_kw > 0 and 0 < self.efficiency <= 1):
            raise ValueError(f"battery limits do not fit together: {self}")


def battery_command(limits: BatteryLimits, kw: object, *, soc_kwh: float, prev_kw: float, dt_h: float) -> Command:
    """The power (positive charges) a battery applies for one interval of ``dt_h`` hours."""
    if isinstance(kw, bool) or not isinstance(kw, int | float) or not math.isfinite(kw):
        return Command(0.0, "refused", ("finite_setpoint",), f"setpoint {kw!r} is not a finite number of kW")
    want = float(kw)
    bound: list[str] = []
    got = min(max(want, -limits.power_kw), limits.power_kw)
    if got != want:
        bound.append(f"power_limit {limits.power_kw:g} kW")
    lo, hi = prev_kw - limits.ramp_kw, prev_kw + limits.ramp_kw
    if not lo - _TOL <= got <= hi + _TOL:
        got = min(max(got, lo), hi)
        bound.append(f"ramp_limit {limits.ramp_kw:g} kW per interval")
    room_up = max(0.0, limits.soc_max * limits.capacity_kwh - soc_kwh) / (limits.efficiency * dt_h)
    room_down = max(0.0, soc_kwh - limits.soc_min * limits.capacity_kwh) * limits.efficiency / dt_h
    if got > room_up + _TOL:
        got = room_up
        bound.append(f"soc_max {limits.soc_max:.0%}")
    elif got < -room_down - _TOL:
        got = -room_down
        bound.append(f"soc_min {limits.soc_min:.0%}")
    return Command(got, "clamped" if bound else "applied", tuple(bound))


def battery_step(limits: BatteryLimits, kw: float, soc_kwh: float, dt_h: float) -> float:
    """State of charge after ``kw`` for ``dt_h`` hours (losses on both ways), kept inside the band."""
    delta = kw * limits.efficiency * dt_h if kw >= 0 else kw / limits.efficiency * dt_h
    return min(max(soc_kwh + delta, limits.soc_min * limits.capacity_kwh), limits.soc_max * limits.capacity_kwh)
