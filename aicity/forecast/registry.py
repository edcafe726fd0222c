"""Stable model names: every registered forecaster comes wrapped in 80 % / 90 % conformal intervals.

``naive``, ``seasonal_naive_day``, ``seasonal_naive_week``, ``seasonal_average`` (baselines), ``rls`` (online
direct RLS, per series), ``spatial`` (RLS plus neighbouring series), ``ewma`` (exponentially weighted level,
time constant one hour), ``ensemble`` (online weighting of the others, outlier-robust seasonal models and
medians by recent error per series and horizon, with time-of-day conformal intervals); ``default`` names the
loop's forecaster (the ensemble).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aicity.core.errors import UserError
from aicity.forecast.base import Forecaster
from aicity.forecast.baselines import Naive, SeasonalAverage, SeasonalNaiveDay, SeasonalNaiveWeek
from aicity.forecast.conformal import Conformal
from aicity.forecast.ensemble import Ensemble
from aicity.forecast.online import ProfileRLS, SpatialRLS
from aicity.forecast.smoothing import Ewma
from aicity.forecast.vector import SingleSeries, VectorModel

DEFAULT = "ensemble"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A registered model: its name, what it is, whether it learns, how to build it, its interval options."""

    name: str
    description: str
    online: bool
    cross_series: bool
    build: Callable[[int, int], VectorModel]
    conformal: Mapping[str, object] = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {
    "naive": ModelSpec("naive", "last observed value", False, False, lambda p, s: Naive(p, s)),
    "seasonal_naive_day": ModelSpec("seasonal_naive_day", "value one day earlier", False, False,
                                    lambda p, s: SeasonalNaiveDay(p, s)),
    "seasonal_naive_week": ModelSpec("seasonal_naive_week", "value one week earlier", False, False,
                                     lambda p, s: SeasonalNaiveWeek(p, s)),
    "seasonal_average": ModelSpec("seasonal_average", "mean of past values in the same time-of-day slot",
                                  False, False, lambda p, s: SeasonalAverage(p, s)),
    "rls": ModelSpec("rls", "online direct RLS on lags, day profile and last week, per series", True, False,
                     lambda p, s: ProfileRLS(p, s)),
    "spatial": ModelSpec("spatial", "online RLS plus neighbouring series (site and best lead detectors)",
                         True, True, lambda p, s: SpatialRLS(p, s)),
    "ewma": ModelSpec("ewma", "exponentially weighted level, time constant one hour (period/24 steps), per series",
                      True, False, lambda p, s: Ewma(p, s)),
    "ensemble": ModelSpec("ensemble", "online ensemble of the baselines, seasonal naive with a learned level "
                          "correction and outlier-robust references, medians and the RLS models, weighted per "
                          "series and horizon by recent error",
                          True, True, lambda p, s: Ensemble(p, s), {"score": "slot"}),
}


def names() -> list[str]:
    """Registered names (without the ``default`` alias)."""
    return list(MODELS)


def resolve(name: str) -> str:
    """The registered name behind ``name`` (``default`` becomes :data:`DEFAULT`); ``UserError`` if unknown."""
    real = DEFAULT if name == "default" else name
    if real not in MODELS:
        raise UserError(f"unknown forecast model {name!r}; known: default, {', '.join(MODELS)}, all")
    return real


def expand(models: str | Sequence[str]) -> list[str]:
    """Names from a comma list or sequence; ``all`` means every registered model."""
    items = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
    items = [m for m in items if m]
    if not items:
        raise UserError("no forecast model named; pass --models a,b or --models all")
    out: list[str] = []
    for m in items:
        for real in (names() if m == "all" else [resolve(m)]):
            if real not in out:
                out.append(real)
    return out


def make_multi(name: str = "default", period: int = 96, seed: int = 0, **conformal: object) -> Conformal:
    """A multi-series forecaster with conformal intervals (keyword arguments go to :class:`Conformal`)."""
    spec = MODELS[resolve(name)]
    return Conformal(spec.build(period, seed), **{**spec.conformal, **conformal})  # type: ignore[arg-type]


def make(name: str = "default", period: int = 96, seed: int = 0) -> Forecaster:
    """A single-series forecaster with conformal intervals."""
    return SingleSeries(make_multi(name, period, seed))
