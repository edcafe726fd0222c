"""What the energy AI learns online: the quantile of arrivals still to come today, its warm-up on past records."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from aicity.core.domain import RunServices, Snapshot
from aicity.core.meta import option_values
from aicity.domains.energy import domain
from aicity.domains.energy.const import BUS_TYPE
from aicity.domains.energy.controllers import controller_parts
from aicity.domains.energy.data import read_sessions
from aicity.domains.energy.learning import ArrivalProfile, DemandLearner
from aicity.domains.energy.meta import OPTIONS
from aicity.domains.energy.mpc import MpcPlanner
from aicity.domains.energy.scenarios import TZ, warm_up

MONDAY = datetime(2019, 9, 2, tzinfo=TZ)


def _day(profile: ArrivalProfile, start: datetime, arrivals: dict[int, float]) -> None:
    """One whole day of hourly slots: ``arrivals`` maps hour -> kWh first seen then."""
    for h in range(24):
        profile.add(start + timedelta(hours=h), arrivals.get(h, 0.0))


def test_remaining_energy_is_a_quantile_over_past_days_of_the_same_type() -> None:
    p = ArrivalProfile(period=24, quantile=0.5, min_days=3)
    for d, kwh in enumerate((10.0, 30.0, 20.0)):  # Mon-Wed: kwh at 09:00 and 10 kWh at 14:00
        _day(p, MONDAY + timedelta(days=d), {9: kwh, 14: 10.0})
    p.add(MONDAY + timedelta(days=3), 0.0)  # Thursday begins: Wednesday is complete
    curve = p.remaining(weekend=False)
    assert curve is not None
    assert curve[0] == pytest.approx(30.0) and curve[10] == pytest.approx(10.0) and curve[15] == 0.0
    assert p.remaining(weekend=True) is None  # no weekend learned: no forecast, never a weekday's
    ahead = p.ahead(MONDAY + timedelta(days=3, hours=8), 6)
    assert ahead is not None and ahead[0] == pytest.approx(20.0) and sum(ahead) == pytest.approx(30.0)


def test_a_day_seen_from_mid_morning_is_not_learned() -> None:
    p = ArrivalProfile(period=24, min_days=1)
    for h in range(10, 24):  # the window began at 10:00: the morning's arrivals are unknown
        p.add(MONDAY + timedelta(hours=h), 5.0)
    p.add(MONDAY + timedelta(days=1), 0.0)
    assert p.n_days == 0 and p.remaining(weekend=False) is None


def test_ahead_runs_into_the_next_days_type() -> None:
    p = ArrivalProfile(period=24, quantile=0.5, min_days=1)
    p.warm([(datetime(2019, 9, 6, 9, tzinfo=TZ), 50.0), (datetime(2019, 9, 7, 11, tzinfo=TZ), 5.0)],
           date(2019, 9, 6), date(2019, 9, 8))  # a Friday and a Saturday
    fc = p.ahead(datetime(2019, 9, 13, 20, tzinfo=TZ), 24)  # Friday 20:00: then Saturday
    assert fc is not None and len(fc) == 24
    assert sum(fc[:3]) == 0.0 and fc[3 + 11] == pytest.approx(5.0) and sum(fc) == pytest.approx(5.0)


def test_warm_up_reads_only_records_before_the_window() -> None:
    scen = domain.resolve("acn-caltech-2019-09")
    assert scen is not None
    params = option_values(OPTIONS, {})
    learner = DemandLearner(horizon=12, period=288, profile=ArrivalProfile(288))
    assert warm_up(learner, scen, params) == 28
    assert learner.profile is not None and learner.profile.n_days == 28
    # the same curve from August's records alone (4-31 August), read independently
    aug = read_sessions(datetime(2019, 8, 4, tzinfo=TZ), datetime(2019, 9, 1, tzinfo=TZ))
    origin = datetime(2019, 8, 4, tzinfo=TZ).timestamp()
    mine = ArrivalProfile(288)
    mine.warm([(datetime.fromtimestamp(origin + s.arrival_s, TZ), s.capacity_kwh) for s in aug],
              date(2019, 8, 4), date(2019, 9, 1))
    for weekend in (False, True):
        a, b = learner.profile.remaining(weekend), mine.remaining(weekend)
        assert a is not None and b is not None and np.allclose(a, b)
    first = domain.resolve("acn-caltech-2019-05")
    assert first is not None
    cold = DemandLearner(horizon=12, period=288, profile=ArrivalProfile(288))
    assert warm_up(cold, first, params) == 0 and cold.profile is not None and cold.profile.n_days == 0
    off = DemandLearner(horizon=12, period=288, profile=ArrivalProfile(288))
    assert warm_up(off, scen, option_values(OPTIONS, {"history_days": 0})) == 0


def test_the_ai_controller_on_acn_plans_the_quantile_of_arrivals() -> None:
    scen = domain.resolve("acn-caltech-2019-09")
    assert scen is not None
    planners, learners = controller_parts(scen, "ai")
    assert isinstance(planners[0], MpcPlanner) and planners[0].arrivals == "quantile"
    learner = learners[0]
    assert isinstance(learner, DemandLearner) and learner.profile is not None
    weekday = learner.profile.remaining(weekend=False)
    assert weekday is not None and weekday[0] > weekday[144] > weekday[-1] == 0.0
    assert np.all(np.diff(weekday) <= 1e-9)  # energy still to come only falls through the day
    fc = learner.forecast(Snapshot(datetime(2019, 9, 1, tzinfo=TZ), 0.0, {}))
    assert fc["energy.dwell_h"]["n"] > 100 and fc["energy.departure_share"]["n"] > 100  # dwells warmed up too


def test_warm_meters_counts_each_arrival_at_the_first_reading_after_it() -> None:
    learner = DemandLearner(horizon=4, period=4)
    net = np.array([[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]])
    start = datetime(2019, 9, 2, tzinfo=TZ)
    # 8 past steps of 6 h, each reading stamped at the end of its interval: the last (18:00-24:00 before the
    # window) is the meters' first live reading, at the window's start, so 7 are learned; an arrival 1 s before
    # the window is read at that first live reading, not learned here
    assert learner.warm_meters(net, [(-1.0, 7.0), (-6 * 3600.0 - 1.0, 5.0), (-3 * 86400.0, 9.0)], start,
                               6 * 3600.0) == 7
    learner.learn(Snapshot(start, 0.0, {}))  # no meter: nothing learned, forecasts unchanged
    fc = learner._model.forecast_all(4)
    arrivals = fc["arrival_kwh"].mean  # the readings at 00:00, 06:00, 12:00 and 18:00 of the window's first day
    assert arrivals[3] == pytest.approx(5.0 / 2)  # the 12:00-18:00 interval, read at 18:00: 5 kWh on one of two days
    assert fc["inflexible_kw:0"].mean == pytest.approx([4.0, 1.0, 2.0, 3.0])  # the 00:00 reading: 18:00-24:00's


def test_the_district_has_a_week_of_meter_history_before_its_window() -> None:
    from aicity.domains.energy.scenarios import build_site

    scen = domain.resolve("district-cigre-lv")
    assert scen is not None
    site = build_site(scen, option_values(OPTIONS, {"draw": 2}))
    assert site.history_kw.shape == (len(site.nodes), 7 * 96)
    assert site.history_arrivals and all(-7 * 86400.0 <= a < 0.0 for a, _ in site.history_arrivals)
    assert all(s.arrival_s >= 0.0 for s in site.sessions)
    twin = domain.open_twin(scen, seed=1, mode="ai", services=RunServices())
    twin.start()
    snap = Snapshot(site.epoch, 0.0, {e.id: e for e in twin.observe()})
    first = twin.site.history_kw  # the twin's own draw (its seed's)
    twin.close()
    steps = {}
    for days in (7, 0):
        _, learners = controller_parts(dataclasses.replace(scen, params={"draw": 2, "history_days": days}), "ai")
        learner = learners[0]
        assert isinstance(learner, DemandLearner)
        learner.learn(snap)
        steps[days] = learner.forecast(snap)["energy.inflexible_kw"]["steps"]
    assert steps == {7: 7 * 96, 0: 1}  # warm, the peak guard knows evenings from the first one
    # the meters' first reading is the last interval before the window, so the learner's memory of the measured
    # total is the history itself, interval by interval: no zero at the window's start, no step's shift
    meters = {e.get("node"): e.get("inflexibleLoad") for e in snap.entities.values() if e.type == BUS_TYPE}
    assert [meters[i] for i in range(len(site.nodes))] == pytest.approx(first[:, -1].tolist(), abs=1e-3)
    _, learners = controller_parts(dataclasses.replace(scen, params={"draw": 1, "history_days": 7}), "ai")
    learner = learners[0]
    assert isinstance(learner, DemandLearner)
    learner.learn(snap)
    assert list(learner._total) == pytest.approx(first.sum(axis=0).tolist(), abs=0.05)


def test_past_days_are_the_measured_totals_a_day_and_two_before_each_step_ahead() -> None:
    learner = DemandLearner(horizon=4, period=4, past_days=2)
    for v in range(10):  # ten steps measured, 0 … 9: the next four are steps 10 … 13
        learner._remember(float(v))
    assert learner.past() == [[6.0, 7.0, 8.0, 9.0], [2.0, 3.0, 4.0, 5.0]]
    assert DemandLearner(horizon=4, period=4).past() == []  # nothing kept unless asked
