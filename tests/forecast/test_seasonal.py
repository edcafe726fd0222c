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


def _cycle(days: int, period: int = 24) -> np.ndarray:
    t = np.arange(days * period)
    return np.asarray(100 + 10 * np.sin(2 * np.pi * t / period) + 0.3 * np.cos(7.0 * t))


def test_an_anomalous_day_is_not_repeated_the_next_day() -> None:
    y = _cycle(12)
    y[10 * 24 + 6: 10 * 24 + 18] = 20.0                  # half a day of anomaly on day 10, then normal again
    robust, plain = SeasonalDiff(period=24), SeasonalDiff(period=24, robust=0.0)
    for v in y[: 11 * 24 + 6]:                           # up to 06:00 on day 11: the anomaly's hours come next
        robust.learn_step({"s": float(v)})
        plain.learn_step({"s": float(v)})
    truth = y[11 * 24 + 6: 11 * 24 + 10]
    assert np.max(np.abs(robust.predict_array(4)[:, 0] - truth)) < 2.0
    assert np.min(np.abs(plain.predict_array(4)[:, 0] - truth)) > 50.0


def test_an_anomaly_under_way_persists_over_the_horizon() -> None:
    y = _cycle(12)
    model = SeasonalDiff(period=24)
    for v in y[: 10 * 24 + 9]:
        model.learn_step({"s": float(v)})
    for _ in range(3):
        model.learn_step({"s": 20.0})                    # three steps far below the cycle
    assert model.flag[(model.calendar.n - 1) % model.size, 0] == 1.0
    fc = model.predict_array(4)[:, 0]
    assert np.all(np.abs(fc - 20.0) < 12.0)              # last value plus the seasonal change, not the cycle


def test_a_lasting_level_change_is_followed_after_two_seasons() -> None:
    y = _cycle(16)
    y[10 * 24:] += 50.0                                  # a new level from day 10 on
    model = SeasonalDiff(period=24)
    for v in y[: 13 * 24]:
        model.learn_step({"s": float(v)})
    assert np.max(np.abs(model.predict_array(4)[:, 0] - y[13 * 24: 13 * 24 + 4])) < 2.0
