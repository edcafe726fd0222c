"""The per-call tally behind the safety KPIs, by hand: reached calls late or on time, unreached ones late only
once past their target, per-zone responses, the NFPA travel share."""

from __future__ import annotations

import pytest

from aicity.domains.safety.kpis import tally_calls, traffic_totals

TARGETS = {"p1": 150.0, "p2": 210.0}


def _call(call_s: float, priority: int, arrival_s: float | None, zone: str = "z1",
          dispatch_s: float | None = None) -> dict[str, object]:
    return {"call_s": call_s, "priority": priority, "zone": zone, "arrival_s": arrival_s,
            "dispatch_s": dispatch_s if dispatch_s is not None or arrival_s is None else call_s + 60.0}


def test_reached_calls_are_late_past_their_priority_target() -> None:
    t = tally_calls([_call(0, 1, 140), _call(0, 1, 160, "z2"), _call(10, 2, 200, "z2"), _call(10, 2, 230)],
                    end_s=3600, targets_s=TARGETS)
    assert t.resp == [140, 160, 190, 220]
    assert t.late == [False, True, False, True]
    assert t.in_target == {1: [True, False], 2: [True, False]}
    assert t.by_zone == {"z1": [140, 220], "z2": [160, 190]}
    assert t.within_std == [True] * 4
    assert t.nfpa == [True] * 4  # every drive here is under 240 s


def test_an_unreached_call_is_late_only_once_past_its_target() -> None:
    t = tally_calls([_call(3500, 1, None), _call(3400, 1, None), _call(3400, 2, None)], end_s=3600,
                    targets_s=TARGETS)
    # 100 s waited (< 150): left out; 200 s waited at p1 (> 150): late; 200 s at p2 (< 210): left out
    assert t.resp == [] and t.late == [True] and t.in_target == {1: [False], 2: []}


def test_a_long_drive_misses_nfpa_and_a_long_wait_the_standard() -> None:
    t = tally_calls([_call(0, 1, 1000, dispatch_s=700)], end_s=3600, targets_s=TARGETS)
    assert t.nfpa == [False] and t.within_std == [False] and t.late == [True]
    assert t.resp == pytest.approx([1000.0])


def test_traffic_totals_are_the_twins_readings_or_a_merged_runs_sums() -> None:
    from types import SimpleNamespace

    assert traffic_totals(SimpleNamespace(_time_loss={"v1": 10.0, "v2": 30.0})) == (40.0, 2)
    assert traffic_totals(SimpleNamespace(traffic_totals=(90.0, 3), _time_loss={"v1": 1.0})) == (90.0, 3)
    assert traffic_totals(SimpleNamespace()) == (0.0, 0)
