"""What the mobility domain declares: its KPIs, scenario options, equity groups, policy and plausibility rules."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError
from aicity.core.meta import KPI, Better, DomainMeta, EquityGroup, Option, epoch_option
from aicity.domains.mobility.const import (
    ACTION_TYPES,
    EV_TYPE,
    FLOW_PREFIX,
    FLOW_TYPE,
    SIGNAL_PHASE,
    SIGNAL_PREEMPTION,
    SIGNAL_PREFIX,
    SIGNAL_TYPE,
)

L, H = Better.LOWER, Better.HIGHER
KPIS = (
    KPI("delay_s", "s", L, True, "RESCO delay: mean time lost per vehicle, never-inserted vehicles included"),
    KPI("trip_time_s", "s", L, True, "mean trip time of the vehicles that departed"),
    KPI("wait_s", "s", L, True, "mean time standing per trip"),
    KPI("ev_travel_s_mean", "s", L, True, "emergency vehicles' mean travel time (finished trips)"),
    KPI("delay_all_s", "s", L, False, "RESCO delay over all vehicles, emergency vehicles included"),
    KPI("finished", "veh", H, False, "trips that reached their destination"),
    KPI("unfinished", "veh", L, False, "trips still under way at the end"),
    KPI("never_inserted", "veh", L, False, "vehicles that could not enter the network"),
    KPI("never_inserted_pct", "%", L, False, "never-inserted share of all vehicles"),
    KPI("ev_finished", "veh", H, False, "emergency trips that arrived"),
    KPI("ev_travel_s_p90", "s", L, False, "emergency vehicles' 90th-percentile travel time"),
    KPI("ev_delay_s", "s", L, False, "RESCO delay of the emergency vehicles"),
    KPI("ev_wait_s_mean", "s", L, False, "emergency vehicles' mean time standing"),
    KPI("max_hold_timeouts", "count", L, False, "preemption holds ended by the maximum hold"),
    KPI("signal_delay_min_max", "ratio", H, False, "least over most delayed signal approach (1 = even)"),
    KPI("signal_delay_jain", "index", H, False, "Jain's index of delay over signals (1 = even)"),
    KPI("district_delay_min_max", "ratio", H, False, "least over most delayed district (1 = even)"),
    KPI("district_delay_jain", "index", H, False, "Jain's index of delay over districts (1 = even)"),
    KPI("person_delay_s", "s", L, False, "RESCO delay per person: each vehicle weighted by its personNumber "
        "where the routes set it, else 1 person per vehicle (an assumption)"),
    KPI("dark_signal_s", "s", L, False, "signal-seconds dark: mains lost and battery backup spent (all-way stop)"),
    KPI("battery_signal_s", "s", L, False, "signal-seconds run on battery backup after mains was lost"),
)
"""Every KPI a mobility twin reports (``DomainResult.kpis`` has exactly these keys)."""

COUNTS = ("vehicles", "ev_trips", "preemptions", "actions_applied", "actions_clamped", "actions_refused",
          "ev_free_flow_s_mean")
"""Figures that are neither better nor worse (``DomainResult.extra["counts"]``)."""


def _probes(value: Any) -> Any:
    from aicity.domains.mobility.probes import ProbeConfig

    ProbeConfig.parse(value)
    return value


def _faults(value: Any) -> Any:
    from aicity.domains.mobility.faults import SensorFaults

    SensorFaults.parse(value)
    return value


def _borders(value: Any) -> Any:
    from aicity.domains.mobility.border import check_borders

    return None if value is None else check_borders(value)


OPTIONS = (
    epoch_option(),
    Option("decision_interval_s", float, 10.0, "seconds between decisions (SUMO steps whole seconds)", "s",
           minimum=1, maximum=600, step=1),
    Option("ev_per_hour", float, 10.0, "emergency vehicles inserted per hour on seeded routes", "veh/h",
           minimum=0, maximum=360, flag=True),
    Option("ev_speed_factor", float, 1.0, "emergency vehicles' desired speed over the limit, both modes", "x",
           minimum=0.5, maximum=2.0),
    Option("probes", float, None, "share of vehicles reporting as consented connected probes, (0, 1]", "share",
           parse=_probes, flag=True),
    Option("sensor_faults", dict, None, 'injected faults: {"freeze": [ids], "impossible": [ids], "after_s": s}',
           parse=_faults),
    Option("yellow_s", float, 3.0, "yellow time of every change", "s", minimum=1, maximum=10, step=1),
    Option("min_green_s", float, 7.0, "shortest green", "s", minimum=1, maximum=120, step=1),
    Option("max_green_s", float, 60.0, "longest green before a forced change", "s", minimum=5, maximum=600,
           step=1),
    Option("max_hold_s", float, 40.0, "longest emergency preemption hold", "s", minimum=5, maximum=300, step=1),
    Option("cooldown_s", float, 30.0, "pause after a hold before the next preemption", "s", minimum=0,
           maximum=600, step=1),
    Option("signal_backup_s", float, 300.0, "battery backup of each signal cabinet after mains is lost, then the "
           "signal goes dark (an assumption: typical UPS sizes; no data for this city)", "s", minimum=0,
           maximum=86400, step=1),
    Option("borders", dict, None, 'a district\'s border edges, set by partition: {"district": name, "out": {edge: '
           'district}, "in": {edge: district}}', parse=_borders),
)
"""Scenario options (``aicity run --set KEY=VALUE``), validated up front."""

_FLOW_AGE = 30.0  # s: a detector group not updated for longer is stale
PLAUSIBILITY: dict[str, Any] = {
    "rules": [
        {"entity_type": FLOW_TYPE, "attribute": "queue", "min": 0, "max": 200, "max_age_s": _FLOW_AGE,
         "nullable": False},
        {"entity_type": FLOW_TYPE, "attribute": "vehicleCount", "min": 0, "max": 500, "max_age_s": _FLOW_AGE,
         "nullable": False},
        {"entity_type": FLOW_TYPE, "attribute": "occupancy", "min": 0, "max": 1,  # 0..100 %
         "max_age_s": _FLOW_AGE, "nullable": False},
        {"entity_type": FLOW_TYPE, "attribute": "averageVehicleSpeed", "min": 0, "max": 70,
         "max_age_s": _FLOW_AGE},  # null when no vehicle is on the detector
        {"entity_type": SIGNAL_TYPE, "attribute": "timeInPhase", "min": 0, "max_age_s": _FLOW_AGE,
         "nullable": False},
    ],
    "required": [f"{SIGNAL_PREFIX}*", f"{FLOW_PREFIX}in:*"],
}
"""Input plausibility rules (format of :meth:`aicity.governance.plausibility.PlausibilityChecker.from_dict`)."""

LIMITS = ("yellow_s", "min_green_s", "max_green_s", "max_hold_s", "cooldown_s")
"""The options that set every signal's actuator-edge limits."""


def edge_limits(params: Mapping[str, Any]) -> Any:
    """The :class:`~aicity.domains.mobility.edge.EdgeLimits` the options ask for; limits that do not fit together
    (e.g. a shortest green longer than the longest) are a :class:`UserError`."""
    import dataclasses

    from aicity.domains.mobility.edge import EdgeLimits

    try:
        return dataclasses.replace(EdgeLimits(), **{k: float(v) for k, v in params.items() if k in LIMITS})
    except ValueError as exc:
        raise UserError(f"mobility edge limits do not fit together: {exc}") from exc


def _limits_fit(params: Mapping[str, Any]) -> None:
    edge_limits(params)


def _outage_costs() -> Any:
    from aicity.domains.mobility.outage import DarkSignalDelay

    return DarkSignalDelay()


META = DomainMeta(
    kpis=KPIS,
    options=OPTIONS,
    equity=(EquityGroup("district", "delay_s", "RESCO delay per district (TAZ, else signal quadrants)"),
            EquityGroup("time_of_day", "delay_s", "RESCO delay per 15-minute departure bin"),
            EquityGroup("signal", "delay_s", "delay per signal approach")),
    action_types=ACTION_TYPES,
    priorities={SIGNAL_PREEMPTION: "life_safety", SIGNAL_PHASE: "mobility"},
    outage_costs=_outage_costs,
    policy=Path(__file__).with_name("policy.toml"),
    entity_types=(SIGNAL_TYPE, FLOW_TYPE, EV_TYPE),
    plausibility=PLAUSIBILITY,
    test_scenario="grid3x3",
    test_duration_s=300.0,
    default_scenario="cologne8",
    validate=_limits_fit,
)
"""The mobility domain's metadata."""
