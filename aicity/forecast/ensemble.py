"""The default forecaster: an online ensemble weighted, per series and horizon step, by each member's recent error.

Every member (a :class:`~aicity.forecast.vector.VectorModel`: naive, seasonal naive by day and by week, seasonal
naive with a learned level correction and outlier-robust references by day and by week, the median of the last
three hours and of the same time of day over the last week, the online RLS models) learns every observation and
forecasts ``direct_steps`` steps ahead at every step. When a value arrives, each member's forecast made ``h`` steps
earlier is scored; ``loss[h, member, series]`` is an exponentially weighted mean absolute error with a memory of
``memory_days`` days. Each error is first capped at ``clip`` times the member's running loss (after a day of
warm-up), so a shock that every member misses (an anomaly starting) grows every loss by the same factor and
leaves the weights as they were, instead of washing out what the losses had learned; a member that keeps
missing still loses weight step after step. The forecast ``h`` steps ahead combines the members with weights
``∝ loss^(−power)``, keeping only members whose loss is within ``keep`` times the best one's (a follow-the-leader
with ties shared): whatever a series looks like — counts, demand in MW, smooth flows — the members that forecast
it best at that horizon lately carry it. Steps beyond ``direct_steps`` use the weights of the last step. Seasons
come from the series' step (``period`` steps a day; a week is ``7·period``). Deterministic: no randomness at all.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from aicity.forecast.baselines import Naive, SeasonalNaiveDay, SeasonalNaiveWeek
from aicity.forecast.median import Median
from aicity.forecast.online import ProfileRLS, SpatialRLS
from aicity.forecast.seasonal import SeasonalDiff
from aicity.forecast.vector import FArray, VectorModel, pad_last

MEMBERS: dict[str, Callable[[int, int], VectorModel]] = {
    "naive": lambda p, s: Naive(p, s),
    "seasonal_naive_day": lambda p, s: SeasonalNaiveDay(p, s),
    "seasonal_naive_week": lambda p, s: SeasonalNaiveWeek(p, s),
    "seasonal_diff_day": lambda p, s: SeasonalDiff(p, s, days=1),
    # only the daily model lets an anomaly under way persist: from the weekly one it cost accuracy on acn-arrivals
    "seasonal_diff_week": lambda p, s: SeasonalDiff(p, s, days=7, persist=False),
    "median_recent": lambda p, s: Median(p, s, window=max(3, p // 8), stride=1),
    "median_week": lambda p, s: Median(p, s, window=7),
    "rls": lambda p, s: ProfileRLS(p, s),
    "spatial": lambda p, s: SpatialRLS(p, s),
}
"""Candidate members by name: each builds a point model from ``(period, seed)``."""


class Ensemble(VectorModel):
    """Online weighting of member models by their recent absolute error, per series and horizon step."""

    name = "ensemble"
    version = "2"

    def __init__(self, period: int = 96, seed: int = 0, members: Sequence[str] = tuple(MEMBERS),
                 direct_steps: int = 8, memory_days: float = 7.0, power: float = 12.0, keep: float = 1.3,
                 fast_rate: float = 0.0, clip: float = 10.0) -> None:
        unknown = [m for m in members if m not in MEMBERS]
        if unknown or not members:
            raise ValueError(f"unknown or no ensemble members {unknown!r}; known: {', '.join(MEMBERS)}")
        self.member_names = tuple(members)
        self.direct_steps = direct_steps
        self.memory_days = memory_days
        self.power = power
        self.keep = keep
        self.fast_rate = fast_rate
        self.clip = clip
        super().__init__(period, seed)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "members": self.member_names, "direct_steps": self.direct_steps,
                "memory_days": self.memory_days, "power": self.power, "keep": self.keep,
                "fast_rate": self.fast_rate, "clip": self.clip}

    def clone(self) -> Ensemble:
        """A fresh, unfitted copy with the same parameters."""
        return Ensemble(**copy.deepcopy(self._params()))

    @property
    def rate(self) -> float:
        """Weight of the newest error in each member's running loss (after a warm-up that averages)."""
        return min(1.0, 1.0 / (self.memory_days * self.period))

    def _init_state(self) -> None:
        hd, k = self.direct_steps, len(self.member_names)
        self.members = [MEMBERS[m](self.period, self.seed) for m in self.member_names]
        self.pending: FArray = np.full((hd, k, hd, 0), np.nan)   # [age-1, member, step-1, series]
        self.loss: FArray = np.zeros((hd, k, 0))                 # [step-1, member, series]
        self.fast: FArray = np.zeros((hd, k, 0))
        self.scored: FArray = np.zeros((hd, k, 0))
        self._cached: FArray | None = None

    def _grow(self, k: int) -> None:
        for m in self.members:
            m.add_series(self._ids)
        self.pending = pad_last(self.pending, k, np.nan)
        self.loss = pad_last(self.loss, k, 0.0)
        self.fast = pad_last(self.fast, k, 0.0)
        self.scored = pad_last(self.scored, k, 0.0)
        self._cached = None

    def learn_array(self, y: FArray, t: datetime | None = None) -> None:
        """Score the members' past forecasts against ``y``, then let every member learn it."""
        super().learn_array(y, t)
        for m in self.members:
            m.learn_array(y, t)
        hd = self.direct_steps
        preds = np.stack([m.predict_array(hd) for m in self.members])     # (member, step, series)
        self.pending[1:] = self.pending[:-1]
        self.pending[0] = preds
        self._cached = self.combine(preds)

    def _learn(self, y: FArray) -> None:
        hd = self.direct_steps
        due = self.pending[np.arange(hd), :, np.arange(hd)]              # (step, member, series)
        ok = ~np.isnan(due) & ~np.isnan(y)[None, None, :]
        err = np.abs(np.where(ok, y[None, None, :] - due, 0.0))
        if self.clip > 0:
            warm = self.scored >= self.period
            err = np.where(warm, np.minimum(err, self.clip * self.loss), err)
        self.scored += ok
        rate = np.maximum(self.rate, 1.0 / np.maximum(self.scored, 1.0))
        self.loss = np.where(ok, self.loss + rate * (err - self.loss), self.loss)
        fast = np.maximum(self.fast_rate, 1.0 / np.maximum(self.scored, 1.0))
        self.fast = np.where(ok, self.fast + fast * (err - self.fast), self.fast)

    def weights(self) -> FArray:
        """Member weights per step and series, shape ``(direct_steps, member, series)``; equal before scoring."""
        loss = np.maximum(self.loss, self.fast) if self.fast_rate > 0 else self.loss
        scale = np.maximum(loss.max(axis=1, keepdims=True), 1e-12)
        rel = np.maximum(loss / scale, 1e-9)                         # scale-free, 1e-9 avoids 1/0
        best = rel.min(axis=1, keepdims=True)
        w = np.where(rel <= self.keep * best, rel ** -self.power, 0.0)
        w = np.where(self.scored > 0, w, 0.0)
        none = w.sum(axis=1, keepdims=True) <= 0
        w = np.where(none, 1.0, w)
        return np.asarray(w / w.sum(axis=1, keepdims=True))

    def combine(self, preds: FArray) -> FArray:
        """Weighted forecasts from member forecasts of shape ``(member, horizon, series)``."""
        w = self.weights()
        steps = np.minimum(np.arange(preds.shape[1]), self.direct_steps - 1)
        return np.asarray(np.einsum("hms,mhs->hs", w[steps], preds))

    def predict_array(self, horizon: int) -> FArray:
        """Combined point forecasts, shape ``(horizon, n_series)``."""
        if self._cached is not None and horizon <= self.direct_steps:
            return self._cached[:horizon]
        if self._cached is None and self.calendar.n == 0:
            return np.zeros((horizon, self.n_series))
        return self.combine(np.stack([m.predict_array(horizon) for m in self.members]))
