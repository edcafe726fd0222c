"""Seasonal naive with a learned level correction: ``ŷ(t+h) = r(t+h−m) + φ_h·(y(t) − r(t−m))``.

``m`` is one day (``days=1``) or one week (``days=7``) of steps, taken from the series' step (``period`` steps a
day). ``r`` is the robust seasonal reference: the value itself, unless it was an outlier — more than ``robust``
times the running mean absolute difference away both from its own reference and from the value a day before it
(so a weekly model flags a value only when it is unusual against the day before too) — in which case the value a
season before it stands in (if that one was an outlier or is missing too: nothing, and the last value is the
forecast). So an anomalous day is not repeated a day (or a week) later, while a lasting change of level is
followed after two seasons at most. ``robust=0`` turns this off. ``φ_h`` is the online least-squares slope, per
series and horizon step ``h``, of the seasonal difference ``h`` steps later on today's seasonal difference, from
exponentially weighted sums with a memory of ``memory_days`` days: ``φ = 0`` is seasonal naive, ``φ = 1`` is
"last value plus the seasonal change". It is clipped to ``[0, 1.2]``. With ``persist``, ``φ = 1`` while the newest
value is an outlier: an anomaly under way is assumed to last over the horizon, as naive does, instead of being
expected to snap back to the seasonal pattern. Missing (NaN) values are never learned from.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aicity.forecast.vector import FArray, VectorModel


class SeasonalDiff(VectorModel):
    """Seasonal naive (robust to one-off outliers) plus a per-horizon learned share of today's seasonal difference."""

    name = "seasonal_diff"
    version = "2"
    _series_state = (("ring", np.nan), ("flag", 0.0), ("last", 0.0), ("sab", 0.0), ("sbb", 0.0),
                     ("dev", 0.0), ("dev_n", 0.0))

    def __init__(self, period: int = 96, seed: int = 0, days: int = 1, direct_steps: int = 8,
                 memory_days: float = 7.0, robust: float = 6.0, persist: bool = True) -> None:
        self.days = days
        self.direct_steps = direct_steps
        self.memory_days = memory_days
        self.robust = robust
        self.persist = persist
        super().__init__(period, seed)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "days": self.days, "direct_steps": self.direct_steps,
                "memory_days": self.memory_days, "robust": self.robust,
                "persist": self.persist}

    @property
    def season(self) -> int:
        """Season length in steps."""
        return self.period * self.days

    @property
    def rate(self) -> float:
        """Weight of the newest pair in the exponentially weighted sums."""
        return min(1.0, 1.0 / (self.memory_days * self.period))

    def _init_state(self) -> None:
        self.size = 2 * self.season + self.direct_steps + 1
        self.ring: FArray = np.full((self.size, 0), np.nan)      # value of step n at ring[n % size]
        self.flag: FArray = np.zeros((self.size, 0))             # 1 where that value was an outlier
        self.last: FArray = np.zeros(0)
        self.sab: FArray = np.zeros((self.direct_steps, 0))
        self.sbb: FArray = np.zeros((self.direct_steps, 0))
        self.dev: FArray = np.zeros((2, 0))      # running mean |value - its reference|, |value - a day ago|
        self.dev_n: FArray = np.zeros((2, 0))

    def _values(self, steps: np.ndarray[Any, Any], ring: FArray | None = None) -> FArray:
        """Values at the 0-based steps ``steps``, shape ``(len(steps), n_series)``; NaN when unknown or forgotten."""
        valid = (steps >= 0) & (steps > self.calendar.n - 1 - self.size)
        rows = (self.ring if ring is None else ring)[np.where(valid, steps, 0) % self.size]
        return np.asarray(np.where(valid[:, None], rows, np.nan))

    def _clean(self, steps: np.ndarray[Any, Any]) -> FArray:
        """Robust values at ``steps``: the value, else (outlier or missing) the one a season before, else NaN."""
        v, f = self._values(steps), self._values(steps, self.flag)
        if self.robust <= 0:
            return v
        v2, f2 = self._values(steps - self.season), self._values(steps - self.season, self.flag)
        first = np.where(f == 1.0, np.nan, v)
        return np.asarray(np.where(np.isnan(first), np.where(f2 == 1.0, np.nan, v2), first))

    def _learn(self, y: FArray) -> None:
        n, m = self.calendar.n - 1, self.season
        self.ring[n % self.size] = y
        self.flag[n % self.size] = 0.0
        ok = ~np.isnan(y)
        self.last[ok] = y[ok]
        a = y - self._clean(np.array([n - m]))[0]
        if self.robust > 0:
            d = np.abs(np.stack([a, y - self._values(np.array([n - self.period]))[0]]))   # (check, series)
            if self.days == 1:
                d[1] = d[0]
            seen = ~np.isnan(d)
            warm = self.dev_n >= self.period
            thr = self.robust * self.dev
            out = (seen & warm & (d > thr)).all(axis=0)          # an outlier against a season and a day ago
            self.flag[n % self.size] = out.astype(float)
            self.dev_n += seen
            rate = np.maximum(self.rate, 1.0 / np.maximum(self.dev_n, 1.0))
            step = np.where(warm, np.minimum(d, thr), d) - self.dev
            self.dev = np.where(seen, self.dev + rate * np.where(seen, step, 0.0), self.dev)
        back = n - np.arange(1, self.direct_steps + 1)
        b = self._values(back) - self._clean(back - m)                     # (step, series)
        use = ~np.isnan(a)[None, :] & ~np.isnan(b)
        r = self.rate
        self.sab = np.where(use, self.sab + r * (np.where(use, a[None, :] * b, 0.0) - self.sab), self.sab)
        self.sbb = np.where(use, self.sbb + r * (np.where(use, b * b, 0.0) - self.sbb), self.sbb)

    def phi(self) -> FArray:
        """Current slopes, shape ``(direct_steps, n_series)``."""
        phi = np.divide(self.sab, self.sbb, out=np.zeros_like(self.sab), where=self.sbb > 1e-12)
        return np.asarray(np.clip(phi, 0.0, 1.2))

    def predict_array(self, horizon: int) -> FArray:
        """Robust seasonal reference plus ``φ_h`` times today's seasonal difference."""
        n, m = self.calendar.n - 1, self.season
        phi = self.phi()
        now = self._values(np.array([n]))[0] - self._clean(np.array([n - m]))[0]
        now = np.where(np.isnan(now), 0.0, now)
        h = np.arange(1, horizon + 1)
        back = n + h - m - m * ((h - 1) // m)            # one season before, repeated past a season
        base = self._clean(back)
        p = phi[np.minimum(h, self.direct_steps) - 1]
        if self.robust > 0 and self.persist:
            p = np.where(self.flag[n % self.size][None, :] == 1.0, 1.0, p)   # an outlier now: it persists
        return np.asarray(np.where(np.isnan(base), self.last[None, :], base + p * now[None, :]))
