"""The dispatch and relocation planners: pure functions of the snapshot (and forecasts), one per controller.

* ``closest_idle`` (Smart City): the available ambulance with the shortest *free-flow* time, most urgent and
  oldest call first.
* ``live_dispatch`` (AI City): the same rule on *live* travel-time estimates from detector speeds.
* ``dmexclp`` (AI City): when an ambulance frees up, send it to the station adding the most expected coverage
  (Jagtenberg et al. 2015), weighing zones by the incident forecast; the edge bounds how often. AI City runs its
  mean-response form (objective ``response``): the same rule, the station that lowers the demand-weighted
  expected travel most, the ``k``-th closest available unit answering with probability ``(1 - q) q**(k-1)``;
  it also moves idle units up, and weighs zones by the hour's forecast spread with Dirichlet-smoothed shares
  (``pooled_demand``: a zone-hour cell holds only the history's days of calls). It proposes no move the edge would
  refuse: past a unit's or the fleet's hourly bound, or below the coverage floor.

Every proposal carries a plain-words explanation a citizen could be shown: why this unit, its estimated arrival,
the alternative and its time. Each proposal ``needs`` the traffic signals on the route it plans (the mobility
domain's ``TrafficSignal`` ids): the orchestration stage keeps them in service, or weighs the action against
whatever would take them out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aicity.core.domain import Planner, ProposedAction, Snapshot
from aicity.domains.safety.const import DISPATCH, IDLE, RELOCATION, RETURNING
from aicity.domains.safety.geo import SafetyMap
from aicity.domains.safety.planning import available, eta_table, live_costs, pending_calls, units_of
from aicity.domains.safety.routes import route_signals, shortest_route

VERSION = "1.0"
FORECAST_KEY = "safety.zone:{zone}#incidents_per_h"


def _short(eid: str) -> str:
    return eid.rsplit(":", 1)[-1]


def route_needs(smap: SafetyMap, source: str, target: str, cost: Mapping[str, float]) -> tuple[str, ...]:
    """The signals on the planned route from ``source`` to ``target`` under ``cost`` (entity ids, in order)."""
    return route_signals(shortest_route(smap.succ, source, target, cost), smap.turn_signal)


def dispatch_actions(snapshot: Snapshot, smap: SafetyMap, *, live: bool, name: str) -> list[ProposedAction]:
    """One ``dispatch`` per pending call while ambulances are available (each ambulance at most once)."""
    calls = pending_calls(snapshot, smap)
    free = available(units_of(snapshot, smap))
    if not calls or not free:
        return []
    cost = live_costs(smap, snapshot) if live else smap.free_flow_costs()
    etas = eta_table(smap, free, [c.edge for c in calls], cost)
    basis = "live travel-time estimates from detector speeds" if live else "free-flow travel times"
    out: list[ProposedAction] = []
    for call in calls:
        if not free:
            break
        ranked = sorted(free, key=lambda u: (etas[u.id][call.edge], u.id))
        best = ranked[0]
        eta = etas[best.id][call.edge]
        if not math.isfinite(eta):
            continue
        alt = ranked[1] if len(ranked) > 1 else None
        why = (f"Ambulance {_short(best.id)} was sent to incident {_short(call.id)} (priority {call.priority}) "
               f"because it was the closest available unit on {basis}: estimated travel {eta:.0f} s.")
        why += (f" The next closest, {_short(alt.id)}, was estimated at {etas[alt.id][call.edge]:.0f} s."
                if alt is not None else " No other unit was available.")
        route = shortest_route(smap.succ, best.edge, call.edge, cost)
        params: dict[str, Any] = {"incident": call.id, "eta_s": round(eta, 1), "explanation": why}
        if live:  # AI City drives the route it planned on the live estimates (Smart City: the navigation default)
            params["route"] = route
        out.append(ProposedAction(
            target=best.id, action="dispatch", params=params,
            score=-eta, candidates=[{"unit": u.id, "eta_s": round(etas[u.id][call.edge], 1),
                                     "score": -round(etas[u.id][call.edge], 1)} for u in ranked],
            inputs={call.id: {"roadSegment": call.edge, "priority": call.priority, "callTime": call.call_s},
                    **{u.id: {"status": u.status, "roadSegment": u.edge} for u in ranked}},
            planner=f"{name}@{VERSION}", action_type=DISPATCH, needs=route_signals(route, smap.turn_signal)))
        free = [u for u in free if u.id != best.id]
    return out


@dataclass(frozen=True, slots=True)
class RelocationParams:
    """DMEXCLP's coverage radius, the busy probability bounds and the minimal gain worth a move; the objective:
    ``coverage`` (expected coverage within the radius, Jagtenberg et al. 2015) or ``response`` (expected travel
    seconds, the mean-response analogue; a move must save ``min_gain_s``)."""

    radius_s: float = 90.0
    q_min: float = 0.2
    q_max: float = 0.8
    min_gain: float = 1e-3
    objective: str = "coverage"
    min_gain_s: float = 1.0
    idle_moves: bool = False
    """Also re-evaluate idle units (a move-up after a dispatch), not only the one that just freed up."""
    max_moves_per_unit_hour: int | None = None
    """The edge's bound on one unit's relocations an hour: a unit that reports reaching it is not moved."""
    max_moves_per_hour: int | None = None
    """The edge's bound on the fleet's relocations an hour: once the units' reports reach it, nothing is moved."""
    history_days: float = 28.0
    """Days of call history behind the hour's forecast (its mean per zone averages that many days' counts)."""
    pooling_calls: float | None = None
    """Dirichlet pseudo-calls pulling the hour's zone shares towards the whole history's (None: the forecast as is)."""
    coverage_floor: float | None = None
    """The edge's coverage floor (share of the history's demand): a move the edge would refuse for it is not
    proposed, and the units after it are planned as if it had not happened (None: not checked here)."""

    def __post_init__(self) -> None:
        if self.objective not in ("coverage", "response"):
            raise ValueError(f"relocation objective must be 'coverage' or 'response', got {self.objective!r}")


def _ranker(params: RelocationParams, covers: Mapping[str, set[str]], times: Mapping[str, Mapping[str, float]],
            smap: SafetyMap, demand: Mapping[str, float], q: float) -> tuple[Any, Any, float, str]:
    """(rank stations given the others, score of positions, least gain worth a move, what the score means) for the
    objective; scores are higher-better."""
    from aicity.domains.safety.mexclp import (
        dmexclp_choice,
        expected_coverage,
        expected_response,
        response_choice,
        zone_counts,
    )

    sites = sorted(covers)
    if params.objective == "response":
        return (lambda others: [(s, -v) for s, v in response_choice(others, sites, times, smap.sites, demand, q)],
                lambda pos: -expected_response(pos, times, smap.sites, demand, q), params.min_gain_s,
                "expected travel of forecast demand (s, negated)")
    return (lambda others: dmexclp_choice(others, sites, covers, demand, q),
            lambda pos: expected_coverage(zone_counts(pos, covers), demand, q),
            params.min_gain * sum(demand.values()), "expected coverage of forecast demand")


def pooled_demand(hour: Mapping[str, float], prior: Mapping[str, float], *, history_days: float,
                  pseudo_calls: float) -> dict[str, float]:
    """The hour's forecast total spread over the zones by Dirichlet-smoothed shares: the hour's own calls in the
    history (``history_days`` x its mean) plus ``pseudo_calls`` spread by each zone's share of the whole history."""
    total = sum(hour.values())
    whole = sum(prior.get(z, 0.0) for z in hour)
    if total <= 0.0 or whole <= 0.0:
        return {z: prior.get(z, 0.0) for z in hour}
    calls = history_days * total
    return {z: total * (history_days * v + pseudo_calls * prior.get(z, 0.0) / whole) / (calls + pseudo_calls)
            for z, v in hour.items()}


def relocation_actions(snapshot: Snapshot, forecasts: Mapping[str, Any], smap: SafetyMap,
                       covers: Mapping[str, set[str]], prior: Mapping[str, float],
                       params: RelocationParams,
                       times: Mapping[str, Mapping[str, float]] | None = None) -> list[ProposedAction]:
    """DMEXCLP: a freed ambulance (``relocatable``; with ``idle_moves`` also an idle one, a move-up after a
    dispatch) is sent to the station adding the most expected coverage (or, objective ``response``, saving the most
    expected travel on the stations' free-flow ``times``)."""
    units = units_of(snapshot, smap)
    if params.max_moves_per_hour is not None and sum(u.moves_last_hour for u in units) >= params.max_moves_per_hour:
        return []  # the edge would refuse every move this hour
    movers = [u for u in units if ((u.relocatable and u.status == RETURNING)
                                   or (params.idle_moves and u.status == IDLE))
              and (params.max_moves_per_unit_hour is None or u.moves_last_hour < params.max_moves_per_unit_hour)]
    if not movers:
        return []
    demand = {}
    for z in smap.zones:
        fc = forecasts.get(FORECAST_KEY.format(zone=z))
        demand[z] = float(fc["mean"]) if isinstance(fc, Mapping) and "mean" in fc else prior.get(z, 1.0)
    if params.pooling_calls is not None:
        demand = pooled_demand(demand, prior, history_days=params.history_days, pseudo_calls=params.pooling_calls)
    demand = {z: max(d, 1e-6) for z, d in demand.items()}
    busy = sum(1 for u in units if u.status not in ("idle", "returning"))
    q = min(params.q_max, max(params.q_min, busy / max(len(units), 1)))
    rank, score, min_gain, meaning = _ranker(params, covers, times or {}, smap, demand, q)
    out: list[ProposedAction] = []
    free_flow = smap.free_flow_costs()
    placed = {u.id: (u.destination if u.status == RETURNING and u.destination else u.edge)
              for u in available(units)}
    for u in movers:
        others = [s for uid, s in placed.items() if uid != u.id and s in covers]
        ranked = rank(others)
        current = (u.destination or u.home) if u.status == RETURNING else u.edge
        if current not in covers:
            continue
        now_cov = score([*others, current])
        best, best_cov = ranked[0]
        if best == current or best_cov <= now_cov + min_gain:
            continue
        if params.coverage_floor is not None and _strips_floor(placed, u.id, best, covers, prior,
                                                              params.coverage_floor):
            continue
        how = (f"freed up and was moved to the station at {best} instead of its way to {current}"
               if u.status == RETURNING else f"was idle at {current} and was moved to the station at {best}")
        why = f"Ambulance {_short(u.id)} {how}: {_score_words(params.objective, best_cov, now_cov)}."
        out.append(ProposedAction(
            target=u.id, action="relocate", params={"station": best, "explanation": why},
            score=best_cov - now_cov,
            candidates=[{"station": s, "score": round(c, 4), "meaning": meaning} if params.objective == "response"
                        else {"station": s, "expected_coverage": round(c, 4)} for s, c in ranked[:5]],
            inputs={u.id: {"status": u.status, "destination": current}, "busy_probability": round(q, 3)},
            forecasts={z: round(d, 4) for z, d in sorted(demand.items())},
            planner=f"safety.dmexclp@{VERSION}", action_type=RELOCATION,
            needs=route_needs(smap, u.edge, best, free_flow)))
        placed[u.id] = best
    return out


def _strips_floor(placed: Mapping[str, str], unit: str, site: str, covers: Mapping[str, set[str]],
                  demand: Mapping[str, float], floor: float) -> bool:
    """Would moving ``unit`` to ``site`` take coverage below ``floor`` and below where it is (the edge's refusal)?"""
    from aicity.domains.safety.mexclp import demand_covered, strips_floor

    return strips_floor(demand_covered(placed.values(), covers, demand),
                        demand_covered({**placed, unit: site}.values(), covers, demand), floor)


def _score_words(objective: str, best: float, now: float) -> str:
    if objective == "response":
        return (f"expected travel to forecast demand {-best:.0f} s from there against {-now:.0f} s "
                f"(free-flow times, each unit busy with the current probability)")
    return f"expected coverage of forecast demand {best:.3f} there against {now:.3f}"


def make_dispatch_planner(smap: SafetyMap, *, live: bool) -> Planner:
    """Closest-available dispatch on free-flow (Smart City) or live (AI City) travel-time estimates."""
    name = "safety.live-dispatch" if live else "safety.closest-idle"

    def dispatch_planner(snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """Dispatch proposals for the pending calls."""
        return dispatch_actions(snapshot, smap, live=live, name=name)

    return dispatch_planner


def make_relocation_planner(smap: SafetyMap, covers: Mapping[str, set[str]], prior: Mapping[str, float],
                            params: RelocationParams,
                            times: Mapping[str, Mapping[str, float]] | None = None) -> Planner:
    """DMEXCLP relocation of freed ambulances (AI City); ``times``: the stations' free-flow seconds to every edge
    (:func:`.planning.site_times`, which the coverage matrix was built from), computed here when not given and the
    objective needs them."""
    if times is None and params.objective == "response":
        from aicity.domains.safety.planning import site_times

        times = site_times(smap)

    def relocation_planner(snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """Relocation proposals for the ambulances that just freed up."""
        return relocation_actions(snapshot, forecasts, smap, covers, prior, params, times)

    return relocation_planner
