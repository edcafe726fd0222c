"""What the safety domain declares: KPIs, scenario options, equity groups, action types, policy, test scenario."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError
from aicity.core.meta import KPI, Better, DomainMeta, EquityGroup, Option, epoch_option
from aicity.domains.safety.const import (
    ACTION_TYPES,
    AMBULANCE_TYPE,
    DISPATCH,
    EV_TYPE,
    INCIDENT_TYPE,
    RELOCATION,
    SPEED_TYPE,
    TRAFFIC_INCIDENT_TYPE,
)

L, H = Better.LOWER, Better.HIGHER
KPIS = (
    KPI("response_mean_s", "s", L, True, "mean call-to-arrival time of the calls reached"),
    KPI("response_p90_s", "s", L, True, "90th-percentile call-to-arrival time of the calls reached"),
    KPI("late_frac", "share", L, True, "calls beyond their network-scaled target (call processing + 90 s travel "
                                       "for priority 1, + 120 s for priority 2), unreached calls past it included"),
    KPI("within_target_p1", "share", H, False, "priority-1 calls within the network-scaled target"),
    KPI("within_target_p2", "share", H, False, "priority-2 calls within the network-scaled target"),
    KPI("within_15min", "share", H, False, "calls reached within 15 min of the call (NL standard, 95 %)"),
    KPI("within_nfpa_travel", "share", H, False, "calls reached within 240 s of travel (NFPA 1710)"),
    KPI("zone_p90_worst_s", "s", L, False, "p90 call-to-arrival of the worst zone"),
    KPI("zone_p90_best_worst", "ratio", H, False, "best over worst zone p90 (1 = even)"),
    KPI("coverage", "share", H, False, "time-averaged demand share with an available ambulance within the radius"),
    KPI("relocations_per_call", "1/call", L, False, "relocations applied per call"),
    KPI("relocation_km", "km", L, False, "route length driven on relocations"),
    KPI("busy_frac", "share", L, False, "share of ambulance time bound to an incident"),
    KPI("traffic_halting_veh", "veh", L, False, "background traffic: mean halting vehicles on detector segments"),
    KPI("traffic_delay_s", "s", L, False, "background traffic's delay: mean time lost per vehicle in the window "
        "(SUMO timeLoss: below its desired speed; ambulances and other emergency vehicles apart)"),
    KPI("calls_reached", "calls", H, False, "calls an ambulance reached in the window"),
    KPI("calls_unreached", "calls", L, False, "calls no ambulance reached by the window's end"),
)
"""Every KPI a safety twin reports (``DomainResult.kpis`` has exactly these keys)."""

OPTIONS = (
    epoch_option(),
    Option("decision_interval_s", float, 10.0, "seconds between dispatch decisions (SUMO steps whole seconds)",
           "s", minimum=1, maximum=600, step=1),
    Option("ambulances", int, 3, "ambulances on duty", "units", minimum=1, maximum=20),
    Option("zones_per_side", int, 3, "zones: cells per side of the grid over the network", "cells", minimum=1,
           maximum=8),
    Option("hospitals", int, 1, "hospitals (synthetic sites: the maps ship none)", "sites", minimum=1, maximum=4),
    Option("load_multiplier", float, 1.0, "incident rate over Cologne's density (509 alarms per km² per year); "
           "reported with every result", "x", minimum=0, maximum=1000, flag=True),
    Option("service_scale", float, 1.0, "scale of on-scene and hospital handover times (medians 15 min each)",
           "x", minimum=0.05, maximum=2),
    Option("call_processing_s", float, 60.0, "fixed call-processing time before a call is reported", "s",
           minimum=0, maximum=600, step=1),
    Option("bluelight", bool, False, "ambulances carry SUMO's bluelight device (rescue lanes, may pass red)",
           flag=True),
    Option("stuck_bypass_s", float, 300.0, "an ambulance standing this long mid-trip, or waiting this long to be let "
           "on to the road (a gridlock: SUMO runs with teleporting off), is moved on to the first road ahead on its "
           "route with room, as a crew finds a way round and as SUMO's own 300 s teleport would; both modes alike "
           "(0 = never)", "s", minimum=0, maximum=3600, step=1),
    Option("drill_calls", int, 0, "exercise calls made in the minute before the window", "calls", minimum=0,
           maximum=10),
    Option("bad_inputs", bool, False, "inject one bad report of each kind (unknown place, future time, "
           "duplicate, impossible position): each is dead-lettered"),
    Option("coverage_radius_s", float, 90.0, "free-flow travel within which a station covers a zone", "s",
           minimum=10, maximum=900),
    Option("target_p1_s", float, 90.0, "network-scaled travel target of priority-1 calls", "s", minimum=10,
           maximum=900),
    Option("target_p2_s", float, 120.0, "network-scaled travel target of priority-2 calls", "s", minimum=10,
           maximum=900),
    Option("max_relocations_per_hour", int, 6, "relocations the edge allows per hour, city-wide", "moves/h",
           minimum=0, maximum=100),
    Option("max_relocations_per_unit_hour", int, 2, "relocations the edge allows per ambulance per hour",
           "moves/h", minimum=0, maximum=20),
    Option("coverage_floor", float, 0.5, "demand share a relocation may not strip coverage below", "share",
           minimum=0, maximum=1),
    Option("record_travel_times", bool, False, "record SUMO's edge travel times per minute for the traffic-aware "
           "oracle (simulator ground truth: kept in the result for the yardstick, never shown to a planner)"),
    Option("incident_at_s", float, -1.0, "a multi-vehicle road incident this many seconds after the window's "
           "begin blocks lanes and calls ambulances (-1 = none)", "s", minimum=-1, maximum=86400, step=1),
    Option("incident_edge", str, "", "road segment of the incident (\"\" = a seeded choice among the arterial "
           "edges: 2+ lanes, top quartile of speed limit x length)"),
    Option("incident_lanes", int, 0, "lanes the incident blocks, rightmost first (0 = all but one, at least one; "
           "emergency vehicles may still pass)", "lanes", minimum=0, maximum=8),
    Option("incident_duration_s", float, 1200.0, "seconds until the incident is cleared", "s", minimum=60,
           maximum=86400, step=1),
    Option("incident_patients", int, 3, "priority-1 calls the incident produces at its road segment", "calls",
           minimum=0, maximum=20),
)
"""Scenario options (``aicity run --set KEY=VALUE``), validated up front."""

_AGE = 30.0
PLAUSIBILITY: dict[str, Any] = {
    "rules": [
        {"entity_type": AMBULANCE_TYPE, "attribute": "status", "max_age_s": _AGE, "nullable": False},
        {"entity_type": SPEED_TYPE, "attribute": "averageVehicleSpeed", "min": 0, "max": 70, "max_age_s": _AGE},
    ],
    "required": [f"urn:ngsi-ld:{AMBULANCE_TYPE}:*"],
}
"""Input plausibility rules (format of :meth:`aicity.governance.plausibility.PlausibilityChecker.from_dict`)."""


def _fit(params: Mapping[str, Any]) -> None:
    """Options that must fit together."""
    p1, p2 = params.get("target_p1_s", 90.0), params.get("target_p2_s", 120.0)
    if p1 > p2:
        raise UserError(f"safety option target_p1_s ({p1:g} s) must not exceed target_p2_s ({p2:g} s)")
    edge = params.get("incident_edge", "")
    if edge and params.get("incident_at_s", -1.0) < 0:
        raise UserError(f"safety option incident_edge ({edge!r}) needs incident_at_s (the incident's time, >= 0)")


META = DomainMeta(
    kpis=KPIS,
    options=OPTIONS,
    equity=(EquityGroup("zone", "response_p90_s", "p90 call-to-arrival time per zone"),),
    action_types=ACTION_TYPES,
    priorities={DISPATCH: "life_safety", RELOCATION: "life_safety"},
    policy=Path(__file__).with_name("policy.toml"),
    entity_types=(INCIDENT_TYPE, AMBULANCE_TYPE, SPEED_TYPE, EV_TYPE, TRAFFIC_INCIDENT_TYPE, "EmergencyRouteNetwork"),
    plausibility=PLAUSIBILITY,
    test_scenario="cologne8-ems-drill",
    test_duration_s=300.0,
    validate=_fit,
)
"""The safety domain's metadata."""
