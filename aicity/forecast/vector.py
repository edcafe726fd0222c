"""Array-backed multi-series models (all series advance together) and the single-series adapter.

State arrays keep the series on their last axis, so a new series id only pads arrays. A missing value
(NaN, or a series absent from a step) is never filled into the data: models skip learning from it and
hold the last observed value only where a lag *feature* is needed.
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import numpy as np

from aicity.forecast.base import (
    CrossSeriesForecaster,
    Forecast,
    Forecaster,
    MultiForecaster,
    as_float,
    check_horizon,
)

FArray = np.ndarray[Any, np.dtype[np.float64]]


def pad_last(arr: np.ndarray[Any, Any], k: int, fill: float) -> np.ndarray[Any, Any]:
    """``arr`` with ``k`` more entries of ``fill`` on its last axis."""
    extra = np.full((*arr.shape[:-1], k), fill, dtype=arr.dtype)
    return np.concatenate([arr, extra], axis=-1)


class Calendar:
    """Time-of-day slot and day type of each step; from ``t`` when given, else from the step count."""

    def __init__(self, period: int) -> None:
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"period must be a positive integer, got {period!r}")
        self.period = period
        self.step = timedelta(minutes=1440 / period) if 1440 % period == 0 else None
        self.n = 0
        self.t: datetime | None = None

    def advance(self, t: datetime | None) -> None:
        """Move to the next step (at time ``t``)."""
        self.n += 1
        self.t = t

    def slot(self, ahead: int = 0) -> int:
        """Slot (0..period-1) of the current step plus ``ahead`` steps."""
        if self.t is not None and self.step is not None:
            minutes = self.t.hour * 60 + self.t.minute
            return (int(minutes * self.period // 1440) + ahead) % self.period
        return (self.n - 1 + ahead) % self.period

    def weekend(self, ahead: int = 0) -> int:
        """1 when the step ``ahead`` falls on a Saturday or Sunday (0 without timestamps)."""
        if self.t is None or self.step is None:
            return 0
        return int((self.t + ahead * self.step).weekday() >= 5)


class VectorModel(CrossSeriesForecaster):
    """Base of array-backed models; subclasses implement ``_init_state``, ``_learn`` and ``predict_array``.

    ``_series_state`` names the state arrays (series on the last axis) and their fill value for new series.
    """

    _series_state: ClassVar[tuple[tuple[str, float], ...]] = ()

    def __init__(self, period: int = 96, seed: int = 0) -> None:
        super().__init__()
        self.period = period
        self.seed = seed
        self.calendar = Calendar(period)
        self._ids: list[str] = []
        self._index: dict[str, int] = {}
        self.n_observations = 0
        self._init_state()

    @abc.abstractmethod
    def _init_state(self) -> None:
        """Allocate state arrays for zero series."""

    @abc.abstractmethod
    def _learn(self, y: FArray) -> None:
        """Learn one step; ``y`` has one value per series (NaN: missing). The calendar is already advanced."""

    @abc.abstractmethod
    def predict_array(self, horizon: int) -> FArray:
        """Point forecasts, shape ``(horizon, n_series)``."""

    def _params(self) -> dict[str, Any]:
        return {"period": self.period, "seed": self.seed}

    def clone(self) -> VectorModel:
        """A fresh, unfitted copy with the same parameters."""
        return type(self)(**copy.deepcopy(self._params()))

    @property
    def series_ids(self) -> tuple[str, ...]:
        """Ids of the series seen so far."""
        return tuple(self._ids)

    @property
    def n_series(self) -> int:
        """Number of series."""
        return len(self._ids)

    def index_of(self, series_id: str) -> int:
        """Position of ``series_id`` in the arrays; ``KeyError`` if unknown."""
        try:
            return self._index[series_id]
        except KeyError:
            raise KeyError(f"unknown series {series_id!r}") from None

    def add_series(self, ids: Sequence[str]) -> None:
        """Register new series ids (existing ones are ignored)."""
        new = [sid for sid in ids if sid not in self._index]
        if not new:
            return
        for sid in new:
            self._index[sid] = len(self._ids)
            self._ids.append(sid)
        self._grow(len(new))

    def _grow(self, k: int) -> None:
        for name, fill in self._series_state:
            setattr(self, name, pad_last(getattr(self, name), k, fill))

    def vector(self, values: Mapping[str, float]) -> FArray:
        """The step's values as an array in series order (NaN for absent series); registers new ids."""
        self.add_series([str(s) for s in values])
        y = np.full(self.n_series, np.nan)
        for sid, v in values.items():
            val = float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else as_float(v, sid)
            y[self._index[str(sid)]] = val
        return y

    def learn_step(self, values: Mapping[str, float], t: datetime | None = None) -> None:
        """Learn one time step of every series (absent or NaN values are treated as missing)."""
        self.learn_array(self.vector(values), t)

    def learn_array(self, y: FArray, t: datetime | None = None) -> None:
        """Learn one step given as an array in :attr:`series_ids` order."""
        self.calendar.advance(t)
        self.n_observations += int(np.count_nonzero(~np.isnan(y)))
        self._learn(y)

    def forecast(self, series_id: str, horizon: int) -> Forecast:
        """Point forecast of one series (no intervals: wrap the model in :class:`Conformal`)."""
        self.flush()
        i = self.index_of(series_id)
        mean = self.predict_array(check_horizon(horizon))[:, i]
        return Forecast(tuple(float(v) for v in mean), {}, self.name, self.version, self.n_observations)

    def forecast_all(self, horizon: int) -> dict[str, Forecast]:
        """Point forecasts of every series."""
        self.flush()
        means = self.predict_array(check_horizon(horizon))
        return {sid: Forecast(tuple(float(v) for v in means[:, i]), {}, self.name, self.version,
                              self.n_observations) for i, sid in enumerate(self._ids)}


class SingleSeries(Forecaster):
    """A :class:`Forecaster` for one series backed by a multi-series model (used by the registry)."""

    SERIES = "y"

    def __init__(self, model: MultiForecaster) -> None:
        super().__init__()
        self.model = model
        self.name = model.name  # type: ignore[misc]
        self.version = model.version  # type: ignore[misc]
        add = getattr(model, "add_series", None)
        if add is not None:
            add([self.SERIES])

    def learn_one(self, y: float, x: Mapping[str, float] | None = None, t: datetime | None = None) -> None:
        """Learn one observation."""
        self.model.learn_step({self.SERIES: as_float(y)}, t)
        self.n_observations += 1

    def forecast(self, horizon: int, xs: Sequence[Mapping[str, float]] | None = None) -> Forecast:
        """Forecast ``horizon`` steps."""
        return self.model.forecast(self.SERIES, horizon)

    def _params(self) -> dict[str, Any]:
        return {"model": self.model}

    def clone(self) -> SingleSeries:
        """A fresh copy."""
        return SingleSeries(self.model.clone())
