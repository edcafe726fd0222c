"""Emergency-vehicle preemption: the pure planner, the benchmark summary, and limits in a real SUMO run."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.domains.mobility.preemption import PreemptParams, make_preemption_planner, preemption_actions
from aicity.domains.mobility.preemption_bench import (
    PREEMPTION_KEYS,
    mean_ci95,
    run_preemption_bench,
    summarize_preemption,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SIG = "urn:ngsi-ld:TrafficSignal:J1"
SIG2 = "urn:ngsi-ld:TrafficSignal:J2"


def _signal(sid: str, mode: str = "controlled", current: int = 0, cooldown: float | None = None,
            held: int | None = None) -> Entity:
    return Entity(sid, "TrafficSignal", {
        "preemptPhase": Property(held if held is not None else (2 if mode == "preempted" else None)),
        "currentPhase": Property(current), "phaseKind": Property("green"), "nextPhase": Property(None),
        "timeInPhase": Property(12.0), "controlMode": Property(mode), "preemptCooldownUntil": Property(cooldown),
        "limits": Property({"yellow_s": 3.0, "max_hold_s": 40.0, "cooldown_s": 30.0})})


def _ev(distance: float, speed: float = 10.0, serving: list[int] | None = None,
        signal: str = SIG) -> Entity:
    ahead = [{"signal": signal, "linkIndex": 4, "distance": distance, "state": "r",
              "servingPhases": [2] if serving is None else serving},
             {"signal": SIG2, "linkIndex": 1, "distance": distance + 900.0, "state": "G", "servingPhases": [0]}]
    return Entity("urn:ngsi-ld:EmergencyVehicle:ev0", "EmergencyVehicle", {
        "position": Property([0.0, 0.0]), "speed": Property(speed), "nextSignals": Property(ahead)})


def _snap(*ents: Entity, t: float = 100.0) -> Snapshot:
    return Snapshot(T0, t, {e.id: e for e in ents})


def test_preempts_the_signal_ahead_for_the_phase_serving_the_vehicle() -> None:
    props = preemption_actions(_snap(_signal(SIG), _signal(SIG2), _ev(80.0)))
    assert [(p.target, p.action, p.params["phase"]) for p in props] == [(SIG, "preempt", 2)]
    p = props[0]
    assert p.params["vehicle"] == "urn:ngsi-ld:EmergencyVehicle:ev0"
    assert p.inputs["urn:ngsi-ld:EmergencyVehicle:ev0"]["distance_m"] == 80.0
    assert [c["phase"] for c in p.candidates] == [2]
    assert p.planner.startswith("mobility.preemption@")


def test_keeps_the_shown_green_when_it_already_serves_the_vehicle() -> None:
    props = preemption_actions(_snap(_signal(SIG, current=1), _ev(50.0, serving=[0, 1])))
    assert props[0].params["phase"] == 1


def test_waits_until_the_vehicle_is_close_enough() -> None:
    assert preemption_actions(_snap(_signal(SIG), _ev(600.0, speed=12.0))) == []
    # far but fast: expected within 20 s
    fast = preemption_actions(_snap(_signal(SIG), _ev(300.0, speed=20.0)), PreemptParams())
    assert [p.action for p in fast] == ["preempt"]


def test_releases_after_the_vehicle_passed_and_respects_cooldown_and_fixed_time() -> None:
    passed = _ev(50.0, signal=SIG2)  # J1 no longer ahead
    props = preemption_actions(_snap(_signal(SIG, mode="preempted"), passed))
    assert [(p.target, p.action) for p in props] == [(SIG, "release")]
    assert preemption_actions(_snap(_signal(SIG, mode="preempted"), _ev(40.0))) == []  # still holding
    assert preemption_actions(_snap(_signal(SIG, cooldown=120.0), _ev(40.0), t=100.0)) == []
    assert preemption_actions(_snap(_signal(SIG, mode="fixed"), _ev(40.0))) == []  # Smart City: no preemption


def test_retargets_a_hold_kept_for_an_earlier_crossing() -> None:
    """Held for phase 0 (the vehicle's previous crossing here); this crossing needs phase 2: retarget, once."""
    props = preemption_actions(_snap(_signal(SIG, mode="preempted", held=0), _ev(40.0)))
    assert [(p.target, p.action, p.params["phase"]) for p in props] == [(SIG, "preempt", 2)]
    assert preemption_actions(_snap(_signal(SIG, mode="preempted", held=2), _ev(40.0))) == []


def test_prefers_the_phase_that_clears_the_vehicles_lane_then_protected() -> None:
    """A phase greening every movement out of the vehicle's lane wins (the cars ahead of it turn elsewhere)."""
    ev = _ev(50.0, serving=[0, 1, 3])
    ahead = ev.get("nextSignals")
    ahead[0].update({"protectedPhases": [1, 3], "clearingPhases": [3]})
    ev = Entity(ev.id, ev.type, {"speed": Property(10.0), "nextSignals": Property(ahead)})
    [p] = preemption_actions(_snap(_signal(SIG, current=1), ev))
    assert p.params["phase"] == 3  # clearing beats protected-and-shown (1)
    assert {c["phase"]: c["terms"]["clears_lane"] for c in p.candidates} == {0: False, 1: False, 3: True}
    ahead[0]["clearingPhases"] = []
    ev = Entity(ev.id, ev.type, {"speed": Property(10.0), "nextSignals": Property(ahead)})
    [p] = preemption_actions(_snap(_signal(SIG, current=0), ev))
    assert p.params["phase"] == 1  # protected beats permissive-but-shown (0)
    [p] = preemption_actions(_snap(_signal(SIG, mode="preempted", held=0), ev))
    assert (p.action, p.params["phase"]) == ("preempt", 1)  # a hold on a worse serving phase is retargeted


def test_planner_is_pure_and_deterministic() -> None:
    snap = _snap(_signal(SIG), _signal(SIG2), _ev(80.0))
    before = {k: e.to_ngsi() for k, e in snap.entities.items()}
    planner = make_preemption_planner(None)
    assert planner(snap, {}) == planner(snap, {})
    assert {k: e.to_ngsi() for k, e in snap.entities.items()} == before


def test_summary_pairs_seeds_with_confidence_intervals() -> None:
    recs: list[dict[str, Any]] = []
    for seed, (smart, ai) in enumerate([(200.0, 100.0), (220.0, 99.0), (180.0, 95.0)], start=1):
        for mode, ev, oth in (("smart", smart, 50.0 + seed), ("ai", ai, 51.0 + seed)):
            recs.append({"scenario": "x", "seed": seed, "mode": mode, "ev_travel_s_mean": ev,
                         "others_delay_s": oth})
    s = summarize_preemption(recs)
    assert s["seeds"] == [1, 2, 3]
    ev = s["ev_travel_change_pct"]
    assert ev["mean"] == pytest.approx((-50.0 - 55.0 - 100.0 * 85.0 / 180.0) / 3, abs=1e-3)
    assert ev["ci95"][0] < ev["mean"] < ev["ci95"][1] < -40.0  # t(2) = 4.303 makes 3 seeds wide
    assert s["others_delay_change_s"]["mean"] == pytest.approx(1.0)
    assert mean_ci95([1.0])["ci95"] == [None, None]


def test_bench_rejects_bad_input() -> None:
    with pytest.raises(UserError, match="unknown preemption bench mode"):
        run_preemption_bench("grid3x3", [1], 1, modes=("smart", "turbo"))
    with pytest.raises(UserError, match="at least one seed"):
        run_preemption_bench("grid3x3", [], 1)


@pytest.mark.sumo
def test_real_run_preempts_within_max_hold_and_cooldown(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("libsumo")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from aicity.core.city import single
    from aicity.core.store import SqliteStore
    from aicity.domains.mobility import domain
    from aicity.domains.mobility.scenarios import require
    from aicity.runner import prepare_run

    scen = require("cologne8")
    scen = dataclasses.replace(scen, end_s=scen.begin_s + 900, params={"ev_per_hour": 40.0,
                                                                        "decision_interval_s": 2.0})
    store = SqliteStore()
    run = prepare_run(single(domain, scen), mode="ai", seed=2, store=store, out=tmp_path,
                      key=Ed25519PrivateKey.generate())
    result = run.run().results["mobility"]
    lim = run.twins["mobility"].config.limits
    events: list[dict[str, Any]] = [
        {"event": e.data["event"], "time": e.data["time_s"], "signal": e.data["target"], **e.data["detail"]}
        for e in store.events(type="edge_action")]
    actions = [e.data["action"] for e in store.events(type="command")]
    starts = [e for e in events if e["event"] == "preempt_start"]
    ends = [e for e in events if e["event"] == "preempt_end"]
    assert starts and ends and "release" in actions
    assert any(e["why"] == "release" for e in ends)  # ended because the vehicle passed
    assert all(e["held_s"] <= lim.max_hold_s + 1e-6 for e in ends)
    for sig in {e["signal"] for e in starts}:
        seq = sorted((e["time"], e["event"]) for e in events
                     if e["signal"] == sig and e["event"].startswith("preempt"))
        for (t_end, k_end), (t_next, k_next) in itertools.pairwise(seq):
            if k_end == "preempt_end" and k_next == "preempt_start":
                assert t_next - t_end >= lim.cooldown_s - 1e-6
    assert result.extra["counts"]["preemptions"] == len(starts)
    assert result.kpis["ev_finished"] > 0


@pytest.mark.sumo
def test_bench_records_have_the_documented_keys() -> None:
    pytest.importorskip("libsumo")
    recs = run_preemption_bench("grid3x3", [1], 1, ev_per_hour=30.0, duration_s=300.0)
    assert [(r["seed"], r["mode"]) for r in recs] == [(1, "smart"), (1, "ai")]
    for r in recs:
        assert set(PREEMPTION_KEYS) <= set(r)
        assert r["ev_trips"] >= 1
        # the free-flow floor is below the travel time actually driven (same routes in both modes)
        assert 0 < r["ev_free_flow_s_mean"] <= r["ev_travel_s_mean"] and r["ev_wait_s_mean"] >= 0
    assert recs[0]["ev_free_flow_s_mean"] == pytest.approx(recs[1]["ev_free_flow_s_mean"], rel=0.15)
    assert recs[0]["preemptions"] == 0
    summary = summarize_preemption(recs)
    floor, change = summary["ev_travel_floor_change_pct"]["mean"], summary["ev_travel_change_pct"]["mean"]
    assert floor <= change, "no controller beats driving at the allowed speed all the way"
