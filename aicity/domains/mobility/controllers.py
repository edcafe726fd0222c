"""Named signal controllers: what planners and forecasters each runs, and in which twin mode.

Hook for the AI City controller: a module ``aicity.domains.mobility.ai`` defining
``make_ai_controller(scenario) -> tuple[list[Planner], list[ForecastProvider]]`` becomes controller ``"ai"``
(until it exists, ``"ai"`` is max-pressure), and a module ``aicity.domains.mobility.preemption`` defining
``make_preemption_planner(scenario) -> Planner`` adds emergency preemption to ``"ai"`` (first in the list).
Other controllers can be added with :func:`register_controller`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from aicity.core.domain import ForecastProvider, Planner, Scenario
from aicity.core.errors import UserError
from aicity.domains.mobility.planners import max_pressure
from aicity.domains.mobility.safe_plan import resume_planner

ControllerFactory = Callable[[Scenario], tuple[list[Planner], list[ForecastProvider]]]

CONTROLLERS: dict[str, ControllerFactory] = {
    "fixed": lambda scen: ([], []),
    "maxpressure": lambda scen: ([resume_planner, max_pressure], []),
}
MODES: dict[str, str] = {"fixed": "smart", "maxpressure": "ai", "ai": "ai"}


def register_controller(name: str, factory: ControllerFactory, mode: str = "ai") -> None:
    """Add or replace a named controller (``mode``: the twin mode it runs in)."""
    CONTROLLERS[name] = factory
    MODES[name] = mode


def _optional(module: str, attr: str) -> Any:
    try:
        mod = importlib.import_module(f"aicity.domains.mobility.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"aicity.domains.mobility.{module}":
            return None
        raise
    return getattr(mod, attr, None)


def _ai(scenario: Scenario) -> tuple[list[Planner], list[ForecastProvider]]:
    make_ai = _optional("ai", "make_ai_controller")
    planners, forecasters = make_ai(scenario) if make_ai is not None else ([max_pressure], [])
    make_pre = _optional("preemption", "make_preemption_planner")
    if make_pre is not None:
        planners = [make_pre(scenario), *planners]
    forecasters = list(forecasters)
    if scenario.params.get("probes") not in (None, False):  # connected-vehicle probe features (consented only)
        from aicity.domains.mobility.probes import ProbeFeatures

        forecasters.append(ProbeFeatures())
    return [resume_planner, *planners], forecasters


def controller(name: str) -> tuple[ControllerFactory, str]:
    """The factory and twin mode of controller ``name`` (``fixed``, ``maxpressure``, ``ai``, or registered)."""
    if name == "ai" and "ai" not in CONTROLLERS:
        return _ai, "ai"
    if name not in CONTROLLERS:
        known = ", ".join(sorted({*CONTROLLERS, "ai"}))
        raise UserError(f"unknown mobility controller {name!r}; known: {known}")
    return CONTROLLERS[name], MODES.get(name, "ai")
