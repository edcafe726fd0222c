"""Emergency-vehicle preemption: a pure planner asking the signals on an emergency vehicle's way for green.

Input is what GPS/optical preemption systems report: each ``EmergencyVehicle`` entity's position, speed and
the signals ahead on its planned route (``nextSignals``: signal, distance, the green phases serving its link).
A signal is preempted when the vehicle is within ``lookahead_m`` of it or expected there within
``lookahead_s``; the actuator edge shows the clearance (yellow, all-red) first, holds the serving green at most
``max_hold_s`` and then refuses new preemptions for ``cooldown_s``. As soon as no emergency vehicle still has
the signal ahead (it has passed), the planner asks for a ``release`` and normal control resumes from the held
phase. Placed first in AI City mode, it takes precedence over the AI planner for the signals it claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aicity.core.domain import Planner, ProposedAction, Scenario, Snapshot
from aicity.core.entity import Entity
from aicity.domains.mobility.const import EV_TYPE, SIGNAL_TYPE
from aicity.domains.mobility.power import is_dark

PLANNER_NAME = "mobility.preemption"
PLANNER_VERSION = "1.1"


@dataclass(frozen=True, slots=True)
class PreemptParams:
    """When to preempt: distance or expected arrival time of the emergency vehicle at the stop line."""

    lookahead_m: float = 150.0
    lookahead_s: float = 20.0
    min_speed_mps: float = 3.0
    max_signals_ahead: int = 2


@dataclass(frozen=True, slots=True)
class Request:
    """One emergency vehicle's claim on one signal."""

    signal: str
    vehicle: str
    phases: tuple[int, ...]
    protected: tuple[int, ...]
    clearing: tuple[int, ...]
    distance_m: float
    eta_s: float
    speed_mps: float
    link_index: int


def _requests(snapshot: Snapshot, params: PreemptParams) -> dict[str, Request]:
    """The closest emergency vehicle's request per signal (ties broken by vehicle id)."""
    best: dict[str, Request] = {}
    for ev in snapshot.of_type(EV_TYPE):
        speed = ev.get("speed") or 0.0
        speed = float(speed) if isinstance(speed, int | float) else 0.0
        ahead = [a for a in (ev.get("nextSignals") or []) if isinstance(a, Mapping)]
        ahead.sort(key=lambda a: float(a.get("distance", 0.0)))
        for item in ahead[: params.max_signals_ahead]:
            dist = float(item.get("distance", 0.0))
            eta = dist / max(speed, params.min_speed_mps)
            phases = tuple(int(p) for p in item.get("servingPhases") or [])
            if not phases or (dist > params.lookahead_m and eta > params.lookahead_s):
                continue
            protected = tuple(int(p) for p in item.get("protectedPhases") or [] if int(p) in phases)
            clearing = tuple(int(p) for p in item.get("clearingPhases") or [] if int(p) in phases)
            req = Request(str(item["signal"]), ev.id, phases, protected, clearing, dist, eta, speed,
                          int(item.get("linkIndex", -1)))
            cur = best.get(req.signal)
            if cur is None or (req.eta_s, req.vehicle) < (cur.eta_s, cur.vehicle):
                best[req.signal] = req
    return best


def _score(req: Request, p: int, shown: Any, coming: Any) -> float:
    """Clearing (every movement out of the vehicle's lane is green, so the vehicles queued ahead of it can
    leave whichever way they turn) first, then protected (no yielding to oncoming traffic), then shown/coming."""
    return ((8.0 if p in req.clearing else 0.0) + (4.0 if p in req.protected else 0.0)
            + (2.0 if p == shown else (1.0 if p == coming else 0.0)))


def _choose_phase(sig: Entity, req: Request) -> tuple[int, list[dict[str, Any]]]:
    """The serving phase to hold: the best by :func:`_score`, ties to the lowest index."""
    shown = sig.get("currentPhase")
    coming = sig.get("nextPhase")
    cands: list[dict[str, Any]] = []

    def score(p: int) -> float:
        return _score(req, p, shown, coming)

    for p in req.phases:
        cands.append({"phase": p, "score": score(p),
                      "terms": {"serves_vehicle": True, "clears_lane": p in req.clearing,
                                "protected": p in req.protected, "shown_now": p == shown,
                                "coming_next": p == coming}})
    chosen = max(req.phases, key=lambda q: (score(q), -q))
    return chosen, cands


def preemption_actions(snapshot: Snapshot, params: PreemptParams | None = None) -> list[ProposedAction]:
    """``preempt`` for signals an emergency vehicle is about to reach, ``release`` for those it has passed."""
    p = params or PreemptParams()
    reqs = _requests(snapshot, p)
    out: list[ProposedAction] = []
    for sig in snapshot.of_type(SIGNAL_TYPE):
        if is_dark(sig):
            continue  # no power: a dark signal cannot be commanded (the twin would refuse it)
        mode = sig.get("controlMode")
        req = reqs.get(sig.id)
        if req is None:
            if mode == "preempted":
                out.append(ProposedAction(
                    target=sig.id, action="release", params={"reason": "no emergency vehicle ahead"},
                    inputs={sig.id: {"controlMode": mode}}, planner=f"{PLANNER_NAME}@{PLANNER_VERSION}",
                    action_type="signal_preemption"))
            continue
        held = sig.get("preemptPhase")
        better = isinstance(held, int) and max(_score(req, p, None, None) for p in req.phases) > _score(
            req, held, None, None)
        if mode == "preempted" and isinstance(held, int) and (held not in req.phases or better):
            pass  # held for the phase of an earlier crossing: retarget to the one this crossing needs
        elif mode != "controlled":
            continue  # already preempted, handed to fixed time, or run by the fixed program (Smart City)
        cool = sig.get("preemptCooldownUntil")
        if isinstance(cool, int | float) and cool > snapshot.elapsed_s:
            continue  # the edge would refuse it: the signal is cooling down
        phase, cands = _choose_phase(sig, req)
        lim = sig.get("limits") or {}
        out.append(ProposedAction(
            target=sig.id, action="preempt",
            params={"phase": phase, "vehicle": req.vehicle,
                    "limits": {k: lim[k] for k in ("max_hold_s", "cooldown_s", "yellow_s") if k in lim}},
            score=-req.eta_s, candidates=cands,
            inputs={req.vehicle: {"distance_m": req.distance_m, "speed_mps": req.speed_mps,
                                  "eta_s": round(req.eta_s, 2), "linkIndex": req.link_index,
                                  "servingPhases": list(req.phases)},
                    sig.id: {"controlMode": mode, "currentPhase": sig.get("currentPhase"),
                             "phaseKind": sig.get("phaseKind")}},
            planner=f"{PLANNER_NAME}@{PLANNER_VERSION}", action_type="signal_preemption"))
    return out


def make_preemption_planner(scenario: Scenario | None = None, params: PreemptParams | None = None) -> Planner:
    """Hook for :mod:`aicity.domains.mobility.controllers`: the preemption planner (pure)."""
    p = params or PreemptParams()

    def preemption_planner(snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """Preempt / release proposals for the signals on emergency vehicles' ways."""
        return preemption_actions(snapshot, p)

    return preemption_planner
