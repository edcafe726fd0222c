"""Time behind one interface: simulated (driven by a twin) or wall time. Nothing else reads the system time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time (timezone-aware, UTC)."""

    def now(self) -> datetime:
        """The current time."""
        ...


class WallClock:
    """The real time."""

    def now(self) -> datetime:
        """The system's current UTC time."""
        return datetime.now(UTC)


class SimClock:
    """Simulated time: starts at ``start`` and moves only when the twin says so."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("SimClock needs a timezone-aware start time")
        self._start = start
        self._now = start

    @property
    def start(self) -> datetime:
        """The simulated start time."""
        return self._start

    def now(self) -> datetime:
        """The current simulated time."""
        return self._now

    @property
    def elapsed_s(self) -> float:
        """Seconds simulated since the start."""
        return (self._now - self._start).total_seconds()

    def advance(self, seconds: float) -> datetime:
        """Move time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set_elapsed(self, seconds: float) -> datetime:
        """Set time to ``start + seconds``; must not move backwards."""
        target = self._start + timedelta(seconds=seconds)
        if target < self._now:
            raise ValueError("a clock cannot go backwards")
        self._now = target
        return self._now
