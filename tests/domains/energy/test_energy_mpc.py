"""The MPC's setpoints: whole charger steps within the plan's total and its grid rows, and the hourly blocks of
arrivals to come."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.energy.const import CHARGER_TYPE, METER_TYPE
from aicity.domains.energy.data import Tariff
from aicity.domains.energy.lp import Job, Network, Problem, Solution, Storage
from aicity.domains.energy.mpc import MpcPlanner, arrival_blocks, to_steps, widen, within_rows

NOW = datetime(2019, 9, 3, 8)


def _charger(i: int, node: int = 0) -> Entity:
    return Entity(f"urn:ngsi-ld:{CHARGER_TYPE}:c{i}", CHARGER_TYPE, {
        "maxPower": Property(6.656, None, "KWT"), "minPower": Property(1.248, None, "KWT"),
        "powerStep": Property(0.208, None, "KWT"), "node": Property(node)})


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


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 6.656), st.integers(0, 3)), min_size=1, max_size=30))
def test_setpoints_never_exceed_any_nodes_planned_total(plan: list[tuple[float, int]]) -> None:
    """Per node, no node's chargers get more than the LP planned for them."""
    chargers = [_charger(i, node) for i, (_, node) in enumerate(plan)]
    rates = {e.id: r for e, (r, _) in zip(chargers, plan, strict=True)}
    out = to_steps(chargers, rates, {e.id: float(-i) for i, e in enumerate(chargers)}, per_node=True)
    for node in {n for _, n in plan}:
        ids = [e.id for e, (_, n) in zip(chargers, plan, strict=True) if n == node]
        assert sum(out.get(i, 0.0) for i in ids) <= sum(rates[i] for i in ids) + 1e-6


def test_a_node_keeps_its_planned_power_when_more_urgent_sessions_wait_elsewhere() -> None:
    """Node 0's session is the most urgent; node 1's plan is not handed to it."""
    a, b = _charger(0, node=0), _charger(1, node=1)
    out = to_steps([a, b], {a.id: 2.0, b.id: 4.0}, {a.id: 0.0, b.id: 1.0}, per_node=True)
    assert out[a.id] == pytest.approx(1.872) and out[b.id] == pytest.approx(3.952)
    site = to_steps([a, b], {a.id: 2.0, b.id: 4.0}, {a.id: 0.0, b.id: 1.0})
    assert site[a.id] == pytest.approx(2.08)  # site-wide, node 0 is rounded up at node 1's expense


def test_rounding_that_moves_power_onto_a_bus_at_its_floor_is_caught() -> None:
    """Month draw 4 (held out), Thursday 00:00: site-wide rounding put 36.6 kW on Bus C14's chargers, planned at
    28.9 kW with C14's voltage row binding, and the bus fell to 0.9488 pu. Two nodes, one bus each; bus 1 at its
    floor with the plan's 4 kW on node 1."""
    net = Network(v0=np.array([[1.0], [0.956]]), sv=np.array([[-0.001, 0.0], [0.0, -0.001]]), vmin=0.952,
                  vmax=1.05, f0=np.zeros((1, 1)), sf=np.zeros((1, 2)), fmax=np.array([100.0]), bus_names=("a", "b"),
                  line_names=("l",))
    prob = Problem(1, 0.25, np.array([0.1]), np.zeros(1), [Job("x", np.ones(1), 1.0, 6.656, 0),
                                                          Job("y", np.ones(1), 1.0, 6.656, 1)], network=net)
    sol = Solution(True, "optimal", rates={"x": np.array([2.0]), "y": np.array([4.0])})
    rates = {"x": 2.0, "y": 4.0}
    assert not within_rows(net, prob, sol, rates, {"x": 1.248, "y": 4.784})  # 0.784 kW more on bus 1
    assert within_rows(net, prob, sol, rates, {"x": 2.08, "y": 3.744})  # more on bus 0, which has room
    assert within_rows(net, prob, sol, rates, {"x": 1.872, "y": 3.952})


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


def test_widen_takes_each_steps_highest_within_the_steps_either_side() -> None:
    rows = np.array([[0.0, 5.0, 0.0, 0.0, 3.0], [1.0, 0.0, 0.0, 0.0, 0.0]])
    assert widen(rows, 0).tolist() == rows.tolist()
    assert widen(rows, 1).tolist() == [[5.0, 5.0, 5.0, 3.0, 3.0], [1.0, 1.0, 0.0, 0.0, 0.0]]
    assert widen(rows, 2).tolist() == [[5.0, 5.0, 5.0, 5.0, 3.0], [1.0, 1.0, 1.0, 0.0, 0.0]]
    assert widen(rows, 99).tolist() == [[5.0] * 5, [1.0] * 5]


def test_the_reserve_guards_a_past_days_spike_a_step_either_side_of_its_time() -> None:
    """A past day's load spiked at step 2 (100 kW above the 50 kW paid); the evening to come may spike a quarter-hour
    earlier or later. Without the jitter the reserve keeps energy only for step 2; with it, for steps 1-3."""
    planner = MpcPlanner(Tariff.load(), 15.0, horizon_h=1.25, reserve_h=1.25)
    store = [Storage("b", 50.0, 100.0, 50.0, 0.1, 0.9, 1.0)]
    fc = {"energy.inflexible_past": {"days": [[0.0, 0.0, 150.0, 0.0, 0.0]]}}
    inflex = np.zeros(5)
    plain = planner._reserve(fc, inflex, 5, 1, 0.25, 50.0, store)
    jit = MpcPlanner(Tariff.load(), 15.0, horizon_h=1.25, reserve_h=1.25, reserve_jitter_steps=1)._reserve(
        fc, inflex, 5, 1, 0.25, 50.0, store)
    assert plain is not None and jit is not None
    # energy still needed after the end of each step, at 100 kW over the floor for a quarter-hour each
    assert plain.tolist() == [25.0, 25.0, 0.0, 0.0, 0.0]
    assert jit.tolist() == [75.0, 50.0, 25.0, 0.0, 0.0]


def test_a_soft_finish_plans_to_the_typed_departure_not_the_learned_one() -> None:
    """Learned finish in 30 min, typed departure in 5 h, 20 kWh to go: with the soft finish the plan reaches the
    typed departure and spreads the session (about 4 kW) instead of running it flat out to the learned finish."""
    now = NOW.replace(tzinfo=UTC)
    meter = Entity(f"urn:ngsi-ld:{METER_TYPE}:site", METER_TYPE, {
        "activePower": Property(0.0, now, "KWT"), "decisionInterval": Property(300.0), "peakPower": Property(0.0),
        "transformerRating": Property(150.0)})
    ev = Entity(f"urn:ngsi-ld:{CHARGER_TYPE}:c0", CHARGER_TYPE, {
        **_charger(0).attrs, "sessionId": Property("s0"), "status": Property("Charging"),
        "connectedSince": Property("2019-09-03T07:00:00+00:00"),
        "estimatedDeparture": Property("2019-09-03T13:00:00+00:00"),
        "requestedEnergy": Property(20.0), "energyDelivered": Property(0.0)})
    snap = Snapshot(now, 0.0, {meter.id: meter, ev.id: ev})
    fc = {"energy.departure_share": {"mean": 0.25}}
    hard = MpcPlanner(Tariff.load(), 15.0, horizon_h=12.0, anticipate=False)
    soft = MpcPlanner(Tariff.load(), 15.0, horizon_h=12.0, anticipate=False, finish_penalty=1.0)
    kw_hard = hard(snap, fc)[0].params["kw"]
    kw_soft = soft(snap, fc)[0].params["kw"]
    assert kw_hard == 6.656  # due in 30 min: as fast as the charger goes
    assert 3.5 < kw_soft < 4.3  # 20 kWh over the 5 h to the typed departure
