"""The MPC's setpoints: whole charger steps within the plan's total, and the hourly blocks of arrivals to come."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.energy.const import BATTERY_TYPE, CHARGER_TYPE, METER_TYPE
from aicity.domains.energy.data import Tariff
from aicity.domains.energy.mpc import MpcPlanner, arrival_blocks, hold_level, to_steps
from aicity.domains.energy.scenarios import TZ

NOW = datetime(2019, 9, 3, 8)


def _charger(i: int) -> Entity:
    return Entity(f"urn:ngsi-ld:{CHARGER_TYPE}:c{i}", CHARGER_TYPE, {
        "maxPower": Property(6.656, None, "KWT"), "minPower": Property(1.248, None, "KWT"),
        "powerStep": Property(0.208, None, "KWT")})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 6.656), min_size=1, max_size=30))
def test_setpoints_never_exceed_the_plans_total(rates: list[float]) -> None:
    """Rounding up to a step would lift the site a step above the planned peak, and the next plan starts from
    the peak reached: the peak would creep up by a step a day."""
    chargers = [_charger(i) for i in range(len(rates))]
    plan = {e.id: r for e, r in zip(chargers, rates, strict=True)}
    out = to_steps(chargers, plan, {e.id: float(i) for i, e in enumerate(chargers)})
    assert sum(out.values()) <= sum(rates) + 1e-6
    for kw in out.values():
        assert 1.248 - 1e-9 <= kw <= 6.656 + 1e-9
        assert abs((kw - 1.248) / 0.208 - round((kw - 1.248) / 0.208)) < 1e-6
    if sum(rates) >= 1.248 + 0.208 * len(rates):  # enough to go round: little is left unspent
        assert sum(out.values()) >= sum(rates) - 1.248 - 1e-6


def test_hourly_blocks_hold_the_energy_to_come_and_leave_out_what_ends_beyond_the_plan() -> None:
    kwh = np.zeros(144)
    kwh[1:12] = 2.0     # 22 kWh within the first hour
    kwh[24:36] = 1.0    # 12 kWh in the third hour
    kwh[130:140] = 5.0  # arrivals too late for their dwell to fit the plan
    fc = {"energy.dwell_h": {"mean": 4.0}, "energy.departure_share": {"mean": 1.0}}
    jobs = arrival_blocks({"kwh": kwh.tolist()}, fc, 144, 300.0, 1)
    assert [j.key for j in jobs] == ["forecast-0", "forecast-24"]
    assert jobs[0].energy_kwh == 22.0 and jobs[1].energy_kwh == 12.0
    assert jobs[0].avail[0] == 0.0 and jobs[0].avail[1:48].all() and not jobs[0].avail[48:].any()
    assert jobs[1].max_kw == 6.0  # at most twice the block's mean rate over the dwell


def test_hold_level_by_hand() -> None:
    # two evenings: 2 x 50 kW over 100 for 2 h, then 40 kW over 100 for 1 h; 50 kWh a run, 200 kW
    load = np.array([[100.0, 100.0, 150.0, 150.0, 100.0, 100.0, 140.0, 100.0]])
    assert hold_level(load, 50.0, 200.0, 1.0)[0] == pytest.approx(125.0, abs=1e-3)  # each run alone: 2 x 25 kWh
    assert hold_level(load, 50.0, 20.0, 1.0)[0] == pytest.approx(130.0, abs=1e-3)  # the power binds


def _site(now: datetime, stored_kwh: float, paid_kw: float) -> Snapshot:
    meter = Entity(f"urn:ngsi-ld:{METER_TYPE}:site", METER_TYPE, {
        "activePower": Property(100.0, now, "KWT"), "peakPower": Property(paid_kw, now, "KWT"),
        "decisionInterval": Property(3600.0), "transformerRating": Property(1000.0, None, "KWT")})
    bat = Entity(f"urn:ngsi-ld:{BATTERY_TYPE}:b", BATTERY_TYPE, {
        "energyStored": Property(stored_kwh), "capacity": Property(100.0), "maxPower": Property(50.0),
        "socMin": Property(0.0), "socMax": Property(1.0), "efficiency": Property(1.0), "node": Property(0),
        "stateOfCharge": Property(stored_kwh / 100.0)})
    return Snapshot(now, 0.0, {meter.id: meter, bat.id: bat})


def test_the_window_peak_lets_an_early_evening_rise_and_the_battery_trade_on_peak() -> None:
    """Tuesday noon (on-peak until 18:00): a light evening ahead (120 kW from 18:00 for 3 h, 100 kW otherwise),
    a heavy recent day (160 kW), 100 kW paid so far. Holding the peak paid, the full battery waits for the evening;
    taking the window's expected peak as paid (the heavy day held by the battery, + 20 kW), it trades on peak."""
    now = datetime(2019, 9, 3, 12, tzinfo=TZ)
    light = [120.0 if 6 <= h < 9 else 100.0 for h in range(24)]
    heavy = [160.0 if 6 <= h < 9 else 100.0 for h in range(24)]
    fc = {"energy.inflexible_kw": {"mean": light}, "energy.inflexible_past": {"days": [heavy, light]}}
    base = MpcPlanner(Tariff.load(), 15.51, 24.0, False, keep_energy="refill", battery_horizon_h=24.0, reserve_h=12.0)
    plans = {}
    for window in (False, True):
        planner = dataclasses.replace(base, window_peak=window, window_margin_kw=20.0)
        (p,) = planner(_site(now, 100.0, 100.0), fc)
        plans[window] = (p.params["kw"], p.forecasts["planned_peak_kw"])
    assert plans[False][1] == pytest.approx(100.0, abs=1e-3) and plans[False][0] == pytest.approx(0.0, abs=1e-3)
    # hold level of the heavy day with 100 kWh: 3 h x (160 - L) = 100, L = 126.67; + 20 kW margin
    assert plans[True][1] == pytest.approx(146.667, abs=1e-2) and plans[True][0] < -1.0
