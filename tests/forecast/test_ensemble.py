"""The default ensemble: never worse than the best simple baseline, calibrated 90 % intervals, on real data."""

from typing import Any

import numpy as np
import pytest

from aicity.forecast import backtest, datasets, registry
from aicity.forecast.ensemble import Ensemble

HORIZONS = (1, 2, 3, 4)
WEEKS, EVAL_DAYS = 8, 21      # the first 8 weeks of taylor, scored on the last 3: a few seconds


def _scores(data: datasets.Dataset, models: tuple[str, ...]) -> dict[tuple[str, int], dict[str, Any]]:
    recs = backtest.backtest(data, models, HORIZONS, eval_steps=EVAL_DAYS * data.period, protocol="prequential")
    return {(r["model"], r["horizon_steps"]): r for r in recs}


@pytest.fixture(scope="module")
def taylor() -> dict[tuple[str, int], dict[str, Any]]:
    return _scores(datasets.load("taylor").head(WEEKS * 7 * 48), ("default", *backtest.BASELINES))


def test_default_is_the_ensemble() -> None:
    assert registry.resolve("default") == "ensemble"


@pytest.mark.parametrize("h", HORIZONS)
def test_default_beats_every_simple_baseline_on_taylor(taylor: dict[tuple[str, int], Any], h: int) -> None:
    best = min(taylor[b, h]["mae"] for b in backtest.BASELINES)
    assert taylor["ensemble", h]["mae"] <= best


@pytest.mark.parametrize("h", HORIZONS)
def test_default_90_intervals_cover_87_to_93_percent_on_taylor(taylor: dict[tuple[str, int], Any], h: int) -> None:
    assert 0.87 <= taylor["ensemble", h]["coverage90"] <= 0.93
    assert taylor["ensemble", h]["n"] == EVAL_DAYS * 48 - h + 1


def test_the_property_can_fail_the_previous_default_spatial_lost_on_taylor() -> None:
    s = _scores(datasets.load("taylor").head(WEEKS * 7 * 48), ("spatial", *backtest.BASELINES))
    assert s["spatial", 4]["mae"] > min(s[b, 4]["mae"] for b in backtest.BASELINES)


def _daily(n: int, period: int = 24, seed: int = 0) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.asarray(50 + 30 * np.sin(2 * np.pi * t / period) + rng.normal(0, 1, n))


def test_weights_follow_the_better_member_and_sum_to_one() -> None:
    model = Ensemble(period=24)
    for y in _daily(24 * 20):
        model.learn_step({"s": float(y)})
    w = model.weights()
    assert np.allclose(w.sum(axis=1), 1.0)
    names = list(model.member_names)
    # a clean daily cycle: naive is the worst member at 4 steps and carries no weight there
    assert w[3, names.index("naive"), 0] == 0.0
    assert w[3, names.index("seasonal_naive_day"), 0] + w[3, names.index("seasonal_diff_day"), 0] > 0.5


def test_equal_weights_before_any_error_and_unknown_member_rejected() -> None:
    model = Ensemble(period=24, members=("naive", "seasonal_naive_day"))
    model.learn_step({"s": 1.0})
    assert np.allclose(model.weights()[:, :, 0], 0.5)
    with pytest.raises(ValueError, match="unknown or no ensemble members"):
        Ensemble(period=24, members=("prophet",))


def test_deterministic_and_clone_is_fresh() -> None:
    a, b = Ensemble(period=24, seed=5), Ensemble(period=24, seed=5)
    for y in _daily(200, seed=2):
        a.learn_step({"s": float(y)})
        b.learn_step({"s": float(y)})
    assert np.array_equal(a.predict_array(6), b.predict_array(6))
    fresh = a.clone()
    assert fresh.n_observations == 0 and fresh.series_ids == ()


def test_missing_values_are_not_learned_from() -> None:
    model = Ensemble(period=24)
    for i, y in enumerate(_daily(24 * 10)):
        model.learn_step({"s": float("nan") if i % 17 == 0 else float(y)})
    assert np.isfinite(model.predict_array(12)).all()
