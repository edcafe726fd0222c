"""The benchmark splits each day's response time into the wait for a unit and the drive, and the drive against free
flow."""

from __future__ import annotations

from typing import Any

import pytest

from aicity.domains.safety.bench import response_parts


def test_response_parts_split_wait_and_drive() -> None:
    incidents: list[dict[str, Any]] = [
        {"call_s": 0.0, "dispatch_s": 70.0, "arrival_s": 150.0, "travel_ff_s": 40.0},  # 10 s to the decision, 80 s drive
        {"call_s": 100.0, "dispatch_s": 460.0, "arrival_s": 500.0, "travel_ff_s": 40.0},  # 300 s queued, 40 s drive
        {"call_s": 200.0, "dispatch_s": None, "arrival_s": None}]  # never reached: left out
    parts = response_parts(incidents, 60.0)
    assert parts["wait_mean_s"] == pytest.approx(155.0) and parts["travel_mean_s"] == pytest.approx(60.0)
    assert parts["drive_vs_free_flow"] == pytest.approx(1.5)  # 120 s driven where free flow takes 80 s
    assert response_parts(incidents[2:], 60.0) == {"wait_mean_s": None, "travel_mean_s": None,
                                                    "drive_vs_free_flow": None}
    assert response_parts([{**incidents[0], "travel_ff_s": None}], 60.0)["drive_vs_free_flow"] is None


@pytest.mark.sumo
def test_a_bench_record_carries_the_background_traffics_delay() -> None:
    pytest.importorskip("libsumo")
    from aicity.domains.safety.bench import BENCH_KEYS, Task, run_task

    rec = run_task(Task("cologne8-ems", "smart", 1, load_multiplier=150.0, service_scale=0.25))
    assert set(BENCH_KEYS) <= set(rec) and rec["calls"] > 0
    assert isinstance(rec["traffic_delay_s"], float) and 0 < rec["traffic_delay_s"] < 600
