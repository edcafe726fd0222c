"""The policy's forecast-accuracy guard on real SUMO: below the declared accuracy the AI signal controller is
demoted to advise, the signals return to their fixed-time programs, and the change is ledgered."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aicity.core.city import single
from aicity.core.store import SqliteStore
from aicity.domains.mobility import domain
from aicity.domains.mobility.ai_learning import LaneRateLearner
from aicity.domains.mobility.scenarios import require
from aicity.governance.oversight import Policy
from aicity.loop import CityLoop
from aicity.runner import prepare_run

pytest.importorskip("libsumo")
pytestmark = pytest.mark.sumo


def _policy(max_ratio: float) -> Policy:
    from importlib import resources

    base = resources.files("aicity.governance.policy").joinpath("default.toml").read_text()
    # a site guard with the domain's guard name replaces the one mobility ships (aicity/domains/mobility/policy.toml)
    strict = base + f"""
[[accuracy]]
name = "ai-signal-arrival-forecasts"
domain = "mobility"
action_type = "signal_phase"
model = "mobility.ai.lane-rates"
max_error_ratio = {max_ratio}
min_samples = 50
demote_to = "advise"
"""
    return Policy.parse(strict.encode(), "strict.toml")


def _run(tmp_path: Path, max_ratio: float) -> tuple[CityLoop, object, SqliteStore]:
    scen = dataclasses.replace(require("grid3x3"), end_s=require("grid3x3").begin_s + 400)
    store = SqliteStore(tmp_path / "city.db")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    run = prepare_run(single(domain, scen), mode="ai", seed=1, store=store, out=tmp_path, policy=_policy(max_ratio),
                      key=Ed25519PrivateKey.generate())
    assert any(isinstance(f, LaneRateLearner) for f in run.loop.parts[0].forecasters)
    run.run()
    return run.loop, run.governance, store


def test_declared_accuracy_holds_on_a_normal_run(tmp_path: Path) -> None:
    loop, _gov, store = _run(tmp_path, 1.5)
    assert loop.stats.demotions == 0 and not store.events(type="drift")
    assert loop.stats.actuated > 0


def test_accuracy_below_declared_demotes_the_ai_to_advise_on_real_sumo(tmp_path: Path) -> None:
    # a guard stricter than what these forecasts achieve (they are about as good as persistence)
    loop, gov, store = _run(tmp_path, 0.5)
    assert loop.stats.demotions == 1 and loop.stats.demoted_steps > 0
    drift = store.events(type="drift")
    assert len(drift) == 1 and drift[0].data["model"] == "mobility.ai.lane-rates"
    assert drift[0].data["ratio"] > 0.5 and drift[0].data["n"] >= 50
    changes = list(gov.ledger.records("autonomy"))  # type: ignore[attr-defined]
    assert [(c["level"], c["action_type"]) for c in changes] == [("advise", "signal_phase")]
    assert list(gov.ledger.records("safe_state")), "the signals were returned to their fixed-time programs"  # type: ignore[attr-defined]
    demoted_at = drift[0].time
    before = [e for e in store.events(type="command") if e.time <= demoted_at and e.data["action"] == "set_phase"]
    after = [e for e in store.events(type="command") if e.time > demoted_at and e.data["action"] == "set_phase"]
    assert before and not after, "no AI phase command reaches a signal once demoted"
    signals = store.query(type="TrafficSignal")
    assert signals and all(s.get("controlMode") == "fixed" for s in signals)
