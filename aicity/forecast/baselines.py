"""Baselines: naive (last value), seasonal naive (a day or a week ago) and the seasonal (historic) average."""

from __future__ import annotations

from typing import Any

import numpy as np

from aicity.forecast.vector import FArray, VectorModel


class Naive(VectorModel):
    """Every step forecast as the last observed value (0 before any)."""

    name = "naive"
    version = "1"
    _series_state = (("last", 0.0),)

    def _init_state(self) -> None:
        self.last: FArray = np.zeros(0)

    def _learn(self, y: FArray) -> None:
        ok = ~np.isnan(y)
        self.last[ok] = y[ok]

    def predict_array(self, horizon: int) -> FArray:
        """Repeat the last value."""
        return np.tile(self.last, (horizon, 1))


class SeasonalNaive(VectorModel):
    """Step ``h`` forecast as the value ``season`` steps before it; the last value where that is unknown.

    ``season = period * days`` (``days=1``: a day ago, ``days=7``: a week ago).
    """

    name = "seasonal_naive"
    version = "1"
    _series_state = (("history", np.nan), ("last", 0.0))

    def __init__(self, period: int = 96, seed: int = 0, days: int = 1) -> None:
        self.days = days
        super().__init__(period, seed)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "days": self.days}

    @property
    def season(self) -> int:
        """Season length in steps."""
        return self.period * self.days

    def _init_state(self) -> None:
        self.history: FArray = np.full((self.season, 0), np.nan)
        self.last: FArray = np.zeros(0)

    def _learn(self, y: FArray) -> None:
        self.history[(self.calendar.n - 1) % self.season] = y
        ok = ~np.isnan(y)
        self.last[ok] = y[ok]

    def predict_array(self, horizon: int) -> FArray:
        """Values one season before each future step."""
        n, m = self.calendar.n, self.season
        out = np.empty((horizon, self.n_series))
        for h in range(horizon):
            # the value m steps before step n+h (0-based index n-1+h+1-m), repeated past one season
            back = n + h - m
            while back >= n:
                back -= m
            row = self.history[back % m] if back >= 0 else np.full(self.n_series, np.nan)
            out[h] = np.where(np.isnan(row), self.last, row)
        return out


class SeasonalNaiveDay(SeasonalNaive):
    """Seasonal naive, one day ago."""

    name = "seasonal_naive_day"

    def __init__(self, period: int = 96, seed: int = 0, days: int = 1) -> None:
        super().__init__(period, seed, days)


class SeasonalNaiveWeek(SeasonalNaive):
    """Seasonal naive, one week ago."""

    name = "seasonal_naive_week"

    def __init__(self, period: int = 96, seed: int = 0, days: int = 7) -> None:
        super().__init__(period, seed, days)


class SeasonalAverage(VectorModel):
    """Each step forecast as the mean of all past values in its time-of-day slot (overall mean if none)."""

    name = "seasonal_average"
    version = "1"
    _series_state = (("sums", 0.0), ("counts", 0.0), ("total", 0.0), ("count", 0.0))

    def _init_state(self) -> None:
        self.sums: FArray = np.zeros((self.period, 0))
        self.counts: FArray = np.zeros((self.period, 0))
        self.total: FArray = np.zeros(0)
        self.count: FArray = np.zeros(0)

    def _learn(self, y: FArray) -> None:
        ok = ~np.isnan(y)
        s = self.calendar.slot()
        self.sums[s, ok] += y[ok]
        self.counts[s, ok] += 1
        self.total[ok] += y[ok]
        self.count[ok] += 1

    def predict_array(self, horizon: int) -> FArray:
        """Slot means of the future steps."""
        overall = np.divide(self.total, self.count, out=np.zeros(self.n_series), where=self.count > 0)
        out = np.empty((horizon, self.n_series))
        for h in range(horizon):
            s = self.calendar.slot(h + 1)
            c = self.counts[s]
            out[h] = np.divide(self.sums[s], c, out=overall.copy(), where=c > 0)
        return out
