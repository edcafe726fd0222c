"""The protocol types: Forecast, PerSeries, period_for."""

import pickle

import pytest

from aicity.forecast import Forecast, PerSeries, period_for, registry
from aicity.forecast.checks import check_forecaster


def test_forecast_to_dict() -> None:
    fc = Forecast((1.0, 2.0), {0.9: ((0.0, 2.0), (1.0, 3.0))}, "m", "1", 5)
    assert fc.horizon == 2 and fc.interval(0.9, 1) == (1.0, 3.0)
    assert fc.to_dict()["intervals"] == {"0.9": [[0.0, 2.0], [1.0, 3.0]]}


def test_per_series_keeps_one_model_per_id() -> None:
    ps = PerSeries(registry.make("naive", period=24))
    ps.learn_one("a", 1.0)
    ps.learn_one("b", 5.0)
    ps.learn_one("a", 2.0)
    assert ps.series_ids == ("a", "b")
    assert ps.forecast("a", 1).mean == (2.0,) and ps.forecast("b", 2).mean == (5.0, 5.0)
    assert pickle.loads(pickle.dumps(ps)).forecast("a", 1).mean == (2.0,)
    with pytest.raises(KeyError):
        ps.forecast("c", 1)


def test_per_series_passes_the_contract() -> None:
    check_forecaster(lambda: PerSeries(registry.make("rls", period=24)))


def test_period_for() -> None:
    assert period_for(900) == 96 and period_for(3600) == 24
    with pytest.raises(ValueError):
        period_for(0)
