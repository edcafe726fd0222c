"""Signal cabinets on mains power with a battery backup: what a signal does when the grid fails.

A cabinet that loses mains keeps running its signal normally on its battery for ``backup_s`` seconds; then the
signal goes **dark** (every approach becomes an all-way stop) until mains returns, when it restarts on its
fixed-time program. :class:`CabinetPower` is the pure state machine of every cabinet of a twin (no SUMO): the
twin feeds it the time before each 1 s step and shows what it says; it also counts signal-seconds on battery
and dark. :class:`SignalPowerPort` is the port a city coupler drives (the mobility twin registers itself as
``RunServices.shared["signals"]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aicity.core.entity import Entity
from aicity.domains.mobility.const import POWER_BATTERY, POWER_MAINS, POWER_NONE


@runtime_checkable
class SignalPowerPort(Protocol):
    """Signals whose cabinets a city coupler powers: cut or restore mains per signal, locate signals."""

    def set_mains(self, tls: str, powered: bool, t_s: float | None = None) -> None:
        """Mains at signal ``tls`` lost (``powered=False``) or back, at simulation time ``t_s`` (default now)."""
        ...

    def signal_xy(self) -> Mapping[str, tuple[float, float]]:
        """Network coordinates of each signal."""
        ...

    def signal_districts(self) -> dict[str, str]:
        """Signal → district (``NW``/``NE``/``SW``/``SE``)."""
        ...


@dataclass(frozen=True, slots=True)
class PowerChange:
    """One cabinet's change of power source (``mains``, ``battery`` or ``none``: dark) from ``previous``."""

    signal: str
    source: str
    time: float
    previous: str


class CabinetPower:
    """Power source of every signal cabinet of a twin, on one clock (seconds, any origin)."""

    def __init__(self, signals: Iterable[str], backup_s: float) -> None:
        if backup_s < 0:
            raise ValueError(f"battery backup must be >= 0 s, got {backup_s}")
        self.backup_s = float(backup_s)
        self._source = dict.fromkeys(sorted(signals), POWER_MAINS)
        self._lost_at: dict[str, float] = {}
        self._since: dict[str, float] = {}
        self.battery_s = 0.0
        """Signal-seconds run on battery so far."""
        self.dark_s = 0.0
        """Signal-seconds dark so far."""

    def source(self, signal: str) -> str:
        """``mains``, ``battery`` or ``none`` (dark)."""
        return self._source[signal]

    def since(self, signal: str) -> float | None:
        """When the signal's current power source began (None: on mains since the start)."""
        return self._since.get(signal)

    @property
    def dark(self) -> list[str]:
        """The signals dark now, sorted."""
        return [s for s, src in self._source.items() if src == POWER_NONE]

    @property
    def all_on_mains(self) -> bool:
        """True when no cabinet runs on battery or is dark (nothing to do each step)."""
        return not self._lost_at

    def set_mains(self, signal: str, powered: bool, now: float, lost_at: float | None = None) -> list[PowerChange]:
        """Mains lost (``powered=False``; the battery clock starts at ``lost_at``, default ``now``) or back.

        Repeating the current state changes nothing (a second loss does not restart the battery clock).
        """
        if signal not in self._source:
            raise KeyError(signal)
        if powered:
            if self._source[signal] == POWER_MAINS:
                return []
            del self._lost_at[signal]
            return [self._change(signal, POWER_MAINS, now)]
        if self._source[signal] != POWER_MAINS:
            return []
        self._lost_at[signal] = now if lost_at is None else min(lost_at, now)
        out = [self._change(signal, POWER_BATTERY, now)]
        return out + self.tick(now, signal)

    def tick(self, now: float, only: str | None = None) -> list[PowerChange]:
        """Cabinets whose battery is spent at ``now`` go dark; the changes made."""
        out = []
        for sig, lost in sorted(self._lost_at.items()):
            if (only is None or sig == only) and self._source[sig] == POWER_BATTERY \
                    and now - lost >= self.backup_s - 1e-9:
                out.append(self._change(sig, POWER_NONE, now))
        return out

    def count(self, step_s: float) -> None:
        """Add one step of ``step_s`` seconds in the current sources to the battery and dark totals."""
        for sig in self._lost_at:
            if self._source[sig] == POWER_BATTERY:
                self.battery_s += step_s
            else:
                self.dark_s += step_s

    def _change(self, signal: str, source: str, now: float) -> PowerChange:
        previous, self._source[signal] = self._source[signal], source
        self._since[signal] = now
        return PowerChange(signal, source, now, previous)


def is_dark(signal: Entity) -> bool:
    """True when a ``TrafficSignal`` entity reports no power (``powerSource`` ``none``): it cannot be commanded."""
    return bool(signal.get("powerSource") == POWER_NONE)
