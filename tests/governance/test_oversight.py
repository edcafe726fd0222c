"""Oversight: autonomy levels, envelope, stop, approvals, overrides, all recorded in the ledger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import aicity
from aicity.core.domain import ProposedAction
from aicity.core.errors import UserError
from aicity.governance.ledger import Ledger
from aicity.governance.oversight import AutonomyLevel, DomainPolicy, Governor, Policy, Verdict
from aicity.governance.plausibility import PlausibilityChecker, Rule

from .fakes import POLICY, TankTwin, planner, run


@pytest.fixture
def gov(ledger: Ledger) -> Governor:
    """A governor with the test policy."""
    return Governor(ledger, Policy.parse(POLICY.encode(), "test.toml"))


MOBILITY = Path(aicity.__file__).parent / "domains" / "mobility" / "policy.toml"


def test_default_policy_loads_and_is_referenced() -> None:
    pol = Policy.load()
    assert pol.version and len(pol.sha256) == 64
    assert pol.rule_for("nowhere", "x").autonomy is AutonomyLevel.ADVISE
    assert not pol.rules and not pol.limits and not pol.accuracy  # every domain's rules ship with the domain
    city = pol.with_domains([DomainPolicy.load("mobility", MOBILITY)])
    assert city.rule_for("mobility", "signal_phase").autonomy is AutonomyLevel.AUTONOMOUS
    assert city.rule_for("mobility", "signal_preemption").autonomy is AutonomyLevel.NOTIFY
    assert city.rule_for("mobility", "other").autonomy is AutonomyLevel.APPROVE
    assert city.rule_for("mobility", "signal_phase").source.kind == "domain defaults"  # type: ignore[union-attr]
    assert {lim.name for lim in city.limits_for("mobility", "signal_phase")} == {
        "signal_actions", "signal_phase_index", "signal_actions_per_hour"}
    assert city.is_fallback(city.rule_for("energy", "charge"))


def test_policy_errors_are_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError, match="autonomy 'sometimes'"):
        Policy.parse(b'version="1"\n[default]\nautonomy="sometimes"\nowner_role="x"\n', "p.toml")
    with pytest.raises(UserError, match="owner_role"):
        Policy.parse(b'version="1"\n[default]\nautonomy="advise"\n', "p.toml")
    with pytest.raises(UserError, match="version"):
        Policy.parse(b'[default]\nautonomy="advise"\nowner_role="x"\n', "p.toml")
    with pytest.raises(UserError, match="cannot read"):
        Policy.load(tmp_path / "missing.toml")
    for deep in (b"a = " + b"[" * 3000 + b"1" + b"]" * 3000, b'{"a":' * 3000 + b"1" + b"}" * 3000):
        with pytest.raises(UserError, match="nested too deeply to read"):  # was a RecursionError
            Policy.parse(deep, "p.toml")


def test_every_decision_is_ledgered_with_policy_ref(gov: Governor, ledger: Ledger) -> None:
    twin = TankTwin()
    verdicts = run(gov, twin, 5)
    assert verdicts == ["act"] * 10
    recs = list(ledger.records("decision"))
    assert len(recs) == 10
    r = recs[0]
    assert r["policy"]["version"] == "test-1" and r["policy"]["sha256"] == gov.policy.sha256
    assert r["owner_role"] == "water duty officer" and r["autonomy_level"] == "autonomous-within-envelope"
    assert r["inputs"][0]["entity_id"] == "urn:ngsi-ld:Tank:t0" and len(r["inputs"][0]["content_hash"]) == 64
    assert r["actuation"]["status"] in ("applied", "clamped")
    assert set(r["context"]) == {"observation", "decision", "command", "ack"}  # the causal chain, from the loop
    assert all(r["context"].values())
    assert ledger.verify().ok


def test_out_of_envelope_is_refused_and_recorded(gov: Governor, ledger: Ledger) -> None:
    twin = TankTwin()
    snap = twin.snapshot()
    bad = ProposedAction("v0", "set_opening", {"opening": 95}, action_type="valve", planner="p")
    review = gov.review(bad, snap, domain="water", now=twin.now)
    assert review.verdict is Verdict.REFUSE
    assert any("valve_opening" in b for b in review.limits_bound)
    rec = gov.record(bad, review, None, domain="water", now=twin.now)
    stored = ledger.get(rec.id)
    assert stored is not None and stored["verdict"] == "refuse" and stored["actuation"] is None
    assert stored["limits_bound"] and "valve_opening" in stored["limits_bound"][0]
    odd = ProposedAction("v0", "drain", {}, action_type="valve")
    assert gov.review(odd, snap, domain="water", now=twin.now).verdict is Verdict.REFUSE
    assert gov.counts["out_of_envelope"] == 2
    with pytest.raises(UserError, match="actuated although"):
        gov.record(bad, review, twin.actuate(bad), domain="water", now=twin.now)


def test_stop_reaches_safe_state_within_one_step_and_is_recorded(gov: Governor, ledger: Ledger) -> None:
    twin = TankTwin()
    verdicts = run(gov, twin, 6, stop_at=3)
    assert verdicts == ["act"] * 6  # three steps of two valves; the loop plans nothing while stopped
    assert twin.openings == {"v0": 50.0, "v1": 50.0}  # nothing actuated after the stop
    stopped = gov.review(planner(twin.snapshot())[0], twin.snapshot(), domain="water", now=twin.now)
    assert stopped.verdict is Verdict.STOPPED and not stopped.act
    kinds = [r["kind"] for r in ledger.records()]
    assert kinds.index("stop") < kinds.index("safe_state") == kinds.index("stop") + 1
    stop = next(ledger.records("stop"))
    assert stop["reason"] == "operator saw a leak" and stop["domain"] == "water"
    assert not gov.needs_safe_state("water")
    gov.resume("water", reason="leak fixed", by="op1", now=twin.now)
    assert not gov.is_stopped("water")
    with pytest.raises(UserError, match="reason"):
        gov.stop(reason="  ", by="op1", now=twin.now)
    gov.stop(reason="city-wide drill", by="chief", now=twin.now)
    assert gov.is_stopped("water") and gov.is_stopped("energy")


def test_approve_then_act_queue(gov: Governor, ledger: Ledger) -> None:
    twin = TankTwin()
    snap = twin.snapshot()
    p = ProposedAction("v1", "flush", {"opening": 60}, action_type="flush", planner="p")
    review = gov.review(p, snap, domain="water", now=twin.now)
    assert review.verdict is Verdict.QUEUE
    rec = gov.record(p, review, None, domain="water", now=twin.now)
    pending = gov.queue.entries()
    assert [a.record_id for a in pending] == [rec.id] and pending[0].proposal.params == {"opening": 60}
    with pytest.raises(UserError, match="reason"):
        gov.queue.decide(pending[0].id, True, reason="", by="eng", now=twin.now)
    gov.queue.decide(pending[0].id, True, reason="flush scheduled anyway", by="eng", now=twin.now)
    with pytest.raises(UserError, match="already approved"):
        gov.queue.decide(pending[0].id, False, reason="changed my mind", by="eng", now=twin.now)
    items = gov.take_approved("water", now=twin.now + timedelta(seconds=30))
    assert len(items) == 1 and gov.take_approved("water", now=twin.now) == []
    prop, rv = items[0]
    out = twin.actuate(prop)
    done = gov.record(prop, rv, out, domain="water", now=twin.now)
    assert done.approvals[0]["by"] == "eng" and done.actuation is not None
    assert next(ledger.records("approval"))["reason"] == "flush scheduled anyway"


def test_stale_approvals_expire(gov: Governor) -> None:
    twin = TankTwin()
    p = ProposedAction("v1", "flush", {"opening": 60}, action_type="flush")
    rec = gov.record(p, gov.review(p, twin.snapshot(), domain="water", now=twin.now), None,
                     domain="water", now=twin.now)
    aid = gov.queue.entries()[0].id
    gov.queue.decide(aid, True, reason="ok", by="eng", now=twin.now)
    assert gov.take_approved("water", now=twin.now + timedelta(hours=1), max_age_s=600) == []
    assert gov.queue.get(aid).status == "expired" and rec.verdict == "queue"


def test_advise_records_without_acting(gov: Governor, ledger: Ledger) -> None:
    twin = TankTwin()
    p = ProposedAction("v0", "survey", {}, action_type="survey")
    review = gov.review(p, twin.snapshot(), domain="water", now=twin.now)
    assert review.verdict is Verdict.ADVISE and not review.act
    gov.record(p, review, None, domain="water", now=twin.now)
    assert next(ledger.records("decision"))["verdict"] == "advise"


def test_override_and_reversal_need_reasons(gov: Governor, ledger: Ledger) -> None:
    twin = TankTwin()
    run(gov, twin, 1)
    rid = next(ledger.records("decision"))["id"]
    with pytest.raises(UserError, match="reason"):
        gov.override(rid, reason="", by="op", now=twin.now)
    with pytest.raises(UserError, match="no decision record"):
        gov.reverse("nope", reason="x", by="op", now=twin.now)
    oid = gov.override(rid, reason="manual flush", by="op", now=twin.now,
                       replacement=ProposedAction("v0", "set_opening", {"opening": 10}))
    gov.reverse(rid, reason="valve noisy", by="op", now=twin.now)
    o = ledger.get(oid)
    assert o is not None and o["refers_to"] == rid and o["replacement"]["params"] == {"opening": 10}
    assert next(ledger.records("reversal"))["reason"] == "valve noisy"


def test_implausible_inputs_degrade_and_never_actuate(ledger: Ledger) -> None:
    checker = PlausibilityChecker([Rule("Tank", "level", 0, 100, max_age_s=120)], ["urn:ngsi-ld:Tank:*"])
    gov = Governor(ledger, Policy.parse(POLICY.encode(), "t"), plausibility={"water": checker})
    twin = TankTwin(frozen={1})
    twin.advance(600)  # tank 1's last observation is now 10 minutes old
    verdicts = run(gov, twin, 3)
    assert verdicts == ["act", "refuse"] * 3
    assert twin.log and all(t[1] == "v0" for t in twin.log)
    rec = next(r for r in ledger.records("decision") if r["degraded"])
    assert rec["verdict"] == "refuse" and any("stale" in r for r in rec["reasons"])
    assert checker.counts["stale"] == 3 and gov.counts["degraded"] == 3
    assert gov.summary()["plausibility"]["water"]["stale"] == 3


def test_demotion_to_advise_at_run_time(gov: Governor, ledger: Ledger) -> None:
    twin = TankTwin()
    assert run(gov, twin, 1) == ["act", "act"]
    with pytest.raises(UserError, match="not one of"):
        gov.set_autonomy("water", "sometimes", reason="x", by="monitor", now=twin.now)
    gov.set_autonomy("water", "advise", reason="forecast MAE above the declared 5.0", by="drift monitor",
                     now=twin.now)
    assert run(gov, twin, 1) == ["advise", "advise"]
    change = next(ledger.records("autonomy"))
    assert change["level"] == "advise" and "MAE" in change["reason"]
    assert next(r for r in ledger.records("decision") if r["verdict"] == "advise")["autonomy_level"] == "advise"


@pytest.mark.parametrize(("guard", "message"), [
    ('name = "g"\ndomain = "d"\nmodel = "m"', "max_error_ratio must be a positive number"),
    ('name = "g"\ndomain = "d"\nmodel = "m"\nmax_error_ratio = 1.5\ndemote_to = "autonomous-within-envelope"',
     "demote_to must be off, advise or approve-then-act"),
    ('name = "g"\ndomain = "d"\nmax_error_ratio = 1.5', "needs a model"),
    ('name = "g"\ndomain = "d"\nmodel = "m"\nmax_error_ratio = 1.5\nwindow = 3', "unknown accuracy guard fields"),
])
def test_accuracy_guard_errors_are_named(guard: str, message: str) -> None:
    text = f'version = "1"\n[default]\nautonomy = "advise"\nowner_role = "o"\n[[accuracy]]\n{guard}\n'
    with pytest.raises(UserError, match=message):
        Policy.parse(text.encode(), "p.toml")



def test_shipped_policy_guards_the_ai_signal_controller() -> None:
    pol = Policy.load().with_domains([DomainPolicy.load("mobility", MOBILITY)])
    guards = [g for g in pol.accuracy if g.matches("mobility", "mobility.ai.lane-rates")]
    assert guards and guards[0].action_type == "signal_phase" and guards[0].demote_to is AutonomyLevel.ADVISE
    assert guards[0].max_error_ratio >= 1.0
