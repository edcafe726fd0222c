"""Drift detection per series on forecast errors, emitting ``EventType.DRIFT`` events for governance.

The monitored value is the absolute one-step error divided by its mean over a reference period (the first
``warmup`` errors, and again after each alarm), so one threshold fits series of any scale.
``page_hinkley`` (own implementation) detects a rise of its mean; ``adwin`` uses river's ADWIN.
On an alarm the detector restarts and the event recommends demoting the model to "advise".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from aicity.core.context import Actor, ActorKind, Context, IdGenerator
from aicity.core.event import Event, EventType

DETECTORS = ("page_hinkley", "adwin")


class Detector(Protocol):
    """A drift detector fed one value at a time."""

    def update(self, x: float) -> bool:
        """Learn ``x``; True when drift is detected."""
        ...


@dataclass(slots=True)
class PageHinkley:
    """Page–Hinkley test for an increase of the mean (``delta`` tolerance, ``threshold`` lambda)."""

    delta: float = 0.5
    threshold: float = 25.0
    min_samples: int = 30
    n: int = 0
    mean: float = 0.0
    cum: float = 0.0
    low: float = 0.0

    def update(self, x: float) -> bool:
        """Learn ``x``; True on an alarm (then restart)."""
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self.cum += x - self.mean - self.delta
        self.low = min(self.low, self.cum)
        if self.n >= self.min_samples and self.cum - self.low > self.threshold:
            self.n, self.mean, self.cum, self.low = 0, 0.0, 0.0, 0.0
            return True
        return False


class Adwin:
    """river's ADWIN on the monitored value."""

    def __init__(self, delta: float = 0.002) -> None:
        from river.drift import ADWIN

        self.delta = delta
        self._d = ADWIN(delta=delta)  # type: ignore[no-untyped-call]

    def update(self, x: float) -> bool:
        """Learn ``x``; True when ADWIN detects a change that raised the mean (errors got worse)."""
        before = float(self._d.estimation)
        self._d.update(x)  # type: ignore[no-untyped-call]
        return bool(self._d.drift_detected) and float(self._d.estimation) > before


@dataclass(slots=True)
class _State:
    detector: Detector
    scale: float = 0.0
    n: int = 0


@dataclass(slots=True)
class DriftMonitor:
    """One detector per series on normalized absolute errors; :meth:`update` returns a DRIFT event or None."""

    model: str
    version: str = "1"
    detector: str = "page_hinkley"
    warmup: int = 100
    params: dict[str, Any] = field(default_factory=dict)
    ids: IdGenerator | None = None
    series: dict[str, _State] = field(default_factory=dict)
    alarms: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")

    def _new(self) -> Detector:
        return PageHinkley(**self.params) if self.detector == "page_hinkley" else Adwin(**self.params)

    def update(self, series_id: str, error: float, time: datetime, parent: Context | None = None,
               entity_id: str | None = None, entity_type: str | None = None) -> Event | None:
        """Feed one forecast error of ``series_id`` observed at ``time``; a DRIFT event on an alarm."""
        if not math.isfinite(error):
            return None
        st = self.series.get(series_id)
        if st is None:
            st = self.series[series_id] = _State(self._new())
        err = abs(error)
        st.n += 1
        if st.n <= self.warmup:             # learn the reference error scale before testing
            st.scale += (err - st.scale) / st.n
            return None
        if not st.detector.update(err / max(st.scale, 1e-9)):
            return None
        st.n, st.scale, st.detector = 0, 0.0, self._new()    # re-learn the reference after an alarm
        actor = Actor(ActorKind.MODEL, f"forecast.drift.{self.detector}")
        ctx = parent.child(actor, self.ids) if parent is not None else Context(actor, None, (self.ids or
                                                                                             IdGenerator())())
        event = Event(EventType.DRIFT, {
            "series_id": series_id, "model": self.model, "version": self.version, "detector": self.detector,
            "time": time.isoformat(), "observations": st.n, "recommendation": "advise",
        }, ctx, time, entity_type, entity_id)
        self.alarms.append(event)
        return event
