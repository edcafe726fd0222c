"""Signal planners that read only detector entities: max-pressure done well.

Pressure of a green phase = Σ over the links it gives green (``G`` or ``g``) of
(halting vehicles on the link's incoming lane and its upstream lanes within 200 m, not crossing another signal)
− (mean halting per lane on the link's outgoing lane and its unique-successor chain).
Measured on cologne8 (seed 1): counting only the stop-line lane, only priority (``G``) links, or each incoming
lane once gridlocks or loses a lot; this per-link form does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicity.core.domain import Planner, ProposedAction, Snapshot
from aicity.core.entity import Entity
from aicity.domains.mobility.power import is_dark

SIGNAL_TYPE = "TrafficSignal"


def flow_id(lane: str, direction: str) -> str:
    """Entity id of a detector group (same scheme as the twin)."""
    return f"urn:ngsi-ld:TrafficFlowObserved:{direction}:{lane}"


def out_mean_queue(ents: Mapping[str, Entity], lane: str) -> float:
    """Mean halting per lane over an outgoing lane and its unique-successor chain (0 when unobserved)."""
    e = ents.get(flow_id(lane, "out"))
    if e is None:
        return 0.0
    return float(e.get("queue", 0) or 0) / max(int(e.get("laneCount", 1) or 1), 1)


def in_queue(ents: Mapping[str, Entity], lane: str) -> float:
    """Halting vehicles on an incoming lane and its upstream lanes (0 when unobserved)."""
    e = ents.get(flow_id(lane, "in"))
    return float(e.get("queue", 0) or 0) if e is not None else 0.0


def phase_pressures(sig: Entity, ents: Mapping[str, Entity],
                    memo: dict[str, float] | None = None) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Candidates (phase, score, per-lane terms) of one signal and the inputs read, keyed by entity id."""
    memo = {} if memo is None else memo

    def value(lane: str, direction: str) -> float:
        key = flow_id(lane, direction)
        v = memo.get(key)
        if v is None:
            v = memo[key] = in_queue(ents, lane) if direction == "in" else out_mean_queue(ents, lane)
        inputs[key] = v
        return v

    inputs: dict[str, float] = {}
    cands = []
    for ph in sig.get("phases", []) or []:
        total = 0.0
        terms = []
        for serve in ph["serves"]:
            qi = value(serve["lane"], "in")
            qos = [value(o, "out") for o in serve["to"]]
            total += sum(qi - qo for qo in qos)
            terms.append({"lane": serve["lane"], "queue_in": qi,
                          "queue_out_mean": round(sum(qos) / len(qos), 3) if qos else 0.0})
        cands.append({"phase": ph["index"], "score": round(total, 3), "terms": terms})
    return cands, inputs


def max_pressure(snapshot: Snapshot, forecasts: Mapping[str, Any] | None = None) -> list[ProposedAction]:
    """One ``set_phase`` proposal per controlled signal: the green phase of highest pressure (ties keep the
    current phase)."""
    ents = snapshot.entities
    memo: dict[str, float] = {}
    out = []
    for sig in snapshot.of_type(SIGNAL_TYPE):
        if sig.get("controlMode") not in ("controlled",) or is_dark(sig):
            continue
        cands, inputs = phase_pressures(sig, ents, memo)
        if not cands:
            continue
        current = sig.get("currentPhase")
        if current is None:
            current = sig.get("nextPhase")
        best = max(cands, key=lambda c: (c["score"], c["phase"] == current))
        out.append(ProposedAction(
            target=sig.id, action="set_phase", params={"phase": int(best["phase"])}, score=best["score"],
            candidates=cands, inputs={**inputs, sig.id: current}, planner="maxpressure",
            action_type="signal_phase"))
    return out


PLANNERS: dict[str, Planner] = {"maxpressure": max_pressure}
