"""KPIs disaggregated by district (TAZ or signal quadrants) and by 15-min time of day; bench records carry them."""

from __future__ import annotations

import random
from importlib import resources

import pytest

from aicity.core.domain import DomainResult
from aicity.domains.mobility.bench import BENCH_KEYS, bench_record
from aicity.domains.mobility.kpis import (
    Trip,
    clock_label,
    district_delay,
    edge_districts,
    nearest_signal,
    quadrant_districts,
    signal_positions,
    time_of_day_delay,
)
from aicity.domains.mobility.network import load_network

QUADRANTS = {"NW", "NE", "SW", "SE"}


def _grid3x3_net() -> str:
    return str(resources.files("aicity.domains.mobility").joinpath("data/grid3x3.net.xml"))


def test_quadrant_districts_are_deterministic_and_cover_every_signal() -> None:
    rng = random.Random(7)
    xy = {f"s{i}": (rng.uniform(0, 1000), rng.uniform(0, 1000)) for i in range(9)}
    districts = quadrant_districts(xy)
    assert set(districts) == set(xy) and set(districts.values()) <= QUADRANTS
    shuffled = dict(rng.sample(sorted(xy.items()), len(xy)))
    assert quadrant_districts(shuffled) == districts
    # a 3x3 lattice: median x = median y = 1; ties at the median go E and N
    lattice = {f"{i}{j}": (float(i), float(j)) for i in range(3) for j in range(3)}
    q = quadrant_districts(lattice)
    assert (q["00"], q["20"], q["02"], q["11"], q["01"], q["10"]) == ("SW", "SE", "NW", "NE", "NW", "SE")
    assert quadrant_districts({}) == {}


def test_nearest_signal_breaks_ties_by_id() -> None:
    xy = {"b": (1.0, 0.0), "a": (-1.0, 0.0), "c": (5.0, 5.0)}
    assert nearest_signal((0.0, 0.0), xy) == "a"
    assert nearest_signal((4.0, 4.0), xy) == "c"


def test_every_edge_of_a_real_net_gets_a_quadrant_of_its_nearest_signal() -> None:
    net = load_network(_grid3x3_net())
    pos = signal_positions(net)
    assert set(pos) == set(net.signals) and all(xy != (0.0, 0.0) for xy in pos.values())
    districts = quadrant_districts(pos)
    edges = edge_districts(net, districts)
    assert set(edges) == set(net.edge_to)
    assert set(edges.values()) == set(districts.values()) == QUADRANTS
    for edge, d in edges.items():
        assert districts[nearest_signal(net.junction_xy[net.edge_to[edge]], pos)] == d


def test_signal_positions_follow_the_junctions_on_resco_ingolstadt7() -> None:
    """ingolstadt7's tlLogic ids (gneJ143…) are not junction ids: positions come from the controlled lanes."""
    from aicity.domains.mobility.scenarios import read_sumocfg, resco_dir

    folder = resco_dir()
    if folder is None:
        pytest.skip("the sumo-rl wheel with the RESCO maps is not installed")
    net = load_network(read_sumocfg(folder / "ingolstadt7" / "ingolstadt7.sumocfg").net)
    pos = signal_positions(net)
    assert len(pos) == 7 and all(abs(x) > 1e5 and abs(y) > 1e5 for x, y in pos.values())
    assert set(edge_districts(net, quadrant_districts(pos)).values()) == QUADRANTS


def test_time_of_day_bins_are_clock_quarters() -> None:
    begin = 7 * 3600.0                                        # cologne8 starts at 07:00
    samples = [(begin, 10.0), (begin + 899.0, 20.0), (begin + 900.0, 40.0), (begin + 2700.0, 8.0),
               (begin + 3599.0, 12.0)]
    assert time_of_day_delay(samples) == {"07:00–07:15": 15.0, "07:15–07:30": 40.0, "07:45–08:00": 10.0}
    assert list(time_of_day_delay(reversed(samples))) == ["07:00–07:15", "07:15–07:30", "07:45–08:00"]
    assert clock_label(16 * 3600.0) == "16:00–16:15"
    assert clock_label(86400.0 - 900.0) == "23:45–00:00"
    assert time_of_day_delay([(0.0, 1.0), (3599.0, 3.0)], bin_s=3600.0) == {"00:00–01:00": 2.0}


def test_district_delay_uses_the_departure_edge() -> None:
    trips = [Trip(str(i), "car", 0.0, 60.0, loss, dd, 0.0, True, edge)
             for i, (loss, dd, edge) in enumerate([(10, 0, "e1"), (20, 10, "e1"), (5, 0, "e2"), (99, 0, "x")])]
    assert district_delay(trips, {"e1": "NW", "e2": "SE"}) == {"NW": 20.0, "SE": 5.0}


def test_bench_record_keeps_its_keys_and_adds_groups() -> None:
    kpis = {"delay_s": 21.23456, "trip_time_s": 80.0, "wait_s": 5.0, "finished": 10.0, "unfinished": 1.0,
            "never_inserted": 0.0, "sim_s": 3600.0}
    result = DomainResult(kpis=kpis, groups={"signal": {"a": 1.0}, "district": {"NE": 30.12345, "SW": 12.0},
                                             "time_of_day": {"07:00–07:15": 18.0}})
    rec = bench_record("cologne8", "ai", 3, result, 2.0)
    assert tuple(rec)[:len(BENCH_KEYS)] == BENCH_KEYS and set(rec) == {*BENCH_KEYS, "groups"}
    assert rec["groups"] == {"district": {"NE": {"delay_s": 30.123}, "SW": {"delay_s": 12.0}},
                             "time_of_day": {"07:00–07:15": {"delay_s": 18.0}}}
