"""The emergency route network: the traffic signals the ambulance service relies on, as standing needs.

From the dispatcher's static plan — home stations, zone sites, hospitals — on free-flow costs: the routes every
station takes to every zone and hospital, and every zone to its nearest hospital. A signal's weight is the share
of those routes that cross it. Published as one entity whose ``needs`` the orchestration stage holds for the life
safety class: another domain may not leave them out of service when one of its alternatives would keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aicity.core.entity import Entity, Property
from aicity.domains.safety.geo import SafetyMap
from aicity.domains.safety.routes import route_signals, shortest_route

ROUTE_NETWORK_TYPE = "EmergencyRouteNetwork"
ROUTE_NETWORK_ID = f"urn:ngsi-ld:{ROUTE_NETWORK_TYPE}:ems"


def route_weights(smap: SafetyMap, stations: Sequence[str]) -> dict[str, float]:
    """Signal entity id -> the share of the planned emergency routes that cross it."""
    cost = smap.free_flow_costs()
    pairs = [(s, t) for s in dict.fromkeys(stations) for t in (*smap.sites.values(), *smap.hospitals) if s != t]
    pairs += [(z, h) for z in smap.sites.values() for h in smap.hospitals[:1] if z != h]
    counts: dict[str, int] = {}
    routes = 0
    for s, t in pairs:
        path = shortest_route(smap.succ, s, t, cost)
        if not path:
            continue
        routes += 1
        for sig in route_signals(path, smap.turn_signal):
            counts[sig] = counts.get(sig, 0) + 1
    return {k: round(v / routes, 4) for k, v in sorted(counts.items())} if routes else {}


def route_network_entity(weights: dict[str, float], when: datetime) -> Entity:
    """The published network: ``needs`` (most relied-on first), ``needWeights``, the priority class it serves."""
    needs = sorted(weights, key=lambda k: (-weights[k], k))
    return Entity.trusted(ROUTE_NETWORK_ID, ROUTE_NETWORK_TYPE, {
        "needs": Property(needs, when), "needWeights": Property(dict(weights), when),
        "priorityClass": Property("life_safety"), "domain": Property("safety")})
