"""The forecaster protocol of aicity, in the spirit of river: learn one observation, forecast a horizon.

Stable API (other packages, e.g. the mobility AI controller, rely on it):

* :class:`Forecast` — a frozen result: ``mean`` (one float per step), ``intervals`` mapping a coverage
  level (``0.8``, ``0.9``) to one ``(lower, upper)`` pair per step, the ``model`` name, its ``version``
  and ``n_observations`` learned so far.
* :class:`Forecaster` — one series: ``learn_one(y, x=None, t=None)``, ``forecast(horizon, xs=None)``,
  ``clone()``. ``y`` is the value observed at time ``t`` (optional; models that know the season use the
  step count). ``x`` are optional exogenous features (ignored by models that do not use them).
* :class:`MultiForecaster` — many series at once: ``learn_one(series_id, y, x=None, t=None)``,
  ``learn_step(values, t=None)`` (every series observed at the same time; cross-series models need this),
  ``forecast(series_id, horizon)``, ``forecast_all(horizon)``, ``clone()``, ``series_ids``.
* :class:`PerSeries` — a :class:`MultiForecaster` keeping one independent :class:`Forecaster` per series id.
* :class:`CrossSeriesForecaster` — the base of models that learn from neighbouring series (e.g. the other
  detectors of an intersection); they implement ``learn_step`` and read every series' recent values.

Every forecaster is deterministic given its constructor arguments (``seed`` where randomness is used),
never mutates the mappings passed to it, and can be cloned (fresh, unfitted, same parameters) and pickled.

Example::

    from aicity.forecast import registry
    model = registry.make("default", period=96)      # a Forecaster with 80 % / 90 % conformal intervals
    for y in counts:
        model.learn_one(y)
    fc = model.forecast(4)
    fc.mean[0], fc.intervals[0.9][0]                  # next step's mean and 90 % interval
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

LEVELS: tuple[float, ...] = (0.8, 0.9)
"""The interval coverage levels every registered forecaster reports."""

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Forecast:
    """A forecast of ``len(mean)`` steps: means and, per coverage level, one ``(lower, upper)`` per step."""

    mean: tuple[float, ...]
    intervals: Mapping[float, tuple[Interval, ...]] = field(default_factory=dict)
    model: str = ""
    version: str = ""
    n_observations: int = 0

    @property
    def horizon(self) -> int:
        """Number of steps forecast."""
        return len(self.mean)

    def interval(self, level: float, step: int) -> Interval:
        """The ``(lower, upper)`` interval at ``level`` for step ``step`` (0-based)."""
        return self.intervals[level][step]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (levels become strings such as ``"0.9"``)."""
        return {
            "mean": list(self.mean),
            "intervals": {str(lv): [list(p) for p in pairs] for lv, pairs in self.intervals.items()},
            "model": self.model,
            "version": self.version,
            "n_observations": self.n_observations,
        }


def check_horizon(horizon: int) -> int:
    """Validate a horizon: a positive int."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    return horizon


class Forecaster(abc.ABC):
    """One series, learned online: ``learn_one`` each observation, ``forecast`` any horizon."""

    name: ClassVar[str] = "forecaster"
    version: ClassVar[str] = "1"

    def __init__(self) -> None:
        self.n_observations = 0

    @abc.abstractmethod
    def learn_one(self, y: float, x: Mapping[str, float] | None = None, t: datetime | None = None) -> None:
        """Learn the value ``y`` observed (at time ``t``, with optional features ``x``)."""

    @abc.abstractmethod
    def forecast(self, horizon: int, xs: Sequence[Mapping[str, float]] | None = None) -> Forecast:
        """Forecast the next ``horizon`` steps (``xs``: optional features for each future step)."""

    @abc.abstractmethod
    def _params(self) -> dict[str, Any]:
        """Constructor arguments, used by :meth:`clone`."""

    def clone(self) -> Forecaster:
        """A fresh, unfitted copy with the same parameters."""
        return type(self)(**copy.deepcopy(self._params()))


class MultiForecaster(abc.ABC):
    """Many series learned online; series are named by string ids."""

    name: ClassVar[str] = "multi"
    version: ClassVar[str] = "1"

    @property
    @abc.abstractmethod
    def series_ids(self) -> tuple[str, ...]:
        """Ids of the series seen so far, in first-seen order."""

    @abc.abstractmethod
    def learn_step(self, values: Mapping[str, float], t: datetime | None = None) -> None:
        """Learn one time step: the value of every series observed at ``t``."""

    def learn_one(self, series_id: str, y: float, x: Mapping[str, float] | None = None,
                  t: datetime | None = None) -> None:
        """Learn one value of one series (cross-series models buffer it until the step is complete)."""
        self.learn_step({series_id: y}, t)

    @abc.abstractmethod
    def forecast(self, series_id: str, horizon: int) -> Forecast:
        """Forecast ``horizon`` steps of one series; ``KeyError`` for a series never seen."""

    def forecast_all(self, horizon: int) -> dict[str, Forecast]:
        """Forecasts of every series seen."""
        return {sid: self.forecast(sid, horizon) for sid in self.series_ids}

    @abc.abstractmethod
    def clone(self) -> MultiForecaster:
        """A fresh, unfitted copy with the same parameters."""


class PerSeries(MultiForecaster):
    """Keeps one independent :class:`Forecaster` per series id, each a clone of ``template``."""

    def __init__(self, template: Forecaster) -> None:
        self.template = template
        self.models: dict[str, Forecaster] = {}
        self.name = template.name  # type: ignore[misc]
        self.version = template.version  # type: ignore[misc]

    @property
    def series_ids(self) -> tuple[str, ...]:
        """Ids of the series seen so far."""
        return tuple(self.models)

    def model(self, series_id: str) -> Forecaster:
        """The model of ``series_id``, created on first use."""
        m = self.models.get(series_id)
        if m is None:
            m = self.models[series_id] = self.template.clone()
        return m

    def learn_one(self, series_id: str, y: float, x: Mapping[str, float] | None = None,
                  t: datetime | None = None) -> None:
        """Learn one value of one series."""
        self.model(series_id).learn_one(y, x, t)

    def learn_step(self, values: Mapping[str, float], t: datetime | None = None) -> None:
        """Learn the value of each series in ``values``."""
        for sid, y in values.items():
            self.model(sid).learn_one(y, None, t)

    def forecast(self, series_id: str, horizon: int) -> Forecast:
        """Forecast one series."""
        if series_id not in self.models:
            raise KeyError(f"unknown series {series_id!r}")
        return self.models[series_id].forecast(horizon)

    def clone(self) -> PerSeries:
        """Fresh copy, no series learned."""
        return PerSeries(self.template.clone())


class CrossSeriesForecaster(MultiForecaster):
    """Base of models that learn across series: each series' forecast may use its neighbours' values.

    Subclasses implement :meth:`learn_step`, which receives the value of every series at one time.
    ``learn_one`` buffers values until a series repeats or ``t`` changes, then learns the buffered step,
    so feeding one series at a time also works.
    """

    def __init__(self) -> None:
        self._buffer: dict[str, float] = {}
        self._buffer_t: datetime | None = None

    def learn_one(self, series_id: str, y: float, x: Mapping[str, float] | None = None,
                  t: datetime | None = None) -> None:
        """Buffer one value; a completed step (repeated series or new time) is learned."""
        new_time = t is not None and self._buffer_t is not None and t != self._buffer_t
        if series_id in self._buffer or new_time:
            self.flush()
        self._buffer[series_id] = float(y)
        self._buffer_t = t

    def flush(self) -> None:
        """Learn the buffered partial step now."""
        if self._buffer:
            values, t = self._buffer, self._buffer_t
            self._buffer, self._buffer_t = {}, None
            self.learn_step(values, t)


def as_float(value: Any, what: str = "y") -> float:
    """``value`` as a finite float, else ``ValueError`` naming ``what``."""
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a number, got {value!r}") from exc
    if out != out or out in (float("inf"), float("-inf")):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return out


def ids_in_order(first: Iterable[str], more: Iterable[str]) -> list[str]:
    """``first`` then the new ids of ``more``, without repeats."""
    out = list(first)
    seen = set(out)
    for sid in more:
        if sid not in seen:
            seen.add(sid)
            out.append(sid)
    return out
