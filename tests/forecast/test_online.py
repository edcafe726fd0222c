"""The online learners learn: they beat naive and seasonal naive on a seasonal AR series."""

from datetime import datetime, timedelta

import numpy as np

from aicity.forecast.baselines import SeasonalNaiveDay
from aicity.forecast.online import ProfileRLS, SpatialRLS


def series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = 20 + 10 * np.sin(2 * np.pi * t / 24)
    dev = np.zeros((n, 3))
    for i in range(1, n):
        dev[i] = 0.8 * dev[i - 1] + rng.normal(0, 2, 3)
    lead = np.roll(dev[:, 0], 1)  # series b follows a one step later
    return np.stack([base + dev[:, 0], base + lead + 0.3 * dev[:, 1], base + dev[:, 2]], axis=1)


def mae(model, data, start=24 * 20):  # type: ignore[no-untyped-def]
    t0 = datetime(2024, 1, 1)
    errs = []
    for i, row in enumerate(data):
        if i >= start:
            f = model.forecast_all(1)
            errs.append([abs(f[k].mean[0] - v) for k, v in zip("abc", row, strict=True)])
        model.learn_step(dict(zip("abc", row, strict=True)), t0 + i * timedelta(hours=1))
    return np.mean(errs, axis=0)


def test_rls_beats_seasonal_naive() -> None:
    data = series(24 * 30, 0)
    assert mae(ProfileRLS(period=24), data).mean() < 0.8 * mae(SeasonalNaiveDay(period=24), data).mean()


def test_spatial_uses_the_leading_neighbour() -> None:
    data = series(24 * 30, 1)
    rls, spatial = mae(ProfileRLS(period=24), data), mae(SpatialRLS(period=24), data)
    assert spatial[1] < 0.8 * rls[1]       # series b is predictable from a's last deviation


def test_one_series_at_a_time_equals_whole_steps() -> None:
    data = series(100, 2)
    a, b = SpatialRLS(period=24), SpatialRLS(period=24)
    t0 = datetime(2024, 1, 1)
    for i, row in enumerate(data):
        t = t0 + i * timedelta(hours=1)
        a.learn_step(dict(zip("abc", row, strict=True)), t)
        for k, v in zip("abc", row, strict=True):
            b.learn_one(k, v, t=t)
    assert a.forecast("b", 3) == b.forecast("b", 3)
