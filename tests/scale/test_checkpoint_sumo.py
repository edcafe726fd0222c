"""Checkpoints on the real parts: a SUMO city saved mid-run and loaded into a new loop goes on as it would have;
a district of SUMO twins killed on a real local Ray cluster comes back from its last checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.governance.ledger import Ledger
from aicity.runner import load_city, prepare_run

pytest.importorskip("libsumo")

TRIPS = ("delay_s", "trip_time_s", "wait_s", "finished", "unfinished", "never_inserted")


def _loop(city: Any, out: Path, seed: int = 2, db: Path | None = None) -> Any:
    """A started loop; on the store ``db`` when given (a recovered district's is the lost worker's)."""
    store = SqliteStore(db if db is not None else ":memory:")
    loop = prepare_run(city, mode="ai", seed=seed, store=store, out=out).loop
    loop.open()
    return loop


def test_a_sumo_city_goes_on_from_its_checkpoint_as_it_would_have(tmp_path: Path) -> None:
    """gridcity-2, 400 s in AI mode: saved after 20 steps, loaded into a new loop (a new SUMO, started again from
    the state file), every KPI and counter at the end equals the saved run's; and checkpoints leave the trips as
    a run without any (only the detectors' per-signal delay may differ, see aicity/scale/README.md)."""
    city = load_city("gridcity-2", None, 400.0)
    first = _loop(city, tmp_path / "a")
    for _ in range(20):
        first.step()
    saved = first.save_checkpoint()
    assert saved is not None and len(saved) > 1000
    while not first.done():
        first.step()
    want, want_stats = first.close()["mobility"], first.stats.to_dict()
    second = _loop(city, tmp_path / "b")
    second.load_checkpoint(saved)
    while not second.done():
        second.step()
    got = second.close()["mobility"]
    assert got.kpis == want.kpis
    assert second.stats.to_dict() | {"wall_s": 0} == want_stats | {"wall_s": 0}
    plain = _loop(city, tmp_path / "c")
    while not plain.done():
        plain.step()
    never = plain.close()["mobility"]
    assert {k: never.kpis[k] for k in TRIPS} == {k: want.kpis[k] for k in TRIPS}
    assert want.kpis["finished"] > 0


def test_probe_feed_and_emergency_vehicles_come_back_with_the_checkpoint(tmp_path: Path) -> None:
    """Consented probes (a forecast provider reading the twin's feed; the consents are in the store, which a
    recovered district shares with the lost worker) and planned emergency vehicles: the loaded loop's provider
    reads the new twin's feed, and the run ends as the saved one did."""
    city = load_city("gridcity-2", {"probes": 0.3, "ev_per_hour": 20.0}, 400.0)
    db = tmp_path / "city.db"
    first = _loop(city, tmp_path / "a", seed=4, db=db)
    for _ in range(15):
        first.step()
    saved = first.save_checkpoint()
    assert saved is not None
    while not first.done():
        first.step()
    want = first.close()["mobility"]
    first.store.close()
    second = _loop(city, tmp_path / "b", seed=4, db=db)
    second.load_checkpoint(saved)
    feed = second.parts[0].forecasters[-1]
    assert type(feed).__name__ == "ProbeFeatures" and feed.feed is second.parts[0].twin.probes
    while not second.done():
        second.step()
    got = second.close()["mobility"]
    assert got.kpis == want.kpis and want.kpis["ev_finished"] > 0


def test_a_checkpoint_of_another_seed_is_refused_in_one_line(tmp_path: Path) -> None:
    city = load_city("gridcity-2", None, 100.0)
    loop = _loop(city, tmp_path / "a")
    loop.step()
    saved = loop.save_checkpoint()
    loop.close()
    assert saved is not None
    other = _loop(city, tmp_path / "b", seed=3)
    try:
        with pytest.raises(UserError) as err:
            other.load_checkpoint(saved)
        assert "seed 2" in str(err.value) and "\n" not in str(err.value)
    finally:
        other.close()


def test_a_killed_sumo_district_comes_back_from_its_checkpoint_on_ray() -> None:
    """gridcity-2 as 2 districts on a local Ray cluster, 300 s, checkpoints every 10 steps, d2's worker killed at
    step 25: a new worker loads the checkpoint of step 20 and replays 5 steps; every vehicle is still counted,
    delay stays near the clean run's, both ledgers verify with the recovery recorded once."""
    pytest.importorskip("ray")
    from aicity.scale.bench import district_episode

    city = load_city("gridcity-2", None, 300.0)
    with (district_episode(city, 2, "ai", 2, None, checkpoint_every=10) as clean,
          district_episode(city, 2, "ai", 2, {25: "d2"}, checkpoint_every=10) as ep):
        (rec,) = ep.scale.recoveries
        assert (rec["district"], rec["checkpoint_step"], rec["replayed_steps"]) == ("d2", 20, 5)
        assert ep.scale.checkpoints == 2 * 2 and ep.scale.without_checkpoint == []
        a, b = clean.results["mobility"].kpis, ep.results["mobility"].kpis
        total = ("finished", "unfinished", "never_inserted")
        assert sum(a[k] for k in total) == sum(b[k] for k in total)
        assert abs(a["delay_s"] - b["delay_s"]) <= 0.1 * a["delay_s"] + 1.0
        for c in ep.districts:
            store = SqliteStore(c["db"], series=False)
            try:
                ledger = Ledger(store, key=None)
                assert ledger.verify().ok
                recoveries = list(ledger.records("recovery"))
            finally:
                store.close()
            assert len(recoveries) == (c["district"] == "d2")


def test_no_checkpoint_while_another_twin_rides_the_sumo(tmp_path: Path) -> None:
    """A twin riding mobility's SUMO (safety's ambulances, the city coupler) keeps state of its own in it: the
    loop takes no checkpoint (the district falls back to its log since the start) and SUMO is left running."""
    loop = _loop(load_city("gridcity-2", None, 100.0), tmp_path)
    try:
        loop.step()
        twin = loop.parts[0].twin
        twin.host.on_step(after=lambda t: None)  # a rider
        assert loop.save_checkpoint() is None
        loop.step()
        assert twin.elapsed_s() == 20.0
    finally:
        loop.close()
