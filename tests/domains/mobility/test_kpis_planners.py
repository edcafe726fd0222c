"""Pure checks of the KPI formulas and of max-pressure on hand-made detector entities (no SUMO)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.mobility.kpis import Trip, jain, min_max_ratio, percentile, resco_delay, summarise
from aicity.domains.mobility.planners import max_pressure

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _trip(i: str, loss: float, dd: float = 0.0, finished: bool = True) -> Trip:
    return Trip(i, "pkw", 0.0, 100.0, loss, dd, 5.0, finished, "e")


def test_resco_delay_counts_unfinished_and_never_inserted() -> None:
    trips = [_trip("a", 10, 2), _trip("b", 20, 0, finished=False)]
    assert resco_delay(trips, [30.0]) == pytest.approx((12 + 20 + 30) / 3)
    k = summarise([*trips, _trip("aicity_ev_0", 50)], [("c", 30.0), ("aicity_ev_1", 99.0)], "aicity_ev_")
    assert k["delay_s"] == pytest.approx(62 / 3)
    assert (k["finished"], k["unfinished"], k["never_inserted"], k["ev_trips"]) == (1, 1, 1, 2)
    assert k["ev_travel_s_mean"] == pytest.approx(100.0)


def test_equity_indices() -> None:
    assert jain([5, 5, 5]) == pytest.approx(1.0)
    assert jain([1, 0, 0, 0]) == pytest.approx(0.25)
    assert min_max_ratio([2, 4, 8]) == pytest.approx(0.25)
    assert percentile([1, 2, 3, 4, 5], 90) == pytest.approx(4.6)


def _flow(direction: str, lane: str, queue: int, lanes: int = 1) -> Entity:
    return Entity(f"urn:ngsi-ld:TrafficFlowObserved:{direction}:{lane}", "TrafficFlowObserved",
                  {"queue": Property(queue), "laneCount": Property(lanes)})


def _signal(current: int) -> Entity:
    phases = [
        {"index": 0, "serves": [{"lane": "n", "to": ["s_out"]}, {"lane": "s", "to": ["n_out"]}]},
        {"index": 1, "serves": [{"lane": "e", "to": ["w_out"]}]},
    ]
    return Entity("urn:ngsi-ld:TrafficSignal:J", "TrafficSignal",
                  {"phases": Property(phases), "currentPhase": Property(current),
                   "controlMode": Property("controlled")})


def _snap(*ents: Entity) -> Snapshot:
    return Snapshot(T0, 0.0, {e.id: e for e in ents})


def test_max_pressure_scores_and_explains() -> None:
    ents = [_signal(0), _flow("in", "n", 3), _flow("in", "s", 2), _flow("in", "e", 4),
            _flow("out", "s_out", 4, lanes=2), _flow("out", "n_out", 0), _flow("out", "w_out", 0)]
    (act,) = max_pressure(_snap(*ents), {})
    scores = {c["phase"]: c["score"] for c in act.candidates}
    assert scores == {0: 3 - 2 + 2 - 0, 1: 4}
    assert act.params == {"phase": 1} and act.score == 4
    assert "urn:ngsi-ld:TrafficFlowObserved:in:e" in act.inputs


def test_max_pressure_tie_keeps_current_and_skips_fixed_signals() -> None:
    ents = [_signal(1), _flow("in", "n", 1), _flow("in", "e", 1)]
    (act,) = max_pressure(_snap(*ents), {})
    assert act.params == {"phase": 1}
    fixed = Entity("urn:ngsi-ld:TrafficSignal:J", "TrafficSignal",
                   {"phases": Property([]), "controlMode": Property("fixed")})
    assert max_pressure(_snap(fixed), {}) == []
