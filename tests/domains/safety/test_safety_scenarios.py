"""The built-in safety scenarios: network-scaled targets follow one rule on every map."""

from __future__ import annotations

import statistics

import pytest

from aicity.domains.safety.scenarios import LAYOUTS, network_targets


def test_network_targets_keep_cologne8s_and_scale_with_the_median_trip() -> None:
    assert network_targets(63.0) == (90.0, 120.0)
    assert network_targets(115.0) == (165.0, 220.0)
    assert network_targets(31.5) == (45.0, 60.0)


def _median_trip_s(layout: str) -> float:
    pytest.importorskip("sumolib")
    from aicity.domains.mobility.scenarios import read_sumocfg, resolve
    from aicity.domains.safety.geo import load_map

    lay = LAYOUTS[layout]
    scen = resolve(lay.map)
    assert scen is not None and scen.path is not None
    smap = load_map(read_sumocfg(scen.path).net, int(lay.params["zones_per_side"]), int(lay.params["hospitals"]))
    times = [t for e in smap.length for x, t in smap.times_from(e).items() if x != e and x in smap.length]
    return float(statistics.median(times))


@pytest.mark.parametrize("layout", ["cologne8-ems", "ingolstadt21-ems", "grid4x4-ems"])
def test_each_maps_targets_and_coverage_radius_follow_the_rule(layout: str) -> None:
    from aicity.domains.safety import domain, options_of

    median = _median_trip_s(layout)
    scen = domain.resolve(layout)
    assert scen is not None
    opts = options_of(scen)
    assert (opts["target_p1_s"], opts["target_p2_s"]) == network_targets(median), median
    assert opts["coverage_radius_s"] == 90.0  # the stations' placement radius is not scaled (see TARGET_PER_MEDIAN)
