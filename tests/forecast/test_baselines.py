"""Known answers for the baselines."""

from datetime import datetime, timedelta

import numpy as np
import pytest

from aicity.forecast.baselines import Naive, SeasonalAverage, SeasonalNaiveDay, SeasonalNaiveWeek


def feed(model, values, start=None, step=timedelta(hours=6)):  # type: ignore[no-untyped-def]
    for i, v in enumerate(values):
        model.learn_step({"s": v}, None if start is None else start + i * step)
    return model


def test_naive_repeats_last_value() -> None:
    m = feed(Naive(period=4), [1.0, 5.0, 3.0])
    assert m.forecast("s", 3).mean == (3.0, 3.0, 3.0)


def test_naive_skips_missing_values() -> None:
    m = feed(Naive(period=4), [1.0, 5.0, float("nan")])
    assert m.forecast("s", 1).mean == (5.0,)
    assert m.n_observations == 2


def test_seasonal_naive_day() -> None:
    m = feed(SeasonalNaiveDay(period=4), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # next steps are positions 6, 7, 8, 9 -> one period earlier: 3, 4, 5, 6; then repeats
    assert m.forecast("s", 6).mean == (3.0, 4.0, 5.0, 6.0, 3.0, 4.0)


def test_seasonal_naive_falls_back_to_last_value_before_a_season() -> None:
    m = feed(SeasonalNaiveDay(period=4), [1.0, 2.0])
    assert m.forecast("s", 3).mean == (2.0, 2.0, 1.0)


def test_seasonal_naive_week() -> None:
    vals = [float(i) for i in range(30)]
    m = feed(SeasonalNaiveWeek(period=4), vals)   # season 28
    assert m.forecast("s", 2).mean == (2.0, 3.0)


def test_seasonal_average_by_time_of_day() -> None:
    start = datetime(2024, 1, 1)
    m = feed(SeasonalAverage(period=4), [1.0, 10.0, 100.0, 1000.0, 3.0, 20.0, 300.0], start)
    # slots 0..3 (6 h each): slot 3 has 1000, slot 0 has mean(1,3)=2, slot 1 mean(10,20)=15
    assert m.forecast("s", 3).mean == pytest.approx((1000.0, 2.0, 15.0))


def test_seasonal_average_unseen_slot_uses_overall_mean() -> None:
    m = feed(SeasonalAverage(period=4), [2.0, 4.0])
    assert m.forecast("s", 2).mean == pytest.approx((3.0, 3.0))


def test_many_series_at_once() -> None:
    m = Naive(period=4)
    m.learn_step({"a": 1.0, "b": 2.0})
    m.learn_step({"b": 7.0, "c": 9.0})
    assert m.series_ids == ("a", "b", "c")
    assert {k: f.mean for k, f in m.forecast_all(1).items()} == {"a": (1.0,), "b": (7.0,), "c": (9.0,)}
    assert np.isclose(m.n_observations, 4)


def test_bad_value_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="must be a number"):
        Naive().learn_step({"s": "lots"})  # type: ignore[dict-item]
