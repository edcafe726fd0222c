"""Median forecasts: the median of recent values, or of the values at the same time of day on recent days.

Absolute error is smallest at the median, so on sparse counts (mostly zeros) these beat every mean-like model,
and one-off outliers (an anomalous day) barely move them. ``stride=1`` takes the last ``window`` values;
``stride=period`` takes the value at the forecast's time of day on each of the last ``window`` days (the most
recent ones known at forecast time). Missing values are skipped; with nothing known, the last value is forecast.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aicity.forecast.vector import FArray, VectorModel


class Median(VectorModel):
    """Median of the last ``window`` values taken every ``stride`` steps (``stride=0``: one day)."""

    name = "median"
    version = "1"
    _series_state = (("ring", np.nan), ("last", 0.0))

    def __init__(self, period: int = 96, seed: int = 0, window: int = 7, stride: int = 0) -> None:
        self.window = window
        self.stride = stride
        super().__init__(period, seed)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "window": self.window, "stride": self.stride}

    @property
    def step(self) -> int:
        """Steps between the values taken (one day when ``stride`` is 0)."""
        return self.stride if self.stride > 0 else self.period

    def _init_state(self) -> None:
        self.size = self.step * self.window
        self.ring: FArray = np.full((self.size, 0), np.nan)       # value of step n at ring[n % size]
        self.last: FArray = np.zeros(0)

    def _learn(self, y: FArray) -> None:
        self.ring[(self.calendar.n - 1) % self.size] = y
        ok = ~np.isnan(y)
        self.last[ok] = y[ok]

    def predict_array(self, horizon: int) -> FArray:
        """The median of the chosen past values of each future step."""
        n, s = self.calendar.n - 1, self.step
        h = np.arange(1, horizon + 1)
        first = n + h - s * np.ceil(h / s).astype(int)            # latest step <= n in phase with n+h
        back = first[:, None] - s * np.arange(self.window)[None, :]
        valid = back > n - self.size
        vals = np.where(valid[:, :, None], self.ring[np.where(valid, back, 0) % self.size], np.nan)
        ordered = np.sort(vals, axis=1)                            # NaN sort last
        k = np.count_nonzero(~np.isnan(vals), axis=1)[:, None, :]  # known values per step and series
        low = np.take_along_axis(ordered, np.maximum((k - 1) // 2, 0), axis=1)[:, 0]
        high = np.take_along_axis(ordered, np.maximum(k // 2, 0), axis=1)[:, 0]
        return np.asarray(np.where(k[:, 0] > 0, (low + high) / 2.0, self.last[None, :]))
