"""What the energy domain declares: KPIs, scenario options, equity groups, policy and plausibility rules."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError
from aicity.core.meta import KPI, Better, DomainMeta, EquityGroup, Option
from aicity.domains.energy.const import (
    ACTION_TYPES,
    BATTERY_DISPATCH,
    BATTERY_TYPE,
    CHARGER_TYPE,
    ENTITY_TYPES,
    EV_CHARGING,
    METER_TYPE,
    RESTORE,
)

L, H = Better.LOWER, Better.HIGHER
KPIS = (
    KPI("peak_kw", "kW", L, True, "highest 5-15 min average import at the transformer"),
    KPI("energy_cost", "$", L, True, "energy charges of the tariff on the imported energy"),
    KPI("delivered_frac", "share", H, True, "energy delivered ÷ requested (capped at what each EV could take); on "
        "a city scenario ÷ what was owed by the window's end (else ÷ what full power could have delivered)"),
    KPI("co2_kg", "kg", L, True, "imported energy × marginal CO2 intensity"),
    KPI("demand_cost", "$", L, False, "the tariff's demand charge on the window's peak"),
    KPI("bill", "$", L, False, "the whole bill: energy charges plus the demand charge on the window's peak"),
    KPI("unserved_kwh", "kWh", L, False, "requested EV energy not delivered by departure; on a city scenario the "
        "energy of every load (critical ones included) on de-energised buses"),
    KPI("critical_unserved_kwh", "kWh", L, True, "energy of critical loads (signals, hospitals, stations) on "
        "de-energised buses"),
    KPI("transformer_overload_min", "min", L, True, "minutes any transformer is loaded above 100 %"),
    KPI("voltage_violations", "count", L, True, "bus × step outside 0.95-1.05 pu (AC power flow)"),
    KPI("voltage_worst_pu", "pu", L, False, "worst excursion beyond the voltage band (0 = none)"),
    KPI("loading_violations", "count", L, True, "line / transformer × step above 100 % loading"),
    KPI("loading_worst_pct", "%", L, False, "highest line or transformer loading"),
    KPI("battery_throughput_kwh", "kWh", L, False, "energy through the batteries (wear)"),
)
"""Every KPI an energy twin reports (``DomainResult.kpis`` has exactly these keys)."""


def _faults(value: Any) -> Any:
    from aicity.domains.energy.faults import MeterFaults

    MeterFaults.parse(value)
    return value


CITY_OPTIONS = (
    Option("outage_feeder", str, "", "city scenario: the feeder whose transformer trips ('' none)", "",
           choices=("", "R", "I", "C")),
    Option("outage_at_s", float, 600.0, "city scenario: when the feeder trips, after the window's begin", "s",
           minimum=0, maximum=86400),
    Option("outage_duration_s", float, 1800.0, "city scenario: how long until the transformer is repaired", "s",
           minimum=0, maximum=86400),
    Option("tie_kw", float, None, "city scenario: the tie's capacity (default: 40 % of the dead feeder's load at "
           "the trip, so it cannot pick up everything)", "kW", minimum=0, maximum=10000),
    Option("crew_delay_s", float, 1200.0, "city scenario, Smart City mode: the crew closes the tie this long "
           "after the trip", "s", minimum=0, maximum=86400),
    Option("driven_share", float, 1.0, "city scenario: share of the window's arrivals whose EVs drive in "
           "traffic (seeded choice)", "share", minimum=0, maximum=1),
    Option("surge_at_s", float, -1.0, "city scenario: an EV arrival surge this long after the window's begin "
           "(-1 none)", "s", minimum=-1, maximum=86400),
    Option("surge_evs", int, 0, "city scenario: extra EVs arriving within 5 min of surge_at_s (copied from the "
           "day's sessions)", "", minimum=0, maximum=500),
)
"""Options only the city scenario honours (refused elsewhere)."""

OPTIONS = (
    Option("decision_interval_s", float, None, "seconds between dispatch decisions (default and minimum: the "
           "scenario's step, 5 min at ACN, 15 min in the district, 1 min in the city; a multiple of it)", "s",
           minimum=60, maximum=3600, step=60),
    Option("transformer_kw", float, None, "transformer rating (default: the scenario's)", "kW", minimum=1,
           maximum=100000),
    Option("user_input", str, "acn-sim", "what a session's requested energy and estimated departure are: "
           "'acn-sim' (the energy the EV took and its real departure: ACN-Sim's convention, in which the published "
           "anchors were measured), 'typed-departure' (the departure the user typed in the app), 'typed' (the "
           "energy and departure the user typed)", choices=("acn-sim", "typed-departure", "typed")),
    Option("safe_rate_kw", float, 1.248, "chargers' safe rate while stopped or on implausible inputs", "kW",
           minimum=0, maximum=22),
    Option("horizon_h", float, 12.0, "MPC look-ahead", "h", minimum=1, maximum=48),
    Option("forecast_model", str, "seasonal_average", "aicity.forecast model of arrivals and inflexible load",
           choices=("seasonal_average", "seasonal_naive_day", "ewma", "rls", "ensemble")),
    Option("anticipate", bool, True, "plan forecast arrivals as flexible demand (AI City mode)"),
    Option("arrival_quantile", float, 0.6, "ACN sites, AI City mode: the upper quantile of the energy still to "
           "arrive today (learned per time of day from past days) that the MPC plans as flexible demand", "share",
           minimum=0.5, maximum=0.99),
    Option("history_days", int, 28, "AI City mode: days of the site's session records before the window the "
           "arrival forecaster learns from first on ACN sites; on the district any value but 0 lets the forecasters "
           "learn the week of meter readings and charger records before it (0: they start cold)", "d", minimum=0,
           maximum=120),
    Option("plan_load", str, "cautious", "district, AI City mode: the inflexible load the MPC buys energy for: "
           "'cautious' (the peak guard's upper bound, which it also holds the peak against) or 'expected' (the "
           "forecast mean; the peak rows keep the upper bound)", choices=("cautious", "expected")),
    Option("draw", int, 1, "which seeded draw of sessions and assets a district scenario uses (benchmarks pass "
           "their seed)", "", minimum=0, maximum=2**31 - 1),
    Option("substation_kw", float, None, "feeders scenarios: the shared substation's rating upstream of the districts' "
           "transformers (default: 230 kVA per district)", "kVA", minimum=1, maximum=1000000),
    Option("oracle", bool, True, "solve the perfect-foresight oracle at the end for the report"),
    Option("sensor_faults", dict, None, 'injected meter faults: {"negative"|"nan"|"freeze"|"stale": [ids], '
           '"after_s": s}', parse=_faults),
    *CITY_OPTIONS,
)
"""Scenario options (``aicity run --set KEY=VALUE``), validated up front."""

_AGE = 1800.0  # s: a meter silent for longer than 2 of the longest... decision intervals is stale
PLAUSIBILITY: dict[str, Any] = {
    "rules": [
        {"entity_type": METER_TYPE, "attribute": "totalActiveEnergyImport", "min": 0, "max_age_s": _AGE,
         "nullable": False},
        {"entity_type": METER_TYPE, "attribute": "activePower", "min": -100000, "max": 100000, "max_age_s": _AGE,
         "nullable": False},
        {"entity_type": CHARGER_TYPE, "attribute": "power", "min": 0, "max": 400, "max_age_s": _AGE,
         "nullable": False},
        {"entity_type": CHARGER_TYPE, "attribute": "energyDelivered", "min": 0, "max": 200, "max_age_s": _AGE},
        {"entity_type": BATTERY_TYPE, "attribute": "stateOfCharge", "min": 0, "max": 1, "max_age_s": _AGE,
         "nullable": False},
    ],
    "required": [f"urn:ngsi-ld:{METER_TYPE}:*"],
}
"""Input plausibility rules: a negative, non-finite or stale meter reading makes the decision resting on it
degraded (that asset goes to its safe state); NaN readings are dead-lettered at ingress."""


def _fit(params: Mapping[str, Any]) -> None:
    """Options that must fit together."""
    model = params.get("forecast_model")
    if model is not None and not isinstance(model, str):
        raise UserError(f"option forecast_model must be text, got {model!r}")


META = DomainMeta(
    kpis=KPIS,
    options=OPTIONS,
    equity=(EquityGroup("charger_group", "delivered_frac", "delivered ÷ requested per charger bank"),
            EquityGroup("user_group", "delivered_frac", "delivered ÷ requested: app users vs no app"),
            EquityGroup("district", "delivered_frac", "delivered ÷ requested per feeder district")),
    action_types=ACTION_TYPES,
    priorities={EV_CHARGING: "energy_cost", BATTERY_DISPATCH: "energy_cost", RESTORE: "grid_stability"},
    policy=Path(__file__).with_name("policy.toml"),
    entity_types=ENTITY_TYPES,
    plausibility=PLAUSIBILITY,
    test_scenario="acn-caltech-day",
    test_duration_s=3600.0,
    default_scenario="",
    validate=_fit,
)
"""The energy domain's metadata."""
