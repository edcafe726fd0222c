"""Online forecasting: learners that learn from every observation, conformal intervals, drift, backtests."""

from aicity.forecast.base import (
    LEVELS,
    CrossSeriesForecaster,
    Forecast,
    Forecaster,
    MultiForecaster,
    PerSeries,
)

__all__ = ["LEVELS", "CrossSeriesForecaster", "Forecast", "Forecaster", "MultiForecaster", "PerSeries"]
