"""Contract checks on every registered forecaster, single- and multi-series."""

import pytest

from aicity.forecast import registry
from aicity.forecast.checks import check_forecaster


@pytest.mark.parametrize("name", registry.names())
def test_single_series_contract(name: str) -> None:
    check_forecaster(lambda: registry.make(name, period=24, seed=3))


@pytest.mark.parametrize("name", registry.names())
def test_multi_series_contract(name: str) -> None:
    check_forecaster(lambda: registry.make_multi(name, period=24, seed=3))


def test_default_is_registered_and_online() -> None:
    spec = registry.MODELS[registry.resolve("default")]
    assert spec.online


def test_check_catches_a_broken_forecaster() -> None:
    from aicity.forecast.base import Forecast
    from aicity.forecast.vector import SingleSeries

    class Shrunk(SingleSeries):
        def forecast(self, horizon, xs=None):  # type: ignore[no-untyped-def]
            fc = super().forecast(horizon)
            return Forecast(fc.mean[:1], fc.intervals, fc.model, fc.version, fc.n_observations)

        def clone(self):  # type: ignore[no-untyped-def]
            return Shrunk(self.model.clone())

    with pytest.raises(AssertionError, match="means for horizon"):
        check_forecaster(lambda: Shrunk(registry.make_multi("naive", period=24)))
