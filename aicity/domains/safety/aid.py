"""Mutual aid between districts: the dispatch planner of a district that may ask a neighbour for an ambulance.

Each district's twin publishes the neighbours' ambulances as they reported them over the border at the end of
the last step (``Ambulance`` entities with ``district`` and ``borderTravelTime``: free-flow seconds from the unit
to the end of each border edge into this district). The planner first proposes what the district's own dispatch
planner would (closest available of its own units); then, for each call, a neighbour's available unit is proposed
instead when no own unit is free for it, or when its estimate — its time to the border plus this district's
estimate from the border to the call (live or free-flow, as the mode's own dispatch) — beats the own unit's by
more than ``margin_s`` (the request and the border exchange each take one decision interval). The proposal names
the border the unit should take; the district's twin turns it into a request to the neighbour (:mod:`.border`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from aicity.core.domain import Planner, ProposedAction, Snapshot
from aicity.domains.safety.const import AMBULANCE_TYPE, AVAILABLE, DISPATCH
from aicity.domains.safety.geo import SafetyMap, dijkstra
from aicity.domains.safety.planners import VERSION, dispatch_actions
from aicity.domains.safety.planning import live_costs, pending_calls
from aicity.domains.safety.routes import route_signals, shortest_route


@dataclass(frozen=True, slots=True)
class BorderGeometry:
    """A district net's border edges: what leads onto each outgoing one, what each incoming one leads onto."""

    pred: Mapping[str, tuple[str, ...]]
    succ: Mapping[str, tuple[str, ...]]
    free_flow: Mapping[str, float]


@lru_cache(maxsize=16)
def border_geometry(net: str, out: tuple[str, ...], entries: tuple[str, ...]) -> BorderGeometry:
    """Read once from the district's ``.net.xml`` (sumolib)."""
    import sumolib

    n = sumolib.net.readNet(net, withInternal=False)
    pred = {e: tuple(sorted(i.getID() for i in n.getEdge(e).getIncoming())) for e in out}
    succ = {e: tuple(sorted(o.getID() for o in n.getEdge(e).getOutgoing())) for e in entries}
    ff = {e: n.getEdge(e).getLength() / max(n.getEdge(e).getSpeed(), 1.0) for e in (*out, *entries)}
    return BorderGeometry(pred, succ, ff)


def to_borders(smap: SafetyMap, geo: BorderGeometry, source: str, borders: list[str],
               cost: Mapping[str, float]) -> dict[str, float]:
    """Seconds from the end of ``source`` to the end of each outgoing border edge of ``borders``."""
    times = dijkstra(smap.succ, source, cost)
    out = {}
    for e in borders:
        t = min((times[p] for p in geo.pred.get(e, ()) if p in times), default=math.inf)
        if math.isfinite(t):
            out[e] = t + geo.free_flow[e]
    return out


def from_border(smap: SafetyMap, geo: BorderGeometry, entry: str, cost: Mapping[str, float]) -> dict[str, float]:
    """Seconds from the end of incoming border edge ``entry`` to the end of every edge it reaches."""
    return dijkstra({**smap.succ, entry: geo.succ.get(entry, ())}, entry, cost)


@dataclass(frozen=True, slots=True)
class ForeignUnit:
    """A neighbour's ambulance as its district reported it over the border."""

    id: str
    district: str
    border_s: Mapping[str, float]


def foreign_units(snapshot: Snapshot, district: str) -> list[ForeignUnit]:
    """The neighbours' available ambulances (reports carrying another ``district``)."""
    out = []
    for e in snapshot.of_type(AMBULANCE_TYPE):
        where, times = e.get("district"), e.get("borderTravelTime")
        if not isinstance(where, str) or where == district or e.get("status") not in AVAILABLE:
            continue
        if isinstance(times, Mapping):
            out.append(ForeignUnit(e.id, where, {str(k): float(v) for k, v in times.items()
                                                 if isinstance(v, int | float) and math.isfinite(v)}))
    return sorted(out, key=lambda u: u.id)


def aid_actions(snapshot: Snapshot, smap: SafetyMap, geo: BorderGeometry, *, live: bool, name: str, district: str,
                margin_s: float) -> list[ProposedAction]:
    """The district's own dispatch proposals, with a neighbour's unit put in where it is the only one or much
    closer (see the module's docstring)."""
    own = dispatch_actions(snapshot, smap, live=live, name=name)
    foreign = foreign_units(snapshot, district)
    if not foreign:
        return own
    calls = pending_calls(snapshot, smap)
    if not calls:
        return own
    cost = live_costs(smap, snapshot) if live else smap.free_flow_costs()
    entries = sorted({e for u in foreign for e in u.border_s if e in geo.succ})
    inside = {e: from_border(smap, geo, e, cost) for e in entries}
    by_call = {str(p.params.get("incident")): p for p in own}
    out: list[ProposedAction] = []
    for call in calls:
        mine = by_call.get(call.id)
        options = sorted(((u.border_s[e] + inside[e].get(call.edge, math.inf), e, u)
                          for u in foreign for e in u.border_s if e in inside),
                         key=lambda o: (o[0], o[1], o[2].id))  # ties (two units at one station) by unit id
        local_eta = float(mine.params["eta_s"]) if mine is not None else math.inf
        if not options or not math.isfinite(options[0][0]) or options[0][0] + margin_s >= local_eta:
            if mine is not None:
                out.append(mine)
            continue
        eta, entry, unit = options[0]
        why = (f"Ambulance {unit.id.rsplit(':', 1)[-1]} of district {unit.district} was asked for incident "
               f"{call.id.rsplit(':', 1)[-1]} (priority {call.priority}) over the border at {entry}: estimated "
               f"travel {eta:.0f} s")
        why += (f", against {local_eta:.0f} s for this district's closest available unit (asking costs up to "
                f"{margin_s:.0f} s)." if mine is not None else "; no unit of this district was available.")
        route = shortest_route({**smap.succ, entry: geo.succ.get(entry, ())}, entry, call.edge, cost)
        out.append(ProposedAction(
            target=unit.id, action="dispatch",
            params={"incident": call.id, "eta_s": round(eta, 1), "border": entry, "district": unit.district,
                    "explanation": why},
            score=-eta, candidates=[{"unit": u.id, "border": e, "eta_s": round(t, 1), "score": -round(t, 1)}
                        for t, e, u in options[:5]],
            inputs={call.id: {"roadSegment": call.edge, "priority": call.priority, "callTime": call.call_s},
                    unit.id: {"district": unit.district, "borderTravelTime": dict(unit.border_s)}},
            planner=f"safety.mutual-aid@{VERSION}", action_type=DISPATCH,
            needs=route_signals(route, smap.turn_signal)))
        foreign = [u for u in foreign if u.id != unit.id]
    return out


def make_aid_planner(smap: SafetyMap, geo: BorderGeometry, *, live: bool, district: str,
                     margin_s: float) -> Planner:
    """The dispatch planner of one district (closest available, or a neighbour's unit: see the module)."""
    name = "safety.live-dispatch" if live else "safety.closest-idle"

    def aid_planner(snapshot: Snapshot, forecasts: Mapping[str, object]) -> list[ProposedAction]:
        """Dispatch proposals for the district's pending calls, mutual aid included."""
        return aid_actions(snapshot, smap, geo, live=live, name=name, district=district, margin_s=margin_s)

    return aid_planner
