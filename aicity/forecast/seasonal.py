"""Seasonal naive with a learned level correction: ``ŷ(t+h) = y(t+h−m) + φ_h·(y(t) − y(t−m))``.

``m`` is one day (``days=1``) or one week (``days=7``) of steps, taken from the series' step (``period`` steps a
day). ``φ_h`` is the online least-squares slope, per series and horizon step ``h``, of the seasonal difference
``h`` steps later on today's seasonal difference, from exponentially weighted sums with a memory of ``memory_days``
days: ``φ = 0`` is seasonal naive, ``φ = 1`` is "last value plus the seasonal change". It is clipped to
``[0, 1.2]``. Where a value a season ago is unknown, the last observed value is the forecast; missing (NaN) values
are never learned from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aicity.forecast.vector import FArray, VectorModel


class SeasonalDiff(VectorModel):
    """Seasonal naive plus a per-horizon learned share of today's seasonal difference."""

    name = "seasonal_diff"
    version = "1"
    _series_state = (("ring", np.nan), ("last", 0.0), ("sab", 0.0), ("sbb", 0.0))

    def __init__(self, period: int = 96, seed: int = 0, days: int = 1, direct_steps: int = 8,
                 memory_days: float = 7.0) -> None:
        self.days = days
        self.direct_steps = direct_steps
        self.memory_days = memory_days
        super().__init__(period, seed)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "days": self.days, "direct_steps": self.direct_steps,
                "memory_days": self.memory_days}

    @property
    def season(self) -> int:
        """Season length in steps."""
        return self.period * self.days

    @property
    def rate(self) -> float:
        """Weight of the newest pair in the exponentially weighted sums."""
        return min(1.0, 1.0 / (self.memory_days * self.period))

    def _init_state(self) -> None:
        self.size = self.season + self.direct_steps + 1
        self.ring: FArray = np.full((self.size, 0), np.nan)      # value of step n at ring[n % size]
        self.last: FArray = np.zeros(0)
        self.sab: FArray = np.zeros((self.direct_steps, 0))
        self.sbb: FArray = np.zeros((self.direct_steps, 0))

    def _values(self, steps: np.ndarray[Any, Any]) -> FArray:
        """Values at the 0-based steps ``steps``, shape ``(len(steps), n_series)``; NaN when unknown or forgotten."""
        valid = (steps >= 0) & (steps > self.calendar.n - 1 - self.size)
        rows = self.ring[np.where(valid, steps, 0) % self.size]
        return np.asarray(np.where(valid[:, None], rows, np.nan))

    def _learn(self, y: FArray) -> None:
        n, m = self.calendar.n - 1, self.season
        self.ring[n % self.size] = y
        ok = ~np.isnan(y)
        self.last[ok] = y[ok]
        a = y - self._values(np.array([n - m]))[0]
        back = n - np.arange(1, self.direct_steps + 1)
        b = self._values(back) - self._values(back - m)                    # (step, series)
        use = ~np.isnan(a)[None, :] & ~np.isnan(b)
        r = self.rate
        self.sab = np.where(use, self.sab + r * (np.where(use, a[None, :] * b, 0.0) - self.sab), self.sab)
        self.sbb = np.where(use, self.sbb + r * (np.where(use, b * b, 0.0) - self.sbb), self.sbb)

    def phi(self) -> FArray:
        """Current slopes, shape ``(direct_steps, n_series)``."""
        phi = np.divide(self.sab, self.sbb, out=np.zeros_like(self.sab), where=self.sbb > 1e-12)
        return np.asarray(np.clip(phi, 0.0, 1.2))

    def predict_array(self, horizon: int) -> FArray:
        """Seasonal naive plus ``φ_h`` times today's seasonal difference."""
        n, m = self.calendar.n - 1, self.season
        phi = self.phi()
        now = self._values(np.array([n]))[0] - self._values(np.array([n - m]))[0]
        now = np.where(np.isnan(now), 0.0, now)
        h = np.arange(1, horizon + 1)
        back = n + h - m - m * ((h - 1) // m)            # one season before, repeated past a season
        base = self._values(back)
        p = phi[np.minimum(h, self.direct_steps) - 1]
        return np.asarray(np.where(np.isnan(base), self.last[None, :], base + p * now[None, :]))
