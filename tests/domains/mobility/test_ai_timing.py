"""The AI controller's timing: decisions just before the minimum green ends, and before the maximum green."""

from __future__ import annotations

from datetime import UTC, datetime

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.mobility.ai import AiParams, ai_planner, make_ai_planner

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SIG = "urn:ngsi-ld:TrafficSignal:J1"
LANES = ("ns_0", "left_0", "ew_0")


def _flow(lane: str, direction: str, queue: int) -> Entity:
    return Entity(f"urn:ngsi-ld:TrafficFlowObserved:{direction}:{lane}", "TrafficFlowObserved", {
        "laneId": Property(lane), "flowDirection": Property("incoming" if direction == "in" else "outgoing"),
        "queue": Property(queue), "vehicleCount": Property(queue), "intensity": Property(0),
        "observationPeriod": Property(10.0), "laneCount": Property(1)})


def _signal(in_phase: float, all_red_s: float = 0.0) -> Entity:
    """Three greens in program order: a through phase, a short protected turn, the cross street."""
    phases = [{"index": i, "state": "", "serves": [
        {"lane": lane, "to": [f"out_{lane}"], "detector": f"urn:ngsi-ld:TrafficFlowObserved:in:{lane}"}]}
        for i, lane in enumerate(LANES)]
    return Entity(SIG, "TrafficSignal", {
        "currentPhase": Property(0), "phaseKind": Property("green"), "nextPhase": Property(None),
        "timeInPhase": Property(in_phase), "controlMode": Property("controlled"), "phases": Property(phases),
        "limits": Property({"yellow_s": 3.0, "min_green_s": 7.0, "max_green_s": 60.0, "all_red_s": all_red_s})})


def _snap(sig: Entity, queues: tuple[int, int, int]) -> Snapshot:
    ents = [sig] + [_flow(lane, "in", q) for lane, q in zip(LANES, queues, strict=True)]
    ents += [_flow(f"out_{lane}", "out", 0) for lane in LANES]
    return Snapshot(T0, 100.0, {e.id: e for e in ents})


def test_asks_for_a_change_when_the_minimum_green_ends_within_one_clearance() -> None:
    # 5 s shown of a 7 s minimum, the next decision would come 10 s later: ask now, the edge defers it to 7 s
    [p] = ai_planner(_snap(_signal(5.0), (0, 0, 30)), {})
    assert p.params["phase"] == 2
    assert ai_planner(_snap(_signal(2.0), (0, 0, 30)), {}) == []  # 5 s short: more than one clearance
    # with an all-red second, a change leaves the new green 4 s short at the next step: still decided
    [p] = ai_planner(_snap(_signal(3.0, all_red_s=1.0), (0, 0, 30)), {})
    assert p.params["phase"] == 2
    late = make_ai_planner(AiParams(early=False))
    assert late(_snap(_signal(5.0), (0, 0, 30)), {}) == []


def test_ends_a_green_before_its_maximum_for_the_best_phase_not_the_next_one() -> None:
    # the current phase is still best, but would reach its 60 s maximum before the next decision; the edge would
    # then move on to the next phase in program order (the light turn phase): choose the cross street now
    snap = _snap(_signal(52.0), (20, 1, 8))
    assert ai_planner(_snap(_signal(42.0), (20, 1, 8)), {}) == []
    [p] = ai_planner(snap, {})
    assert p.params["phase"] == 2 and p.params["bound_by"] == ["max_green"]
    # when the next phase in program order is the best other one anyway, the edge's own change is kept
    assert ai_planner(_snap(_signal(52.0), (20, 8, 1)), {}) == []
    assert make_ai_planner(AiParams(lookahead_s=1.0))(snap, {}) == []
