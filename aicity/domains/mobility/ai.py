"""The AI City signal controller: predictive pressure with a switching cost, on detector data only.

For every signal whose current green may end (its minimum green is served or ends within one clearance, no
preemption), each green phase ``p`` is scored over a short horizon ``H``::

    score(p) = Σ over the movements (in lane l → out lane o) that p serves of  share(l) ·
               [ min(queue + w_m·moving + w_a·λ·H,  s·g_p) + w_r·red/60  −  w_d·(halting per lane on o) ]

``queue``/``moving`` are the halting / moving vehicles the incoming lane's detectors see within 200 m, ``λ``
the lane's learned arrival rate, ``s`` its learned saturation flow, ``red`` the seconds since the lane last had
green (only while it has a queue: a starvation guard), ``share(l)`` = 1 / number of movements of lane ``l``
(a lane counts once when all its movements are served, partly when only some are), and ``g_p`` the green
time ``p`` would get in the horizon: ``H`` if it is the current phase, ``H`` minus the clearance (yellow +
all-red) otherwise — the switching cost — except for a lane whose movements in ``p`` are all green now too,
which keeps its green through the change (``H``). The planner proposes a change only when another phase scores
higher than the current one, and then goes to the phase that scores highest on its own (every lane paying the
clearance), not to the one overlapping the current green most: it extends a green while its queue still
discharges and platoons still arrive, and switches as soon as the lost time is worth it. Timing follows the
edge, not the decision clock: a change may be asked for just before the minimum green ends (the edge defers it),
and a green that would hit its maximum before the next decision is ended for the best other phase rather than
the edge's next-in-program phase. Where connected-vehicle probe data is on (only vehicles whose
owners consented, read through :mod:`aicity.governance.consent`), ``w_m`` of a lane becomes the share of its
moving probes that reach the stop line within ``H`` at their own speed. Learning state lives in
:class:`aicity.domains.mobility.ai_learning.LaneRateLearner` (arrival rates and saturation flows as ``ewma``
models of :mod:`aicity.forecast`); the planner itself is a pure function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aicity.core.domain import ForecastProvider, Planner, ProposedAction, Scenario, Snapshot
from aicity.core.entity import Entity
from aicity.domains.mobility.ai_learning import ARRIVAL_KEY, RED_KEY, SATURATION_KEY, LaneRateLearner
from aicity.domains.mobility.power import is_dark

PLANNER_NAME = "mobility.ai.predictive-pressure"
PLANNER_VERSION = "1.3"
SIGNAL_TYPE = "TrafficSignal"
FLOW_PREFIX = "urn:ngsi-ld:TrafficFlowObserved:"
PROBE_ARRIVING_KEY = "probeArrivingShare"
"""Forecast key suffix of the consented probe feature (see :mod:`aicity.domains.mobility.probes`)."""


@dataclass(frozen=True, slots=True)
class AiParams:
    """Weights of the AI controller's score (weights chosen on cologne8/ingolstadt7/grid4x4, seeds 1–7; one set for
    every map)."""

    horizon_s: float = 10.0
    moving_weight: float = 0.3
    arrival_weight: float = 0.0
    downstream_weight: float = 1.0
    default_saturation: float = 0.5
    speed_aware: bool = False
    """When set, the moving weight is the share of moving vehicles that reach the stop line within the
    horizon at their observed mean speed (capped at ``moving_weight``·``speed_gain``)."""
    speed_gain: float = 1.0
    age_weight: float = 1.0
    """Vehicles per minute of red added to each waiting movement (a starvation guard)."""
    lane_level: bool = True
    """Count each incoming lane once per phase, weighted by the share of its movements the phase serves
    (instead of once per movement)."""
    probe_weight: float = 1.0
    """With consented probe data on a lane (``<flow id>#probeArrivingShare``), the moving vehicles count by the
    share of moving probes that reach the stop line within the horizon, times this weight, instead of
    ``moving_weight``."""
    min_probes: int = 1
    """Moving probes needed on a lane before its probe share is used."""
    early: bool = True
    """Decide already when the minimum green ends within one clearance (yellow + all-red): the edge defers a
    change to the minimum green's end. Without it, a change made at a decision step leaves the new green
    ``clearance`` seconds short of its minimum at the next step, and with an all-red phase (clearance 4 s, 10 s
    steps) every green then lasted at least 16 s."""
    lookahead_s: float = 10.0
    """A green that would reach its maximum before the next decision (this many seconds ahead) is ended now for
    the best other phase, unless that is the phase the edge's maximum-green rule would pick anyway (the next in
    program order, often a short protected-turn phase that serves little)."""
    max_red_s: float = 120.0
    """Hard starvation limit: once a lane with a queue has waited this long on red, only phases serving it may
    be chosen (the score picks among them), however light its demand against the others'."""
    keep_through: bool = True
    """A lane whose movements in a candidate phase are all green in the current phase too keeps its green
    through the change (the edge shows no yellow on links green in both), so it pays no switching cost when
    deciding whether to leave the current green: its capacity counts the whole horizon. Without it, a lane
    served by both phases weighed more for the current one, and a green was held for a queue the other phase
    would serve as well (ingolstadt1). Which phase to go to is still chosen on each phase's own score
    (``terms["alone"]``, every lane paying the clearance): ranking by overlap with the current green served the
    overlapping phases more and switched more on arterial4x4 (0.99 of max-pressure instead of 0.96)."""


def _num(ent: Entity | None, attr: str) -> float:
    if ent is None:
        return 0.0
    v = ent.get(attr)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


def _fc_mean(forecasts: Mapping[str, Any], key: str) -> float | None:
    f = forecasts.get(key)
    if isinstance(f, Mapping):
        m = f.get("mean")
        return float(m) if isinstance(m, int | float) else None
    return None


def score_phases(sig: Entity, ents: Mapping[str, Entity], forecasts: Mapping[str, Any],
                 params: AiParams) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Candidates (every green phase with its score and terms), the inputs read and the forecasts used."""
    lim = sig.get("limits") or {}
    clearance = float(lim.get("yellow_s", 3.0)) + float(lim.get("all_red_s", 0.0))
    current = sig.get("currentPhase")
    inputs: dict[str, Any] = {}
    used: dict[str, Any] = {}
    cands: list[dict[str, Any]] = []
    h = params.horizon_s
    lane_outs: dict[str, set[str]] = {}
    for ph in sig.get("phases") or []:
        for serve in ph.get("serves", []):
            lane_outs.setdefault(serve["lane"], set()).update(serve.get("to", []))
    now_green: dict[str, set[str]] = {}
    for ph in sig.get("phases") or []:
        if ph["index"] == current:
            for serve in ph.get("serves", []):
                now_green.setdefault(serve["lane"], set()).update(serve.get("to", []))
    for ph in sig.get("phases") or []:
        idx = int(ph["index"])
        phase_green_s = h if idx == current else max(h - clearance, 0.0)
        served = down = alone = 0.0
        moves = []
        per_input: dict[str, float] = {}  # score contribution per input key, for counterfactual explanations
        for serve in ph.get("serves", []):
            green_s = phase_green_s
            if params.keep_through and set(serve.get("to", [])) <= now_green.get(serve["lane"], set()):
                green_s = h
            det = serve.get("detector") or f"{FLOW_PREFIX}in:{serve['lane']}"
            inflow = ents.get(det)
            queue = _num(inflow, "queue")
            count = _num(inflow, "vehicleCount")
            moving = max(count - queue, 0.0)
            w_moving = params.moving_weight
            if params.speed_aware and moving > 0:
                v_moving = _num(inflow, "averageVehicleSpeed") * count / moving
                length = max(_num(inflow, "detectionLength"), 1.0)
                w_moving = params.speed_gain * min(1.0, v_moving * h / length)
            share_fc = forecasts.get(f"{det}#{PROBE_ARRIVING_KEY}") if params.probe_weight else None
            if isinstance(share_fc, Mapping) and int(share_fc.get("n", 0)) >= params.min_probes:
                w_moving = params.probe_weight * float(share_fc["mean"])
                used[f"{det}#{PROBE_ARRIVING_KEY}"] = share_fc["mean"]
            inputs[det] = {"queue": queue, "vehicleCount": queue + moving}
            inputs[f"{det}#queue"] = queue
            inputs[f"{det}#movingVehicles"] = moving
            lam = _fc_mean(forecasts, f"{det}#{ARRIVAL_KEY}")
            sat = _fc_mean(forecasts, f"{det}#{SATURATION_KEY}")
            if lam is not None and params.arrival_weight:
                used[f"{det}#{ARRIVAL_KEY}"] = lam
            if sat is not None:
                used[f"{det}#{SATURATION_KEY}"] = sat
            arrivals = params.arrival_weight * (lam or 0.0) * h
            sat_s = sat if sat is not None else params.default_saturation
            capacity = sat_s * green_s
            wanted = queue + w_moving * moving + arrivals
            demand = min(wanted, capacity)
            demand_alone = min(wanted, sat_s * phase_green_s)
            age = 0.0
            if params.age_weight and queue > 0:
                red = _fc_mean(forecasts, f"{det}#{RED_KEY}")
                if red is not None:
                    used[f"{det}#{RED_KEY}"] = red
                    age = params.age_weight * red / 60.0
            share = 1.0 / max(len(lane_outs.get(serve["lane"], ())), 1) if params.lane_level else 1.0
            for out in serve.get("to", []):
                oid = f"{FLOW_PREFIX}out:{out}"
                oent = ents.get(oid)
                oq = _num(oent, "queue") / max(_num(oent, "laneCount"), 1.0)
                inputs[oid] = {"queue_per_lane": round(oq, 3)}
                inputs[f"{oid}#queuePerLane"] = round(oq, 3)
                served += (demand + age) * share
                alone += (demand_alone + age) * share
                down += params.downstream_weight * oq * share
                qkey, okey = f"{det}#queue", f"{oid}#queuePerLane"
                per_input[qkey] = per_input.get(qkey, 0.0) + min(queue, capacity) * share
                mkey = f"{det}#movingVehicles"
                per_input[mkey] = per_input.get(mkey, 0.0) + (demand - min(queue, capacity)) * share
                per_input[okey] = per_input.get(okey, 0.0) - params.downstream_weight * oq * share
                moves.append({"lane": serve["lane"], "to": out, "queue": queue, "moving": moving,
                              "arrivals": round(arrivals, 3), "capacity": round(capacity, 3),
                              "served": round(demand, 3), "age_bonus": round(age, 3),
                              "downstream_queue": round(oq, 3)})
        cands.append({"phase": idx, "score": round(served - down, 4),
                      "terms": {"served": round(served, 4), "downstream": round(down, 4),
                                "alone": round(alone - down, 4),
                                "green_s": phase_green_s, "lost_time_s": h - phase_green_s, "movements": moves,
                                **{k: round(v, 4) for k, v in per_input.items() if v}}})
    return cands, inputs, used


def _starved_phases(sig: Entity, ents: Mapping[str, Entity], forecasts: Mapping[str, Any],
                    params: AiParams) -> set[int] | None:
    """The phases serving the lane that has waited longest on red with a queue, if that is ≥ ``max_red_s``."""
    worst, worst_red = None, params.max_red_s
    for ph in sig.get("phases") or []:
        for serve in ph.get("serves", []):
            det = serve.get("detector") or f"{FLOW_PREFIX}in:{serve['lane']}"
            red = _fc_mean(forecasts, f"{det}#{RED_KEY}")
            if red is not None and red >= worst_red and _num(ents.get(det), "queue") > 0:
                worst, worst_red = serve["lane"], red
    if worst is None:
        return None
    return {int(ph["index"]) for ph in sig.get("phases") or []
            if any(sv["lane"] == worst for sv in ph.get("serves", []))}


def decide_signal(sig: Entity, ents: Mapping[str, Entity], forecasts: Mapping[str, Any],
                  params: AiParams) -> ProposedAction | None:
    """A ``set_phase`` proposal for one signal, or None when it should keep its phase or may not change."""
    if sig.get("controlMode") != "controlled" or sig.get("phaseKind") != "green" or is_dark(sig):
        return None
    current = sig.get("currentPhase")
    lim = sig.get("limits") or {}
    in_phase = float(sig.get("timeInPhase") or 0.0)
    if current is None:
        return None
    short = float(lim.get("min_green_s", 7.0)) - in_phase  # seconds of minimum green still to serve
    clearance = float(lim.get("yellow_s", 3.0)) + float(lim.get("all_red_s", 0.0))
    if short > 1e-9 and not (params.early and short <= clearance + 1e-9):
        return None
    cands, inputs, used = score_phases(sig, ents, forecasts, params)
    if len(cands) < 2:
        return None
    max_green = float(lim.get("max_green_s", float("inf")))
    at_max = in_phase + 1.0 >= max_green
    pool = [c for c in cands if not (at_max and c["phase"] == current)]
    bound = ["max_green"] if at_max else []
    if not at_max and in_phase + params.lookahead_s >= max_green:
        others = [c for c in cands if c["phase"] != current]
        alt = max(others, key=lambda c: (c["score"], -c["phase"]))
        if alt["phase"] != (int(current) + 1) % len(cands):  # else the edge's own choice at the maximum
            pool, bound = others, ["max_green"]
    starved = _starved_phases(sig, ents, forecasts, params)
    if starved is not None and current not in starved:
        pool = [c for c in pool if c["phase"] in starved] or pool
        bound.append("max_red")
    best = max(pool, key=lambda c: (c["score"], c["phase"] == current, -c["phase"]))
    if best["phase"] == current:
        return None
    best = max((c for c in pool if c["phase"] != current), key=lambda c: (c["terms"]["alone"], -c["phase"]))
    inputs[sig.id] = {"currentPhase": current, "timeInPhase": in_phase, "phaseKind": "green"}
    return ProposedAction(
        target=sig.id, action="set_phase",
        params={"phase": int(best["phase"]), "from_phase": current, "bound_by": bound,
                "limits": {k: lim[k] for k in ("min_green_s", "max_green_s", "yellow_s") if k in lim}},
        score=best["score"], candidates=cands, inputs=inputs, forecasts=used,
        planner=f"{PLANNER_NAME}@{PLANNER_VERSION}", action_type="signal_phase")


def make_ai_planner(params: AiParams | None = None) -> Planner:
    """The AI planner with ``params``: a pure function (snapshot, forecasts) -> proposals."""
    p = params or AiParams()

    def ai_planner(snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """Proposals for every signal that should change phase now."""
        ents = snapshot.entities
        out = []
        for sig in snapshot.of_type(SIGNAL_TYPE):
            action = decide_signal(sig, ents, forecasts, p)
            if action is not None:
                out.append(action)
        return out

    ai_planner.__name__ = "ai_planner"
    return ai_planner


ai_planner: Callable[[Snapshot, Mapping[str, Any]], list[ProposedAction]] = make_ai_planner()
"""The AI planner with default parameters."""


def make_ai_controller(scenario: Scenario, params: AiParams | None = None
                       ) -> tuple[list[Planner], list[ForecastProvider]]:
    """Hook for :mod:`aicity.domains.mobility.controllers`: the AI planner and its learner (fresh per run)."""
    return [make_ai_planner(params)], [LaneRateLearner()]
