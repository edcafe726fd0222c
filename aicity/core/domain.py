"""What a domain plug-in provides, and how the kernel discovers domains without importing any by name.

A domain lives in ``aicity/domains/<name>/`` and registers itself under the ``aicity.domains`` entry-point
group. The kernel only knows these protocols.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, runtime_checkable

from aicity.core.entity import Entity
from aicity.core.errors import UserError
from aicity.core.meta import DomainMeta

ENTRY_POINT_GROUP = "aicity.domains"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A runnable scenario of one domain."""

    name: str
    domain: str
    description: str
    begin_s: float
    end_s: float
    path: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Simulated length of the scenario."""
        return self.end_s - self.begin_s


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a planner may see: the latest *observed* entities at one time (sensor view, never ground truth)."""

    time: datetime
    elapsed_s: float
    entities: Mapping[str, Entity]

    def of_type(self, entity_type: str) -> list[Entity]:
        """Entities of one type, sorted by id."""
        return [e for _, e in sorted(self.entities.items()) if e.type == entity_type]


@dataclass(frozen=True, slots=True)
class ProposedAction:
    """A planner's proposal for one actuator, with what an explanation needs.

    ``candidates`` holds every option considered with its score; ``inputs`` names the entity ids (and values)
    the choice rested on; ``forecasts`` the forecasts used. ``needs``, ``affects`` and ``uses`` are what the
    orchestration stage reads to find conflicts between domains; a candidate that carries ``params`` (and may
    carry ``affects``, ``uses`` and ``score``) is an alternative the stage may pick instead.
    """

    target: str
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)
    score: float | None = None
    candidates: Sequence[Mapping[str, Any]] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)
    forecasts: Mapping[str, Any] = field(default_factory=dict)
    planner: str = ""
    action_type: str = "default"
    needs: tuple[str, ...] = ()
    """Entity ids the action relies on staying in service (e.g. the signals on an ambulance's route)."""
    affects: tuple[str, ...] = ()
    """Entity ids the action takes out of service or curtails (e.g. the signals on a feeder it leaves dark)."""
    uses: Mapping[str, float] = field(default_factory=dict)
    """Shared capacity it takes, ``"<entity id>#<attribute>"`` -> amount; that attribute of that entity in the
    snapshot holds the capacity (e.g. a transformer's headroom in kW)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the actuator edge did with a proposal: applied, clamped or refused, and which limits bound it."""

    action: ProposedAction
    status: str
    command: Mapping[str, Any] = field(default_factory=dict)
    bound_by: Sequence[str] = ()
    reason: str = ""

    @property
    def refused(self) -> bool:
        """True when nothing was actuated."""
        return self.status == "refused"


@dataclass(slots=True)
class DomainResult:
    """What a finished twin run reports: KPIs, per-group KPIs for equity, and time series for plots.

    A KPI with nothing to measure in the run (no call to answer, no sample) is NaN: undefined, not zero; the report
    shows it as "–" and gives it no verdict.

    ``reference`` holds KPI values of a clearly named optimum on the same window (``reference_name``, e.g. a
    perfect-foresight oracle): the report then shows it beside both modes with the gap AI City closed,
    ``(Smart − AI) / (Smart − reference)``.
    """

    kpis: dict[str, float]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    reference_name: str = ""


Planner = Callable[[Snapshot, Mapping[str, Any]], list[ProposedAction]]


@runtime_checkable
class ForecastProvider(Protocol):
    """Learns from every snapshot and gives the forecasts planners read (the only place learning state lives)."""

    name: str

    def learn(self, snapshot: Snapshot) -> None:
        """Learn from the latest observations."""
        ...

    def forecast(self, snapshot: Snapshot) -> Mapping[str, Any]:
        """Forecasts keyed by ``"<entity id>#<attribute>"`` or another documented key."""
        ...


@runtime_checkable
class Twin(Protocol):
    """A running digital twin: advances simulated time, reports sensor observations, takes actions."""

    decision_interval_s: float

    def start(self) -> None:
        """Load the scenario and start simulating."""
        ...

    def elapsed_s(self) -> float:
        """Simulated seconds since the scenario's begin."""
        ...

    def done(self) -> bool:
        """True when the scenario's end is reached."""
        ...

    def advance(self, seconds: float) -> None:
        """Simulate ``seconds`` more (the actuator edge keeps enforcing its limits meanwhile)."""
        ...

    def observe(self) -> list[Entity]:
        """What the city's sensors report now, as entities."""
        ...

    def actuate(self, action: ProposedAction) -> Outcome:
        """Pass a proposal through the actuator edge, which enforces hard limits."""
        ...

    def safe_state(self) -> None:
        """Return every actuator to the documented safe state (the stop button)."""
        ...

    def close(self) -> DomainResult:
        """Stop simulating and report the run's KPIs."""
        ...


@dataclass(slots=True)
class RunServices:
    """Per-run objects a twin may use, passed in explicitly (no module-level registries).

    ``consent`` is the run's consent registry (personal data is read only through it; ``None`` when the run
    has no governance); ``shared`` holds simulators that several twins of one city ride on, by name (e.g.
    ``"sumo"``): the first twin to open one registers it, the others attach to it.
    """

    consent: object | None = None
    shared: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class Domain(Protocol):
    """A domain plug-in: its metadata, scenarios, twins and planners per mode."""

    name: str
    description: str
    meta: DomainMeta

    def scenarios(self) -> list[Scenario]:
        """The built-in scenarios."""
        ...

    def resolve(self, name_or_path: str) -> Scenario | None:
        """A scenario by name or by path to a scenario file, or None when this domain does not know it."""
        ...

    def open_twin(self, scenario: Scenario, *, seed: int, mode: str, services: RunServices) -> Twin:
        """A twin of ``scenario`` (its ``params`` already validated); ``mode`` is ``"smart"`` or ``"ai"``."""
        ...

    def planners(self, scenario: Scenario, mode: str) -> list[Planner]:
        """The planners that decide in ``mode`` (empty: the twin runs its own fixed plans)."""
        ...

    def forecasters(self, scenario: Scenario, mode: str) -> list[ForecastProvider]:
        """The forecast providers feeding the planners in ``mode``."""
        ...


@runtime_checkable
class Controllers(Protocol):
    """A domain with named controllers beyond the two modes (benchmarks compare them through the one loop)."""

    def controllers(self) -> Mapping[str, str]:
        """Controller name → the twin mode it runs in (``smart`` or ``ai``)."""
        ...

    def controller_parts(self, scenario: Scenario, name: str) -> tuple[list[Planner], list[ForecastProvider]]:
        """Planners and forecast providers of controller ``name`` on ``scenario``."""
        ...


class ModeControllers:
    """A base for domains whose two modes are two of their named controllers (:class:`Controllers`): a mode's
    planners and forecast providers are those of its controller (``mode_controllers``)."""

    mode_controllers: ClassVar[Mapping[str, str]] = MappingProxyType({"smart": "smart", "ai": "ai"})

    def controller_parts(self, scenario: Scenario, name: str) -> tuple[list[Planner], list[ForecastProvider]]:
        """Planners and forecast providers of controller ``name`` (each domain says)."""
        raise NotImplementedError

    def controller_for(self, mode: str) -> str:
        """The controller that runs in ``mode``; an unknown mode is a :class:`UserError`."""
        try:
            return self.mode_controllers[mode]
        except KeyError:
            raise UserError(f"unknown mode {mode!r}: use 'smart' or 'ai'") from None

    def planners(self, scenario: Scenario, mode: str) -> list[Planner]:
        """The planners of the mode's controller."""
        return self.controller_parts(scenario, self.controller_for(mode))[0]

    def forecasters(self, scenario: Scenario, mode: str) -> list[ForecastProvider]:
        """The forecast providers of the mode's controller."""
        return self.controller_parts(scenario, self.controller_for(mode))[1]


@runtime_checkable
class ReportPlots(Protocol):
    """A domain that draws plots of its own into the report (beyond the kernel's series, group and map plots)."""

    def plots(self, out: Path, results: Mapping[str, DomainResult], prefix: str) -> list[str]:
        """Write PNG files into ``out`` (names starting with ``prefix``) from each mode's result; their names."""
        ...


@runtime_checkable
class CityScenarios(Protocol):
    """A domain that ships city scenarios composing its scenarios with other domains'."""

    def cities(self) -> list[CityScenario]:
        """The city scenarios it ships."""
        ...


@dataclass(frozen=True, slots=True)
class CityScenario:
    """A named composition of scenarios of several domains: one clock, one store, one ledger, one loop.

    ``parts`` are ``domain/scenario`` references (resolved by :func:`compose`); the first part sets the window.
    """

    name: str
    description: str
    parts: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def same_kpis(a: Mapping[str, float], b: Mapping[str, float], rel_tol: float = 0.0) -> bool:
    """Two runs' KPIs equal value for value (within ``rel_tol``), an undefined one (NaN) equal to an undefined one."""
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=rel_tol, abs_tol=0.0)
                                        or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


class PluginError(UserError):
    """A registered domain plug-in that cannot be loaded or does not provide a Domain."""


def discover(group: str = ENTRY_POINT_GROUP, *,
             on_error: Callable[[PluginError], None] | None = None) -> dict[str, Domain]:
    """Load every registered domain plug-in, by entry point; core never imports a domain by name.

    A plug-in that fails to load raises :class:`PluginError` (one line naming it), or, with ``on_error``, is
    reported to it and left out, so one broken plug-in does not stop a city that does not use it.
    """
    found: dict[str, Domain] = {}
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        try:
            obj = ep.load()
            domain = obj() if isinstance(obj, type) else obj
        except Exception as exc:
            error = PluginError(f"domain plug-in {ep.name!r} ({ep.value}) failed to load: "
                                f"{type(exc).__name__}: {exc}")
            if on_error is None:
                raise error from exc
            on_error(error)
            continue
        if not isinstance(domain, Domain):
            error = PluginError(f"entry point {ep.name!r} ({ep.value}) does not provide a Domain "
                                "(see aicity.core.domain.Domain)")
            if on_error is None:
                raise error
            on_error(error)
            continue
        found[domain.name] = domain
    return found


def warn_plugin(error: PluginError) -> None:
    """Say on stderr, in one line, that a plug-in was left out."""
    import sys

    print(f"aicity: warning: {error}; left out", file=sys.stderr)


def find_scenario(domains: Mapping[str, Domain], name_or_path: str) -> tuple[Domain, Scenario]:
    """Resolve a scenario name (``name`` or ``domain/name``) or file path across domains."""
    if "/" in name_or_path and name_or_path.split("/", 1)[0] in domains:
        dname, sname = name_or_path.split("/", 1)
        scen = domains[dname].resolve(sname)
        if scen is not None:
            return domains[dname], scen
    for domain in domains.values():
        scen = domain.resolve(name_or_path)
        if scen is not None:
            return domain, scen
    names = sorted(s.name for d in domains.values() for s in d.scenarios())
    raise UserError(f"unknown scenario {name_or_path!r}; known: {', '.join(names) or 'none'} "
                    "(or pass a path to a scenario file)")
