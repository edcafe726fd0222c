"""The EMS of ``gridcity-2-ems`` as two districts on a real local Ray cluster, checkpointed: d2's worker killed
mid-run comes back from its last checkpoint and replays only the steps since; the ledgers verify."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")
pytest.importorskip("libsumo")


def test_a_killed_ems_district_comes_back_from_its_checkpoint_on_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed 2 (calls answered across the line), AI mode, the half hour, checkpoints every 30 steps, d2 killed at
    step 100: a new worker loads the checkpoint of step 90 and replays 10; every district checkpointed (none
    falls back to its log from the start); as many calls as the clean run; both ledgers verify, nothing twice,
    the recovery recorded once, in d2's only, after d2's records from before the loss as the clean run has them."""
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    from aicity.scale.bench import FaultTask, run_fault_task

    clean, ep = (run_fault_task(FaultTask("safety/gridcity-2-ems", 2, 2, 1800.0, kill, checkpoint_every=30))
                 for kill in (None, 100))
    (rec,) = ep["recoveries"]
    assert (rec["district"], rec["checkpoint_step"], rec["replayed_steps"]) == ("d2", 90, 10)
    assert ep["without_checkpoint"] == [] and ep["checkpoints"] == 2 * 5
    a, b = clean["all_kpis"], ep["all_kpis"]
    calls = ("safety.calls_reached", "safety.calls_unreached")
    assert sum(a[k] for k in calls) == sum(b[k] for k in calls) > 0
    for d, led in ep["ledgers"].items():
        assert led["verified"] and led["recorded_twice"] == 0 and led["recovery_records"] == (d == "d2")
    (found,) = ep["ledgers"]["d2"]["found_at_recovery"]  # what d2 recorded before the loss, kept as it was
    assert ep["ledgers"]["d2"]["digests"][:found] == clean["ledgers"]["d2"]["digests"][:found]
