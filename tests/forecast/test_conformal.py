"""Online conformal intervals reach their nominal coverage."""

import numpy as np
import pytest

from aicity.forecast.conformal import Conformal
from aicity.forecast.online import ProfileRLS
from aicity.forecast.registry import make_multi


def test_coverage_close_to_nominal_on_noisy_series() -> None:
    rng = np.random.default_rng(7)
    model = make_multi("naive", period=24)
    hits = {0.8: 0, 0.9: 0}
    n = 0
    level = 50.0
    for t in range(4000):
        y = level + rng.normal(0, 5)
        if t > 500:
            fc = model.forecast("s", 1)
            n += 1
            for lv in hits:
                lo, hi = fc.intervals[lv][0]
                hits[lv] += lo <= y <= hi
        model.learn_step({"s": y})
    assert abs(hits[0.8] / n - 0.8) < 0.03
    assert abs(hits[0.9] / n - 0.9) < 0.03


def test_abs_score_and_wider_90_than_80() -> None:
    rng = np.random.default_rng(1)
    model = Conformal(ProfileRLS(period=24), score="abs")
    for _ in range(600):
        model.learn_step({"s": 100 + rng.normal(0, 3)})
    fc = model.forecast("s", 2)
    w80 = fc.intervals[0.8][0][1] - fc.intervals[0.8][0][0]
    w90 = fc.intervals[0.9][0][1] - fc.intervals[0.9][0][0]
    assert 0 < w80 < w90
    assert 0.75 < model.coverage()[0.8] < 0.85


def test_slot_score_is_narrow_in_quiet_hours_and_calibrated() -> None:
    rng = np.random.default_rng(3)
    model = make_multi("seasonal_naive_day", period=24, score="slot")
    hits, n = 0, 0
    widths = {0: [], 12: []}
    for t in range(24 * 60):
        hour = t % 24
        y = 100 + rng.normal(0, 1 if hour < 6 else 10)           # quiet nights, noisy days
        if t > 24 * 20:
            fc = model.forecast("s", 1)
            lo, hi = fc.intervals[0.9][0]
            hits += lo <= y <= hi
            n += 1
            if hour in widths:
                widths[hour].append(hi - lo)
        model.learn_step({"s": y})
    assert 0.87 <= hits / n <= 0.93
    assert np.mean(widths[0]) < 0.3 * np.mean(widths[12])


def test_forecast_level_is_forecast_all_as_arrays_and_refuses_an_uncalibrated_level() -> None:
    rng = np.random.default_rng(5)
    model = Conformal(ProfileRLS(period=24), score="abs")
    for _ in range(200):
        model.learn_step({"a": 100 + rng.normal(0, 3), "b": 10 + rng.normal(0, 1)})
    mean, lo, hi = model.forecast_level(3, 0.8)
    every = model.forecast_all(3)
    for j, sid in enumerate(model.model.series_ids):
        assert tuple(mean[:, j].tolist()) == every[sid].mean
        assert tuple(zip(lo[:, j].tolist(), hi[:, j].tolist(), strict=True)) == every[sid].intervals[0.8]
    assert (hi > lo).all()
    with pytest.raises(ValueError, match=r"level 0\.5 is not calibrated"):
        model.forecast_level(3, 0.5)
