"""Backtests on a slice of the real ODOT counts: the online models beat seasonal naive."""

import pytest

from aicity.core.errors import UserError
from aicity.forecast import backtest, datasets

KEYS = {"dataset", "model", "horizon_steps", "mae", "rmse", "mape", "coverage80", "coverage90", "n",
        "us_per_step"}


@pytest.fixture(scope="module")
def odot_slice() -> datasets.Dataset:
    return datasets.load("odot-counts").head(96 * 12)


def test_online_models_beat_seasonal_naive(odot_slice: datasets.Dataset) -> None:
    recs = backtest.backtest(odot_slice, "seasonal_naive_day,seasonal_naive_week,rls,spatial", (1, 4),
                             eval_steps=96 * 2)
    assert all(set(r) == KEYS for r in recs)
    mae = {(r["model"], r["horizon_steps"]): r["mae"] for r in recs}
    for h in (1, 4):
        best_naive = min(mae["seasonal_naive_day", h], mae["seasonal_naive_week", h])
        assert mae["rls", h] < best_naive
        assert mae["spatial", h] < best_naive
    for r in recs:
        assert r["n"] == 22 * 48 and r["us_per_step"] > 0


def test_prequential_scores_every_step(odot_slice: datasets.Dataset) -> None:
    recs = backtest.run_model(odot_slice, "naive", (1,), eval_steps=96, protocol="prequential")
    assert recs[0]["n"] == 22 * 96 - int(__import__("numpy").isnan(odot_slice.values[-96:]).sum())
    assert 0.7 < recs[0]["coverage90"] <= 1.0


def test_bad_requests_are_user_errors(odot_slice: datasets.Dataset) -> None:
    with pytest.raises(UserError, match="unknown forecast model"):
        backtest.backtest(odot_slice, "prophet")
    with pytest.raises(UserError, match="horizons"):
        backtest.backtest(odot_slice, "naive", (0,))
    with pytest.raises(UserError, match="does not fit"):
        backtest.backtest(odot_slice, "naive", eval_steps=10**6)
