"""The AI controller's lane learner on ``aicity.forecast`` models: saturation, arrivals, model names, inputs."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime

import pytest

from aicity.core.domain import ForecastProvider, Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.mobility.ai_learning import LaneRateLearner
from aicity.forecast import registry
from aicity.forecast.smoothing import Ewma

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FLOW = "urn:ngsi-ld:TrafficFlowObserved:in:"
SIG = "urn:ngsi-ld:TrafficSignal:J1"


def _flow(lane: str, queue: int, count: int, entered: int, period: float | None = 10.0,
          direction: str = "incoming") -> Entity:
    prefix = FLOW if direction == "incoming" else "urn:ngsi-ld:TrafficFlowObserved:out:"
    return Entity(f"{prefix}{lane}", "TrafficFlowObserved", {
        "flowDirection": Property(direction), "queue": Property(queue), "vehicleCount": Property(count),
        "intensity": Property(entered), "observationPeriod": Property(period)})


def _signal(green_lane: str | None, lanes: tuple[str, ...] = ("a", "b")) -> Entity:
    phases = [{"index": i, "serves": [{"lane": lane, "to": [], "detector": f"{FLOW}{lane}"}]}
              for i, lane in enumerate(lanes)]
    current = lanes.index(green_lane) if green_lane is not None else None
    return Entity(SIG, "TrafficSignal", {"phaseKind": Property("green" if green_lane else "yellow"),
                                         "currentPhase": Property(current), "phases": Property(phases)})


def _snap(t: float, *ents: Entity) -> Snapshot:
    return Snapshot(T0, t, {e.id: e for e in ents})


def test_saturation_of_a_discharging_lane_approaches_the_true_rate() -> None:
    learner = LaneRateLearner()
    # lane a: green, 15 of 20 vehicles halting; 6 leave and 6 enter every 10 s -> 0.6 veh/s discharge
    # lane b: red, its queue grows; lane c: green but only 2 halting (no standing queue)
    for k in range(300):
        learner.learn(_snap(10.0 * k, _signal("a", ("a", "b")), _flow("a", 15, 20, 6),
                            _flow("b", 5 + k, 5 + k, 1), _flow("c", 2, 2, 0)))
    fc = learner.forecast(_snap(3000.0))
    sat = fc[f"{FLOW}a#saturationFlow"]
    assert sat["n"] == 299
    # from the 0.5 veh/s prior with a 900 s time constant: 2990 s later the gap has shrunk by exp(-2990/900)
    assert sat["mean"] == pytest.approx(0.6 - 0.1 * math.exp(-2990 / 900), abs=2e-5)
    assert abs(sat["mean"] - 0.6) < 0.005
    lo, hi = sat["interval_90"]
    assert 0.05 <= lo <= sat["mean"] <= hi
    assert f"{FLOW}b#saturationFlow" not in fc  # never green
    assert f"{FLOW}c#saturationFlow" not in fc  # green without a standing queue: not a saturation measurement
    assert fc[f"{FLOW}b#redTime"]["mean"] == 3000.0 and fc[f"{FLOW}a#redTime"]["mean"] == 10.0


def test_first_discharge_moves_from_the_prior_by_the_period_weight() -> None:
    learner = LaneRateLearner()
    for k in range(2):
        learner.learn(_snap(10.0 * k, _signal("a"), _flow("a", 10, 12, 4 * k), _flow("b", 0, 0, 0)))
    sat = learner.forecast(_snap(10.0))[f"{FLOW}a#saturationFlow"]
    assert sat["n"] == 1
    assert sat["mean"] == round(0.5 + (0.4 - 0.5) * (1.0 - math.exp(-10.0 / 900.0)), 5)


def _level(learner: LaneRateLearner, lane: str) -> float:
    """The arrival model's level of ``lane`` (the forecast may follow persistence instead)."""
    return float(learner.arrivals.level[learner.arrivals.index_of(f"{FLOW}{lane}")])


def test_arrivals_track_a_rate_change() -> None:
    learner = LaneRateLearner()
    for k in range(200):  # 0.2 veh/s, then 0.8 veh/s from 2000 s on
        entered = 2 if k < 100 else 8
        learner.learn(_snap(10.0 * k, _signal("b"), _flow("a", 0, 3, entered), _flow("b", 0, 0, 0)))
        if k == 130:  # 300 s (one time constant) after the change
            assert _level(learner, "a") == pytest.approx(0.2 + 0.6 * (1.0 - math.exp(-310.0 / 300.0)), abs=1e-5)
            lam = learner.forecast(_snap(10.0 * k))[f"{FLOW}a#arrivalRate"]
            # a step change: persistence is exact since, the level still lags, so the forecast follows persistence
            assert lam["mean"] == 0.8 and lam["model"] == "persistence"
    assert _level(learner, "a") == pytest.approx(0.8, abs=0.03)
    lam = learner.forecast(_snap(2000.0))[f"{FLOW}a#arrivalRate"]
    assert lam["mean"] == pytest.approx(0.8, abs=0.03)
    assert lam["n"] == 199
    assert lam["interval_90"][0] <= 0.8 <= lam["interval_90"][1]


def test_per_lane_observation_periods_weight_each_lane() -> None:
    learner = LaneRateLearner()
    for k in range(3):
        learner.learn(_snap(10.0 * k, _signal("b"), _flow("a", 0, 0, 0 if k < 2 else 10, period=10.0),
                            _flow("b", 0, 0, 0 if k < 2 else 5, period=5.0)))
    fc = learner.forecast(_snap(20.0))
    assert fc[f"{FLOW}a#arrivalRate"]["mean"] == round(1.0 * (1.0 - math.exp(-10.0 / 300.0)), 5)
    assert fc[f"{FLOW}b#arrivalRate"]["mean"] == round(1.0 * (1.0 - math.exp(-5.0 / 300.0)), 5)


def test_forecasts_name_the_forecasting_model() -> None:
    learner = LaneRateLearner()
    assert isinstance(learner, ForecastProvider)
    assert isinstance(learner.arrivals, Ewma) and isinstance(learner.saturation, Ewma)
    assert learner.arrivals.name in registry.names()
    assert learner.models == {"arrivalRate": "ewma@1", "saturationFlow": "ewma@1"}
    for k in range(3):
        learner.learn(_snap(10.0 * k, _signal("a"), _flow("a", 9, 10, 3), _flow("b", 0, 0, 1)))
    fc = learner.forecast(_snap(20.0))
    rated = [v for key, v in fc.items() if not key.endswith("#redTime")]
    assert len(rated) == 3  # a and b arrivals, a saturation
    assert all(v["model"] == "ewma@1" for v in rated)
    # both models hold one series per TrafficFlowObserved id, in the same order
    assert learner.arrivals.series_ids == learner.saturation.series_ids == (f"{FLOW}a", f"{FLOW}b")


def test_learns_only_from_incoming_detectors() -> None:
    def run(extra: bool) -> dict[str, object]:
        learner = LaneRateLearner()
        for k in range(20):
            ents = [_signal("a"), _flow("a", 8, 10, 3), _flow("b", 1, 2, 1)]
            if extra:  # ground truth the controller must not read, and outgoing detectors
                ents += [Entity(f"urn:ngsi-ld:Vehicle:v{k}", "Vehicle", {"speed": Property(3.0)}),
                         _flow("a", 50, 60, 30, direction="outgoing")]
            learner.learn(_snap(10.0 * k, *ents))
        return dict(learner.forecast(_snap(200.0)))

    assert run(True) == run(False)


def test_the_first_observation_and_missing_periods_learn_nothing() -> None:
    learner = LaneRateLearner()
    learner.learn(_snap(0.0, _signal("a"), _flow("a", 9, 10, 3, period=None)))
    learner.learn(_snap(10.0, _signal("a"), _flow("a", 9, 10, 3, period=None)))
    fc = learner.forecast(_snap(10.0))
    assert set(fc) == {f"{FLOW}a#redTime"}
    assert learner.arrivals.n_observations == 0


def _reference(snaps: list[Snapshot]) -> dict[str, tuple[float, float, int]]:
    """The per-lane scalar estimator the learner replaced: arrival mean, saturation mean and counts."""
    arr: dict[str, list[float]] = {}
    sat: dict[str, list[float]] = {}
    prev: dict[str, tuple[int, int, bool]] = {}
    for snap in snaps:
        sig = snap.entities[SIG]
        green = {s["detector"] for s in sig.get("phases")[sig.get("currentPhase")]["serves"]}
        for eid, ent in snap.entities.items():
            if ent.type != "TrafficFlowObserved":
                continue
            count, queue, entered = ent.get("vehicleCount"), ent.get("queue"), ent.get("intensity")
            period = ent.get("observationPeriod")
            p = prev.get(eid)
            prev[eid] = (count, queue, eid in green)
            if p is None or not period:
                continue
            a = 1.0 - math.exp(-period / 300.0)
            est = arr.setdefault(eid, [entered / period, 0.0, 0])
            est[0] += a * (entered / period - est[0])
            est[2] += 1
            if p[2] and eid in green and p[1] >= 3:
                s = sat.setdefault(eid, [0.5, 0.0, 0])
                a = 1.0 - math.exp(-period / 900.0)
                s[0] += a * (min(max(entered + p[0] - count, 0) / period, 2.0) - s[0])
                s[2] += 1
    return {eid: (v[0], sat[eid][0] if eid in sat else math.nan, int(v[2])) for eid, v in arr.items()}


def test_matches_the_previous_per_lane_estimator() -> None:
    rng = random.Random(4)
    lanes = tuple(f"l{i}" for i in range(6))
    snaps = []
    for k in range(150):
        ents = [_signal(lanes[(k // 4) % 6], lanes)]
        ents += [_flow(lane, rng.randint(0, 9), rng.randint(9, 15), rng.randint(0, 5),
                       period=None if k == 0 else 10.0) for lane in lanes[: 3 if k < 30 else 6]]
        snaps.append(_snap(10.0 * k, *ents))
    learner = LaneRateLearner()
    for snap in snaps:
        learner.learn(snap)
    fc = learner.forecast(snaps[-1])
    ref = _reference(snaps)
    assert len(ref) == 6 and any(not math.isnan(sat) for _, sat, _ in ref.values())
    for eid, (lam, sat, n) in ref.items():
        assert round(float(learner.arrivals.level[learner.arrivals.index_of(eid)]), 5) == round(lam, 5)
        assert fc[f"{eid}#arrivalRate"]["n"] == n
        if math.isnan(sat):
            assert f"{eid}#saturationFlow" not in fc
        else:
            assert fc[f"{eid}#saturationFlow"]["mean"] == round(sat, 5)


def _run_lane(rates: list[float]) -> LaneRateLearner:
    learner = LaneRateLearner()
    for k, r in enumerate(rates):
        learner.learn(_snap(10.0 * k, _signal("b"), _flow("a", 0, 3, round(10 * r)), _flow("b", 0, 0, 0)))
    return learner


def test_arrival_forecast_follows_persistence_where_it_forecasts_better() -> None:
    # a congested lane: its inflow moves in long runs (a queue ahead releases or blocks it), so the last rate
    # forecasts the next far better than a 300 s level; the level alone is well above persistence's error
    rng = random.Random(7)
    rates, r = [], 0.3
    for _ in range(360):
        if rng.random() < 0.1:
            r = rng.choice([0.0, 0.1, 0.5, 0.8])
        rates.append(r)
    learner = _run_lane(rates)
    acc = learner.accuracy()
    assert acc["n"] > 0 and acc["ratio"] <= 1.05
    fc = learner.forecast(_snap(3600.0))[f"{FLOW}a#arrivalRate"]
    assert fc["model"] == "persistence" and fc["mean"] == rates[-1]
    # the same series forecast by the level alone (what the controller did before)
    err = naive = 0.0
    lv = rates[0]
    for prev, y in itertools.pairwise(rates):
        err += abs(y - lv)
        naive += abs(y - prev)
        lv += (1 - math.exp(-10 / 300)) * (y - lv)
    assert err / naive > 1.5


def test_arrival_forecast_keeps_the_level_on_noisy_stationary_arrivals() -> None:
    rng = random.Random(3)
    rates = [rng.choice([0.0, 0.1, 0.2, 0.3, 0.4]) for _ in range(360)]
    learner = _run_lane(rates)
    acc = learner.accuracy()
    assert acc["ratio"] < 0.9  # the level beats persistence on noise, and is kept
    fc = learner.forecast(_snap(3600.0))[f"{FLOW}a#arrivalRate"]
    assert fc["model"] == "ewma@1"
    assert fc["mean"] == round(_level(learner, "a"), 5)
