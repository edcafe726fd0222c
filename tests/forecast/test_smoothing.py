"""Known answers for the exponentially weighted level model (``ewma``)."""

import math
import pickle

import numpy as np
import pytest

from aicity.forecast import registry
from aicity.forecast.checks import check_forecaster
from aicity.forecast.smoothing import Ewma

NAN = float("nan")


def _scalar_ewma(values: list[float], weights: list[float], prior: float | None) -> tuple[float, float, int]:
    """Reference: the per-lane scalar recursion the mobility learner used before (NaN skipped)."""
    mean, var, n = prior, 0.0, 0
    for y, a in zip(values, weights, strict=True):
        if math.isnan(y):
            continue
        if mean is None:
            mean = y
        d = y - mean
        mean += a * d
        var = (1.0 - a) * (var + a * d * d)
        n += 1
    return (0.0 if mean is None else mean), var, n


def test_converges_to_a_constant_at_the_geometric_rate() -> None:
    m = Ewma(tau=5.0, prior=0.0)
    a = 1.0 - math.exp(-1.0 / 5.0)
    for k in range(1, 101):
        m.learn_step({"s": 3.0})
        if k == 10:
            assert m.forecast("s", 1).mean[0] == pytest.approx(3.0 * (1.0 - (1.0 - a) ** 10), rel=1e-12)
    fc = m.forecast("s", 4)
    assert fc.mean == pytest.approx((3.0,) * 4, abs=1e-6)
    assert m.std_array()[0] < 1e-3  # the spread decays with the transient


def test_tracks_a_step_change_with_time_constant_tau() -> None:
    tau = 20.0
    m = Ewma(tau=tau)
    for _ in range(50):
        m.learn_step({"s": 2.0})
    assert m.level[0] == 2.0  # the first value became the level; a constant never moves it
    for _ in range(int(tau)):
        m.learn_step({"s": 12.0})
    # after tau steps, 1 - 1/e of the step is tracked
    assert m.level[0] == pytest.approx(2.0 + 10.0 * (1.0 - math.exp(-1.0)), rel=1e-12)
    for _ in range(int(4 * tau)):
        m.learn_step({"s": 12.0})
    assert m.level[0] == pytest.approx(2.0 + 10.0 * (1.0 - math.exp(-5.0)), rel=1e-12)


def test_alpha_and_tau_are_the_same_weight() -> None:
    by_tau, by_alpha = Ewma(tau=4.0), Ewma(alpha=1.0 - math.exp(-0.25))
    assert by_alpha.tau == pytest.approx(4.0, rel=1e-12)
    rng = np.random.default_rng(1)
    for y in rng.normal(5.0, 1.0, 30):
        by_tau.learn_step({"s": float(y)})
        by_alpha.learn_step({"s": float(y)})
    assert by_tau.level[0] == pytest.approx(by_alpha.level[0], rel=1e-12)
    naive = Ewma(alpha=1.0)
    for y in (1.0, 7.0, 3.0):
        naive.learn_step({"s": y})
    assert naive.forecast("s", 2).mean == (3.0, 3.0)


def test_steps_weight_an_observation_by_its_length() -> None:
    # tau in seconds with one-second steps, fed every 10 s, equals tau/10 in 10-second steps
    per_second, per_ten = Ewma(tau=300.0, prior=0.5), Ewma(tau=30.0, prior=0.5)
    per_second.add_series(["s"])
    for y in (0.7, 0.2, 0.9, NAN, 0.4):
        per_second.learn_array(np.array([y]), None, 10.0)
        per_ten.learn_step({"s": y})
    assert per_second.level[0] == pytest.approx(per_ten.level[0], rel=1e-12)
    assert per_second.weight(10.0) == 1.0 - math.exp(-10.0 / 300.0)
    assert per_second.weight(0.0) == 0.0
    w = per_second.weight(np.array([10.0, 20.0]))
    assert isinstance(w, np.ndarray) and w[1] == pytest.approx(1.0 - math.exp(-20.0 / 300.0), rel=1e-12)


def test_vector_step_equals_the_scalar_recursion_per_series() -> None:
    rng = np.random.default_rng(7)
    n_steps, ids = 200, ["a", "b", "c"]
    data = rng.gamma(2.0, 0.3, (n_steps, 3))
    data[rng.random((n_steps, 3)) < 0.3] = np.nan  # each series unobserved on about 30 % of the steps
    periods = np.array([10.0, 5.0, 10.0])          # per-series observation lengths
    for prior in (None, 0.5):
        m = Ewma(period=86400, tau=300.0, prior=prior)
        m.add_series(ids)
        for row in data:
            m.learn_array(row.copy(), None, periods)
        for j in range(3):
            a = 1.0 - math.exp(-periods[j] / 300.0)
            mean, var, n = _scalar_ewma(list(data[:, j]), [a] * n_steps, prior)
            assert m.level[j] == pytest.approx(mean, rel=1e-12)
            assert m.var[j] == pytest.approx(var, rel=1e-9, abs=1e-15)
            assert m.count[j] == n
        assert m.n_observations == int(np.count_nonzero(~np.isnan(data)))


def test_nan_skips_learning_for_that_series_only() -> None:
    m = Ewma(tau=3.0, prior=1.0)
    m.learn_step({"a": 4.0, "b": 4.0})
    level_b, var_b = float(m.level[1]), float(m.var[1])
    for _ in range(5):
        m.learn_step({"a": 4.0, "b": NAN})
    m.learn_step({"a": 4.0})  # an absent series is not observed either
    assert (m.level[1], m.var[1], m.count[1]) == (level_b, var_b, 1)
    assert m.count[0] == 7 and m.level[0] > level_b
    assert m.n_observations == 8
    m.learn_step({"a": NAN, "b": NAN})  # nothing observed: nothing changes
    assert m.n_observations == 8 and m.count.tolist() == [7, 1]


def test_prior_is_the_start_of_unobserved_series() -> None:
    m = Ewma(tau=10.0, prior=0.5)
    m.learn_step({"a": 1.0, "b": NAN})
    assert m.forecast("b", 1).mean == (0.5,)
    assert m.forecast("a", 1).mean[0] == pytest.approx(0.5 + 0.5 * (1.0 - math.exp(-0.1)), rel=1e-12)
    bare = Ewma(tau=10.0)
    bare.learn_step({"a": 1.0, "b": NAN})
    assert bare.forecast("a", 1).mean == (1.0,) and bare.forecast("b", 1).mean == (0.0,)
    assert bare.var.tolist() == [0.0, 0.0]


def test_weighted_variance_estimates_the_noise() -> None:
    rng = np.random.default_rng(3)
    m = Ewma(tau=200.0)
    for y in rng.normal(10.0, 2.0, 3000):
        m.learn_step({"s": float(y)})
    assert m.level[0] == pytest.approx(10.0, abs=0.5)
    assert m.std_array()[0] == pytest.approx(2.0, rel=0.2)


@pytest.mark.parametrize("kwargs", [{"tau": 0.0}, {"tau": -3.0}, {"tau": float("inf")}, {"alpha": 0.0},
                                    {"alpha": 1.5}, {"tau": 2.0, "alpha": 0.5}, {"prior": float("nan")}])
def test_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Ewma(**kwargs)  # type: ignore[arg-type]


def test_clone_pickle_and_determinism() -> None:
    rng = np.random.default_rng(11)
    data = rng.poisson(4.0, (60, 2)).astype(float)
    m = Ewma(period=48, seed=5, tau=7.0, prior=2.0)
    twin = Ewma(period=48, seed=9, tau=7.0, prior=2.0)  # the seed is unused: same data, same state
    for row in data:
        m.learn_step({"x": row[0], "y": row[1]})
        twin.learn_step({"x": row[0], "y": row[1]})
    assert m.forecast_all(3) == twin.forecast_all(3)
    assert np.array_equal(m.var, twin.var)
    fresh = m.clone()
    assert isinstance(fresh, Ewma) and fresh.n_series == 0 and fresh.n_observations == 0
    assert (fresh.tau, fresh.alpha, fresh.prior, fresh.period, fresh.seed) == (7.0, m.alpha, 2.0, 48, 5)
    assert Ewma(alpha=0.3).clone().alpha == 0.3
    restored = pickle.loads(pickle.dumps(m))
    assert restored.forecast_all(2) == m.forecast_all(2)
    for target in (m, restored):
        target.learn_step({"x": 9.0, "y": NAN})
    assert restored.forecast_all(2) == m.forecast_all(2)
    assert np.array_equal(restored.var, m.var) and restored.count.tolist() == m.count.tolist()


def test_registered_with_conformal_intervals() -> None:
    assert "ewma" in registry.names() and registry.MODELS["ewma"].online
    multi = registry.make_multi("ewma", period=96, seed=0)
    assert isinstance(multi.model, Ewma) and multi.model.tau == pytest.approx(4.0)  # one hour of 15-min steps
    assert registry.MODELS["ewma"].build(24, 0).tau == 1.0
    rng = np.random.default_rng(2)
    covered = 0
    for i, y in enumerate(rng.poisson(20.0, 600).astype(float)):
        if i >= 100:
            lo, hi = multi.forecast("s", 1).intervals[0.9][0]
            covered += lo <= y <= hi
        multi.learn_step({"s": float(y)})
    fc = multi.forecast("s", 2)
    assert fc.model == "ewma" and fc.version == "1" and set(fc.intervals) == {0.8, 0.9}
    assert 0.8 <= covered / 500 <= 0.97  # the conformal 90 % interval covers about 90 % of new values


def test_contract_checks_pass_for_direct_construction() -> None:
    from aicity.forecast.conformal import Conformal

    check_forecaster(lambda: Conformal(Ewma(period=24, tau=3.0, prior=10.0)))
