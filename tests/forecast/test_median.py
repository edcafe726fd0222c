"""Median forecasts: of recent values, and of the same time of day on recent days."""

import numpy as np

from aicity.forecast.median import Median


def test_same_time_of_day_median_over_the_last_days() -> None:
    model = Median(period=4, window=3)
    for v in range(1, 13):                               # three days of 4 steps: 1..4, 5..8, 9..12
        model.learn_step({"s": float(v)})
    # the next day's slots: medians of (1, 5, 9), (2, 6, 10), ...; past a day the same days again
    assert model.predict_array(5)[:, 0].tolist() == [5.0, 6.0, 7.0, 8.0, 5.0]


def test_recent_median_ignores_one_outlier_and_missing_values() -> None:
    model = Median(period=24, window=5, stride=1)
    for v in (10.0, 11.0, float("nan"), 500.0, 12.0):
        model.learn_step({"s": v})
    assert model.predict_array(2)[:, 0].tolist() == [11.5, 11.5]   # the median of 10, 11, 500 and 12


def test_sparse_counts_are_forecast_as_zero() -> None:
    rng = np.random.default_rng(0)
    model = Median(period=24)
    for v in rng.poisson(0.2, 24 * 10):
        model.learn_step({"s": float(v)})
    assert np.mean(model.predict_array(24) == 0.0) > 0.8     # the mean (0.2) has a larger absolute error


def test_nothing_known_forecasts_the_last_value() -> None:
    model = Median(period=24)
    model.learn_step({"s": 3.0})
    assert np.all(model.predict_array(30)[1:] == 3.0)
