"""Leaving the safe plan: a signal held on its fixed-time program because of implausible inputs asks to resume.

When governance marks a decision degraded, the loop calls ``twin.safe_state_for(target)``: the signal runs
its fixed-time program and publishes ``safeHold: true``. Every step this planner proposes, for each such
signal showing a green, ``set_phase`` of that green with ``params["resume"] = True``, naming every detector
the AI controller reads for that signal as inputs. Governance refuses it (degraded, counted) while any of
them is implausible; once they are plausible the resume is actuated and the AI controls the signal again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicity.core.domain import ProposedAction, Snapshot
from aicity.domains.mobility.const import FLOW_PREFIX
from aicity.domains.mobility.power import is_dark

PLANNER = "mobility.safe-plan-resume@1.0"


def signal_inputs(sig: Any, snapshot: Snapshot) -> dict[str, Any]:
    """Every detector group a signal's phases read (incoming and outgoing), with their queue, by entity id."""
    inputs: dict[str, Any] = {}
    for ph in sig.get("phases") or []:
        for serve in ph.get("serves", []):
            ids = [serve.get("detector") or f"{FLOW_PREFIX}in:{serve['lane']}",
                   *(f"{FLOW_PREFIX}out:{out}" for out in serve.get("to", []))]
            for eid in ids:
                ent = snapshot.entities.get(eid)
                if ent is not None:
                    inputs[eid] = {"queue": ent.get("queue")}
    return inputs


def resume_planner(snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
    """A resume proposal for every signal held on its safe plan that shows a green now."""
    out = []
    for sig in snapshot.of_type("TrafficSignal"):
        phase = sig.get("currentPhase")
        if sig.get("safeHold") is not True or sig.get("controlMode") != "fixed" or phase is None or is_dark(sig):
            continue
        inputs = signal_inputs(sig, snapshot)
        inputs[sig.id] = {"controlMode": "fixed", "safeHold": True, "currentPhase": phase}
        out.append(ProposedAction(
            target=sig.id, action="set_phase", params={"phase": int(phase), "resume": True},
            inputs=inputs, planner=PLANNER, action_type="signal_phase"))
    return out
