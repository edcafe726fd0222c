"""The traffic-aware oracle's time-dependent travel times, checked by hand on the three-edge ring, and the
benchmark's city summary (per-zone p90 pooled over days, zone by zone)."""

from __future__ import annotations

import pytest
from safety_fixtures import ring

from aicity.domains.safety.bench import city_summary, zone_p90s, zone_responses, zone_unreached_waits
from aicity.domains.safety.incidents import Incident
from aicity.domains.safety.kpis import edge_time_table
from aicity.domains.safety.oracle import solve
from aicity.domains.safety.travel_times import FreeFlow, Recorded, Scaled

pytest.importorskip("scipy")

# b is jammed from 60 s to 120 s (100 s to drive instead of 10); c is never below free flow (5 s is raised to 10)
TABLE = {"b": [10.0, 100.0, 10.0], "c": [5.0, 10.0, 10.0]}


def test_recorded_times_depend_on_the_departure() -> None:
    tt = Recorded(ring(), 60.0, TABLE)
    assert tt.times_from("a", 0.0) == {"a": 0.0, "b": 10.0, "c": 20.0}
    # leaving a at 60 s: b costs 100 s (bucket 1); c is entered at 160 s (bucket 2): 10 s more
    assert tt.times_from("a", 60.0) == {"a": 0.0, "b": 100.0, "c": 110.0}
    assert tt.times_from("a", 500.0)["b"] == 10.0  # past the table: its last bucket
    assert tt.cost("a", 70.0) == 10.0  # not in the table: free flow
    assert FreeFlow(ring()).times_from("a", 60.0) == {"a": 0.0, "b": 10.0, "c": 20.0}
    with pytest.raises(ValueError):
        Recorded(ring(), 0.0, TABLE)


def test_traffic_aware_oracle_waits_out_the_jam() -> None:
    # I1 at b, called at 0 s, reported at 60 s; one ambulance at a. Free flow: go at once, 10 s → 70 s. In the
    # recorded traffic, leaving at 60 or 90 s costs 100 s (arrival 160 or 190 s); waiting to 120 s costs 10 s:
    # arrival 130 s, the optimum.
    i1 = Incident("I1", 0.0, "b", "z1", 1, 100.0, False, 0.0)
    kw = {"horizon_s": 600.0, "call_processing_s": 60.0, "target_p1_s": 90.0, "target_p2_s": 120.0}
    free = solve(ring(), [i1], ["a"], **kw)  # type: ignore[arg-type]
    jam = solve(ring(), [i1], ["a"], travel=Recorded(ring(), 60.0, TABLE), **kw)  # type: ignore[arg-type]
    assert free.responses == {"I1": pytest.approx(70.0)}
    assert jam.status == "optimal" and jam.responses == {"I1": pytest.approx(130.0)}
    assert jam.late == {"I1": False}  # 130 s ≤ 60 s processing + 90 s
    # with a 60 s travel target the jam makes it late; free flow does not
    tight = {**kw, "target_p1_s": 60.0}
    assert solve(ring(), [i1], ["a"], travel=Recorded(ring(), 60.0, TABLE), **tight).late_frac == 1.0  # type: ignore[arg-type]
    assert solve(ring(), [i1], ["a"], **tight).late_frac == 0.0  # type: ignore[arg-type]


def test_scaled_free_flow_drives_slower_and_can_make_the_oracle_late() -> None:
    assert Scaled(ring(), 1.5).times_from("a", 0.0) == {"a": 0.0, "b": 15.0, "c": 30.0}
    for bad in (0.9, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="factor"):
            Scaled(ring(), bad)
    # I1 at c, reported at 60 s, target 60 + 25 s, the unit kept at a (dispatch only): 20 s at free flow (in
    # time), 30 s at x1.5 (late)
    i1 = Incident("I1", 0.0, "c", "z1", 1, 100.0, False, 0.0)
    kw = {"horizon_s": 600.0, "call_processing_s": 60.0, "target_p1_s": 25.0, "target_p2_s": 120.0,
          "relocate": False}
    assert solve(ring(), [i1], ["a"], **kw).late_frac == 0.0  # type: ignore[arg-type]
    slow = solve(ring(), [i1], ["a"], travel=Scaled(ring(), 1.5), **kw)  # type: ignore[arg-type]
    assert slow.late_frac == 1.0 and slow.responses == {"I1": pytest.approx(90.0)}


def test_edge_time_table_means_per_bucket() -> None:
    table = edge_time_table({"b": [10.0, 20.0, 30.0, 100.0, 100.0, 100.0, 12.0]}, 20.0, 60.0)
    assert table == {"bucket_s": 60.0, "edges": {"b": [20.0, 100.0, 12.0]}}


def _rec(ctrl: str, seed: int, late: float, mean: float, zones: dict[str, list[float | None]]) -> dict[str, object]:
    return {"controller": ctrl, "seed": seed, "calls": 3, "busy_frac": 0.5, "late_frac": late,
            "mean_response_s": mean, "p90_response_s": mean, "worst_zone_p90_s": mean, "oracle_ff_late_frac": 0.1,
            "oracle_traffic_late_frac": 0.2, "oracle_traffic_mean_response_s": 100.0, "zone_responses_s": zones}


def test_city_summary_pairs_days_and_compares_zones() -> None:
    assert zone_responses([{"zone": "z2", "call_s": 10.0, "arrival_s": 110.0},
                           {"zone": "z1", "call_s": 0.0, "arrival_s": None}]) == {"z1": [None], "z2": [100.0]}
    recs = [_rec("smart", 1, 0.5, 200.0, {"z1": [100.0, 300.0], "z2": [50.0]}),
            _rec("ai", 1, 0.4, 150.0, {"z1": [100.0, 200.0], "z2": [80.0]}),
            _rec("smart", 2, 0.3, 100.0, {"z1": [None]}),
            _rec("ai", 2, 0.2, 90.0, {"z1": [120.0]}),
            _rec("ai", 3, 0.0, 10.0, {})]  # no Smart City day to pair with: left out
    s = city_summary(recs)
    assert s["seeds"] == [1, 2]
    assert s["diff_late_frac"]["mean"] == pytest.approx(-0.1)
    assert s["diff_late_frac"]["relative"] == pytest.approx(-0.25)
    assert s["diff_mean_response_s"]["mean"] == pytest.approx(-30.0)
    assert s["ai"]["late_vs_oracle_ff"] == pytest.approx(3.0) and s["smart"]["late_vs_oracle_traffic"] == 2.0
    z = {row["zone"]: row for row in s["zones"]}
    assert z["z1"]["ai_p90_s"] == pytest.approx(184.0) and z["z1"]["smart_p90_s"] == pytest.approx(280.0)
    assert z["z1"]["smart_unreached"] == 1 and z["z1"]["calls"] == 3
    assert z["z2"]["ai_worse"] and not z["z1"]["ai_worse"] and s["zones_worse"] == 1
    assert zone_p90s([])== {}
    assert not s["zone_p90_counts_unreached"]  # these records predate the waits: the reached calls' p90 decides


def test_a_call_never_reached_counts_in_its_zone_at_its_wait_so_far() -> None:
    incs = [{"zone": "z1", "call_s": 100.0, "arrival_s": 200.0}, {"zone": "z1", "call_s": 3000.0, "arrival_s": None}]
    assert zone_unreached_waits(incs, 3600.0) == {"z1": [600.0]}
    smart = {**_rec("smart", 1, 0.5, 200.0, {"z1": [100.0, 100.0, None]}), "zone_unreached_waits_s": {"z1": [600.0]}}
    ai = {**_rec("ai", 1, 0.4, 150.0, {"z1": [100.0, 100.0, 400.0]}), "zone_unreached_waits_s": {}}
    s = city_summary([smart, ai])
    z1 = s["zones"][0]
    # reached calls only, Smart City's zone looks faster (it never reached the slow call); counted, it is not
    assert z1["smart_p90_s"] == pytest.approx(100.0) and z1["ai_p90_s"] == pytest.approx(340.0)
    assert z1["smart_p90_censored_s"] == pytest.approx(500.0) and z1["ai_p90_censored_s"] == pytest.approx(340.0)
    assert s["zone_p90_counts_unreached"] and not z1["ai_worse"] and s["zones_worse"] == 0
    # AI City worse even when Smart's unreached call counts: it is flagged
    ai_slow = {**ai, "zone_responses_s": {"z1": [100.0, 100.0, 900.0]}}
    assert city_summary([smart, ai_slow])["zones_worse"] == 1


def test_city_tasks_pair_smart_city_with_ai_city() -> None:
    from aicity.domains.safety.bench import tasks_for

    tasks = tasks_for(["cologne8-ems"], ["smart", "ai", "oracle"], [1, 2], [150.0], 0.25, False, city=True)
    arms = {(t.controller, t.seed): t.preemption for t in tasks}
    assert arms == {("smart", 1): False, ("smart", 2): False, ("ai", 1): True, ("ai", 2): True,
                    ("oracle", 1): None, ("oracle", 2): None}
    assert not any(t.bluelight for t in tasks)
    sirens = tasks_for(["cologne8-ems"], ["smart", "ai", "oracle"], [1], [150.0], 0.25, False, city=True,
                       bluelight=True)
    assert {t.controller: t.bluelight for t in sirens} == {"smart": True, "ai": True, "oracle": False}


def test_bluelight_without_the_city_scenario_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from aicity.cli import main

    assert main(["bench", "safety", "--bluelight", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "--bluelight" in err and "--city" in err and "Traceback" not in err


def test_city_summary_sets_late_against_the_dispatch_only_oracle_when_recorded() -> None:
    with_it = [{**_rec(c, 1, late, 100.0, {}), "oracle_dispatch_ff_late_frac": 0.25,
                "oracle_dispatch_traffic_late_frac": 0.5} for c, late in (("smart", 0.5), ("ai", 0.4))]
    s = city_summary(with_it)
    assert s["smart"]["late_vs_oracle_dispatch_ff"] == pytest.approx(2.0)
    assert s["ai"]["late_vs_oracle_dispatch_traffic"] == pytest.approx(0.8)
    older = city_summary([_rec("smart", 1, 0.5, 100.0, {}), _rec("ai", 1, 0.4, 100.0, {})])
    assert older["ai"]["late_vs_oracle_dispatch_ff"] is None  # records from before the yardstick: no ratio
