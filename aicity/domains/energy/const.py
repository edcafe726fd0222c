"""The energy domain's constants, in one place: entity types, id prefixes, action types."""

from __future__ import annotations

DOMAIN = "energy"
CHARGER_TYPE = "EVChargingStation"
"""Smart Data Models ``EVChargingStation``: one per charger, with the connected session (if any)."""
METER_TYPE = "ThreePhaseAcMeasurement"
"""Smart Data Models ``ThreePhaseAcMeasurement`` (dataModel.Energy): the site / transformer meter."""
BATTERY_TYPE = "BatteryStorage"
"""A stationary battery's own report (state of charge, power); no Smart Data Model covers it."""
PV_TYPE = "PhotovoltaicMeasurement"
"""Smart Data Models ``PhotovoltaicMeasurement`` (dataModel.Energy): a PV system's inverter meter."""
BUS_TYPE = "GridBusMeasurement"
"""A feeder bus's voltage measurement (a grid operator's substation or smart-meter voltage)."""
TRANSFORMER_TYPE = "Transformer"
"""A feeder transformer (``urn:ngsi-ld:Transformer:R``): ``rating``, ``loading_kw``, ``headroom`` kW, ``inService``."""
TIE_TYPE = "Tie"
"""A normally-open tie between two feeders: ``capacity``, ``used``, ``headroom`` (kW), ``closed``."""
LOADPOINT_TYPE = "LoadPoint"
"""A bus's load point on the city grid: measured load, supply state, feeder and district."""
CRITICAL_TYPE = "CriticalLoad"
"""A critical load a city coupler registered on a bus (a signal cabinet, a hospital, a station)."""
URN = "urn:ngsi-ld:"
CHARGER_PREFIX = f"{URN}{CHARGER_TYPE}:"
METER_PREFIX = f"{URN}{METER_TYPE}:"
BATTERY_PREFIX = f"{URN}{BATTERY_TYPE}:"
PV_PREFIX = f"{URN}{PV_TYPE}:"
BUS_PREFIX = f"{URN}{BUS_TYPE}:"
TRANSFORMER_PREFIX = f"{URN}{TRANSFORMER_TYPE}:"
TIE_PREFIX = f"{URN}{TIE_TYPE}:"
LOADPOINT_PREFIX = f"{URN}{LOADPOINT_TYPE}:"
CRITICAL_PREFIX = f"{URN}{CRITICAL_TYPE}:"
ENTITY_TYPES = (CHARGER_TYPE, METER_TYPE, BATTERY_TYPE, PV_TYPE, BUS_TYPE, TRANSFORMER_TYPE, TIE_TYPE, LOADPOINT_TYPE,
                CRITICAL_TYPE)

EV_CHARGING = "ev_charging"
"""Action type: set a charger's power limit (kW) for the coming interval."""
BATTERY_DISPATCH = "battery_dispatch"
"""Action type: set a battery's power (kW, positive charges)."""
RESTORE = "restore"
"""Action type and action: pick up load points of a dead feeder through a tie (``{"buses": [...]}`` on a tie,
``{"on": bool}`` on a load point)."""
ACTION_TYPES = (EV_CHARGING, BATTERY_DISPATCH, RESTORE)
SET_POWER = "set_power"
"""The one action both actuators take: ``{"kw": value}``."""

VMIN, VMAX = 0.95, 1.05
"""The voltage band, pu: the LP's constraint, the KPIs' violations and the report's voltage plot."""
