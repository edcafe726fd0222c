"""A ``gridcity-<K>-ems`` as districts, and one whole-city result from its districts' results.

The EMS runs alone on each district's SUMO (the district's net, its background traffic handed over by the
mobility domain's border port): the mobility domain's port hands over every vehicle on a border edge, ambulances
included, so riding on mobility's SUMO would take the ambulances away from their twin; alone, the EMS twin keeps
its units and hands them over itself, with their assignment (:mod:`.border`). Each district holds its blocks'
zones, stations, hospital(s), ambulances and calls (:mod:`.layout`), the same as in one process.

**Where cross-district dispatch is decided.** In the district where the call is: its planner sees its own units
and the neighbours' as they reported them over the border at the end of the previous step, and asks for a
neighbour's unit when none of its own is free or the neighbour's is closer by more than two decision intervals
(:mod:`.aid`). The orchestration stage sees the whole city's proposals, but no district's proposal can name another
district's unit without that report, and the stage ranks and settles, it does not dispatch.

**What differs from one process** (same seed, same calls, stations and units):

* a neighbour's unit is seen as it was at the end of the last step and moves one decision interval after it was
  asked (the request crosses); when it took a call of its own meanwhile the request is declined and the call is
  dispatched again the next step;
* a call is answered across the line only when the neighbour's unit is closer by more than two decision
  intervals or when the district has no free unit (one process sends the closest unit, wherever it is);
* the neighbour's side of the estimate is free-flow (the report carries seconds to the border), the call side
  live in AI City mode;
* a unit reaching the end of a border edge waits there until the exchange (up to one decision interval) and
  enters at the highest safe speed; the background traffic crosses as in the mobility domain
  (:mod:`aicity.domains.mobility.border`);
* a lent unit serves its call in the call's district (that district's hospital) and drives home straight after,
  never taking another call there on the way (one process may send a returning unit to any call);
* relocation (AI City) moves a unit only among its own district's stations (a district of one block has
  nowhere to move it); the incident forecast is per district;
* coverage counts the neighbours' available units as they last reported, at their home stations (one process: at
  the station each is bound for), and the KPI is the districts' demand-weighted mean;
* ``traffic_halting_veh`` misses the border edges into each district (they are no signal approach there).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aicity.core.capabilities import DistrictScenario
from aicity.core.domain import DomainResult, Scenario
from aicity.core.errors import UserError
from aicity.domains.safety.const import DOMAIN
from aicity.domains.safety.layout import grid_place


def partition(scenario: Scenario, districts: int) -> list[DistrictScenario]:
    """``gridcity-K-ems`` as ``districts`` districts ``d1``..``dD`` (D divides K), named as the mobility domain's."""
    from aicity.domains.mobility import gridcity
    from aicity.domains.mobility.districts import partition as split_net

    place = grid_place(scenario.path)
    if place is None or place.district is not None:
        raise UserError(f"safety scenario {scenario.name!r} cannot be partitioned: only gridcity-<K>-ems can")
    if float(scenario.params.get("incident_at_s", -1.0)) >= 0:
        raise UserError("the road incident (incident_at_s) is not available on a generated grid city")
    out = []
    for d in split_net(gridcity.scenario(place.k), districts):
        scen = Scenario(f"{scenario.name}.{d.district}", DOMAIN, f"district {d.district} of {scenario.name}",
                        scenario.begin_s, scenario.end_s, path=d.scenario.path, params=dict(scenario.params))
        out.append(DistrictScenario(d.district, scen, dict(d.borders)))
    return out


@dataclass
class _UnitKm:
    reloc_km: float


@dataclass
class _Outcome:
    """A relocation that was applied (all ``compute_result`` reads of an outcome)."""

    action: Any
    refused: bool = False


@dataclass
class _Merged:
    """The districts' records as one run, in the shape :func:`~aicity.domains.safety.kpis.compute_result` reads."""

    config: Any
    decision_interval_s: float
    end_s: float
    calls: dict[str, Any]
    units: dict[str, _UnitKm]
    outcomes: list[_Outcome]
    _samples: list[tuple[float, float, float, float]]
    _busy_s: float
    _unit_track: dict[str, list[tuple[float, float]]]
    dead_letters: list[dict[str, Any]]
    stations: list[str]
    bypasses: list[dict[str, Any]] = field(default_factory=list)
    map: Any = None
    roadblock: Any = None
    _edge_times: dict[str, list[float]] = field(default_factory=dict)
    _unit_xy: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    traffic_totals: tuple[float, int] | None = None
    """The districts' background traffic: seconds lost and vehicles, summed (a vehicle crossing a border counts in
    each district it drove in)."""

    def elapsed_s(self) -> float:
        """The window simulated."""
        return self.end_s


def merge_results(results: Mapping[str, DomainResult]) -> DomainResult:
    """The whole city's result from its districts' (the KPIs computed over every district's calls and units)."""
    from aicity.domains.safety.incidents import Incident
    from aicity.domains.safety.kpis import compute_result
    from aicity.domains.safety.twin import CallState, TwinConfig

    parts = _west_to_east(results)
    first = parts[0].extra
    opts = first["options"]
    cp = float(opts["call_processing_s"])
    config = TwinConfig(call_processing_s=cp, target_p1_s=float(opts["targets_s"]["p1"]) - cp,
                        target_p2_s=float(opts["targets_s"]["p2"]) - cp, load_multiplier=float(opts["load_multiplier"]),
                        service_scale=float(opts["service_scale"]), bluelight=bool(opts["bluelight"]),
                        stuck_bypass_s=float(opts["stuck_bypass_s"]))
    calls = {}
    for r in parts:
        for rec in r.extra["incidents"]:
            inc = Incident(rec["id"], float(rec["call_s"]), rec["edge"], rec["zone"], int(rec["priority"]), 0.0,
                           False, 0.0)
            calls[inc.id] = CallState(inc, unit=rec["unit"], dispatch_s=rec["dispatch_s"],
                                      arrival_s=rec["arrival_s"], travel_ff_s=rec["travel_ff_s"])
    km: dict[str, float] = {}
    for r in parts:
        for u, v in r.extra["grid"]["reloc_km"].items():
            km[u] = max(km.get(u, 0.0), float(v))
    units = {u: _UnitKm(km.get(u, 0.0)) for r in parts for u in r.extra["grid"]["home_units"]}
    weights = [float(r.extra["grid"]["demand"]) for r in parts]
    halting = sum(float(r.kpis["traffic_halting_veh"]) for r in parts)
    samples: dict[float, list[float]] = {}
    for r, w in zip(parts, weights, strict=True):
        busy = dict(r.series.get("busy_ambulances", []))
        for t, cov in r.series.get("coverage_share", []):
            s = samples.setdefault(float(t), [0.0, 0.0])
            s[0] += w * float(cov)
            s[1] += float(busy.get(t, 0.0))
    total_w = sum(weights) or 1.0
    tracks: dict[str, list[tuple[float, float]]] = {}
    for r in parts:
        for name, series in r.series.items():
            if name.startswith("ambulance_") and name.endswith("_from_home_m"):
                tracks.setdefault(name[len("ambulance_"):-len("_from_home_m")], []).extend(series)
    where: dict[str, list[tuple[float, float, float]]] = {}
    for r in parts:  # a unit lent across a border is tracked by each district it was in
        for u, pts in (r.extra.get("unit_positions") or {}).items():
            where.setdefault(u, []).extend((float(t), float(x), float(y)) for t, x, y in pts)
    relocations = sum(int(r.extra["counts"].get("relocations", 0)) for r in parts)
    merged = _Merged(
        config=config, decision_interval_s=float(first.get("decision_interval_s", 10.0)),
        end_s=max(float(r.extra["sim_s"]) for r in parts), calls=calls, units=units,
        outcomes=[_Outcome(_Action("relocate")) for _ in range(relocations)],
        _samples=[(t, s[0] / total_w, s[1], halting) for t, s in sorted(samples.items())],
        _busy_s=sum(float(r.extra["grid"]["busy_s"]) for r in parts),
        _unit_track={u: sorted(v) for u, v in sorted(tracks.items())},
        _unit_xy={u: sorted(set(v)) for u, v in sorted(where.items())},
        traffic_totals=(sum(float((r.extra.get("traffic") or {}).get("time_loss_s", 0.0)) for r in parts),
                        sum(int((r.extra.get("traffic") or {}).get("vehicles", 0)) for r in parts)),
        dead_letters=[d for r in parts for d in r.extra.get("dead_letters", [])],
        stations=[s for r in parts for s in r.extra.get("stations", [])],
        bypasses=[b for r in parts for b in r.extra.get("stuck_bypasses", [])])
    out = compute_result(merged)
    out.extra.update(
        positions={"zone": {z: xy for r in parts for z, xy in r.extra.get("positions", {}).get("zone", {}).items()}},
        edges_xy=[e for r in parts for e in r.extra.get("edges_xy", [])],
        hospitals=[h for r in parts for h in r.extra.get("hospitals", [])],
        districts_merged=sorted(results, key=_order),
        aid={k: sum(int(r.extra["grid"]["aid"].get(k, 0)) for r in parts)
             for k in ("requested", "accepted", "declined", "lent_out", "taken_in")},
        away_at_end=sorted(u for r in parts for u in r.extra["grid"]["away_at_end"]),
        border={"crossed_in": sum(int(r.extra["grid"]["border"].get("crossed_in", 0)) for r in parts)},
        lent_calls=sum(1 for r in parts for rec in r.extra["incidents"]
                       if rec["unit"] is not None and rec["unit"] not in r.extra["grid"]["home_units"]))
    return out


def _west_to_east(results: Mapping[str, DomainResult]) -> list[DomainResult]:
    """Each district's result in district order; refused unless every one comes from a grid district twin."""
    foreign = sorted(d for d, r in results.items() if "grid" not in r.extra)
    if foreign or not results:
        raise UserError("safety merge_results takes the results of gridcity EMS district twins; "
                        f"{', '.join(foreign) or 'none was given'} carry no grid record")
    return [results[d] for d in sorted(results, key=_order)]


@dataclass(frozen=True)
class _Action:
    action: str


def _order(name: str) -> tuple[int, str]:
    digits = name.lstrip("d")
    return (int(digits), name) if digits.isdigit() else (1 << 30, name)


def same_kpis(a: Mapping[str, float], b: Mapping[str, float], rel: float = 1e-9) -> list[str]:
    """KPI names whose values differ beyond ``rel`` (relative) between two results."""
    return sorted(k for k in a if not math.isclose(float(a[k]), float(b.get(k, math.nan)), rel_tol=rel,
                                                      abs_tol=1e-12))


def district_planner(scenario: Scenario, place: Any, controller: str, params: Mapping[str, Any]) -> Any:
    """The dispatch planner of one district: its controller's rule, a neighbour's unit where it is needed."""
    from aicity.domains.mobility.scenarios import read_sumocfg
    from aicity.domains.safety.aid import border_geometry, make_aid_planner
    from aicity.domains.safety.layout import ems_map

    net = read_sumocfg(str(scenario.path)).net
    smap = ems_map(str(scenario.path), net, int(params["zones_per_side"]), int(params["hospitals"]))
    geo = border_geometry(net, tuple(sorted(place.out)), tuple(sorted(place.entries)))
    return make_aid_planner(smap, geo, live=controller != "smart", district=place.district,
                            margin_s=2 * float(params["decision_interval_s"]))
