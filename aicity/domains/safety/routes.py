"""Routes as the dispatcher plans them, and the traffic signals an ambulance relies on along one.

A route is a list of edges; the signals it crosses are those controlling each turn (edge → next edge), from the
map's static structure (:attr:`~aicity.domains.safety.geo.SafetyMap.turn_signal`). Their ids are the mobility
domain's ``TrafficSignal`` entity ids, so another domain's planner or the orchestration stage can match them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

from aicity.domains.mobility.const import SIGNAL_PREFIX
from aicity.domains.safety.geo import shortest_tree


def shortest_route(succ: Mapping[str, tuple[str, ...]], source: str, target: str,
                   cost: Mapping[str, float]) -> list[str]:
    """Edges from ``source`` to ``target`` (both included) on the least total ``cost``; [] when unreachable."""
    if source == target:
        return [source]
    prev = shortest_tree(succ, source, cost)[1]
    if target not in prev:
        return []
    path = [target]
    while path[-1] != source:
        path.append(prev[path[-1]])
    return path[::-1]


def signal_urn(tls: str) -> str:
    """The mobility domain's entity id of signal ``tls``."""
    return f"{SIGNAL_PREFIX}{tls}"


def route_signals(route: Sequence[str], turns: Mapping[tuple[str, str], str]) -> tuple[str, ...]:
    """Entity ids of the signals controlling the turns of ``route``, in driving order, each once."""
    out: dict[str, None] = {}
    for a, b in pairwise(route):
        tls = turns.get((a, b))
        if tls is not None:
            out.setdefault(signal_urn(tls), None)
    return tuple(out)
