"""The district coordinator on a toy domain without a simulator: a partitioned run equals the whole-city run,
conserves what crosses, keeps what it cannot take, and every district keeps a verifiable ledger."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from aicity.core.capabilities import Crossing
from aicity.core.city import City, Part
from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.runner import bench_run
from aicity.scale.coordinator import DistrictCity
from aicity.scale.district import new_key
from aicity.scale.executors import LocalExecutor, executor
from aicity.scale.partition import partition
from tests.scale.belt import domain as belt


def _city(stations: int = 6, end_s: float = 300.0) -> City:
    scen = dataclasses.replace(belt.scenarios()[0], end_s=end_s, params={"stations": stations})
    return City("belt-city", "a belt", (Part(belt, scen),))


_key = new_key


def _run(tmp_path: Path, districts: int, mode: str = "ai", seed: int = 3, view: str = "relevant") -> DistrictCity:
    store = SqliteStore(":memory:", series=False)
    run = DistrictCity(_city(), districts=districts, mode=mode, seed=seed, store=store, out=tmp_path / mode,
                       executor=LocalExecutor(limit=None), key=_key(), view=view)
    run.episode = run.run()  # type: ignore[attr-defined]
    return run


@pytest.mark.parametrize("districts", [1, 2, 3])
def test_partitioned_run_equals_the_whole_city(tmp_path: Path, districts: int) -> None:
    whole = bench_run(_city(), mode="ai", seed=3).results["belt"]
    run = _run(tmp_path, districts)
    merged = run.episode.results["belt"]  # type: ignore[attr-defined]
    assert merged.kpis == whole.kpis
    assert whole.kpis["delivered"] > 10
    in_flight = run.scale.in_flight_at_end
    assert merged.extra["made"] == merged.kpis["delivered"] + merged.extra["queued"] + in_flight
    assert run.scale.crossings == (0 if districts == 1 else run.scale.crossings_by_kind["parcel"])
    if districts > 1:
        assert run.scale.crossings > 0
    assert run.scale.bytes_to_coordinator > 0 and run.scale.steps == 30


def test_the_stage_sees_the_whole_city(tmp_path: Path) -> None:
    full = _run(tmp_path / "full", 3, view="full")
    ids = {e.rsplit(":", 1)[1] for e in full.latest}
    assert ids == {str(i) for i in range(6)}  # every district's stations
    assert full.episode.stats["proposals"] == 6 * 30  # type: ignore[attr-defined]
    lean = _run(tmp_path / "lean", 3)  # the default: only what the stage reads (belt stations carry no needs)
    assert lean.latest == {} and lean.episode.stats["proposals"] == 6 * 30  # type: ignore[attr-defined]
    assert lean.scale.bytes_to_coordinator < full.scale.bytes_to_coordinator
    assert lean.episode.results["belt"].kpis == full.episode.results["belt"].kpis  # type: ignore[attr-defined]


def test_districts_send_what_the_stage_reads(tmp_path: Path) -> None:
    from aicity.core.domain import ProposedAction
    from aicity.core.entity import Entity, Property
    from aicity.orchestrate.stage import Candidate, reads
    from aicity.scale.district import DistrictLoop

    uses = Candidate("belt", ProposedAction("urn:ngsi-ld:BeltStation:1", "rate", uses={"urn:x:Tie:1#headroom": 2.0},
                                            candidates=({"params": {}, "uses": {"urn:x:Tie:2#kw": 1}},)))
    assert reads([uses]) == {"urn:x:Tie:1", "urn:x:Tie:2"}
    loop = DistrictLoop(partition(_city(), 2)[0], mode="ai", seed=1, out=str(tmp_path / "d1"), key=_key())
    loop.open()
    needs = Entity("urn:ngsi-ld:Net:1", "Net", {"needs": Property(["urn:ngsi-ld:BeltStation:0"])})
    twin = loop.loop.parts[0].twin
    observe = twin.observe
    twin.observe = lambda: [*observe(), needs]  # entities carrying needs always go
    watched = loop.propose([], frozenset({"urn:ngsi-ld:BeltStation:2"}))
    assert {e.id for e in watched.entities} == {"urn:ngsi-ld:BeltStation:2", "urn:ngsi-ld:Net:1"}
    loop.act([])
    full = loop.propose([], None)
    assert len(full.entities) == 4
    loop.close()


def test_every_district_keeps_its_own_verifiable_ledger(tmp_path: Path) -> None:
    run = _run(tmp_path, 2)
    for c in run.episode.districts:  # type: ignore[attr-defined]
        assert c["governance"]["ledger_verified"] is True
        assert c["governance"]["ledger_records"] >= 6 * 30 // 2
        assert Path(c["db"]).is_file()


def test_a_malformed_crossing_is_dead_lettered_not_dropped(tmp_path: Path) -> None:
    from aicity.scale.district import DistrictLoop

    d2 = partition(_city(), 2)[1]
    loop = DistrictLoop(d2, mode="ai", seed=1, out=str(tmp_path / "d2"), key=_key())
    loop.open()
    bad: Crossing = {"via": "belt-1", "kind": "parcel", "at_s": 0.0, "payload": {"id": 7}}
    good: Crossing = {"via": "belt-1", "kind": "parcel", "at_s": 0.0, "payload": {"id": "p1", "since": 0.0}}
    loop.propose([("belt", bad), ("belt", good), ("nothing", good)])
    assert loop.rejected_inbound == 2
    assert loop.store.dead_letter_count == 2
    reply = loop.close()
    assert reply["stats"]["rejected_inbound"] == 2


def test_refusals_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="do not split"):
        partition(_city(stations=5), 2)
    with pytest.raises(UserError, match="from 1 to"):
        partition(_city(), 0)
    with pytest.raises(UserError, match="one district"):
        LocalExecutor().spawn(partition(_city(), 2), mode="ai", seed=1, out=str(tmp_path), key=None)
    with pytest.raises(UserError, match="unknown executor"):
        executor("dask")


def _ledger_of(path: Path) -> tuple[int, list[dict[str, Any]]]:
    from aicity.governance.ledger import Ledger

    store = SqliteStore(path, series=False)
    try:
        ledger = Ledger(store, key=None)
        return ledger.size, list(ledger.records("recovery"))
    finally:
        store.close()


def test_a_lost_district_is_recovered_in_the_same_step(tmp_path: Path) -> None:
    """Kill d2 at step 10: it replays its log on a new worker, holds its safe state for that step, and the run
    ends with every parcel accounted for and every district's ledger verifying."""
    clean = _run(tmp_path / "clean", 3)
    store = SqliteStore(":memory:", series=False)
    run = DistrictCity(_city(), districts=3, mode="ai", seed=3, store=store, out=tmp_path / "fault",
                       executor=LocalExecutor(limit=None), key=_key(), kill={10: "d2"})
    ep = run.run()
    (rec,) = ep.scale.recoveries
    assert rec["district"] == "d2" and rec["step"] == 10 and rec["replayed_steps"] == 10
    merged = ep.results["belt"]
    assert merged.extra["made"] == merged.kpis["delivered"] + merged.extra["queued"] + ep.scale.in_flight_at_end
    assert merged.extra["made"] == clean.episode.results["belt"].extra["made"]  # type: ignore[attr-defined]
    by_name = {c["district"]: c for c in ep.districts}
    assert all(c["governance"]["ledger_verified"] for c in ep.districts)
    size, recoveries = _ledger_of(Path(by_name["d2"]["db"]))
    assert len(recoveries) == 1 and recoveries[0]["replayed_steps"] == 10
    assert size > int(recoveries[0]["ledger_records_found"])  # what the lost worker recorded is all still there
    assert by_name["d2"]["stats"]["recovered"]["replayed_steps"] == 10
    for key in ("proposals", "actuated", "blind_steps", "observations"):  # every counter adds up, new ones too
        assert ep.stats[key] == sum(c["stats"][key] for c in ep.districts)
    assert ep.stats["recovered"]["replayed_steps"] == 10
