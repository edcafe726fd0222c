"""Seasonal naive with a learned level correction."""

import numpy as np

from aicity.forecast.seasonal import SeasonalDiff


def test_phi_near_one_when_level_shifts_persist() -> None:
    rng = np.random.default_rng(0)
    model = SeasonalDiff(period=24, memory_days=30)
    level = 100.0
    for t in range(24 * 40):
        level += rng.normal(0, 2)                      # a random walk level under a daily cycle
        model.learn_step({"s": level + 20 * np.sin(2 * np.pi * t / 24)})
    assert np.all(model.phi()[:4, 0] > 0.8)


def test_phi_near_zero_on_a_stable_cycle_with_noise_and_forecast_is_seasonal() -> None:
    rng = np.random.default_rng(1)
    model = SeasonalDiff(period=24, memory_days=30)
    for t in range(24 * 40):
        model.learn_step({"s": 100 + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2)})
    assert np.all(model.phi()[:4, 0] < 0.2)
    fc = model.predict_array(24)[:, 0]
    truth = 100 + 20 * np.sin(2 * np.pi * np.arange(24 * 40, 24 * 41) / 24)
    assert np.mean(np.abs(fc - truth)) < 3.0


def test_before_one_season_the_last_value_is_forecast() -> None:
    model = SeasonalDiff(period=24, days=7)
    for y in (3.0, 4.0, 5.0):
        model.learn_step({"s": y})
    assert np.all(model.predict_array(5) == 5.0)
