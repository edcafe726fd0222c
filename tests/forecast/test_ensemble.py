"""The default ensemble: never worse than the best simple baseline, calibrated 90 % intervals, on real data."""

from typing import Any

import numpy as np
import pytest

from aicity.forecast import backtest, datasets, ensemble, registry
from aicity.forecast.conformal import Conformal
from aicity.forecast.ensemble import Ensemble
from aicity.forecast.seasonal import SeasonalDiff

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


OLD_MEMBERS = ("naive", "seasonal_naive_day", "seasonal_naive_week", "seasonal_diff_day", "seasonal_diff_week",
               "rls", "spatial")
WATERFLOW_STEPS, WATERFLOW_EVAL = 46 * 24, 9 * 24
"""waterflow up to 5 May 2022, scored from 26 April: the 27 April anomaly (flow 103 → 24 l/s for half a day),
the day after it and the same hours a week later."""


def _vs_baselines(data: datasets.Dataset, model: Ensemble) -> dict[int, tuple[float, float]]:
    """Per horizon: the model's MAE over the best simple baseline's, and its 90 % coverage (from every step)."""
    y, start = data.values[:, 0], len(data.values) - WATERFLOW_EVAL
    conformal = Conformal(model, **registry.MODELS["ensemble"].conformal)  # type: ignore[arg-type]
    conformal.add_series(list(data.series_ids))
    pred, lo, hi = {}, {}, {}
    for t in range(len(y)):
        conformal.learn_array(data.values[t], data.times[t])
        if t >= start - 1:
            mean = conformal.means(4)
            pred[t], (lo[t], hi[t]) = mean[:, 0], (b[:, 0] for b in conformal.intervals_array(mean)[0.9])
    base = {b: backtest.predict(data, b, 4, eval_steps=WATERFLOW_EVAL, protocol="prequential")
            for b in backtest.BASELINES}
    out: dict[int, tuple[float, float]] = {}
    for h in HORIZONS:
        due = [t for t in pred if t + h < len(y) and not np.isnan(y[t + h])]
        mae = np.mean([abs(pred[t][h - 1] - y[t + h]) for t in due])
        best = min(np.mean([abs(r.pred[i][h - 1, 0] - y[o + h]) for i, o in enumerate(r.origins) if o in due])
                   for r in base.values())
        cover = np.mean([lo[t][h - 1] <= y[t + h] <= hi[t][h - 1] for t in due])
        out[h] = (float(mae / best), float(cover))
    return out


@pytest.fixture(scope="module")
def waterflow() -> datasets.Dataset:
    return datasets.load("waterflow").head(WATERFLOW_STEPS)


def test_default_beats_naive_through_the_waterflow_anomaly(waterflow: datasets.Dataset) -> None:
    # seasonal members used to repeat the anomaly a day and a week later and the ensemble lost to naive at 2–4
    # steps; robust seasonal references, persistence during the anomaly and capped errors in the weights fix it
    for h, (ratio, cover) in _vs_baselines(waterflow, registry.MODELS["ensemble"].build(24, 0)).items():
        assert ratio < 1.0, (h, ratio)
        assert 0.85 <= cover <= 0.95, (h, cover)


def test_the_previous_default_lost_to_naive_through_the_waterflow_anomaly(
        waterflow: datasets.Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    # the seasonal members as they were (every past value taken as it came), no medians, uncapped errors
    for name, days in (("seasonal_diff_day", 1), ("seasonal_diff_week", 7)):
        monkeypatch.setitem(ensemble.MEMBERS, name, lambda p, s, d=days: SeasonalDiff(p, s, days=d, robust=0.0))
    ratios = {h: r for h, (r, _) in _vs_baselines(waterflow, Ensemble(24, members=OLD_MEMBERS, clip=0.0)).items()}
    assert all(ratios[h] > 1.05 for h in (2, 3, 4)), ratios


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
    # a clean daily cycle: naive is the worst member at 4 steps and carries no weight there; the seasonal ones
    # (the median of the last 7 days at that time of day smooths the noise best) carry it
    assert w[3, names.index("naive"), 0] == 0.0
    seasonal = ("seasonal_naive_day", "seasonal_diff_day", "median_week")
    assert sum(w[3, names.index(m), 0] for m in seasonal) > 0.9


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
