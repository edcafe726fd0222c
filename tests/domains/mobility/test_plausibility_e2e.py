"""Input plausibility end to end on real SUMO: a frozen and an impossible detector make decisions degraded,
the affected signals run their fixed-time safe plan, nothing is actuated from them, and the counts reach the
report; clean runs have no degraded decision."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import pytest

from aicity.core.city import single
from aicity.core.domain import ProposedAction, RunServices, Snapshot
from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.domains.mobility import PLAUSIBILITY, domain
from aicity.domains.mobility.faults import SensorFaults
from aicity.domains.mobility.safe_plan import resume_planner
from aicity.domains.mobility.scenarios import require
from aicity.domains.mobility.twin import SumoTwin
from aicity.governance.plausibility import PlausibilityChecker
from aicity.loop import CityLoop
from aicity.runner import prepare_run

pytest.importorskip("libsumo")
pytestmark = pytest.mark.sumo

FROZEN = "urn:ngsi-ld:TrafficFlowObserved:in:A0A1_0"  # incoming lane of signal A1
IMPOSSIBLE = "urn:ngsi-ld:TrafficFlowObserved:in:C2C1_0"  # incoming lane of signal C1
AFFECTED = {"urn:ngsi-ld:TrafficSignal:A1", "urn:ngsi-ld:TrafficSignal:C1"}
FAULT_AT = 120.0


def _run(tmp_path: Path, seconds: float, faults: dict[str, Any] | None) -> tuple[CityLoop, Any, list[dict[str, Any]]]:
    scen = require("grid3x3")
    scen = dataclasses.replace(scen, end_s=scen.begin_s + seconds)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if faults is not None:
        scen = dataclasses.replace(scen, params={"sensor_faults": faults})
    store = SqliteStore(tmp_path / "city.db")
    run = prepare_run(single(domain, scen), mode="ai", seed=3, store=store, out=tmp_path,
                      key=Ed25519PrivateKey.generate())
    loop, gov, twin = run.loop, run.governance, run.twins["mobility"]
    modes: list[dict[str, Any]] = []

    def progress(done: float, total: float) -> None:
        modes.append({"t": done, **{f"urn:ngsi-ld:TrafficSignal:{sid}": e.controlled and not e.to_fixed
                                    for sid, e in twin.edges.items()}})

    loop.result = run.run(progress).results["mobility"]  # type: ignore[attr-defined]
    loop.twin = twin  # type: ignore[attr-defined]
    return loop, gov, modes


def _elapsed(rec: dict[str, Any], loop: CityLoop) -> float:
    from datetime import datetime

    start: datetime = loop.twin.start_time  # type: ignore[attr-defined]
    return (datetime.fromisoformat(rec["time"]) - start).total_seconds()


def test_frozen_and_impossible_detectors_fall_back_to_the_safe_plan(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AICITY_LEDGER_KEY", str(tmp_path / "key.pem"))
    loop, gov, modes = _run(tmp_path, 420, {"freeze": [FROZEN], "impossible": [IMPOSSIBLE], "after_s": FAULT_AT})
    decisions = list(gov.ledger.records("decision"))
    degraded = [r for r in decisions if r["degraded"]]
    assert degraded, "no decision was marked degraded"
    # the frozen detector's repeated readings are not counted as observations: counted apart and dead-lettered
    assert loop.stats.stale_observations > 0
    stale = [d for d in loop.store.dead_letters() if "stale" in d.reason]
    assert stale and all(FROZEN in str(d.payload) for d in stale)
    # nothing degraded before the fault (no false positives), nothing degraded is actuated
    assert min(_elapsed(r, loop) for r in degraded) >= FAULT_AT
    assert all(r["actuation"] is None and r["verdict"] == "refuse" for r in degraded)
    # only decisions reading a faulty detector are degraded, and the reasons name it
    assert {r["chosen"]["target"] for r in degraded} == AFFECTED
    reasons = " ".join(" ".join(r["reasons"]) for r in degraded)
    assert f"stale: {FROZEN}.queue" in reasons and f"out_of_range: {IMPOSSIBLE}.occupancy" in reasons
    assert f"out_of_range: {IMPOSSIBLE}.queue" in reasons
    # after its first degraded decision an affected signal is never actuated again and runs its fixed plan
    for target in AFFECTED:
        first = min(_elapsed(r, loop) for r in degraded if r["chosen"]["target"] == target)
        later = [r for r in decisions if r["chosen"]["target"] == target and _elapsed(r, loop) > first]
        assert later, f"{target}: no later decision (the resume proposals should keep being refused)"
        assert all(r["actuation"] is None for r in later), target
        controlled_after = [m[target] for m in modes if m["t"] > first]
        assert controlled_after and not any(controlled_after), f"{target} left its safe plan"
    assert not any(e.controlled for sid, e in loop.twin.edges.items()  # type: ignore[attr-defined]
                   if f"urn:ngsi-ld:TrafficSignal:{sid}" in AFFECTED)
    # the other signals keep being controlled and actuated after the fault
    others = {r["chosen"]["target"] for r in decisions if r["chosen"]["target"] not in AFFECTED
              and _elapsed(r, loop) > FAULT_AT and (r["actuation"] or {}).get("status") in ("applied", "clamped")}
    assert len(others) >= 4
    assert all(m[s] for m in modes for s in m if s != "t" and s not in AFFECTED)
    # every case is counted, and the counts reach the report
    summary = gov.summary()
    assert summary["counts"]["degraded"] == len(degraded) == loop.stats.degraded
    assert summary["plausibility"]["stale"] > 0 and summary["plausibility"]["out_of_range"] > 0
    assert summary["plausibility"]["degraded_snapshots"] > 0
    assert summary["ledger_verified"]
    from aicity.report.writer import markdown

    mode = {"mode": "ai", "loop": loop.stats.to_dict(), "dead_letters": 0, "governance": summary,
            "domains": {"mobility": {"kpis": loop.result.kpis}}}  # type: ignore[attr-defined]
    text = markdown({"city": "grid3x3", "domains": ["mobility"], "scenarios": {"mobility": "grid3x3"}, "seed": 3,
                     "description": "", "window_s": [0, 420], "wall_s": 0.0, "modes": {"ai": mode},
                     "comparison": {"mobility": {}}, "equity": {}, "figures": []})
    assert f"stale {summary['plausibility']['stale']}" in text
    assert f"| degraded | {len(degraded)} |" in text


def test_clean_run_has_no_degraded_decision(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AICITY_LEDGER_KEY", str(tmp_path / "key.pem"))
    loop, gov, modes = _run(tmp_path, 300, None)
    assert loop.stats.proposals > 0 and loop.stats.actuated > 0
    assert loop.stats.degraded == 0 and gov.governor.counts["degraded"] == 0
    assert gov.summary()["plausibility"]["snapshots"] > 0
    assert all(m[s] for m in modes for s in m if s != "t")


def test_safe_hold_resumes_only_through_a_resume_command() -> None:
    scen = dataclasses.replace(require("grid3x3"), end_s=require("grid3x3").begin_s + 120)
    twin = cast(SumoTwin, domain.open_twin(scen, seed=1, mode="ai", services=RunServices()))
    twin.start()
    try:
        twin.advance(10)
        sig = "urn:ngsi-ld:TrafficSignal:B1"
        assert twin.safe_state_for(sig) and not twin.safe_state_for("urn:ngsi-ld:TrafficSignal:nowhere")
        twin.advance(10)
        ents = {e.id: e for e in twin.observe()}
        assert ents[sig].get("safeHold") is True and ents[sig].get("controlMode") == "fixed"
        phase = ents[sig].get("currentPhase")
        refused = twin.actuate(ProposedAction(sig, "set_phase", {"phase": 0}))
        assert refused.refused and refused.bound_by == ("safe_plan",)
        twin.resume()  # the global resume (after a stop) leaves a held signal on its safe plan
        twin.advance(5)
        assert not twin.edges["B1"].controlled
        snap = Snapshot(twin.now(), twin.elapsed_s(), {e.id: e for e in twin.observe()})
        props = resume_planner(snap, {})
        if phase is not None and snap.entities[sig].get("currentPhase") is not None:
            assert [p.target for p in props] == [sig]
            assert FROZEN.replace("A0A1", "A1B1") in props[0].inputs  # the signal's incoming detectors
        resume = ProposedAction(sig, "set_phase", {"phase": 0, "resume": True})
        assert twin.actuate(resume).status == "applied"
        twin.advance(60)
        assert twin.edges["B1"].controlled
        assert twin.observe() and not any(e.get("safeHold") for e in twin.observe() if e.type == "TrafficSignal")
    finally:
        twin.close()


def test_sensor_fault_ids_are_checked() -> None:
    with pytest.raises(UserError, match="after_s"):
        SensorFaults.parse({"freeze": [], "after_s": -1})
    with pytest.raises(UserError, match="unknown keys"):
        SensorFaults.parse({"frozen": []})
    with pytest.raises(UserError, match="list of detector"):
        SensorFaults.parse({"freeze": "in:A0A1_0"})
    scen = dataclasses.replace(require("grid3x3"), end_s=require("grid3x3").begin_s + 20)
    twin = domain.open_twin(dataclasses.replace(scen, params={"sensor_faults": {"impossible": ["nope"]}}), seed=1,
                            mode="smart", services=RunServices())
    with pytest.raises(UserError, match="'nope' is no detector group"):
        twin.start()
    twin = cast(SumoTwin, domain.open_twin(dataclasses.replace(scen, params={"sensor_faults": {"freeze": ["B1"]}}),
                                           seed=1, mode="smart", services=RunServices()))
    twin.start()
    try:
        frozen = twin._freeze
        assert twin.net is not None
        assert len(frozen) == 8  # B1's four approaches, two lanes each
        assert {twin.net.lane_signal[k.removeprefix("in:")] for k in frozen} == {"B1"}
    finally:
        twin.close()


def test_rules_are_valid_and_flag_what_they_should() -> None:
    checker = PlausibilityChecker.from_dict(PLAUSIBILITY)
    from datetime import UTC, datetime, timedelta

    now = datetime(2024, 1, 1, 7, tzinfo=UTC)
    old = now - timedelta(seconds=45)

    def flow(eid: str, when: datetime, **vals: Any) -> Entity:
        base = {"queue": 2, "vehicleCount": 5, "occupancy": 0.2, "averageVehicleSpeed": None}
        return Entity(f"urn:ngsi-ld:TrafficFlowObserved:in:{eid}", "TrafficFlowObserved",
                      {k: Property(v, when) for k, v in {**base, **vals}.items()})

    sig = Entity("urn:ngsi-ld:TrafficSignal:X", "TrafficSignal", {"timeInPhase": Property(3.0, now)})
    ents = [flow("ok", now), flow("fast", now, averageVehicleSpeed=80.0), flow("old", old),
            flow("bad", now, occupancy=2.5, queue=-3), sig]
    report = checker.check(Snapshot(now, 0.0, {e.id: e for e in ents}))
    kinds = {(i.entity_id.rsplit(":", 1)[1], i.attribute, i.kind) for i in report.issues}
    assert kinds == {("fast", "averageVehicleSpeed", "out_of_range"), ("bad", "occupancy", "out_of_range"),
                     ("bad", "queue", "out_of_range"), *{("old", a, "stale") for a in
                                                         ("queue", "vehicleCount", "occupancy",
                                                          "averageVehicleSpeed")}}
    missing = checker.check(Snapshot(now, 0.0, {ents[0].id: ents[0]}))
    assert [i.kind for i in missing.issues] == ["missing"]
