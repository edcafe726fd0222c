"""Optional capabilities of twins, forecast providers and domains: small runtime-checkable protocols.

The loop and the runner test for a capability with ``isinstance(obj, Capability)``; nothing probes for
attributes by name. A twin that has none of them is still a complete :class:`aicity.core.domain.Twin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypedDict, runtime_checkable

from aicity.core.domain import DomainResult, ForecastProvider, Scenario


class EdgeActionData(TypedDict):
    """What an actuator edge did on its own (forced change at a limit, end of a hold): an ``edge_action`` event.

    ``target`` is the actuator's entity id, ``event`` what happened, ``time_s`` the twin's elapsed seconds.
    """

    target: str
    event: str
    time_s: float
    detail: dict[str, Any]


class RejectedInput(TypedDict):
    """Input a twin refused at its own boundary (a malformed report, a duplicate call): kept, never acted on."""

    source: str
    reason: str
    payload: Any


@runtime_checkable
class DeadLetterSource(Protocol):
    """A twin that validates inputs of its own (e.g. reported incidents) and hands the rejects to the loop."""

    def rejected(self) -> list[RejectedInput]:
        """Drain what was rejected since the last call; the loop dead-letters and counts each."""
        ...


@runtime_checkable
class TargetSafeState(Protocol):
    """A twin that can put one target in its safe state (implausible inputs for that target only)."""

    def safe_state_for(self, target: str) -> bool:
        """Put ``target`` in its safe state; True when the twin knows the target."""
        ...


@runtime_checkable
class Resumable(Protocol):
    """A twin that hands control back to its planners after a stop or a demotion."""

    def resume(self) -> None:
        """Leave the safe state (actuators keep their current setting until the next decision)."""
        ...


@runtime_checkable
class EdgeEventSource(Protocol):
    """A twin whose actuator edges act on their own between decisions (and report it)."""

    def edge_events(self) -> list[EdgeActionData]:
        """Drain what the edges did since the last call."""
        ...


@runtime_checkable
class Clocked(Protocol):
    """A twin whose scenario starts at a real time of day (observations then carry real ``observedAt``)."""

    start_time: datetime


@runtime_checkable
class SharedSimulator(Protocol):
    """A simulator several twins of one city ride on (e.g. one SUMO for mobility and safety).

    Each twin calls ``advance_to`` with its own target time; the simulator steps once, to the latest one.
    """

    def advance_to(self, elapsed_s: float) -> None:
        """Simulate up to ``elapsed_s`` seconds after the scenario's begin (no-op when already there)."""
        ...


@runtime_checkable
class Integrates(Protocol):
    """A twin that coordinates a city: after every part closed, it turns their results (and the loop's
    counters) into its own result, the city's integrated KPIs."""

    def integrate(self, results: Mapping[str, DomainResult], loop: Mapping[str, Any]) -> DomainResult:
        """Its result over every part's ``results`` and the loop's counters."""
        ...


@runtime_checkable
class AccuracyReporting(Protocol):
    """A forecast provider that reports the live accuracy of its forecasts (for the policy's accuracy guards)."""

    name: str

    def accuracy(self) -> Mapping[str, float]:
        """Rolling one-step error and the persistence baseline's (see :mod:`aicity.forecast.accuracy`)."""
        ...


@runtime_checkable
class SensorFeeds(Protocol):
    """A twin with a data feed only it can serve (e.g. consented probe vehicles) to its own forecast providers."""

    def feed_providers(self) -> list[ForecastProvider]:
        """Forecast providers reading the twin's feed; the loop adds them to the part's providers."""
        ...


class Crossing(TypedDict):
    """What leaves one district through a border for the neighbour behind it (a vehicle, a power flow, an
    ambulance): ``via`` is the border's id in the sending district's scenario, ``kind`` what crosses, ``at_s``
    the sending twin's elapsed seconds when it left, ``payload`` what the receiving twin needs (JSON-ready)."""

    via: str
    kind: str
    at_s: float
    payload: dict[str, Any]


@runtime_checkable
class Bordered(Protocol):
    """A twin of one district of a partitioned city: what leaves through its borders goes to the neighbour."""

    def outbound(self) -> list[Crossing]:
        """Drain what left through a border since the last call (it is no longer in this twin)."""
        ...

    def inbound(self, crossings: list[Crossing]) -> list[RejectedInput]:
        """Take in what crossed into this district; what it cannot take is returned (never dropped)."""
        ...


@dataclass(frozen=True, slots=True)
class DistrictScenario:
    """One district of a partitioned scenario: its own scenario and, per border id, the district behind it."""

    district: str
    scenario: Scenario
    borders: Mapping[str, str]


@runtime_checkable
class Partitionable(Protocol):
    """A domain whose scenarios split into districts that run apart and exchange only what crosses a border."""

    def partition(self, scenario: Scenario, districts: int) -> list[DistrictScenario]:
        """``scenario`` as ``districts`` districts (named the same way by every domain of a city), or refused."""
        ...

    def merge_results(self, results: Mapping[str, DomainResult]) -> DomainResult:
        """The whole scenario's result from every district's, by district name."""
        ...


@runtime_checkable
class ScalingFamily(Protocol):
    """A partitionable domain with a family of scenarios made of equal districts (scaling benchmarks)."""

    def scaling_scenario(self, districts: int) -> str:
        """The name of its scenario made of ``districts`` equal districts."""
        ...


@runtime_checkable
class Checkpointable(Protocol):
    """A twin whose whole state can be saved between steps and loaded into a freshly started twin of the same
    scenario, seed and mode, which then goes on as the saved one would have (a district's checkpoint)."""

    def save_state(self) -> bytes:
        """Everything the twin and its simulator hold now, as bytes another machine can load; a ``UserError``
        when it cannot now (e.g. another twin rides its simulator): the loop then takes no checkpoint."""
        ...

    def load_state(self, state: bytes) -> None:
        """Go on from ``state`` (from :meth:`save_state` of a twin of the same scenario, seed and mode); called
        right after :meth:`~aicity.core.domain.Twin.start`; a state it cannot load is a ``UserError``."""
        ...
