"""The safety domain's constants, in one place: entity types, id prefixes, action types, statuses."""

from __future__ import annotations

DOMAIN = "safety"
AMBULANCE_TYPE = "Ambulance"
"""An ambulance's own report (vehicle location system): position, road segment, status, assignment."""
INCIDENT_TYPE = "Incident"
"""A reported emergency call: time, place (road segment and zone), priority, status."""
SPEED_TYPE = "RoadSegmentSpeed"
"""What a road segment's detector reports: mean speed of the vehicles on it (null when none)."""
EV_TYPE = "EmergencyVehicle"
"""An en-route ambulance in the shape the mobility domain's preemption planner reads (position, signals ahead)."""
URN = "urn:ngsi-ld:"
AMBULANCE_PREFIX = f"{URN}{AMBULANCE_TYPE}:"
INCIDENT_PREFIX = f"{URN}{INCIDENT_TYPE}:"
VEHICLE_PREFIX = "aicity_amb_"
"""SUMO id prefix of the ambulances' trips (never mobility's ``aicity_ev_``: mobility would count them)."""
BACKGROUND_EXCLUDED = (VEHICLE_PREFIX, "aicity_ev_")
"""SUMO id prefixes that are not background traffic: the ambulances and mobility's emergency vehicles."""
AMB_VTYPE = "aicity_ambulance"
"""SUMO vehicle type of the ambulances (vClass ``emergency``)."""

DISPATCH = "ems_dispatch"
"""Action type: send an available ambulance to a reported incident."""
RELOCATION = "ems_relocation"
"""Action type: move an available ambulance to another station."""
ACTION_TYPES = (DISPATCH, RELOCATION)

IDLE = "idle"
RESPONDING = "responding"
ON_SCENE = "on_scene"
TRANSPORTING = "transporting"
HANDOVER = "handover"
RETURNING = "returning"
STATUSES = (IDLE, RESPONDING, ON_SCENE, TRANSPORTING, HANDOVER, RETURNING)
AVAILABLE = (IDLE, RETURNING)
"""Statuses in which an ambulance may take a new call (it is not bound to an incident)."""

TRAFFIC_INCIDENT_TYPE = "TrafficIncident"
"""A multi-vehicle road incident: the road segment, the lanes it blocks, since and until when (mobility and other
planners read it to route around the closure)."""
TRAFFIC_INCIDENT_PREFIX = f"{URN}{TRAFFIC_INCIDENT_TYPE}:"

