"""A multi-vehicle road incident on SUMO: lanes blocked for a while, traffic routed around it, patients calling.

At ``at_s`` (seconds after the window's begin) the incident closes ``lanes`` lanes of one edge, rightmost first,
for ``duration_s``: the blocked lanes admit only class ``emergency`` and their speed drops to a crawl past the
wreck; the lanes left open are slowed (officers and onlookers on scene). Routing sees the edge as slow for the
duration (``edge.adaptTraveltime``) and every vehicle whose remaining route crosses it, in the network or
departing while it lasts, is rerouted (``vehicle.rerouteTraveltime``). When it clears, lanes and speeds are
restored and the travel-time penalty ends. The patients' calls are ordinary priority-1 calls at the edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicity.core.errors import UserError
from aicity.domains.safety.geo import MIN_EDGE_M, SafetyMap
from aicity.domains.safety.incidents import Incident, service_times

BLOCKED_SPEED_MPS = 3.0
"""Speed on a blocked lane (only emergency vehicles may enter it: they crawl past the wreck)."""
OPEN_SPEED_SHARE = 0.5
"""Share of the speed limit left on the lanes still open."""
PENALTY_S = 900.0
"""Seconds routing adds to the edge while it is blocked (any detour under 15 min is taken)."""
ROAD_INCIDENT_ID = "T1"
"""Id of the run's road incident (its patients' calls are ``T1-P1``, ``T1-P2``, ...)."""
CALL_SPACING_S = 5.0
"""Seconds between the patients' calls (several callers at one scene)."""


@dataclass(frozen=True, slots=True)
class RoadIncidentSpec:
    """When, where and how large the incident is (validated options; ``edge`` "" and ``lanes`` 0 = choose)."""

    at_s: float = -1.0
    edge: str = ""
    lanes: int = 0
    duration_s: float = 1200.0
    patients: int = 3

    @property
    def enabled(self) -> bool:
        """True when the run has an incident."""
        return self.at_s >= 0


def arterial_edges(smap: SafetyMap) -> tuple[str, ...]:
    """Edges with at least 2 car lanes in the top quartile of speed limit × length among them (sorted)."""
    multi = sorted(e for e in smap.edges if len(smap.lanes.get(e, ())) >= 2 and smap.length[e] >= MIN_EDGE_M)
    if not multi:
        return ()
    ranked = sorted(multi, key=lambda e: (-smap.speed[e] * smap.length[e], e))
    return tuple(sorted(ranked[:max(1, -(-len(ranked) // 4))]))


def pick_edge(smap: SafetyMap, rng: np.random.Generator) -> str:
    """A seeded choice among the arterial edges (any usable multi-lane or long edge when the map has none)."""
    pool = arterial_edges(smap) or tuple(sorted(e for e in smap.edges if smap.length[e] >= MIN_EDGE_M))
    if not pool:
        raise UserError(f"map {smap.net_path!r} has no edge an incident can block")
    return pool[int(rng.integers(len(pool)))]


def resolve_spec(spec: RoadIncidentSpec, smap: SafetyMap, rng: np.random.Generator) -> RoadIncidentSpec:
    """The spec with its edge and lane count fixed for ``smap``; a :class:`UserError` when they cannot fit."""
    edge = spec.edge or pick_edge(smap, rng)
    if edge not in smap.length:
        raise UserError(f"safety option incident_edge: {edge!r} is not a road segment ambulances can reach "
                        f"and leave on this map")
    total = len(smap.lanes.get(edge, ())) or 1
    lanes = spec.lanes or max(1, total - 1)
    if lanes > total:
        raise UserError(f"safety option incident_lanes ({lanes}) exceeds the {total} lane(s) of edge {edge!r}")
    return RoadIncidentSpec(spec.at_s, edge, lanes, spec.duration_s, spec.patients)


def patient_calls(spec: RoadIncidentSpec, smap: SafetyMap, rng: np.random.Generator,
                  service_scale: float) -> list[Incident]:
    """The patients' priority-1 calls at the incident's edge, a few seconds apart."""
    out = []
    for k in range(spec.patients):
        on, tr, ho = service_times(rng, service_scale)
        out.append(Incident(f"{ROAD_INCIDENT_ID}-P{k + 1}", round(spec.at_s + CALL_SPACING_S * k, 1), spec.edge,
                            smap.zone_of[spec.edge], 1, on, tr, ho))
    return out


@dataclass(slots=True)
class RoadBlock:
    """The incident while the run lasts: what it changed in SUMO (to undo it) and what it did."""

    spec: RoadIncidentSpec
    lane_ids: tuple[str, ...]
    started_s: float | None = None
    cleared_s: float | None = None
    rerouted: list[str] = field(default_factory=list)
    _allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _speed: dict[str, float] = field(default_factory=dict)

    @property
    def blocked(self) -> tuple[str, ...]:
        """The lanes it closes (rightmost first)."""
        return self.lane_ids[:self.spec.lanes]

    @property
    def active(self) -> bool:
        """True between its start and its clearance."""
        return self.started_s is not None and self.cleared_s is None

    def due(self, el: float) -> str | None:
        """``"start"`` or ``"clear"`` when the elapsed time ``el`` calls for it, else None."""
        if self.started_s is None and el >= self.spec.at_s - 1e-9:
            return "start"
        if self.active and el >= self.spec.at_s + self.spec.duration_s - 1e-9:
            return "clear"
        return None

    def start(self, api: Any, t: float, skip: str) -> None:
        """Close the lanes, slow the open ones, penalise the edge for routing and reroute the vehicles crossing
        it (vehicles whose id starts with ``skip`` — the twin's ambulances — keep their routes)."""
        lane = api.lane
        for ln in self.lane_ids:
            self._allowed[ln] = tuple(lane.getAllowed(ln))
            self._speed[ln] = float(lane.getMaxSpeed(ln))
        for ln in self.lane_ids:
            if ln in self.blocked:
                lane.setAllowed(ln, ["emergency"])
                lane.setMaxSpeed(ln, min(BLOCKED_SPEED_MPS, self._speed[ln]))
            else:
                lane.setMaxSpeed(ln, self._speed[ln] * OPEN_SPEED_SHARE)
        edge = self.spec.edge
        api.edge.adaptTraveltime(edge, PENALTY_S + float(api.edge.getTraveltime(edge)), t,
                                 t + self.spec.duration_s)
        self.started_s = t
        self.reroute(api, api.vehicle.getIDList(), skip)

    def reroute(self, api: Any, vids: Iterable[str], skip: str) -> None:
        """Reroute those of ``vids`` whose route still crosses the edge beyond where they are now."""
        veh, edge = api.vehicle, self.spec.edge
        for vid in vids:
            if vid.startswith(skip):
                continue
            try:
                route = veh.getRoute(vid)
                ahead = route[max(veh.getRouteIndex(vid), 0) + 1:]
                if edge not in ahead:
                    continue
                veh.rerouteTraveltime(vid)
                if edge not in veh.getRoute(vid)[max(veh.getRouteIndex(vid), 0) + 1:]:
                    self.rerouted.append(vid)
            except Exception:  # left the simulation meanwhile
                continue

    def clear(self, api: Any, t: float) -> None:
        """Reopen the lanes with their former permissions and speeds (the routing penalty ends by itself)."""
        for ln in self.lane_ids:
            api.lane.setAllowed(ln, list(self._allowed[ln]))
            api.lane.setMaxSpeed(ln, self._speed[ln])
        self.cleared_s = t

    def record(self, begin_s: float) -> dict[str, Any]:
        """What the run's result reports (times in seconds after the window's begin)."""
        s = self.spec
        return {"edge": s.edge, "blocked_lanes": list(self.blocked), "lanes_total": len(self.lane_ids),
                "at_s": s.at_s, "duration_s": s.duration_s, "patients": s.patients,
                "started_s": None if self.started_s is None else self.started_s - begin_s,
                "cleared_s": None if self.cleared_s is None else self.cleared_s - begin_s,
                "rerouted_vehicles": len(self.rerouted)}
