"""Live forecast accuracy against persistence."""

import math

import pytest

from aicity.forecast.accuracy import AccuracyTracker


def test_scores_last_steps_forecasts_against_persistence():
    acc = AccuracyTracker(window=2)
    assert acc.stats() == {"n": 0.0, "mae": 0.0, "naive_mae": 0.0, "ratio": 1.0}
    acc.observe({"a": 1.0, "b": 2.0}, {"a": 2.0, "b": 2.0})  # nothing to score yet
    acc.observe({"a": 3.0, "b": 2.0}, {"a": 3.0, "b": 2.0})  # a: |3-2|=1 vs persistence |3-1|=2; b: 0 vs 0
    s = acc.stats()
    assert s["n"] == 2 and s["mae"] == pytest.approx(0.5) and s["naive_mae"] == pytest.approx(1.0)
    assert s["ratio"] == pytest.approx(0.5)


def test_window_forgets_old_steps_and_skips_missing_values():
    acc = AccuracyTracker(window=2)
    acc.observe({"a": 0.0}, {"a": 10.0})
    acc.observe({"a": 0.0}, {"a": 0.0})   # error 10, persistence 0
    acc.observe({"a": 1.0}, {"a": 1.0})   # error 1, persistence 1
    acc.observe({"a": 2.0, "b": math.nan}, {"a": 2.0})  # error 1, persistence 1; b skipped
    s = acc.stats()
    assert s["n"] == 2 and s["ratio"] == pytest.approx(1.0), "the bad first step left the window"


def test_a_worse_than_persistence_model_has_ratio_above_one():
    acc = AccuracyTracker(window=30)
    for k in range(40):
        y = float(k)  # a trend: persistence is off by 1, a model stuck at 0 is far worse
        acc.observe({"s": y}, {"s": 0.0})
    assert acc.stats()["ratio"] > 5


def test_bad_window():
    with pytest.raises(ValueError, match="window"):
        AccuracyTracker(window=0)


def test_accuracy_is_unknown_until_the_window_is_full():
    """Hundreds of pairs from a few steps of empty roads must not decide a guard: n stays 0 for window steps."""
    acc = AccuracyTracker(window=30)
    for _ in range(29):
        acc.observe({f"lane{i}": 0.0 for i in range(100)}, {f"lane{i}": 0.1 for i in range(100)})
    assert acc.stats()["n"] == 0.0 and acc.stats()["ratio"] == 1.0
    acc.observe({f"lane{i}": 0.0 for i in range(100)}, {f"lane{i}": 0.1 for i in range(100)})
    assert acc.stats()["n"] == 2900 and acc.stats()["ratio"] == math.inf


def test_a_window_quieter_than_the_run_does_not_shrink_the_yardstick():
    """A busy week, then an empty holiday: persistence forecasting nothing is exact, the model still expects a
    little. Against the window's persistence alone the ratio is infinite; against the run's scale it is small."""
    acc = AccuracyTracker(window=10)
    for k in range(40):  # busy: arrivals alternate 0 / 10, the model is off by 1, persistence by 10
        y = 10.0 * (k % 2)
        acc.observe({"s": y}, {"s": 10.0 * ((k + 1) % 2) + 1.0})
    busy = acc.stats()
    assert busy["ratio"] == pytest.approx(0.1)
    for _ in range(20):  # the holiday: nothing arrives, the model forecasts 1
        acc.observe({"s": 0.0}, {"s": 1.0})
    quiet = acc.stats()
    assert quiet["naive_mae"] == 0.0 and quiet["mae"] == pytest.approx(1.0)
    assert quiet["ratio"] == pytest.approx(1.0 / (400.0 / 59.0))  # persistence: 40 pairs off by 10, 19 exact
