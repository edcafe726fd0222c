"""The EMS of ``gridcity-2-ems`` as two districts on a real local Ray cluster, each on its own SUMO: an ambulance
crosses the district line to a call and serves it, and the merged result against the one-process run."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicity.core.store import SqliteStore
from aicity.runner import bench_run, load_city
from aicity.scale.coordinator import DistrictCity
from aicity.scale.district import new_key
from aicity.scale.executors import RayExecutor

pytest.importorskip("ray")
pytest.importorskip("libsumo")
SEED = 2
"""Two calls answered across the line in the hour, both lent units home again before its end."""


def test_an_ambulance_answers_across_the_line_and_the_merged_run_is_compared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    city = load_city("safety/gridcity-2-ems")
    whole = bench_run(city, mode="smart", seed=SEED).results["safety"]
    run = DistrictCity(city, districts=2, mode="smart", seed=SEED, store=SqliteStore(":memory:", series=False),
                       out=tmp_path, executor=RayExecutor(), key=new_key())
    ep = run.run()
    merged = ep.results["safety"]
    homes = {d["district"]: set(d["results"]["safety"].extra["grid"]["home_units"]) for d in ep.districts}
    lent = [(d["district"], rec) for d in ep.districts for rec in d["results"]["safety"].extra["incidents"]
            if rec["unit"] is not None and rec["unit"] not in homes[d["district"]]]
    assert any(rec["arrival_s"] is not None for _, rec in lent), "no call was served from across the line"
    kinds = ep.scale.crossings_by_kind
    assert kinds.get("aid_request", 0) >= 1 and kinds.get("ambulance", 0) >= 1 and kinds.get("vehicle", 0) > 0
    assert merged.extra["aid"]["taken_in"] >= 1 and ep.stats.get("rejected_inbound", 0) == 0
    for d in ep.districts:  # every lent unit came back: each district ends with its own units, none away
        grid = d["results"]["safety"].extra["grid"]
        assert sorted(grid["reloc_km"]) == sorted(grid["home_units"]) and grid["away_at_end"] == []
    # the same calls, stations and units in both; what differs is who answers when (see safety/districts.py)
    calls = {(r["id"], r["call_s"], r["edge"]) for r in whole.extra["incidents"]}
    assert calls == {(r["id"], r["call_s"], r["edge"]) for r in merged.extra["incidents"]}
    assert sorted(whole.extra["stations"]) == sorted(merged.extra["stations"])
    assert set(merged.kpis) == set(whole.kpis)
    assert merged.kpis["calls_reached"] + merged.kpis["calls_unreached"] == (
        whole.kpis["calls_reached"] + whole.kpis["calls_unreached"])
    for name in ("response_mean_s", "busy_frac", "coverage"):
        assert merged.kpis[name] > 0 and whole.kpis[name] > 0


def test_one_district_gives_the_one_process_result(tmp_path: Path) -> None:
    import math

    from aicity.scale.executors import LocalExecutor

    city = load_city("safety/gridcity-2-ems", None, 1800.0)
    whole = bench_run(city, mode="ai", seed=2).results["safety"]
    run = DistrictCity(city, districts=1, mode="ai", seed=2, store=SqliteStore(":memory:", series=False),
                       out=tmp_path, executor=LocalExecutor(), key=new_key(),
                       checkpoint_every=0)  # in one process after another SUMO run, a restart moves traffic a little
    merged = run.run().results["safety"]
    assert whole.kpis["calls_reached"] > 0
    assert {k: v for k, v in merged.kpis.items() if not math.isclose(v, whole.kpis[k], rel_tol=1e-9)
            and not (math.isnan(v) and math.isnan(whole.kpis[k]))} == {}  # undefined (no p2 call) in both
    assert merged.extra["incidents"] == whole.extra["incidents"]
