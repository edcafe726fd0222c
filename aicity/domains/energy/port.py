"""The grid port a city coupler drives (the city energy twin registers itself as ``RunServices.shared["grid"]``):
where the feeders and districts are, which buses are energised, critical loads on buses, and the EV sessions
whose cars drive in the traffic simulation (held until the coupler plugs them in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

SHARED_NAME = "grid"
"""The key of the grid port in ``RunServices.shared``."""
CRITICAL_KINDS = ("signal", "hospital", "station")
"""Kinds of critical load a coupler may register."""


@dataclass(frozen=True, slots=True)
class DrivenSession:
    """A session of the window whose EV drives to its charger in traffic (times in scenario seconds)."""

    sid: str
    charger: str
    bus: str
    district: str
    planned_arrival_s: float
    departure_s: float
    requested_kwh: float


@dataclass(frozen=True, slots=True)
class CriticalLoad:
    """A load a coupler registered: the entity it serves (e.g. a signal's id), its bus, power and kind."""

    eid: str
    bus: str
    kw: float
    kind: str


@runtime_checkable
class GridPort(Protocol):
    """What a city coupler may ask of the grid and tell it."""

    def feeders(self) -> dict[str, tuple[str, ...]]:
        """Feeder → its bus names."""
        ...

    def bus_districts(self) -> dict[str, str]:
        """Bus → district (``NW``/``NE``/``SW``/``SE``)."""
        ...

    def supplied(self, bus: str) -> bool:
        """Is ``bus`` energised after the last grid step?"""
        ...

    def add_critical_load(self, eid: str, bus: str, kw: float, kind: str) -> None:
        """Register a critical load drawing ``kw`` on ``bus`` whenever it is supplied."""
        ...

    def driven_sessions(self) -> list[DrivenSession]:
        """The sessions whose EVs drive in traffic: from the first call on, held until :meth:`plug_in`."""
        ...

    def plug_in(self, sid: str, t_s: float) -> None:
        """The EV of driven session ``sid`` reached its charger at scenario second ``t_s``."""
        ...

    def departures(self) -> list[tuple[str, float, float]]:
        """Drain the sessions that ended: (sid, scenario second, energy delivered kWh)."""
        ...
