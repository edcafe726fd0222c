"""Periodic checkpoints of districts on the toy belt: the coordinator holds each district's last checkpoint and
its recovery log since; a lost worker loads the checkpoint and replays only the steps after it; a twin without
the capability falls back to the log since the start. Also the loop's own checkpoint (``CityLoop``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from aicity.core.city import City, Part
from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.governance.ledger import Ledger
from aicity.runner import bench_run, prepare_run
from aicity.scale.coordinator import DistrictCity, DistrictEpisode
from aicity.scale.district import new_key
from aicity.scale.executors import LocalExecutor
from tests.scale.belt import domain as belt


def _city(checkpoints: int = 1) -> City:
    scen = dataclasses.replace(belt.scenarios()[0], end_s=300.0, params={"stations": 6, "checkpoints": checkpoints})
    return City("belt-city", "a belt", (Part(belt, scen),))


def _run(out: Path, *, every: int, kill: dict[int, str] | None = None, checkpoints: int = 1) -> DistrictEpisode:
    run = DistrictCity(_city(checkpoints), districts=3, mode="ai", seed=3, store=SqliteStore(":memory:"),
                       out=out, executor=LocalExecutor(limit=None), key=new_key(), kill=kill,
                       checkpoint_every=every)
    return run.run()


def _ledger(db: str) -> list[dict[str, object]]:
    store = SqliteStore(db, series=False)
    try:
        ledger = Ledger(store, key=None)
        assert ledger.verify().ok
        return [json.loads(json.dumps(r)) for r in ledger.records()]
    finally:
        store.close()


def test_a_lost_district_replays_only_the_steps_since_its_checkpoint(tmp_path: Path) -> None:
    """Checkpoints every 4 steps, d2 lost at step 10: it loads the checkpoint of step 8 and replays 2 steps; every
    parcel is accounted for; its ledger keeps what the lost worker recorded, once, and verifies."""
    clean = _run(tmp_path / "clean", every=4)
    ep = _run(tmp_path / "fault", every=4, kill={10: "d2"})
    (rec,) = ep.scale.recoveries
    assert (rec["district"], rec["step"], rec["checkpoint_step"], rec["replayed_steps"]) == ("d2", 10, 8, 2)
    assert rec["checkpoint_bytes"] > 0
    assert ep.scale.checkpoints == clean.scale.checkpoints == 3 * (30 // 4)  # every district, every 4th step
    assert ep.scale.without_checkpoint == []
    merged = ep.results["belt"]
    assert merged.extra["made"] == clean.results["belt"].extra["made"]
    assert merged.extra["made"] == merged.kpis["delivered"] + merged.extra["queued"] + ep.scale.in_flight_at_end
    d2 = next(c for c in ep.districts if c["district"] == "d2")
    records = _ledger(d2["db"])
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))  # nothing recorded twice
    (recovery,) = [r for r in records if r.get("kind") == "recovery"]
    assert recovery["checkpoint_step"] == 8 and recovery["replayed_steps"] == 2
    assert ids.index(recovery["id"]) == recovery["ledger_records_found"]  # all the lost worker wrote comes first
    clean_d2 = _ledger(next(c for c in clean.districts if c["district"] == "d2")["db"])
    n = int(recovery["ledger_records_found"])  # up to the loss, the same decisions as the clean run
    assert records[:n] == clean_d2[:n]


def test_the_counters_come_back_with_the_checkpoint(tmp_path: Path) -> None:
    """The loop's counters are in the checkpoint: the recovered district counts the steps before it (the log
    since the start counted only the steps after the loss)."""
    ep = _run(tmp_path, every=5, kill={12: "d1"})
    d1 = next(c for c in ep.districts if c["district"] == "d1")
    assert d1["stats"]["recovered"]["checkpoint_step"] == 10
    assert d1["stats"]["steps"] == 30 - 2  # the lost worker counted steps 11 and 12; its counters went with it
    assert all(c["governance"]["ledger_verified"] for c in ep.districts)


def test_a_twin_without_the_capability_falls_back_to_the_log_since_the_start(tmp_path: Path) -> None:
    ep = _run(tmp_path, every=4, kill={10: "d2"}, checkpoints=0)
    (rec,) = ep.scale.recoveries
    assert rec["checkpoint_step"] is None and rec["replayed_steps"] == 10
    assert ep.scale.checkpoints == 0 and ep.scale.without_checkpoint == ["d1", "d2", "d3"]


def test_checkpoints_off_keep_the_log_since_the_start(tmp_path: Path) -> None:
    ep = _run(tmp_path, every=0, kill={10: "d2"})
    (rec,) = ep.scale.recoveries
    assert rec["checkpoint_step"] is None and rec["replayed_steps"] == 10 and ep.scale.checkpoints == 0


def test_a_bad_period_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--checkpoint-every must be a whole number"):
        DistrictCity(_city(), districts=3, mode="ai", seed=3, store=SqliteStore(":memory:"), out=tmp_path,
                     executor=LocalExecutor(limit=None), checkpoint_every=-1)


def test_the_loop_goes_on_from_its_checkpoint_as_it_would_have(tmp_path: Path) -> None:
    """A whole-city loop saved after 7 steps and loaded into a new loop after its open() ends where the first
    ends, with the same counters."""
    city = _city()
    first = prepare_run(city, mode="ai", seed=5, store=SqliteStore(":memory:"), out=tmp_path / "a").loop
    first.open()
    for _ in range(7):
        first.step()
    saved = first.save_checkpoint()
    assert saved is not None
    while not first.done():
        first.step()
    want = first.close()["belt"]
    second = prepare_run(city, mode="ai", seed=5, store=SqliteStore(":memory:"), out=tmp_path / "b").loop
    second.open()
    second.load_checkpoint(saved)
    assert second.stats.steps == 7
    while not second.done():
        second.step()
    got = second.close()["belt"]
    assert got.kpis == want.kpis and got.extra == want.extra
    assert second.stats.to_dict() | {"wall_s": 0} == first.stats.to_dict() | {"wall_s": 0}
    assert want.kpis == bench_run(city, mode="ai", seed=5).results["belt"].kpis


def test_a_checkpoint_of_another_twin_is_refused(tmp_path: Path) -> None:
    loop = prepare_run(_city(), mode="ai", seed=5, store=SqliteStore(":memory:"), out=tmp_path).loop
    loop.open()
    with pytest.raises(UserError, match="no state for part 'belt'"):
        loop.load_checkpoint(__import__("pickle").dumps({"twins": {}, "loop": b""}))
    loop.close()


def test_a_twin_without_the_capability_gives_no_checkpoint(tmp_path: Path) -> None:
    loop = prepare_run(_city(0), mode="ai", seed=5, store=SqliteStore(":memory:"), out=tmp_path).loop
    loop.open()
    loop.step()
    assert loop.save_checkpoint() is None
    loop.close()


def test_the_governors_run_time_state_comes_back_with_the_checkpoint(tmp_path: Path) -> None:
    """An autonomy level a person changed at run time, the governor's counters and its rate windows are in the
    checkpoint: the loaded loop's governor holds them as the saved one did (they live in memory, not the store)."""
    from datetime import UTC, datetime

    city = _city()
    first = prepare_run(city, mode="ai", seed=5, store=SqliteStore(":memory:"), out=tmp_path / "a")
    first.loop.open()
    for _ in range(4):
        first.loop.step()
    gov = first.governance.governor
    gov.set_autonomy("belt", "advise", reason="operator on shift", by="op", now=datetime(2026, 1, 1, tzinfo=UTC))
    saved = first.loop.save_checkpoint()
    assert saved is not None
    want = gov.runtime_state()
    assert want["levels"] and want["acts"] and want["counts"]
    second = prepare_run(city, mode="ai", seed=5, store=SqliteStore(":memory:"), out=tmp_path / "b")
    second.loop.open()
    assert second.governance.governor.runtime_state()["levels"] == {}
    second.loop.load_checkpoint(saved)
    got = second.governance.governor.runtime_state()
    assert got["levels"] == want["levels"] and got["counts"] == want["counts"]
    assert {k: list(v) for k, v in got["acts"].items()} == {k: list(v) for k, v in want["acts"].items()}
    first.loop.close()
    second.loop.close()
