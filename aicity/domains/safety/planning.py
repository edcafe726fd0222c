"""What planners and the twin compute from the map and the sensors: demand from history, MEXCLP stations,
travel-time estimates from detector speeds, and the closest available ambulance."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aicity.core.domain import Snapshot
from aicity.domains.safety.const import AMBULANCE_TYPE, AVAILABLE, INCIDENT_TYPE, SPEED_TYPE
from aicity.domains.safety.geo import SafetyMap

MIN_SPEED_MPS = 1.5
"""Slowest speed an estimate assumes on an observed segment (a standing queue still moves)."""


def historical_demand(smap: SafetyMap, load_multiplier: float) -> dict[str, float]:
    """Mean calls per hour per zone in the city's call history (what a static plan is built on)."""
    from aicity.domains.safety.incidents import history_counts

    counts = history_counts(smap, load_multiplier=load_multiplier)
    zones = sorted(smap.zones)
    return {z: float(counts[:, k].mean()) + 1e-6 for k, z in enumerate(zones)}


def site_times(smap: SafetyMap) -> dict[str, dict[str, float]]:
    """Free-flow seconds from every candidate station to every edge."""
    return {s: smap.times_from(s) for s in smap.sites.values()}


def home_stations(smap: SafetyMap, demand: Mapping[str, float], n: int, radius_s: float, q: float) -> list[str]:
    """Smart City's static plan: MEXCLP placement of ``n`` ambulances over the zones' candidate stations."""
    from aicity.domains.safety.mexclp import coverage_matrix, place

    sites = list(smap.sites.values())
    covers = coverage_matrix(site_times(smap), sites, smap.sites, radius_s)
    return sorted(place(sites, covers, demand, n, q), key=lambda s: (sites.index(s), s))


def live_costs(smap: SafetyMap, snapshot: Snapshot) -> dict[str, float]:
    """Seconds per edge from what detectors report: observed mean speed where a detector sees vehicles, else the
    speed limit. Never SUMO's own travel times."""
    cost = smap.free_flow_costs()
    for ent in snapshot.of_type(SPEED_TYPE):
        edge = ent.get("roadSegment")
        speed = ent.get("averageVehicleSpeed")
        if isinstance(edge, str) and edge in cost and isinstance(speed, int | float):
            cost[edge] = max(cost[edge], smap.length[edge] / max(float(speed), MIN_SPEED_MPS))
    return cost


@dataclass(frozen=True, slots=True)
class UnitView:
    """An ambulance as its own report shows it."""

    id: str
    status: str
    edge: str
    home: str
    destination: str | None
    relocatable: bool
    moves_last_hour: int = 0
    """Relocations in the last hour, as the unit's own record reports them (``relocationsLastHour``)."""


@dataclass(frozen=True, slots=True)
class CallView:
    """A reported incident as the dispatcher sees it."""

    id: str
    edge: str
    zone: str
    priority: int
    call_s: float
    status: str


def units_of(snapshot: Snapshot, smap: SafetyMap) -> list[UnitView]:
    """Every ambulance's last report (skipping reports that name no edge of the map)."""
    out = []
    for e in snapshot.of_type(AMBULANCE_TYPE):
        edge = e.get("roadSegment")
        if not isinstance(edge, str) or edge not in smap.length:
            continue
        dest = e.get("destination")
        moves = e.get("relocationsLastHour")
        out.append(UnitView(e.id, str(e.get("status")), edge, str(e.get("homeStation")),
                            dest if isinstance(dest, str) else None, bool(e.get("relocatable")),
                            _count(moves)))
    return out


def _count(value: object) -> int:
    """A reported count; anything not a finite non-negative number counts as many (no move is planned on it)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return 1_000_000
    return int(value)


def pending_calls(snapshot: Snapshot, smap: SafetyMap) -> list[CallView]:
    """Reported incidents without an ambulance, most urgent and oldest first."""
    out = []
    for e in snapshot.of_type(INCIDENT_TYPE):
        if e.get("status") != "reported" or e.get("roadSegment") not in smap.length:
            continue
        out.append(CallView(e.id, str(e.get("roadSegment")), str(e.get("zone")), int(e.get("priority") or 2),
                            float(e.get("callTime") or 0.0), "reported"))
    return sorted(out, key=lambda c: (c.priority, c.call_s, c.id))


def available(units: Sequence[UnitView]) -> list[UnitView]:
    """Ambulances that may take a call."""
    return [u for u in units if u.status in AVAILABLE]


def eta_table(smap: SafetyMap, units: Sequence[UnitView], edges: Sequence[str],
              cost: Mapping[str, float]) -> dict[str, dict[str, float]]:
    """Estimated seconds from each ambulance's segment to each target edge under ``cost``."""
    from aicity.domains.safety.geo import dijkstra

    out: dict[str, dict[str, float]] = {}
    for u in units:
        times = dijkstra(smap.succ, u.edge, cost)
        out[u.id] = {e: times.get(e, math.inf) for e in edges}
    return out
