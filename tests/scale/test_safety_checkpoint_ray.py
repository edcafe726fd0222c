"""The EMS of ``gridcity-2-ems`` as two districts on a real local Ray cluster, checkpointed: d2's worker killed
mid-run comes back from its last checkpoint and replays only the steps since; the ledgers verify."""

from __future__ import annotations

import pytest

from aicity.core.store import SqliteStore
from aicity.governance.ledger import Ledger
from aicity.runner import load_city

pytest.importorskip("ray")
pytest.importorskip("libsumo")


def test_a_killed_ems_district_comes_back_from_its_checkpoint_on_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed 2 (calls answered across the line), AI mode, the half hour, checkpoints every 30 steps, d2 killed at
    step 100: a new worker loads the checkpoint of step 90 and replays 10; every district checkpointed (none
    falls back to its log from the start); the same calls as the clean run; both ledgers verify, the recovery
    recorded once, in d2's only."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    from aicity.scale.bench import district_episode

    city = load_city("safety/gridcity-2-ems", None, 1800.0)
    with (district_episode(city, 2, "ai", 2, None, checkpoint_every=30) as clean,
          district_episode(city, 2, "ai", 2, {100: "d2"}, checkpoint_every=30) as ep):
        (rec,) = ep.scale.recoveries
        assert (rec["district"], rec["checkpoint_step"], rec["replayed_steps"]) == ("d2", 90, 10)
        assert ep.scale.without_checkpoint == [] and ep.scale.checkpoints == 2 * 5
        a, b = clean.results["safety"], ep.results["safety"]
        assert {r["id"] for r in a.extra["incidents"]} == {r["id"] for r in b.extra["incidents"]}
        assert a.kpis["calls_reached"] + a.kpis["calls_unreached"] == b.kpis["calls_reached"] + b.kpis[
            "calls_unreached"]
        for c in ep.districts:
            store = SqliteStore(c["db"], series=False)
            try:
                ledger = Ledger(store, key=None)
                assert ledger.verify().ok
                recoveries = list(ledger.records("recovery"))
            finally:
                store.close()
            assert len(recoveries) == (c["district"] == "d2")
