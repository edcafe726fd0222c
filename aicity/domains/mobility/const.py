"""The mobility domain's constants, in one place: entity types, id prefixes, action types."""

from __future__ import annotations

SIGNAL_TYPE = "TrafficSignal"
"""Smart Data Models ``TrafficSignal``: one per signal-controlled junction."""
FLOW_TYPE = "TrafficFlowObserved"
"""Smart Data Models ``TrafficFlowObserved``: one per detector group (incoming or outgoing lane)."""
EV_TYPE = "EmergencyVehicle"
"""An emergency vehicle's own reported position and planned route."""
VEHICLE_TYPE = "Vehicle"
"""A connected (consented, pseudonymous) probe vehicle."""
URN = "urn:ngsi-ld:"
SIGNAL_PREFIX = f"{URN}{SIGNAL_TYPE}:"
FLOW_PREFIX = f"{URN}{FLOW_TYPE}:"
EV_PREFIX = "aicity_ev_"
"""SUMO id prefix of the emergency vehicles the twin inserts."""

SIGNAL_PHASE = "signal_phase"
"""Action type: choose a signal's next green phase (AI planner, max-pressure, safe-plan resume)."""
SIGNAL_PREEMPTION = "signal_preemption"
"""Action type: hold a green for an emergency vehicle, and release it."""
ACTION_TYPES = (SIGNAL_PHASE, SIGNAL_PREEMPTION)

POWER_MAINS = "mains"
"""A signal cabinet's ``powerSource``: on mains power."""
POWER_BATTERY = "battery"
"""A signal cabinet's ``powerSource``: mains lost, running normally on its battery backup."""
POWER_NONE = "none"
"""A signal cabinet's ``powerSource``: no power, the signal is dark (all-way stop); it cannot be commanded."""
SIGNALS_SHARED_NAME = "signals"
"""The key of the mobility twin, as the signals' power port, in ``RunServices.shared``."""
