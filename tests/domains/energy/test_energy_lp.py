"""The dispatch LP (a real HiGHS solve) on cases small enough to solve by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aicity.domains.energy.lp import Job, Problem, Storage, solve


def test_two_evs_share_the_peak_by_hand() -> None:
    # two EVs over 4 one-hour steps: A needs 8 kWh within steps 0-1, B needs 8 kWh within steps 0-3.
    # The minimum peak is 4 kW at every step: A takes 4+4 in steps 0-1 (B 0, 0), B takes 4+4 in steps 2-3.
    a = Job("A", np.array([1, 1, 0, 0.0]), 8.0, 7.0)
    b = Job("B", np.array([1, 1, 1, 1.0]), 8.0, 7.0)
    sol = solve(Problem(4, 1.0, np.full(4, 0.1), np.zeros(4), [a, b], peak_weight=100.0))
    assert sol.ok and sol.peak_kw == pytest.approx(4.0)
    assert sol.rates["A"].sum() == pytest.approx(8.0) and sol.rates["B"].sum() == pytest.approx(8.0)
    assert sum(sol.unserved.values()) == pytest.approx(0.0, abs=1e-7)
    assert {kind for kind, _, _ in sol.binding} == {"peak"}  # the peak bound, and the dual says so


def test_cheap_hours_and_unserved_energy() -> None:
    # one EV, 3 kWh, 2 steps at 1 h, max 2 kW: prices 0.5 then 0.1 -> 2 kWh in the cheap step, 1 kWh in the other
    job = Job("A", np.array([1.0, 1.0]), 3.0, 2.0)
    sol = solve(Problem(2, 1.0, np.array([0.5, 0.1]), np.zeros(2), [job], peak_weight=0.0))
    assert sol.rates["A"].tolist() == pytest.approx([1.0, 2.0])
    short = solve(Problem(2, 1.0, np.array([0.5, 0.1]), np.zeros(2), [Job("B", np.array([1.0, 1.0]), 10.0, 2.0)],
                          peak_weight=0.0))
    assert short.unserved["B"] == pytest.approx(6.0)


def test_transformer_limit_binds_and_battery_shaves() -> None:
    # 10 kW inflexible load each step, 8 kW transformer: a battery holding 4 kWh must cover 2 kW for 2 h
    bat = Storage("b", soc_kwh=4.0, capacity_kwh=10.0, power_kw=5.0, soc_min=0.0, soc_max=1.0, efficiency=1.0)
    sol = solve(Problem(2, 1.0, np.full(2, 0.1), np.full(2, 10.0), [], [bat], limit_kw=8.0, peak_weight=1.0))
    assert sol.ok and sol.peak_kw == pytest.approx(8.0)
    assert sol.battery["b"].tolist() == pytest.approx([-2.0, -2.0])
    assert any(kind == "transformer" for kind, _, _ in sol.binding) or any(kind == "peak" for kind, _, _ in
                                                                           sol.binding)


def test_flat_prices_fill_a_battery_now_not_later() -> None:
    """Re-solved every step, a plan indifferent to when it charges would put the charging off at every step
    (the district's batteries stayed empty over a flat-priced weekend)."""
    n = 8
    bat = Storage("b", 6.0, 60.0, 15.0, 0.1, 0.95, 0.95)
    sol = solve(Problem(n, 0.25, np.full(n, 0.056), np.zeros(n), [], [bat], peak_floor_kw=20.0,
                        stored_value=0.056 / 0.95 * 1.02))  # under the peak already paid
    assert sol.ok and sol.battery["b"][0] == pytest.approx(15.0)


def test_reserve_keeps_energy_at_the_end_of_a_step_by_hand() -> None:
    # 5 kW load in two 1-h steps, prices 1.0 then 0.1, a full 10 kWh battery (10 kW, no loss), no demand charge.
    # Alone it covers the load in both steps; keeping 8 kWh after step 0 (each kWh short costs 2 $) leaves it 2 kWh
    # for step 0 (3 kWh imported at 1 $: the reserve's dual is that price), and the rest for step 1.
    bat = Storage("b", soc_kwh=10.0, capacity_kwh=10.0, power_kw=10.0, soc_min=0.0, soc_max=1.0, efficiency=1.0)
    base = Problem(2, 1.0, np.array([1.0, 0.1]), np.full(2, 5.0), [], [bat], peak_weight=0.0, cycle_weight=0.0,
                   early_weight=0.0)
    assert solve(base).battery["b"].tolist() == pytest.approx([-5.0, -5.0], abs=1e-6)
    kept = solve(dataclasses.replace(base, reserve=np.array([8.0, 0.0]), reserve_penalty=2.0))
    assert kept.ok and kept.battery["b"][0] == pytest.approx(-2.0, abs=1e-6) and kept.grid_kw[1] <= 1e-6
    assert kept.objective == pytest.approx(3.0, abs=1e-6) and ("reserve", 0, pytest.approx(1.0)) in kept.binding
    cheap = solve(dataclasses.replace(base, reserve=np.array([8.0, 0.0]), reserve_penalty=0.5))
    assert cheap.battery["b"][0] == pytest.approx(-5.0, abs=1e-6)  # a reserve worth less than the price is spent


def test_peak_margin_holds_the_peak_against_an_upper_bound_and_buys_energy_for_the_expected_load() -> None:
    # expected load 10 kW in both 1-h steps, its upper bound 16 kW in step 1; a battery holding 3 kWh (5 kW).
    # The peak rows see 10 + c and 16 - d with d = 3 + c: it charges 1.5 kW in step 0 and discharges 4.5 in
    # step 1, peak 11.5 kW; the grid carries the expected load: 11.5 then 5.5
    bat = Storage("b", soc_kwh=3.0, capacity_kwh=10.0, power_kw=5.0, soc_min=0.0, soc_max=1.0, efficiency=1.0)
    prob = Problem(2, 1.0, np.full(2, 0.1), np.full(2, 10.0), [], [bat], peak_weight=10.0,
                   peak_margin_kw=np.array([0.0, 6.0]))
    sol = solve(prob)
    assert sol.ok and sol.peak_kw == pytest.approx(11.5)
    assert sol.grid_kw.tolist() == pytest.approx([11.5, 5.5])
    plain = solve(dataclasses.replace(prob, peak_margin_kw=None))  # no margin: 1.5 kW off each step's 10
    assert plain.peak_kw == pytest.approx(8.5)


def test_battery_ramp_limit_spreads_the_discharge_by_hand() -> None:
    # 1-h steps, load 10 then 20 kW, a demand charge below the ramp's price: without a ramp the battery discharges
    # 5 then 15 kW (peak 5); with a 4 kW ramp from idle it reaches only 4 then 8: peak 12 in step 1 (step 0 at 6)
    bat = Storage("b", soc_kwh=20.0, capacity_kwh=20.0, power_kw=15.0, soc_min=0.0, soc_max=1.0, efficiency=1.0)
    prob = Problem(2, 1.0, np.full(2, 0.1), np.array([10.0, 20.0]), [], [bat], peak_weight=10.0)
    assert solve(prob).peak_kw == pytest.approx(5.0)
    ramped = solve(dataclasses.replace(prob, storages=[dataclasses.replace(bat, ramp_kw=4.0)]))
    assert ramped.ok and ramped.peak_kw == pytest.approx(12.0)
    assert ramped.battery["b"].tolist() == pytest.approx([-4.0, -8.0])
    assert any(kind == "ramp" for kind, _, _ in ramped.binding)


def test_a_ramp_on_the_first_step_only_by_hand() -> None:
    # the same case with the 4 kW ramp on step 0 only (the step about to be executed): step 0 reaches 4 kW from idle
    # (peak 6), step 1 is free: from idle to full power at once (15 kW: the cheaper energy; 14 would hold the peak)
    bat = Storage("b", soc_kwh=20.0, capacity_kwh=20.0, power_kw=15.0, soc_min=0.0, soc_max=1.0, efficiency=1.0,
                  ramp_kw=4.0, ramp_steps=1)
    sol = solve(Problem(2, 1.0, np.full(2, 0.1), np.array([10.0, 20.0]), [], [bat], peak_weight=10.0))
    assert sol.ok and sol.peak_kw == pytest.approx(6.0)
    assert sol.battery["b"].tolist() == pytest.approx([-4.0, -15.0])
    # charging at 30 kW before, ramp 15 per step: the first step may not fall below 15 kW of charge
    full = dataclasses.replace(bat, soc_kwh=0.0, capacity_kwh=100.0, power_kw=40.0, ramp_kw=15.0, power0_kw=30.0)
    sol = solve(Problem(2, 1.0, np.array([0.3, 0.1]), np.zeros(2), [], [full], peak_weight=0.0))
    assert sol.battery["b"][0] == pytest.approx(15.0) and sol.battery["b"][1] == pytest.approx(0.0, abs=1e-6)


def test_a_ramp_that_the_state_of_charge_cannot_follow_is_paid_for_not_infeasible() -> None:
    # discharging 10 kW with 1 kWh left and a 2 kW ramp: the LP may stop at once (as the edge lets it), at a price
    bat = Storage("b", soc_kwh=1.0, capacity_kwh=20.0, power_kw=15.0, soc_min=0.0, soc_max=1.0, efficiency=1.0,
                  ramp_kw=2.0, power0_kw=-10.0)
    sol = solve(Problem(2, 1.0, np.full(2, 0.1), np.full(2, 5.0), [], [bat], peak_weight=1.0))
    assert sol.ok and sol.battery["b"][0] >= -1.0 - 1e-6


def test_a_soft_finish_is_paid_for_only_when_it_is_cheaper_than_the_peak_by_hand() -> None:
    # one EV, 4 kWh, there for 4 one-hour steps (its typed departure), wanted within the first step (its learned
    # finish); the house draws 10 kW in step 0 and nothing after; peak $10/kW, energy $0.1/kWh everywhere.
    # At $1 per kWh late, 4 kWh late cost $4 < $40 of peak: nothing in step 0, the peak stays 10 kW.
    # At $20 per kWh late, $80 > $40: all 4 kWh in step 0, the peak is 14 kW.
    base = Job("A", np.ones(4), 4.0, 4.0, soft_steps=1.0)
    for penalty, first, peak in ((1.0, 0.0, 10.0), (20.0, 4.0, 14.0)):
        job = dataclasses.replace(base, soft_penalty=penalty)
        sol = solve(Problem(4, 1.0, np.full(4, 0.1), np.array([10.0, 0.0, 0.0, 0.0]), [job], peak_weight=10.0))
        assert sol.ok and sol.rates["A"][0] == pytest.approx(first, abs=1e-6)
        assert sol.rates["A"].sum() == pytest.approx(4.0) and sol.peak_kw == pytest.approx(peak)
        assert sum(sol.unserved.values()) == pytest.approx(0.0, abs=1e-7)  # due by the departure either way


def test_the_network_rows_are_each_moving_steps_voltages_and_flows_by_hand() -> None:
    # 2 nodes, 3 buses, 1 line, 3 steps; variables: x0 (node 0, step 0), x1 (node 1, step 2), x2 (node 1, step 2,
    # a discharge: sign -1). Step 1 moves nothing, so it has no rows; per moving step: v, -v, flow, -flow.
    from aicity.domains.energy.lp import Network, _network_block

    sv = np.array([[-0.01, 0.0], [-0.01, -0.002], [-0.001, -0.02]])
    sf = np.array([[1.0, 0.5]])
    v0 = np.array([[1.0, 1.0, 1.0], [0.99, 0.99, 0.98], [0.97, 0.96, 0.96]])
    f0 = np.array([[10.0, 20.0, 300.0]])
    net = Network(v0, sv, 0.95, 1.05, f0, sf, np.array([100.0]), ("a", "b", "c"), ("l",))
    terms = {0: [(0, 0, 1.0)], 1: [(2, 1, 1.0), (2, 2, -1.0)]}
    block, rhs, tags = _network_block(net, terms, 3, 3, np.array([50.0, 50.0]))
    dense = block.toarray()
    buses = [0, 2]  # the bus each node moves most (0 for node 0, 2 for node 1); the lowest and highest v0 among them
    expect = []
    for x in (np.array([[1.0, 0, 0], [0, 0, 0]]), np.array([[0, 0, 0], [0, 1.0, -1.0]])):  # node x var, steps 0, 2
        v, f = sv[buses] @ x, sf @ x
        expect += [*v, *-v, *f, *-f]
    np.testing.assert_allclose(dense, np.array(expect))
    assert [tags.tag(r) for r in range(block.shape[0])] == [
        (kind, k) for k in (0, 2) for kind in ("voltage_max",) * 2 + ("voltage_min",) * 2 + ("line_loading",) * 2]
    assert rhs.tolist() == pytest.approx([1.05 - 1.0, 1.05 - 0.97, 1.0 - 0.95, 0.97 - 0.95, 100 - 10, 100 + 10,
                                          1.05 - 1.0, 1.05 - 0.96, 1.0 - 0.95, 0.96 - 0.95, 100 - 300, 100 + 300])


def test_rows_no_point_within_the_bounds_can_violate_are_left_out_by_hand() -> None:
    # x0 in [0, 2], x1 in [-1, 3], x2 in [0, inf)
    from scipy.sparse import csr_matrix

    from aicity.domains.energy.lp import _can_bind

    a = csr_matrix(np.array([[1.0, 1.0, 0.0],     # at most 2 + 3 = 5 < 5.5: holds everywhere (left out)
                             [1.0, 1.0, 0.0],     # 5 = 5: tight at a corner, kept (its dual may be the bound's)
                             [1.0, -1.0, 0.0],    # at most 2 + 1 = 3 <= 10: left out
                             [0.0, -1.0, 0.0],    # at most 1 > 0.5: can bind
                             [0.0, 0.0, 1e-9],    # x2 unbounded above: can always bind
                             [-1.0, 0.0, -1.0]]))  # at most 0 < 0.5: left out
    rhs = np.array([5.5, 5.0, 10.0, 0.5, 1e6, 0.5])
    keep = _can_bind(a, rhs, np.array([0.0, -1.0, 0.0]), np.array([2.0, 3.0, np.inf]))
    assert keep.tolist() == [False, True, False, True, True, False]


def test_grid_rows_that_cannot_bind_change_nothing() -> None:
    # a network whose every row is out of reach: the plan and its duals are those of the same problem without one
    from aicity.domains.energy.lp import Network

    jobs = [Job("A", np.array([1, 1, 0, 0.0]), 8.0, 7.0, node=0), Job("B", np.ones(4), 8.0, 7.0, node=1)]
    net = Network(np.ones((2, 4)), np.array([[-1e-4, 0.0], [0.0, -1e-4]]), 0.95, 1.05, np.zeros((1, 4)),
                  np.array([[1.0, 1.0]]), np.array([1000.0]), ("a", "b"), ("l",))
    plain = solve(Problem(4, 1.0, np.full(4, 0.1), np.zeros(4), jobs, peak_weight=100.0))
    gridded = solve(Problem(4, 1.0, np.full(4, 0.1), np.zeros(4), jobs, peak_weight=100.0, network=net))
    assert gridded.ok and gridded.peak_kw == pytest.approx(plain.peak_kw) == pytest.approx(4.0)
    assert gridded.binding == plain.binding
