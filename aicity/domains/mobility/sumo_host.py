"""One SUMO simulation that several twins of a city ride on (libsumo allows one simulation per process).

The first twin to open SUMO (mobility, in a city) puts its :class:`SumoHost` in the run's shared simulators
(``RunServices.shared["sumo"]``); a later twin of the same city (e.g. safety's ambulances) attaches to it instead
of starting its own. Each twin asks the host to :meth:`SumoHost.advance_to` its own time; the host steps SUMO
once per second up to the latest time asked, calling every rider's hooks before and after each step.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aicity.core.errors import UserError

SHARED_NAME = "sumo"
"""The key of the host in ``RunServices.shared``."""

Hook = Callable[[float], None]


class SumoHost:
    """A running SUMO simulation, stepped 1 s at a time, with hooks for every twin riding on it."""

    def __init__(self, api: Any, begin_s: float, end_s: float) -> None:
        self.api = api
        self.t = float(begin_s)
        self.begin_s = float(begin_s)
        self.end_s = float(end_s)
        self._before: list[Hook] = []
        self._after: list[Hook] = []
        self.closed = False

    @classmethod
    def start(cls, args: list[str], *, begin_s: float, end_s: float, use_traci: bool = False,
              name: str = "") -> SumoHost:
        """Start SUMO with ``args`` (libsumo, or TraCI when asked); a refused input is a :class:`UserError`."""
        try:
            if use_traci:  # a labelled connection of its own: several TraCI simulations may run in one process
                import traci

                label = f"aicity-{name}-{uuid.uuid4().hex[:8]}"
                traci.start(args, label=label)
                api: Any = traci.getConnection(label)
            else:
                import libsumo

                api = libsumo
                api.start(args)
        except Exception as exc:
            raise UserError(f"SUMO could not load scenario {name!r}: {exc}") from exc
        return cls(api, begin_s, end_s)

    @property
    def hooks(self) -> int:
        """How many hooks the riders set (a twin tells from it whether another twin rides this simulation)."""
        return len(self._before) + len(self._after)

    def restart(self, args: list[str], at_s: float, *, use_traci: bool = False, name: str = "",
                stopped: Callable[[], None] | None = None) -> None:
        """Stop this simulation (SUMO writes its outputs whole), call ``stopped()``, and start SUMO again with
        ``args`` at simulation time ``at_s`` (from a saved state: ``--load-state``); the riders' hooks stay. A
        refused input is a :class:`UserError`."""
        self.api.close()
        if stopped is not None:
            stopped()
        self.api = SumoHost.start(args, begin_s=at_s, end_s=self.end_s, use_traci=use_traci, name=name).api
        self.t = float(at_s)

    def on_step(self, before: Hook | None = None, after: Hook | None = None) -> None:
        """Call ``before(t)`` ahead of each 1 s step from ``t`` and ``after(t)`` once the step reached ``t``."""
        if before is not None:
            self._before.append(before)
        if after is not None:
            self._after.append(after)

    def advance_to(self, t: float) -> None:
        """Step SUMO up to absolute simulation time ``t`` (never past the end; a no-op when already there)."""
        while self.t + 1e-9 < t and self.t + 1e-9 < self.end_s:
            now = self.t
            for hook in self._before:
                hook(now)
            self.api.simulationStep()
            self.t = now + 1.0
            for hook in self._after:
                hook(self.t)

    def close(self) -> None:
        """Stop SUMO (once)."""
        if not self.closed:
            self.api.close()
            self.closed = True
