"""Backtests on a slice of the real ODOT counts: the online models beat seasonal naive."""

import numpy as np
import pytest

from aicity.core.errors import UserError
from aicity.forecast import backtest, datasets

KEYS = {"dataset", "model", "horizon_steps", "mae", "rmse", "mape", "coverage80", "coverage90", "n",
        "us_per_step", "seed", "groups"}


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


def test_groups_by_detector_and_4h_time_of_day(odot_slice: datasets.Dataset) -> None:
    (rec,) = backtest.run_model(odot_slice, "rls", (2,), eval_steps=96 * 2, seed=3)
    assert rec["seed"] == 3
    by_site, by_time = rec["groups"]["district"], rec["groups"]["time_of_day"]
    assert list(by_site) == sorted(odot_slice.series_ids)      # one intersection: the detector is the site key
    assert list(by_time) == ["00–04", "04–08", "08–12", "12–16", "16–20", "20–24"]
    for groups in (by_site, by_time):
        assert sum(g["n"] for g in groups.values()) == rec["n"]
        assert sum(g["mae"] * g["n"] for g in groups.values()) / rec["n"] == pytest.approx(rec["mae"])
        assert sum(g["coverage90"] * g["n"] for g in groups.values()) / rec["n"] == pytest.approx(rec["coverage90"])
        assert all(0.0 <= g["coverage80"] <= g["coverage90"] <= 1.0 for g in groups.values())
    assert len({round(g["mae"], 6) for g in by_time.values()}) > 1      # night and peak differ
    grouped = datasets.Dataset(odot_slice.name, odot_slice.values, odot_slice.times, odot_slice.series_ids,
                               odot_slice.freq, odot_slice.report,
                               {"districts": {s: "odd" if int(s[-2:]) % 2 else "even" for s in odot_slice.series_ids}})
    (rec2,) = backtest.run_model(grouped, "rls", (2,), eval_steps=96 * 2, seed=3)
    assert set(rec2["groups"]["district"]) == {"odd", "even"} and rec2["mae"] == pytest.approx(rec["mae"])


def test_hour_bin_labels() -> None:
    assert [backtest.hour_bin_label(h) for h in (0, 3, 4, 11, 23)] == ["00–04", "00–04", "04–08", "08–12", "20–24"]
    assert backtest.hour_bin_label(7, 6) == "06–12"


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


def test_losing_series_names_the_series_its_reference_and_a_paired_interval() -> None:
    rng = np.random.default_rng(1)
    noise = rng.exponential(1.0, (400, 3))
    model = noise.copy()
    model[:, 1] *= 1.5                      # clearly worse than both references on series 1
    model[:, 2] = noise[:, 2] * 1.02 + rng.exponential(0.3, 400) * (rng.random(400) < 0.1)  # a little worse
    ref_a, ref_b = noise * 1.01, noise * 1.2
    ref_a[0, 0] = np.nan                    # skipped pairwise
    out = backtest.losing_series(model, [ref_a, ref_b], seed=0)
    by = {o["series"]: o for o in out}
    assert set(by) == {1, 2}                # series 0: the model beats both references
    assert by[1]["ref"] == 0 and by[1]["ratio"] == pytest.approx(1.5 / 1.01)
    assert by[1]["ci95"][0] > 1.0           # a real loss: the interval lies above 1
    assert by[2]["ci95"][0] < by[2]["ratio"] < by[2]["ci95"][1]
    assert by[1]["n"] == 400
    assert backtest.losing_series(model, [ref_a, ref_b], seed=0) == out   # seeded


def test_abs_errors_line_up_origins_and_targets(odot_slice: datasets.Dataset) -> None:
    run = backtest.predict(odot_slice, "naive", 2, eval_steps=96, protocol="prequential")
    err = backtest.abs_errors(odot_slice, run, 1)
    o = run.origins[0]
    assert err.shape[1] == len(odot_slice.series_ids)
    assert np.allclose(err[0], np.abs(odot_slice.values[o + 1] - odot_slice.values[o]), equal_nan=True)
