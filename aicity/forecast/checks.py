"""Contract checks every registered forecaster must pass (in the spirit of river's estimator checks)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np

from aicity.forecast.base import LEVELS, Forecast, Forecaster, MultiForecaster

Factory = Callable[[], Forecaster | MultiForecaster]
START = datetime(2024, 1, 1)
SERIES = ("a", "b", "c")


def synthetic(n: int, seed: int = 0, period: int = 24, n_series: int = len(SERIES)) -> np.ndarray:
    """Seeded daily-pattern count-like data, shape ``(n, n_series)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    level = 10 + 5 * np.arange(n_series)[None, :]
    shape = 1 + 0.8 * np.sin(2 * np.pi * t / period)
    return np.asarray(np.maximum(0.0, level * shape + rng.normal(0, 2, (n, n_series))).round())


def _feed(model: Forecaster | MultiForecaster, data: np.ndarray, step: timedelta) -> None:
    for i, row in enumerate(data):
        t = START + i * step
        if isinstance(model, Forecaster):
            model.learn_one(float(row[0]), {"x": 1.0}, t)
        else:
            model.learn_step({sid: float(v) for sid, v in zip(SERIES, row, strict=False)}, t)


def _forecast(model: Forecaster | MultiForecaster, horizon: int) -> Forecast:
    if isinstance(model, Forecaster):
        return model.forecast(horizon)
    return model.forecast(SERIES[0], horizon)


def check_no_mutation(factory: Factory, data: np.ndarray, step: timedelta) -> None:
    """Learning must not change the mappings passed in."""
    model = factory()
    for i, row in enumerate(data[:50]):
        t = START + i * step
        if isinstance(model, Forecaster):
            x = {"x": 1.0}
            kept = copy.deepcopy(x)
            model.learn_one(float(row[0]), x, t)
            assert x == kept, f"{model.name}: learn_one mutated x"
        else:
            values = {sid: float(v) for sid, v in zip(SERIES, row, strict=False)}
            kept = copy.deepcopy(values)
            model.learn_step(values, t)
            assert values == kept, f"{model.name}: learn_step mutated its values"


def check_shape_and_intervals(model: Forecaster | MultiForecaster) -> None:
    """Forecasts have the horizon's length, finite means, both levels, and intervals containing the mean."""
    for horizon in (1, 3, 12, 30):
        fc = _forecast(model, horizon)
        assert len(fc.mean) == horizon, f"{model.name}: {len(fc.mean)} means for horizon {horizon}"
        assert all(np.isfinite(fc.mean)), f"{model.name}: non-finite mean"
        for level in LEVELS:
            assert level in fc.intervals, f"{model.name}: no {level:.0%} interval"
            pairs = fc.intervals[level]
            assert len(pairs) == horizon, f"{model.name}: {len(pairs)} intervals for horizon {horizon}"
            for m, (lo, hi) in zip(fc.mean, pairs, strict=True):
                assert lo <= m <= hi, f"{model.name}: {level:.0%} interval ({lo}, {hi}) misses mean {m}"
        assert fc.model == model.name and fc.version, f"{model.name}: forecast does not name model/version"
    for bad in (0, -1):
        try:
            _forecast(model, bad)
        except ValueError:
            continue
        raise AssertionError(f"{model.name}: horizon {bad} accepted")


def check_forecaster(factory: Factory, n: int = 300, seed: int = 0, period: int = 24) -> None:
    """Run every contract check on the forecaster ``factory()`` builds; ``AssertionError`` names the failure."""
    data = synthetic(n, seed, period)
    step = timedelta(minutes=1440 // period)
    check_no_mutation(factory, data, step)
    a, b = factory(), factory()
    _feed(a, data, step)
    _feed(b, data, step)
    assert _forecast(a, 6) == _forecast(b, 6), f"{a.name}: same seed, different forecasts"
    check_shape_and_intervals(a)
    fresh = factory()
    clone = a.clone()
    assert type(clone) is type(a), f"{a.name}: clone changed the type"
    _feed(clone, data[:40], step)
    _feed(fresh, data[:40], step)
    assert _forecast(clone, 6) == _forecast(fresh, 6), f"{a.name}: clone is not a fresh copy"
    restored = pickle.loads(pickle.dumps(a))
    assert _forecast(restored, 6) == _forecast(a, 6), f"{a.name}: pickling changed the forecast"
    _feed(restored, data[:5], step)
    _feed(a, data[:5], step)
    assert _forecast(restored, 6) == _forecast(a, 6), f"{a.name}: unpickled model learns differently"
