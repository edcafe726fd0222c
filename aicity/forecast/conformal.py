"""Online conformal prediction intervals around any point model, calibrated on its own recent errors.

At every step the wrapped model forecasts ``calibrate_steps`` steps ahead; when the value arrives, each step's
forecast error gives a nonconformity score ``|y - ŷ| / scale``. Per series, step and level, the interval
half-width multiplier ``q`` is updated by online quantile tracking (the "P" part of conformal PID control,
Angelopoulos et al. 2023, a variant of adaptive conformal inference, Gibbs & Candès 2021):
``q += eta * (miss - alpha)``, which keeps long-run miscoverage at ``alpha`` whatever the data. ``scale`` is
``sqrt(|ŷ| + 1)`` (count-like data, ``score="sqrt"``), a running mean of ``|error|`` per step (``score="abs"``),
or (``score="slot"``, scale-free and aware of the time of day) a running mean of ``|error|`` per step and
time-of-day slot of the target, with a memory of ``slot_days`` days, floored at a quarter of the step's overall
running mean (so quiet night slots keep a usable width). Steps beyond ``calibrate_steps`` use the last
calibrated step's multiplier.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from aicity.forecast.base import LEVELS, CrossSeriesForecaster, Forecast, check_horizon
from aicity.forecast.vector import FArray, VectorModel, pad_last

SCORES = ("sqrt", "abs", "slot")


class Conformal(CrossSeriesForecaster):
    """Wraps a :class:`VectorModel` and adds conformal intervals at ``levels`` to its forecasts."""

    def __init__(self, model: VectorModel, levels: tuple[float, ...] = LEVELS, calibrate_steps: int = 8,
                 eta: float = 0.05, score: str = "sqrt", abs_rate: float = 0.02, slot_days: float = 14.0) -> None:
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if not all(0.0 < lv < 1.0 for lv in levels):
            raise ValueError(f"levels must lie in (0, 1), got {levels!r}")
        super().__init__()
        self.model = model
        self.levels = tuple(levels)
        self.calibrate_steps = calibrate_steps
        self.eta = eta
        self.score = score
        self.abs_rate = abs_rate
        self.slot_days = slot_days
        self.name = model.name  # type: ignore[misc]
        self.version = model.version  # type: ignore[misc]
        hc, nl = calibrate_steps, len(self.levels)
        self.pending: FArray = np.full((hc, hc, 0), np.nan)   # [age-1, step-1, series]: past forecasts
        self.q: FArray = np.zeros((nl, hc, 0))
        self.mean_abs: FArray = np.ones((hc, 0))
        self.misses: FArray = np.zeros((nl, hc, 0))
        self.scored: FArray = np.zeros((hc, 0))
        period = model.period if score == "slot" else 1
        self.slot_abs: FArray = np.zeros((hc, period, 0))   # [step-1, slot of the target, series]
        self.slot_n: FArray = np.zeros((hc, period, 0))
        self._cached: FArray | None = None
        self._grow_to(model.n_series)

    def _params(self) -> dict[str, Any]:
        return {"levels": self.levels, "calibrate_steps": self.calibrate_steps, "eta": self.eta,
                "score": self.score, "abs_rate": self.abs_rate, "slot_days": self.slot_days}

    def clone(self) -> Conformal:
        """A fresh copy (the wrapped model cloned too)."""
        return Conformal(self.model.clone(), **self._params())

    @property
    def series_ids(self) -> tuple[str, ...]:
        """Series of the wrapped model."""
        return self.model.series_ids

    @property
    def n_observations(self) -> int:
        """Observations learned by the wrapped model."""
        return self.model.n_observations

    def add_series(self, ids: list[str]) -> None:
        """Register series ids."""
        self.model.add_series(ids)
        self._grow_to(self.model.n_series)

    def _grow_to(self, n: int) -> None:
        k = n - self.q.shape[-1]
        if k > 0:
            self.pending = pad_last(self.pending, k, np.nan)
            self.q = pad_last(self.q, k, 1.0 if self.score == "abs" else 1.5)
            self.mean_abs = pad_last(self.mean_abs, k, 1.0)
            self.misses = pad_last(self.misses, k, 0.0)
            self.scored = pad_last(self.scored, k, 0.0)
            self.slot_abs = pad_last(self.slot_abs, k, 0.0)
            self.slot_n = pad_last(self.slot_n, k, 0.0)

    def _scale(self, mean: FArray, steps: Any, slots: Any = None) -> FArray:
        if self.score == "sqrt":
            return np.sqrt(np.abs(mean) + 1.0)
        overall = np.asarray(self.mean_abs[steps])
        if self.score == "abs":
            return overall
        hs = np.arange(self.calibrate_steps)[steps]
        known = self.slot_n[hs, slots] > 0
        by_slot = np.where(known, self.slot_abs[hs, slots], overall)
        return np.asarray(np.maximum(by_slot, 0.25 * overall) + 1e-9)

    def _slots(self, ahead: Any) -> Any:
        """Time-of-day slots of the steps ``ahead`` of the model's last learned step."""
        if self.score != "slot":
            return None
        return np.array([self.model.calendar.slot(int(a)) for a in np.ravel(ahead)])

    def learn_step(self, values: Any, t: datetime | None = None) -> None:
        """Score the past forecasts against the new values, then let the model learn them."""
        y = self.model.vector(values)
        self._grow_to(self.model.n_series)
        self.learn_array(y, t)

    def learn_array(self, y: FArray, t: datetime | None = None) -> None:
        """As :meth:`learn_step`, values as an array in series order."""
        hc = self.calibrate_steps
        due = self.pending[np.arange(hc), np.arange(hc)]               # (hc, S): forecasts of this value
        ok = ~np.isnan(due) & ~np.isnan(y)[None, :]
        err = np.abs(np.where(ok, y[None, :] - due, 0.0))
        now = self._slots(np.ones(hc, dtype=int))            # every due forecast targets this step
        scale = self._scale(due, slice(None), now)
        score = err / np.maximum(scale, 1e-9)
        for i, level in enumerate(self.levels):
            miss = (score > self.q[i]).astype(float)
            self.q[i] = np.where(ok, np.maximum(self.q[i] + self.eta * (miss - (1.0 - level)), 0.0), self.q[i])
            self.misses[i] += np.where(ok, miss, 0.0)
        self.scored += ok
        self.mean_abs = np.where(ok, self.mean_abs + self.abs_rate * (err - self.mean_abs), self.mean_abs)
        if now is not None:
            hs = np.arange(hc)
            cnt = self.slot_n[hs, now] + ok
            rate = np.where(ok, np.maximum(1.0 / (self.slot_days), 1.0 / np.maximum(cnt, 1.0)), 0.0)
            self.slot_abs[hs, now] += rate * (err - self.slot_abs[hs, now])
            self.slot_n[hs, now] = cnt
        self.model.learn_array(y, t)
        pred = self.model.predict_array(hc)
        self.pending[1:] = self.pending[:-1]
        self.pending[0] = pred
        self._cached = pred

    def means(self, horizon: int) -> FArray:
        """Point forecasts, shape ``(horizon, S)`` (cached from the last step when possible)."""
        self.flush()
        if self._cached is not None and horizon <= self.calibrate_steps:
            return self._cached[:horizon]
        return self.model.predict_array(horizon)

    def intervals_array(self, mean: FArray) -> dict[float, tuple[FArray, FArray]]:
        """Lower and upper bounds per level for ``mean`` of shape ``(horizon, S)``."""
        h = mean.shape[0]
        steps = np.minimum(np.arange(h), self.calibrate_steps - 1)
        scale = self._scale(mean, steps, self._slots(np.arange(1, h + 1)))
        out = {}
        for i, level in enumerate(self.levels):
            half = self.q[i][steps] * scale
            out[level] = (mean - half, mean + half)
        return out

    def forecast(self, series_id: str, horizon: int) -> Forecast:
        """Mean and intervals of one series."""
        self.flush()
        j = self.model.index_of(series_id)
        mean = self.means(check_horizon(horizon))
        return self._pack(mean, self.intervals_array(mean), j)

    def forecast_all(self, horizon: int) -> dict[str, Forecast]:
        """Means and intervals of every series."""
        mean = self.means(check_horizon(horizon))
        iv = self.intervals_array(mean)
        return {sid: self._pack(mean, iv, j) for j, sid in enumerate(self.model.series_ids)}

    def forecast_level(self, horizon: int, level: float) -> tuple[FArray, FArray, FArray]:
        """Means and one level's lower and upper bounds of every series, each ``(horizon, S)`` in series order (what
        :meth:`forecast_all` gives, as arrays, without packing a :class:`Forecast` per series and level)."""
        if level not in self.levels:
            raise ValueError(f"interval level {level} is not calibrated; levels: {', '.join(map(str, self.levels))}")
        mean = self.means(check_horizon(horizon))
        lo, hi = self.intervals_array(mean)[level]
        return mean, lo, hi

    def _pack(self, mean: FArray, iv: dict[float, tuple[FArray, FArray]], j: int) -> Forecast:
        m = tuple(mean[:, j].astype(float).tolist())
        intervals = {lv: tuple(zip(lo[:, j].astype(float).tolist(), hi[:, j].astype(float).tolist(), strict=True))
                     for lv, (lo, hi) in iv.items()}
        return Forecast(m, intervals, self.name, self.version, self.model.n_observations)

    def coverage(self) -> dict[float, float]:
        """Running in-sample coverage per level (all series and steps)."""
        total = float(self.scored.sum())
        return {lv: (1.0 - float(self.misses[i].sum()) / total) if total else float("nan")
                for i, lv in enumerate(self.levels)}
