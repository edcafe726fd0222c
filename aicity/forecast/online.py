"""Genuinely online learners: direct multi-step recursive least squares on lags and a seasonal profile.

:class:`ProfileRLS` (registry name ``rls``) keeps, per series, an online time-of-day profile (weekday and
weekend), and one linear model per horizon step ``h`` (direct forecasting) with features
``[1, y_t … y_{t-lags+1}, profile(t+h), y_t - profile(t), y_{t+h-week}]``, fitted by recursive least squares
with exponential forgetting at every observation. :class:`SpatialRLS` (``spatial``) adds what neighbouring
series say: the mean deviation from profile over every series (the site) and the deviations of the ``k``
series whose past deviations best predict this one's (chosen online from lagged correlations, re-chosen
once a day).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aicity.forecast.vector import FArray, VectorModel, pad_last


class ProfileRLS(VectorModel):
    """Direct multi-step RLS on lags, a weekday/weekend time-of-day profile and last week's value."""

    name = "rls"
    version = "1"
    _series_state = (("lags", 0.0), ("week", np.nan), ("profile", 0.0), ("profile_n", 0.0),
                     ("P", 0.0), ("W", 0.0), ("feats", 0.0), ("valid", 0.0))

    def __init__(self, period: int = 96, seed: int = 0, n_lags: int = 4, direct_steps: int = 8,
                 forgetting: float = 0.997, profile_rate: float = 0.1, delta: float = 100.0) -> None:
        self.n_lags = n_lags
        self.direct_steps = direct_steps
        self.forgetting = forgetting
        self.profile_rate = profile_rate
        self.delta = delta
        super().__init__(period, seed)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "n_lags": self.n_lags, "direct_steps": self.direct_steps,
                "forgetting": self.forgetting, "profile_rate": self.profile_rate, "delta": self.delta}

    @property
    def n_features(self) -> int:
        """Features per model."""
        return self.n_lags + 4 + self.n_extra

    @property
    def n_extra(self) -> int:
        """Extra (cross-series) features added by subclasses."""
        return 0

    def _init_state(self) -> None:
        hd, d = self.direct_steps, self.n_features
        self.lags: FArray = np.zeros((self.n_lags, 0))
        self.week: FArray = np.full((7 * self.period, 0), np.nan)
        self.profile: FArray = np.zeros((2, self.period, 0))
        self.profile_n: FArray = np.zeros((2, self.period, 0))
        self.P: FArray = np.zeros((hd, d, d, 0))
        self.W: FArray = np.zeros((hd, d, 0))
        self.feats: FArray = np.zeros((hd, hd, d, 0))   # [age-1, step-1, feature, series]
        self.valid: FArray = np.zeros((hd, 0))           # features of that age exist

    def _grow(self, k: int) -> None:
        old = self.P.shape[-1]
        super()._grow(k)
        eye = np.eye(self.n_features) * self.delta
        self.P[..., old:] = eye[None, :, :, None]

    # -- features --------------------------------------------------------------------------------------
    def _extra(self, dev: FArray) -> FArray:
        """Cross-series features, shape ``(n_extra, n_series)``; none here."""
        return np.zeros((0, self.n_series))

    def _features(self, steps: int) -> FArray:
        """Features for steps 1..steps ahead of now, shape ``(steps, d, n_series)``."""
        cal, n = self.calendar, self.n_series
        now_profile = self.profile[cal.weekend(), cal.slot()]
        dev = self.lags[0] - now_profile
        extra = self._extra(dev)
        out = np.empty((steps, self.n_features, n))
        m = 7 * self.period
        for h in range(1, steps + 1):
            prof = self.profile[cal.weekend(h), cal.slot(h)]
            back = cal.n - 1 + h - m
            while back > cal.n - 1:
                back -= m
            wk = self.week[back % m] if back >= 0 else np.full(n, np.nan)
            wk = np.where(np.isnan(wk), prof, wk)
            out[h - 1] = np.vstack([np.ones((1, n)), self.lags, prof[None], dev[None], wk[None], extra])
        return out

    # -- learning --------------------------------------------------------------------------------------
    def _learn(self, y: FArray) -> None:
        ok = ~np.isnan(y)
        hd = self.direct_steps
        # 1. train model h on the features made h steps ago for step h, against today's value
        x = self.feats[np.arange(hd), np.arange(hd)]                      # (hd, d, S)
        mask = (self.valid[:, None, :] > 0) & ok[None, None, :]           # (hd, 1, S)
        self._rls_update(x, np.where(ok, y, 0.0), mask[:, 0, :])
        # 2. update state: lags (held), last week's ring, profile
        cal = self.calendar
        self.lags[1:] = self.lags[:-1]
        self.lags[0] = np.where(ok, y, self.lags[0])
        self.week[(cal.n - 1) % (7 * self.period)] = y
        wd, s = cal.weekend(), cal.slot()
        cnt = self.profile_n[wd, s]
        rate = np.maximum(self.profile_rate, 1.0 / (cnt + 1.0))
        cur = self.profile[wd, s]
        self.profile[wd, s] = np.where(ok, cur + rate * (np.where(ok, y, 0.0) - cur), cur)
        self.profile_n[wd, s] = cnt + ok
        # 3. features for the next steps, aged by one
        self.feats[1:] = self.feats[:-1]
        self.valid[1:] = self.valid[:-1]
        self.feats[0] = self._features(hd)
        self.valid[0] = 1.0

    def _rls_update(self, x: FArray, y: FArray, mask: np.ndarray[Any, Any]) -> None:
        lam = self.forgetting
        px = np.einsum("hijs,hjs->his", self.P, x)
        den = lam + np.einsum("his,his->hs", x, px)
        gain = px / den[:, None, :]
        err = y[None, :] - np.einsum("hds,hds->hs", self.W, x)
        m = mask[:, None, :]
        self.W += np.where(m, gain * err[:, None, :], 0.0)
        newp = (self.P - np.einsum("his,hjs->hijs", gain, px)) / lam
        # keep P bounded where the features stop exciting it (long flat nights)
        tr = np.einsum("hiis->hs", newp)
        cap = self.delta * self.n_features
        newp *= np.minimum(1.0, cap / np.maximum(tr, 1e-12))[:, None, None, :]
        self.P = np.where(m[:, None], newp, self.P)

    def predict_array(self, horizon: int) -> FArray:
        """Direct forecasts; steps past ``direct_steps`` use the last step's model with their own features."""
        hd = self.direct_steps
        if self.calendar.n == 0:
            return np.zeros((horizon, self.n_series))
        first = np.einsum("hds,hds->hs", self.W[: min(horizon, hd)], self.feats[0, : min(horizon, hd)])
        if horizon <= hd:
            return np.asarray(first)
        feats = self._features(horizon)[hd:]
        rest = np.einsum("ds,hds->hs", self.W[hd - 1], feats)
        return np.vstack([first, rest])


class SpatialRLS(ProfileRLS):
    """:class:`ProfileRLS` plus neighbours: the site's mean deviation and the ``k`` best lead series."""

    name = "spatial"
    version = "1"

    def __init__(self, period: int = 96, seed: int = 0, n_lags: int = 4, direct_steps: int = 8,
                 forgetting: float = 0.997, profile_rate: float = 0.1, delta: float = 100.0,
                 neighbours: int = 3, corr_rate: float = 0.01) -> None:
        self.neighbours = neighbours
        self.corr_rate = corr_rate
        super().__init__(period, seed, n_lags, direct_steps, forgetting, profile_rate, delta)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "neighbours": self.neighbours, "corr_rate": self.corr_rate}

    @property
    def n_extra(self) -> int:
        """Site mean deviation plus ``neighbours`` neighbour deviations."""
        return 1 + self.neighbours

    def _init_state(self) -> None:
        super()._init_state()
        self.cross: FArray = np.zeros((0, 0))      # EWMA of dev_j(t-1) * dev_i(t): [j, i]
        self.var: FArray = np.zeros(0)
        self.prev_dev: FArray = np.zeros(0)
        self.chosen: np.ndarray[Any, Any] = np.zeros((self.neighbours, 0), dtype=int)

    def _grow(self, k: int) -> None:
        old = self.n_series - k
        super()._grow(k)
        self.cross = pad_last(pad_last(self.cross, k, 0.0).T, k, 0.0).T
        self.var = pad_last(self.var, k, 1.0)
        self.prev_dev = pad_last(self.prev_dev, k, 0.0)
        new = np.arange(old, self.n_series)
        self.chosen = pad_last(self.chosen, k, 0)
        self.chosen[:, old:] = new[None, :]   # start with themselves until neighbours are chosen

    def _extra(self, dev: FArray) -> FArray:
        site = np.full((1, self.n_series), dev.mean() if self.n_series else 0.0)
        return np.vstack([site, dev[self.chosen]])

    def _learn(self, y: FArray) -> None:
        cal = self.calendar
        ok = ~np.isnan(y)
        if cal.n > 1:
            dev = np.where(ok, y - self.profile[cal.weekend(), cal.slot()], 0.0)
            r = self.corr_rate
            self.cross += r * (np.outer(self.prev_dev, dev) - self.cross)
            self.var += r * (dev * dev - self.var)
            self.prev_dev = dev
            if cal.n % self.period == 0 and self.n_series > 1:
                self._choose()
        super()._learn(y)

    def _choose(self) -> None:
        sd = np.sqrt(np.maximum(self.var, 1e-9))
        corr = np.abs(self.cross / np.outer(sd, sd))
        np.fill_diagonal(corr, -1.0)
        k = min(self.neighbours, self.n_series - 1)
        best = np.argsort(-corr, axis=0, kind="stable")[:k]       # [rank, target]
        chosen = np.tile(np.arange(self.n_series), (self.neighbours, 1))
        chosen[:k] = best
        self.chosen = chosen
