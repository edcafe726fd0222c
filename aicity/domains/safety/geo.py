"""The road network as the dispatcher knows it: reachable edges, zones, stations, hospitals, shortest paths.

Read once from the map's ``.net.xml`` (sumolib). Only the largest strongly connected part for ``emergency``
vehicles is used, so every place an incident happens can be reached and left. Zones are the non-empty cells
of a regular grid over that part; each zone's candidate station is the edge nearest its centre. Hospitals are
placed deterministically (synthetic: the maps ship none) at fixed fractions of the network's extent.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from aicity.core.errors import UserError

MIN_EDGE_M = 15.0
"""Shortest edge an incident or a station may be on (a vehicle must be able to stop on it)."""


@dataclass(frozen=True, slots=True)
class SafetyMap:
    """Static structure of one map (frozen; shared by the twin and the planners)."""

    net_path: str
    edges: tuple[str, ...]
    length: Mapping[str, float]
    speed: Mapping[str, float]
    xy: Mapping[str, tuple[float, float]]
    shape: Mapping[str, tuple[tuple[float, float], tuple[float, float]]]
    succ: Mapping[str, tuple[str, ...]]
    zones: Mapping[str, tuple[str, ...]]
    zone_of: Mapping[str, str]
    zone_xy: Mapping[str, tuple[float, float]]
    sites: Mapping[str, str]
    hospitals: tuple[str, ...]
    area_km2: float
    lanes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Each edge's lanes that cars may use, rightmost (index 0) first."""
    turn_signal: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(edge, next edge) → the traffic signal controlling that turn (ids as the mobility domain publishes them)."""

    def free_flow(self, edge: str) -> float:
        """Seconds to drive ``edge`` at its speed limit."""
        return self.length[edge] / max(self.speed[edge], 1.0)

    def times_from(self, source: str, cost: Mapping[str, float] | None = None) -> dict[str, float]:
        """Seconds from the end of ``source`` to the end of every reachable edge (``cost`` per edge, else free flow)."""
        return dijkstra(self.succ, source, cost if cost is not None else self.free_flow_costs())

    def free_flow_costs(self) -> dict[str, float]:
        """Free-flow seconds of every edge."""
        return {e: self.free_flow(e) for e in self.edges}

    def nearest_edge(self, x: float, y: float, pool: tuple[str, ...] | None = None) -> str:
        """The edge (of ``pool``, else every usable edge) whose midpoint is nearest to ``(x, y)``."""
        cands = pool or tuple(e for e in self.edges if self.length[e] >= MIN_EDGE_M)
        return min(cands, key=lambda e: (math.dist(self.xy[e], (x, y)), e))


def dijkstra(succ: Mapping[str, tuple[str, ...]], source: str, cost: Mapping[str, float]) -> dict[str, float]:
    """Shortest times from the end of ``source``: entering an edge costs its ``cost``."""
    return shortest_tree(succ, source, cost)[0]


def shortest_tree(succ: Mapping[str, tuple[str, ...]], source: str,
                  cost: Mapping[str, float]) -> tuple[dict[str, float], dict[str, str]]:
    """Shortest times from the end of ``source`` and each reached edge's predecessor on its shortest path."""
    best = {source: 0.0}
    prev: dict[str, str] = {}
    heap = [(0.0, source)]
    while heap:
        t, e = heapq.heappop(heap)
        if t > best.get(e, math.inf):
            continue
        for nxt in succ.get(e, ()):
            nt = t + cost.get(nxt, math.inf)
            if nt < best.get(nxt, math.inf):
                best[nxt] = nt
                prev[nxt] = e
                heapq.heappush(heap, (nt, nxt))
    return best, prev


def _scc(nodes: list[str], succ: dict[str, list[str]]) -> set[str]:
    """The largest strongly connected component (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    best: set[str] = set()
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on.add(v)
            nxt = succ.get(v, [])
            if i < len(nxt):
                work.append((v, i + 1))
                w = nxt[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > len(best):
                    best = comp
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return best


@lru_cache(maxsize=8)
def load_map(net_path: str, zones_per_side: int = 3, hospitals: int = 1) -> SafetyMap:
    """Read a map once (cached per file and layout: the file never changes during a run)."""
    try:
        import sumolib
    except ImportError as exc:
        raise UserError("the safety domain needs SUMO's tools: pip install 'aicity[mobility]'") from exc
    try:
        net: Any = sumolib.net.readNet(net_path, withInternal=False)
    except Exception as exc:
        raise UserError(f"cannot read road network {net_path!r}: {exc}") from exc
    usable = {e.getID(): e for e in net.getEdges() if e.getFunction() == "" and e.allows("emergency")}
    succ_all = {eid: sorted(o.getID() for o in e.getOutgoing() if o.getID() in usable) for eid, e in usable.items()}
    comp = _scc(sorted(usable), succ_all)
    if not comp:
        raise UserError(f"road network {net_path!r} has no edge emergency vehicles may use")
    edges = tuple(sorted(comp))
    shape = {}
    xy = {}
    for eid in edges:
        e = usable[eid]
        a, b = e.getFromNode().getCoord()[:2], e.getToNode().getCoord()[:2]
        shape[eid] = ((float(a[0]), float(a[1])), (float(b[0]), float(b[1])))
        xy[eid] = ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0)
    xs = [p[0] for p in xy.values()]
    ys = [p[1] for p in xy.values()]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    n = max(1, zones_per_side)
    cells: dict[str, list[str]] = {}
    for eid in edges:
        cx = min(n - 1, int((xy[eid][0] - x0) / max(x1 - x0, 1e-9) * n))
        cy = min(n - 1, int((xy[eid][1] - y0) / max(y1 - y0, 1e-9) * n))
        cells.setdefault(f"z{cy}{cx}", []).append(eid)
    zones = {z: tuple(es) for z, es in sorted(cells.items()) if any(usable[e].getLength() >= MIN_EDGE_M for e in es)}
    zone_of = {e: z for z, es in zones.items() for e in es}
    zone_xy = {}
    sites = {}
    length = {eid: float(usable[eid].getLength()) for eid in edges}
    for z, es in zones.items():
        w = [length[e] for e in es]
        zx = sum(xy[e][0] * wi for e, wi in zip(es, w, strict=True)) / sum(w)
        zy = sum(xy[e][1] * wi for e, wi in zip(es, w, strict=True)) / sum(w)
        zone_xy[z] = (zx, zy)
        pool = tuple(e for e in es if length[e] >= MIN_EDGE_M)
        sites[z] = min(pool, key=lambda e: (math.dist(xy[e], (zx, zy)), e))
    spots = ((0.4, 0.6),) if hospitals <= 1 else tuple((0.25 + 0.5 * k / (hospitals - 1),) * 2
                                                        for k in range(hospitals))
    usable_pool = tuple(e for e in edges if length[e] >= MIN_EDGE_M)
    hosp = tuple(dict.fromkeys(
        min(usable_pool, key=lambda e: (math.dist(xy[e], (x0 + fx * (x1 - x0), y0 + fy * (y1 - y0))), e))
        for fx, fy in spots))
    return SafetyMap(
        net_path=net_path, edges=edges, length=length,
        speed={eid: float(usable[eid].getSpeed()) for eid in edges}, xy=xy, shape=shape,
        succ={eid: tuple(s for s in succ_all[eid] if s in comp) for eid in edges}, zones=zones,
        zone_of=zone_of, zone_xy=zone_xy, sites=sites, hospitals=hosp,
        area_km2=max((x1 - x0) * (y1 - y0) / 1e6, 0.01),
        lanes={eid: tuple(ln.getID() for ln in usable[eid].getLanes() if ln.allows("passenger")) for eid in edges},
        turn_signal=_turn_signals(net_path, comp))


def _turn_signals(net_path: str, edges: set[str]) -> dict[tuple[str, str], str]:
    """(edge, next edge) → signal id, from the mobility domain's reading of the same network."""
    from aicity.domains.mobility.network import load_network

    net = load_network(net_path)
    out: dict[tuple[str, str], str] = {}
    for sid in sorted(net.signals):
        for lk in net.signals[sid].links:
            a, b = net.lanes[lk.in_lane].edge, net.lanes[lk.out_lane].edge
            if a in edges and b in edges:
                out.setdefault((a, b), sid)
    return out
