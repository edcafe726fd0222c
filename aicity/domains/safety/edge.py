"""The dispatch actuator edge: a pure state machine that enforces the hard limits whatever a planner asks.

* an ambulance holds at most one assignment, and an incident gets at most one ambulance;
* an ambulance in a hospital handover (or otherwise bound to an incident) cannot be sent;
* relocations are bounded per hour (city-wide) and per ambulance per hour, and a relocation cannot strip the
  city below the declared coverage floor (demand share covered by at least one available ambulance) unless it
  does not lower coverage;
* in the safe state planners are refused: the twin dispatches the closest idle ambulance on free-flow times and
  every idle ambulance returns home.

Every refusal names the limit that bound it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aicity.domains.safety.const import AVAILABLE, HANDOVER, RESPONDING, RETURNING
from aicity.domains.safety.mexclp import demand_covered, strips_floor

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """The limits the edge enforces (declared as options, reported with every refusal)."""

    max_relocations_per_hour: int = 6
    max_relocations_per_unit_hour: int = 2
    coverage_floor: float = 0.5

    def __post_init__(self) -> None:
        if self.max_relocations_per_hour < 0 or self.max_relocations_per_unit_hour < 0:
            raise ValueError("relocation bounds cannot be negative")
        if not 0.0 <= self.coverage_floor <= 1.0:
            raise ValueError(f"coverage floor must be a share from 0 to 1, got {self.coverage_floor!r}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the edge answered: ``applied`` or ``refused``, the limits that bound it, and why."""

    status: str
    bound_by: tuple[str, ...] = ()
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when applied."""
        return self.status == "applied"


def _refuse(limit: str, reason: str) -> Verdict:
    return Verdict("refused", (limit,), reason)


@dataclass
class DispatchEdge:
    """Assignments, statuses and relocation log of every ambulance; ``covers`` and ``demand`` for the floor."""

    units: dict[str, str]
    where: dict[str, str | None]
    covers: Mapping[str, set[str]]
    demand: Mapping[str, float]
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    assigned: dict[str, str] = field(default_factory=dict)
    incident_unit: dict[str, str] = field(default_factory=dict)
    reloc: dict[str, list[float]] = field(default_factory=dict)
    safe: bool = False

    # ---- coverage ----------------------------------------------------------------------------------
    def covered_share(self, where: Mapping[str, str | None] | None = None) -> float:
        """Demand share of zones with at least one available ambulance whose station covers them."""
        w = self.where if where is None else where
        return demand_covered((site for unit, site in w.items()
                               if site is not None and self.units.get(unit) in AVAILABLE), self.covers, self.demand)

    def relocations_last_hour(self, now: float, unit: str | None = None) -> int:
        """Relocations in the hour before ``now`` (of ``unit``, else of all)."""
        logs = [self.reloc.get(unit, [])] if unit is not None else list(self.reloc.values())
        return sum(1 for log in logs for t in log if now - t < HOUR_S)

    # ---- dispatch ----------------------------------------------------------------------------------
    def check_dispatch(self, unit: str, incident: str, reported: bool = True) -> Verdict:
        """May ``unit`` be sent to ``incident`` now?"""
        if self.safe:
            return _refuse("safe_state", "dispatch runs closest-idle on free-flow times while held in the safe state")
        if unit not in self.units:
            return _refuse("unknown_target", f"no ambulance {unit!r}")
        if not reported:
            return _refuse("reported_incidents_only", f"incident {incident!r} is not a reported incident")
        if incident in self.incident_unit:
            return _refuse("one_ambulance_per_incident",
                           f"incident {incident} already has ambulance {self.incident_unit[incident]}")
        status = self.units[unit]
        if status == HANDOVER:
            return _refuse("hospital_handover", f"ambulance {unit} is handing a patient over at the hospital")
        if unit in self.assigned or status not in AVAILABLE:
            return _refuse("one_assignment", f"ambulance {unit} is {status} for incident "
                                             f"{self.assigned.get(unit, '?')}")
        return Verdict("applied")

    def dispatch(self, unit: str, incident: str, reported: bool = True) -> Verdict:
        """Assign ``unit`` to ``incident`` when the limits allow."""
        v = self.check_dispatch(unit, incident, reported)
        if v.ok:
            self.assigned[unit] = incident
            self.incident_unit[incident] = unit
            self.units[unit] = RESPONDING
            self.where[unit] = None
        return v

    def force_dispatch(self, unit: str, incident: str) -> Verdict:
        """The safe state's own dispatch (closest idle): every limit but the safe state itself applies."""
        safe, self.safe = self.safe, False
        try:
            return self.dispatch(unit, incident)
        finally:
            self.safe = safe

    # ---- relocation --------------------------------------------------------------------------------
    def check_relocate(self, unit: str, site: str, now: float) -> Verdict:
        """May ``unit`` move to station ``site`` now?"""
        if self.safe:
            return _refuse("safe_state", "relocations are held: every idle ambulance returns home")
        if unit not in self.units:
            return _refuse("unknown_target", f"no ambulance {unit!r}")
        if site not in self.covers:
            return _refuse("known_station", f"no station at {site!r}")
        if self.units[unit] not in AVAILABLE or unit in self.assigned:
            return _refuse("available_only", f"ambulance {unit} is {self.units[unit]}")
        lim = self.limits
        if self.relocations_last_hour(now) >= lim.max_relocations_per_hour:
            return _refuse("max_relocations_per_hour", f"{lim.max_relocations_per_hour} relocations in the last hour")
        if self.relocations_last_hour(now, unit) >= lim.max_relocations_per_unit_hour:
            return _refuse("max_relocations_per_unit_hour",
                           f"ambulance {unit} moved {lim.max_relocations_per_unit_hour} times in the last hour")
        before = self.covered_share()
        after = self.covered_share({**self.where, unit: site})
        if strips_floor(before, after, lim.coverage_floor):
            return _refuse("coverage_floor", f"coverage would fall to {after:.2f}, below the floor "
                                             f"{lim.coverage_floor:.2f} (now {before:.2f})")
        return Verdict("applied")

    def relocate(self, unit: str, site: str, now: float) -> Verdict:
        """Send ``unit`` to station ``site`` when the limits allow."""
        v = self.check_relocate(unit, site, now)
        if v.ok:
            self.reloc.setdefault(unit, []).append(now)
            self.where[unit] = site
            self.units[unit] = RETURNING
        return v

    # ---- what the twin reports -------------------------------------------------------------------
    def set_status(self, unit: str, status: str, site: str | None = None) -> None:
        """The ambulance's new status (and the station it is at or heading to, when available).

        Once available again its assignment ends; the incident keeps its ambulance (it is never sent another).
        """
        self.units[unit] = status
        self.where[unit] = site if status in AVAILABLE else None
        if status in AVAILABLE:
            self.assigned.pop(unit, None)
