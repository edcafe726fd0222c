"""Exponential smoothing: an exponentially weighted level and variance per series (registered as ``ewma``).

Each observed value ``y`` of a series moves its level by ``alpha·(y − level)`` and its weighted variance to
``(1 − alpha)·(var + alpha·(y − level)²)`` (West 1979 / Finch 2009), so after ``k`` steps the weight of an old
value has fallen to ``(1 − alpha)^k``. The forecast is flat: the level at every horizon. ``alpha`` is given
directly or as a time constant ``tau`` in steps, ``alpha = 1 − exp(−1/tau)``; :meth:`Ewma.learn_array` also
takes ``steps`` (a float or one per series) for observations that span more or less than one step, weighted
``1 − exp(−steps/tau)`` — e.g. ``tau`` in seconds with one-second steps and ``steps`` = the observation period.
A NaN value means "not observed this step": that series learns nothing and keeps its level and variance.
A series not yet observed starts from ``prior`` when one is given, otherwise its first value becomes the level.
All state is in arrays with the series on the last axis, so a step costs a few numpy operations for any number
of series.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from aicity.forecast.vector import FArray, VectorModel, pad_last


class Ewma(VectorModel):
    """Exponentially weighted level (and variance) per series with a flat forecast; NaN values are skipped.

    ``tau``: time constant in steps (default: one hour, ``period / 24`` steps, at least 1); ``alpha``: the
    per-step weight instead (give one of the two); ``prior``: the starting level of series not yet observed
    (``None``: the first observation; forecasts of never-observed series are then 0).
    """

    name = "ewma"
    version = "1"

    def __init__(self, period: int = 96, seed: int = 0, tau: float | None = None, alpha: float | None = None,
                 prior: float | None = None) -> None:
        if tau is not None and alpha is not None:
            raise ValueError("give either tau or alpha, not both")
        self._given_tau, self._given_alpha = tau, alpha
        if alpha is not None:
            if isinstance(alpha, bool) or not 0.0 < float(alpha) <= 1.0:
                raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
            self.alpha = float(alpha)
            self.tau = -1.0 / math.log1p(-self.alpha) if self.alpha < 1.0 else 0.0
        else:
            tau_v = float(tau) if tau is not None else max(1.0, period / 24)
            if isinstance(tau, bool) or not math.isfinite(tau_v) or tau_v <= 0.0:
                raise ValueError(f"tau must be a positive number of steps, got {tau!r}")
            self.tau = tau_v
            self.alpha = 1.0 - math.exp(-1.0 / tau_v)
        if prior is not None and not math.isfinite(float(prior)):
            raise ValueError(f"prior must be finite, got {prior!r}")
        self.prior = None if prior is None else float(prior)
        super().__init__(period, seed)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "tau": self._given_tau, "alpha": self._given_alpha, "prior": self.prior}

    def _init_state(self) -> None:
        self.level: FArray = np.zeros(0)
        self.var: FArray = np.zeros(0)
        self.count: np.ndarray[Any, np.dtype[np.int64]] = np.zeros(0, dtype=np.int64)

    def _grow(self, k: int) -> None:
        self.level = pad_last(self.level, k, 0.0 if self.prior is None else self.prior)
        self.var = pad_last(self.var, k, 0.0)
        self.count = pad_last(self.count, k, 0)

    def weight(self, steps: float | FArray = 1.0) -> float | FArray:
        """The weight of one observation spanning ``steps`` steps: ``1 − exp(−steps/tau)`` (``alpha`` at 1)."""
        if isinstance(steps, float | int):
            if steps == 1:
                return self.alpha
            if self.tau == 0.0:
                return 1.0 if steps > 0 else 0.0
            return 1.0 - math.exp(-max(float(steps), 0.0) / self.tau)
        s = np.maximum(np.asarray(steps, dtype=float), 0.0)
        if self.tau == 0.0:
            return np.where(s > 0, 1.0, 0.0)
        return np.asarray(1.0 - np.exp(-s / self.tau))

    def learn_array(self, y: FArray, t: datetime | None = None, steps: float | FArray = 1.0) -> None:
        """Learn one step given in :attr:`series_ids` order (NaN: not observed); ``steps``: its length in steps."""
        self.calendar.advance(t)
        ok = ~np.isnan(y)
        n = int(np.count_nonzero(ok))
        self.n_observations += n
        if n:
            self._update(y, ok, self.weight(steps))

    def _learn(self, y: FArray) -> None:
        ok = ~np.isnan(y)
        if ok.any():
            self._update(y, ok, self.alpha)

    def _update(self, y: FArray, ok: np.ndarray[Any, np.dtype[np.bool_]], a: float | FArray) -> None:
        if self.prior is None:
            first = ok & (self.count == 0)
            if first.any():
                self.level[first] = y[first]
        d = np.where(ok, y - self.level, 0.0)
        w = np.where(ok, a, 0.0)
        self.level += w * d
        self.var = np.where(ok, (1.0 - w) * (self.var + w * d * d), self.var)
        self.count += ok

    def predict_array(self, horizon: int) -> FArray:
        """The level at every step ahead, shape ``(horizon, n_series)``."""
        return np.tile(self.level, (horizon, 1))

    def std_array(self) -> FArray:
        """The exponentially weighted standard deviation of each series (0 before two observations)."""
        return np.sqrt(np.maximum(self.var, 0.0))
