"""The village district on Kerber's feeder: its layout by rule, one real household per house, a real power flow on
it, and one governed day of AI City through the product's loop."""

from __future__ import annotations

import numpy as np
import pytest

from aicity.domains.energy import domain
from aicity.domains.energy.district import VILLAGE, VILLAGE_LAYOUT, WEEK_STEPS, build_district, read_loads
from aicity.domains.energy.grid import GridModel, bus_names

pytest.importorskip("pandapower")


def test_the_village_is_laid_out_by_its_rules() -> None:
    lay = VILLAGE_LAYOUT
    names = bus_names(lay.network)
    assert len(lay.nodes) == 57 and all(b in names for b, _, _ in lay.nodes)
    per_feeder = {d: sum(1 for _, _, x in lay.nodes if x == d) for _, _, d in lay.nodes}
    assert per_feeder == {"feeder 1": 9, "feeder 2": 9, "feeder 3": 16, "feeder 4": 12, "feeder 5": 7, "feeder 6": 4}
    # a charger at the 1st, 3rd, ... house of each cable, PV at every third, batteries at the ends of the longest
    assert "loadbus_3_1" in lay.charger_nodes and "loadbus_3_2" not in lay.charger_nodes
    assert len(lay.charger_nodes) == 5 + 5 + 8 + 6 + 4 + 2
    assert lay.pv_nodes[:3] == ("loadbus_1_3", "loadbus_1_6", "loadbus_1_9") and len(lay.pv_nodes) == 18
    assert lay.battery_nodes == ("loadbus_3_16", "loadbus_4_12", "loadbus_1_9")


def test_each_house_is_one_real_household_at_a_whole_week_offset() -> None:
    scen = domain.resolve(VILLAGE)
    assert scen is not None
    site = build_district(scen, {"draw": 2}, history_days=7)
    homes = read_loads()
    past = site.history_kw.shape[1]
    seen = set()
    for i in range(len(site.nodes)):
        found = [(h, w) for h in range(homes.shape[1]) for w in range(4)
                 if np.allclose(site.base_kw[i], homes[w * WEEK_STEPS + past:w * WEEK_STEPS + past + site.n_steps, h])]
        assert len(found) == 1, f"house {site.nodes[i]} is no shipped household"
        seen.add(found[0])
        # the meters' history is the same household's week before, less its roof's PV
        h, w = found[0]
        assert np.all(site.history_kw[i] <= homes[w * WEEK_STEPS:w * WEEK_STEPS + past, h] + 1e-9)
    assert len(seen) == len(site.nodes)  # no two houses share a household and week
    again = build_district(scen, {"draw": 2}, history_days=7)
    other = build_district(scen, {"draw": 3}, history_days=7)
    assert np.array_equal(again.base_kw, site.base_kw) and not np.array_equal(other.base_kw, site.base_kw)
    assert {c.group for c in site.chargers} == {"f1", "f2", "f3", "f4", "f5", "f6"}
    assert site.limit_kw == 400.0 and len(site.batteries) == 3


def test_a_real_power_flow_on_the_village_feeder_and_its_sensitivities() -> None:
    names = bus_names("kerber_dorfnetz")
    far, near = names.index("loadbus_3_16"), names.index("loadbus_3_1")
    grid = GridModel((near, far), network="kerber_dorfnetz")
    idle, loaded = grid.run([0.0, 0.0]), grid.run([0.0, 60.0])
    assert idle.converged and loaded.converged
    assert loaded.vm_pu["loadbus_3_16"] < idle.vm_pu["loadbus_3_16"] - 0.01
    assert loaded.vm_pu["loadbus_3_16"] < loaded.vm_pu["loadbus_3_1"]  # the drop grows along the cable
    view = grid.planner_view()
    k = view.bus_names.index("loadbus_3_16")
    assert view.v_nl[k] + view.sv[k, 1] * 60.0 == pytest.approx(loaded.vm_pu["loadbus_3_16"], abs=0.003)


def test_a_day_of_the_village_through_the_governed_loop() -> None:
    from aicity.runner import bench_run, load_city

    city = load_city(f"energy/{VILLAGE}", {"oracle": False, "draw": 1}, 86400.0)
    runs = {m: bench_run(city, mode=m, seed=1, controllers={"energy": m}).results["energy"].kpis
            for m in ("smart", "ai")}
    assert runs["ai"]["voltage_violations"] == 0 and runs["ai"]["loading_violations"] == 0
    assert runs["ai"]["peak_kw"] < runs["smart"]["peak_kw"]
    assert runs["ai"]["delivered_frac"] > 0.95


def test_the_village_feeder_is_the_same_whatever_pythons_global_random_holds() -> None:
    # pandapower draws the house connections' cables from the unseeded global random: every process built its own
    import random

    from aicity.domains.energy.grid import _template

    state = random.getstate()
    try:
        kinds = []
        for seed in (1, 2):
            random.seed(seed)
            kinds.append(list(_template.__wrapped__("kerber_dorfnetz").line.std_type))
    finally:
        random.setstate(state)
    assert kinds[0] == kinds[1]
    assert {"NAYY 4x50", "NAYY 4x50 SE"} <= set(kinds[0])


@pytest.mark.parametrize("name", ["district-cigre-lv", VILLAGE])
def test_draw_zero_is_its_own_draw(name: str) -> None:
    # the option allows 0; it was read as draw 1 (`draw or 1`), so a user asking for draw 0 got draw 1's district
    scen = domain.resolve(name)
    assert scen is not None
    zero, one = (build_district(scen, {"draw": d}) for d in (0, 1))
    assert not np.array_equal(zero.base_kw, one.base_kw)
