"""The city coordinator's metadata: the integrated KPIs of a city of mobility, safety and energy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aicity.core.meta import KPI, Better, DomainMeta, EquityGroup, Option

DOMAIN = "city"
L, H = Better.LOWER, Better.HIGHER

KPIS = (
    KPI("person_delay_s", "s", L, True, "mobility: delay per person (RESCO delay, each vehicle by its persons)"),
    KPI("ems_p90_s", "s", L, True, "safety: 90th-percentile call-to-arrival time of the calls reached"),
    KPI("ems_late_frac", "share", L, False, "safety: calls beyond their network-scaled target"),
    KPI("energy_cost", "$", L, True, "energy: energy charges on the imported energy"),
    KPI("peak_kw", "kW", L, True, "energy: highest average import at the transformers"),
    KPI("critical_unserved_kwh", "kWh", L, True, "energy not served to critical loads (signals, hospital, "
        "stations) during outages"),
    KPI("unserved_kwh", "kWh", L, False, "energy not served to any load (outages) or EV (by departure)"),
    KPI("violations", "count", L, True, "violations of every kind: priority violations (a lower class taking "
        "what a higher one needed) + grid loading and voltage violations (bus/line × step) + edge refusals"),
    KPI("priority_violations", "count", L, False, "steps × conflicts where a kept proposal took out of service or "
        "capacity what a higher priority class needed"),
    KPI("dark_signal_s", "s", L, False, "signal-seconds dark (mains lost, battery spent)"),
    KPI("ev_trips", "veh", H, False, "electric vehicles that drove to a charger in the simulation"),
    KPI("ev_late_min", "min", L, False, "mean minutes electric vehicles reached their charger after the planned "
        "arrival (traffic delay shifting the energy schedule)"),
)

OPTIONS = (
    Option("signal_kw", float, 0.5, "mains load of one signalised junction's cabinet and LED heads", "kW",
           minimum=0.0, maximum=20.0),
    Option("hospital_kw", float, 150.0, "load of the hospital (a critical load on the grid)", "kW", minimum=0.0,
           maximum=5000.0),
    Option("station_kw", float, 10.0, "load of an ambulance station (a critical load on the grid)", "kW",
           minimum=0.0, maximum=500.0),
    Option("guidance_consent", float, 0.5, "share of EV drivers who accept charging guidance (a seeded draw per "
           "driver; only they report their trip and may be sent to another charger)", "share", minimum=0.0,
           maximum=1.0),
    Option("ev_origin_min_m", float, 800.0, "an electric vehicle's trip starts at least this far from its charger",
           "m", minimum=0.0, maximum=50000.0),
)

INCIDENT_TRAFFIC = "incident_traffic"
"""Action type of directing the traffic held at a road incident to other exits (the coupler's one actuator)."""
CHARGING_GUIDANCE = "charging_guidance"
"""Action type of exchanging the booked chargers of two consenting EV drivers on their way (charging guidance)."""
EV_TRIP_TYPE = "EVChargingTrip"
"""A consenting EV driver's trip report (booked charger, requested energy, position), published by the coupler."""


def _look_ahead() -> Any:
    from aicity.domains.city.responders import responder

    return responder()


META = DomainMeta(
    kpis=KPIS,
    options=OPTIONS,
    equity=(EquityGroup("district", "person_delay_s", "person delay per district (signal quadrants)"),
            EquityGroup("district_ems", "ems_p90_s", "EMS p90 call-to-arrival per district (the call's zone centre)")),
    action_types=(INCIDENT_TRAFFIC, CHARGING_GUIDANCE),
    priorities={INCIDENT_TRAFFIC: "mobility", CHARGING_GUIDANCE: "grid_stability"},
    responders=_look_ahead,
    policy=Path(__file__).with_name("policy.toml"),
    entity_types=(EV_TRIP_TYPE,),
    test_scenario="cologne8-coupling",
    default_scenario="cologne8-city",
    ranking=("ems_p90_s", "critical_unserved_kwh", "violations", "person_delay_s", "energy_cost"),
    coordinator=True,
)
