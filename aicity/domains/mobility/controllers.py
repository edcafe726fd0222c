"""Named signal controllers: the planners and forecast providers each runs, and the twin mode it runs in.

``fixed`` is Smart City mode (the network's fixed-time programs); ``ai`` is AI City mode (emergency preemption
first, then the AI planner); ``maxpressure`` is the classic adaptive baseline; ``ai_nopreempt`` is the AI planner
without preemption (to isolate what preemption adds). Benchmarks pick them by name through the one loop.
"""

from __future__ import annotations

from collections.abc import Callable

from aicity.core.domain import ForecastProvider, Planner, Scenario
from aicity.core.errors import UserError

Parts = tuple[list[Planner], list[ForecastProvider]]
ControllerFactory = Callable[[Scenario], Parts]

MODES: dict[str, str] = {"fixed": "smart", "maxpressure": "ai", "ai": "ai", "ai_nopreempt": "ai"}
"""Controller → the twin mode it runs in."""


def _fixed(scenario: Scenario) -> Parts:
    return [], []


def _maxpressure(scenario: Scenario) -> Parts:
    from aicity.domains.mobility.planners import max_pressure
    from aicity.domains.mobility.safe_plan import resume_planner

    return [resume_planner, max_pressure], []


def _ai_nopreempt(scenario: Scenario) -> Parts:
    from aicity.domains.mobility.ai import make_ai_controller
    from aicity.domains.mobility.safe_plan import resume_planner

    planners, forecasters = make_ai_controller(scenario)
    return [resume_planner, *planners], list(forecasters)


def _ai(scenario: Scenario) -> Parts:
    from aicity.domains.mobility.preemption import make_preemption_planner

    planners, forecasters = _ai_nopreempt(scenario)
    return [planners[0], make_preemption_planner(scenario), *planners[1:]], forecasters


CONTROLLERS: dict[str, ControllerFactory] = {
    "fixed": _fixed, "maxpressure": _maxpressure, "ai": _ai, "ai_nopreempt": _ai_nopreempt}


def controller(name: str) -> ControllerFactory:
    """The factory of controller ``name``."""
    if name not in CONTROLLERS:
        raise UserError(f"unknown mobility controller {name!r}; known: {', '.join(CONTROLLERS)}")
    return CONTROLLERS[name]
