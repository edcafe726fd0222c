"""Online forecasting: learners that learn from every observation, conformal intervals, drift, backtests.

Entry points: :mod:`aicity.forecast.base` (protocol), :mod:`aicity.forecast.registry` (``make``,
``make_multi``, model names), :mod:`aicity.forecast.service` (bus service and ForecastProvider),
:mod:`aicity.forecast.backtest` and :mod:`aicity.forecast.datasets`, :mod:`aicity.forecast.cli`.
"""

from aicity.forecast.base import (
    LEVELS,
    CrossSeriesForecaster,
    Forecast,
    Forecaster,
    MultiForecaster,
    PerSeries,
)


def period_for(step_s: float) -> int:
    """Seasonal period (steps per day) for observations every ``step_s`` seconds: 96 at 900 s, 24 at 3600 s."""
    if step_s <= 0:
        raise ValueError(f"step must be positive, got {step_s!r}")
    return max(1, round(86400 / step_s))


__all__ = ["LEVELS", "CrossSeriesForecaster", "Forecast", "Forecaster", "MultiForecaster", "PerSeries",
           "period_for"]
