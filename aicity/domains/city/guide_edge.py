"""The actuator edge of charging guidance: two consenting drivers on their way exchange their booked chargers.

Hard limits, whatever the stage asks: both drivers consented; both are still on their way (in the simulation,
not plugged in); at most :data:`MAX_PER_INTERVAL` swaps in any :data:`INTERVAL_S`; each driver has a route to
the other's charger; the grid accepts the exchange (each booked charger stays reserved for one EV, so a guided
driver always finds a free charger). The grid side is a capability (:class:`ChargerSwap`): a grid port without
it gets every guidance refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from aicity.core.domain import Outcome, ProposedAction
from aicity.domains.city.guidance import ACTION, MAX_PAIRS, OFFER_EVERY_S

MAX_PER_INTERVAL = MAX_PAIRS
INTERVAL_S = OFFER_EVERY_S


@runtime_checkable
class ChargerSwap(Protocol):
    """A grid port that lets two driven sessions still on their way exchange their chargers."""

    def swap_chargers(self, a: str, b: str) -> str | None:
        """Exchange the chargers of sessions ``a`` and ``b``; None when done, else why not (one line)."""
        ...


class GuidanceEdge:
    """Limits and executes :data:`ACTION` (see the module docstring)."""

    def __init__(self, consented: frozenset[str]) -> None:
        self.consented = consented
        self._done: list[float] = []

    def actuate(self, action: ProposedAction, t: float, *, api: Any, grid: object, vehicle_of: Mapping[str, str],
                dest: dict[str, str], swapped: Callable[[str, str], None]) -> Outcome:
        """Check the limits, ask the grid, then send each car to the other's charger (``dest``: session → edge)."""
        if action.action != ACTION:
            return Outcome(action, "refused", bound_by=("action",), reason=f"unknown action {action.action!r}")
        a, b = action.params.get("a"), action.params.get("b")
        if not isinstance(a, str) or not isinstance(b, str) or a == b:
            return Outcome(action, "refused", bound_by=("params",), reason="needs two different sessions a and b")
        if a not in self.consented or b not in self.consented:
            return Outcome(action, "refused", bound_by=("consent",),
                           reason=f"only drivers who consented are guided ({a}, {b})")
        live = set(api.vehicle.getIDList())
        va, vb = vehicle_of.get(a), vehicle_of.get(b)
        if va is None or vb is None or va not in live or vb not in live:
            return Outcome(action, "refused", bound_by=("en_route",), reason="both EVs must be on their way")
        self._done = [x for x in self._done if t - x < INTERVAL_S]
        if len(self._done) >= MAX_PER_INTERVAL:
            return Outcome(action, "refused", bound_by=("max_per_interval",),
                           reason=f"at most {MAX_PER_INTERVAL} swaps per {INTERVAL_S:g} s")
        for vid, to in ((va, dest[b]), (vb, dest[a])):
            here = api.vehicle.getRoute(vid)[max(0, api.vehicle.getRouteIndex(vid))]
            if not api.simulation.findRoute(here, to).edges:
                return Outcome(action, "refused", bound_by=("route",), reason=f"{vid} has no route to {to}")
        if not isinstance(grid, ChargerSwap):
            return Outcome(action, "refused", bound_by=("grid",), reason="the grid port cannot exchange chargers")
        why = grid.swap_chargers(a, b)
        if why is not None:
            return Outcome(action, "refused", bound_by=("charger",), reason=why)
        api.vehicle.changeTarget(va, dest[b])
        api.vehicle.changeTarget(vb, dest[a])
        dest[a], dest[b] = dest[b], dest[a]
        swapped(a, b)
        self._done.append(t)
        return Outcome(action, "applied", {"a": a, "b": b, "to_a": dest[a], "to_b": dest[b]})
