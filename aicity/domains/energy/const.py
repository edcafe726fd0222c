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
URN = "urn:ngsi-ld:"
CHARGER_PREFIX = f"{URN}{CHARGER_TYPE}:"
METER_PREFIX = f"{URN}{METER_TYPE}:"
BATTERY_PREFIX = f"{URN}{BATTERY_TYPE}:"
PV_PREFIX = f"{URN}{PV_TYPE}:"
BUS_PREFIX = f"{URN}{BUS_TYPE}:"
ENTITY_TYPES = (CHARGER_TYPE, METER_TYPE, BATTERY_TYPE, PV_TYPE, BUS_TYPE)

EV_CHARGING = "ev_charging"
"""Action type: set a charger's power limit (kW) for the coming interval."""
BATTERY_DISPATCH = "battery_dispatch"
"""Action type: set a battery's power (kW, positive charges)."""
ACTION_TYPES = (EV_CHARGING, BATTERY_DISPATCH)
SET_POWER = "set_power"
"""The one action both actuators take: ``{"kw": value}``."""
