"""Explanations: top inputs, a counterfactual derived from score terms (checked by re-scoring), constraints."""

from __future__ import annotations

from aicity.governance.explain import explain
from aicity.governance.records import build_record

from .fakes import TankTwin, planner


def _record(level: float) -> dict:  # type: ignore[type-arg]
    twin = TankTwin(levels=[level, 10.0])
    snap = twin.snapshot()
    p = planner(snap)[0]
    return build_record(p, snap, record_id="r", domain="water", now=twin.now, outcome=twin.actuate(p)).to_dict()


def test_counterfactual_threshold_really_flips_the_choice() -> None:
    rec = _record(35.0)
    ex = explain(rec)
    assert rec["chosen"]["params"] == {"opening": 85}
    assert "Tank:t0#level = 35" in ex.top_inputs[0]
    thr = ex.details["threshold"]
    assert ex.details["runner_up"] == "opening=30" and "below" in ex.counterfactual
    assert abs(thr - 30.0) < 1e-9
    # re-run the planner just below and above the threshold: the choice flips exactly there
    assert _record(thr - 0.01)["chosen"]["params"] == {"opening": 30}
    assert _record(thr + 0.01)["chosen"]["params"] == {"opening": 85}
    assert "clamped" in ex.text and "max_opening" in ex.text


def test_minimising_planners_are_recognised() -> None:
    rec = {"time": "t", "domain": "d", "chosen": {"target": "x", "action": "a", "params": {"route": "B"}},
           "candidates": [{"route": "A", "score": 12.0, "terms": {"q": 12.0}},
                          {"route": "B", "score": 8.0, "terms": {"q": 4.0, "len": 4.0}}],
           "inputs": [{"values": {"q": 2.0}}], "verdict": "act"}
    ex = explain(rec)
    # B costs 2*q + 4 less... cost terms: A = 6q, B = 2q + 4; A wins when 4q < 4 → q < 1
    assert ex.details["runner_up"] == "route=A" and abs(ex.details["threshold"] - 1.0) < 1e-9
    assert "below 1" in ex.counterfactual


def test_honest_when_no_terms_or_single_option() -> None:
    rec = {"chosen": {"target": "s", "action": "set_phase", "params": {"phase": 1}},
           "candidates": [{"phase": 0, "score": 3.0, "terms": [{"lane": "n", "queue_in": 3}]},
                          {"phase": 1, "score": 5.0, "terms": [{"lane": "e", "queue_in": 5}]}],
           "inputs": [{"values": {"q_n": 3, "q_e": 5}}], "verdict": "act", "limits_bound": []}
    ex = explain(rec)
    assert "cannot be derived" in ex.counterfactual and "phase=0" in ex.counterfactual
    assert ex.top_inputs[-1].startswith("(no per-input")
    assert "none bound" in ex.text
    one = {**rec, "candidates": list(rec["candidates"])[1:]}
    assert "only one option" in explain(one).counterfactual
    refused = {**rec, "verdict": "refuse", "reasons": ["outside the envelope"], "degraded": True}
    assert "outside the envelope" in explain(refused).text and "DEGRADED" in explain(refused).summary


def test_the_planners_own_account_is_the_why_and_not_part_of_the_options_name() -> None:
    why = "the site's peak so far (137.1 kW) bound 00:00-22:45; the sessions with the latest departures were deferred"
    rec = {"time": "t", "domain": "d", "model": {"id": "mpc"}, "verdict": "act",
           "chosen": {"target": "b1", "action": "set_power", "params": {"kw": 17.2, "cap_kw": 137.1}},
           "candidates": [{"kw": 17.2, "binding": why}], "inputs": [{"values": {"b1": 0.5}}]}
    ex = explain(rec)
    assert ex.reason == why + "."
    assert "Why: " + why in ex.text
    assert "binding" not in ex.summary and "kw=17.2" in ex.summary
    assert "no scored alternatives" in ex.counterfactual
    assert explain({**rec, "candidates": [{"kw": 17.2}]}).reason == ""


def test_a_dispatch_names_its_runner_up_and_keeps_a_route_short() -> None:
    why = "Ambulance A2 was sent to incident I1 because it was the closest available unit: 83 s. A1: 139 s."
    rec = {"time": "t", "domain": "d", "model": {"id": "dispatch"}, "verdict": "act",
           "chosen": {"target": "A2", "action": "dispatch",
                      "params": {"incident": "I1", "eta_s": 82.5, "explanation": why,
                                 "route": ["e1", "e2", "e3", "e4", "e5"]}},
           "candidates": [{"unit": "A2", "eta_s": 82.5, "score": -82.5}, {"unit": "A1", "eta_s": 138.5, "score": -138.5}]}
    ex = explain(rec)
    assert ex.reason == why and ex.text.count(why) == 1
    assert ex.details["runner_up"] == "eta_s=138.5, unit=A1" and "-138.5" in ex.counterfactual
    unmatched = explain({**rec, "candidates": []})
    assert "route=[5 items]" in unmatched.summary and "explanation" not in unmatched.summary
