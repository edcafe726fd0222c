"""The perfect-foresight oracle and the gap-closed score."""

from __future__ import annotations

import os

import pytest

from aicity.core.meta import option_values
from aicity.domains.energy import domain
from aicity.domains.energy.kpis import gap_closed
from aicity.domains.energy.meta import OPTIONS
from aicity.domains.energy.oracle import oracle_kpis
from aicity.domains.energy.scenarios import build_site
from aicity.runner import bench_run, load_city


def test_gap_closed() -> None:
    assert gap_closed(100.0, 40.0, 40.0) == pytest.approx(1.0)
    assert gap_closed(100.0, 70.0, 40.0) == pytest.approx(0.5)
    assert gap_closed(100.0, 120.0, 40.0) == pytest.approx(-1 / 3)
    assert gap_closed(50.0, 50.0, 50.0) is None


def test_oracle_beats_both_modes_on_peak() -> None:
    scen = domain.resolve("acn-caltech-day")
    assert scen is not None
    site = build_site(scen, option_values(OPTIONS, {}))
    best = oracle_kpis(site, scen.begin_s, scen.begin_s + 4 * 3600)
    assert best["solved"] == 1.0 and best["delivered_frac"] > 0.99
    runs = {}
    for ctl in ("smart", "oracle"):
        city = load_city("energy/acn-caltech-day", {"oracle": False}, 4 * 3600)
        runs[ctl] = bench_run(city, mode="ai", seed=1, controllers={"energy": ctl}).results["energy"].kpis
    assert runs["oracle"]["peak_kw"] < runs["smart"]["peak_kw"]
    # replayed through the loop and the edge (whole steps), the oracle's peak stays close to its LP's
    assert runs["oracle"]["peak_kw"] == pytest.approx(best["peak_kw"], rel=0.15)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("AICITY_SLOW"), reason="3 simulated days of AC power flow: AICITY_SLOW=1")
def test_district_ai_keeps_the_voltage_band_smart_does_not() -> None:
    kp = {}
    for ctl in ("smart", "ai"):
        city = load_city("energy/district-cigre-lv", {"oracle": False}, 3 * 86400)
        kp[ctl] = bench_run(city, mode="ai", seed=1, controllers={"energy": ctl}).results["energy"].kpis
    assert kp["smart"]["voltage_violations"] > 0
    assert kp["ai"]["voltage_violations"] == 0 and kp["ai"]["loading_violations"] == 0


def test_the_district_oracle_replayed_through_the_twin_keeps_its_planned_peak() -> None:
    # the LP knows the batteries' ramp limit (15 kW per 15 min): without it the plan swapped power between batteries
    # from step to step, the edge clamped the swaps, and the replay missed the plan (draw 1, a week: 219 kW for a
    # planned 189). Two days of draw 1, the plan's peak against the twin's.
    import dataclasses

    scen = domain.resolve("district-cigre-lv")
    assert scen is not None
    scen = dataclasses.replace(scen, end_s=2 * 86400.0, params={"draw": 1})
    site = build_site(scen, option_values(OPTIONS, scen.params))
    planned = oracle_kpis(site, 0.0, scen.end_s)["peak_kw"]
    city = load_city("energy/district-cigre-lv", {"oracle": False, "draw": 1}, 2 * 86400.0)
    replayed = bench_run(city, mode="ai", seed=1, controllers={"energy": "oracle"}).results["energy"].kpis["peak_kw"]
    assert replayed <= planned * 1.03 + 1.0
