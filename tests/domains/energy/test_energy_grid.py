"""The district grid: a real pandapower AC power flow, its sensitivities, and the LP keeping the voltage band."""

from __future__ import annotations

import numpy as np
import pytest

from aicity.domains.energy.grid import GridModel, bus_names
from aicity.domains.energy.lp import Job, Problem, solve

pytest.importorskip("pandapower")


@pytest.fixture(scope="module")
def grid() -> GridModel:
    names = bus_names()
    model = GridModel((names.index("Bus R11"), names.index("Bus R18")))
    model.start()
    return model


def test_power_flow_voltage_drops_with_load(grid: GridModel) -> None:
    idle = grid.run([0.0, 0.0])
    loaded = grid.run([0.0, 150.0])
    assert idle.converged and loaded.converged
    assert loaded.vm_pu["Bus R18"] < idle.vm_pu["Bus R18"] - 0.01
    assert loaded.loading_pct["Trafo R0-R1"] > idle.loading_pct["Trafo R0-R1"]


def test_sensitivities_match_the_power_flow(grid: GridModel) -> None:
    view = grid.planner_view()
    r18 = view.bus_names.index("Bus R18")
    assert view.sv[r18, 1] < 0  # load at R18 lowers its voltage
    predicted = view.v_nl[r18] + view.sv[r18, 1] * 100.0
    actual = grid.run([0.0, 100.0]).vm_pu["Bus R18"]
    assert predicted == pytest.approx(actual, abs=0.005)


def test_lp_keeps_the_voltage_floor(grid: GridModel) -> None:
    # 600 kWh at the far end of the feeder in 2 h would take 300 kW there: the voltage floor caps the power
    view = grid.planner_view()
    net = view.restrict(np.zeros((2, 2)), 2)
    job = Job("ev", np.ones(2), 600.0, 1000.0, node=1)
    sol = solve(Problem(2, 1.0, np.full(2, 0.1), np.zeros(2), [job], network=net, peak_weight=0.0))
    assert sol.ok and sol.unserved["ev"] > 0
    assert {kind for kind, _, _ in sol.binding} & {"voltage_min", "line_loading"}
    flow = grid.run([0.0, float(sol.rates["ev"][0])])
    assert min(flow.vm_pu.values()) >= 0.95 - 1e-3


def test_the_district_replays_workplace_sessions_in_the_evening() -> None:
    """The district's chargers replay Caltech sessions 9 h later: a workplace arrival at ~08:00 plugs in at home at
    ~17:00 (the shift was once applied twice, so cars came home at ~02:00)."""
    from aicity.domains.energy import domain
    from aicity.domains.energy.district import build_district

    scen = domain.resolve("district-cigre-lv")
    site = build_district(scen, {"draw": 1})
    hours = np.array([(s.arrival_s % 86400.0) / 3600.0 for s in site.sessions])
    assert len(hours) > 50
    assert 15.0 <= float(np.median(hours)) <= 20.0
    assert float(np.mean((hours >= 14.0) & (hours < 22.0))) > 0.6


def test_linearised_floor_holds_the_ac_voltage(grid: GridModel) -> None:
    # at no load's sensitivities the load that puts R18 at the plain floor takes it below in AC; the corrected does not
    from aicity.domains.energy.grid import linear_floor

    view = grid.planner_view()
    r18 = view.bus_names.index("Bus R18")
    kw = {f: (f - view.v_nl[r18]) / view.sv[r18, 1] for f in (0.95, linear_floor(0.95, view.v_nl))}
    plain, corrected = (grid.run([0.0, float(k)]).vm_pu["Bus R18"] for k in kw.values())
    assert plain < 0.95 - 1e-3
    assert corrected >= 0.95 - 5e-4


def test_the_billing_month_extends_the_week_without_rescaling_it() -> None:
    """The month district runs four weeks on the same draw: its first week's loads, PV and sessions are the week
    scenario's, and each load point keeps the week's scale (its profile's peak over the first 15 shipped days)."""
    from aicity.domains.energy import domain
    from aicity.domains.energy.district import HISTORY_DAYS, MONTH, WEEK, build_district

    week = build_district(domain.resolve(WEEK), {"draw": 2}, HISTORY_DAYS)
    month = build_district(domain.resolve(MONTH), {"draw": 2}, HISTORY_DAYS)
    assert month.n_steps - 1 == 28 * 96 and week.n_steps - 1 == 7 * 96
    np.testing.assert_array_equal(month.base_kw[:, :week.n_steps], week.base_kw)
    np.testing.assert_array_equal(month.pv_kw[:, :week.n_steps], week.pv_kw)
    np.testing.assert_array_equal(month.history_kw, week.history_kw)
    first = [s for s in month.sessions if s.arrival_s < 7 * 86400.0]
    assert first and first == [s for s in week.sessions if s.arrival_s < 7 * 86400.0]
    assert max(s.arrival_s for s in month.sessions) > 27 * 86400.0  # sessions run to the month's end
