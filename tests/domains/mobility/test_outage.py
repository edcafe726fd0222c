"""Mobility's outage cost model: what a dark signal costs, from the detectors only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property, Relationship
from aicity.domains.mobility.const import FLOW_TYPE, POWER_MAINS, POWER_NONE, SIGNAL_TYPE
from aicity.domains.mobility.outage import STOP_DELAY_S, DarkSignalDelay, dark_delay_s

SIG = f"urn:ngsi-ld:{SIGNAL_TYPE}:J1"


def snap(elapsed: float, entered: int, power: str = POWER_MAINS, period: float = 10.0) -> Snapshot:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    ents = {SIG: Entity(SIG, SIGNAL_TYPE, {"powerSource": Property(power, t)})}
    for lane in ("a", "b"):
        eid = f"urn:ngsi-ld:{FLOW_TYPE}:in-{lane}"
        ents[eid] = Entity(eid, FLOW_TYPE, {
            "flowDirection": Property("incoming"), "refTrafficSignal": Relationship(SIG),
            "intensity": Property(entered, t), "observationPeriod": Property(period, t, "SEC")})
    out = f"urn:ngsi-ld:{FLOW_TYPE}:out-a"
    ents[out] = Entity(out, FLOW_TYPE, {"flowDirection": Property("outgoing"), "refTrafficSignal": Relationship(SIG),
                                        "intensity": Property(99, t), "observationPeriod": Property(period, t)})
    return Snapshot(t, elapsed, ents)


def test_dark_delay_grows_with_demand_and_explodes_past_the_all_way_stop_capacity() -> None:
    light, busy, over = (dark_delay_s(r, 0.3, 900.0) for r in (0.05, 0.25, 0.6))
    assert STOP_DELAY_S < light < busy < over
    assert over == pytest.approx(STOP_DELAY_S + (0.6 / 0.3 - 1) * 900.0 / 2, rel=0.02)  # the queue's fluid limit
    assert light == pytest.approx(STOP_DELAY_S + (0.05 / 0.3) / (2 * 0.3 * (1 - 0.05 / 0.3)), rel=0.05)
    assert abs(dark_delay_s(0.299999, 0.3, 900.0) - dark_delay_s(0.3, 0.3, 900.0)) < 1e-3  # continuous at capacity


def test_the_model_learns_incoming_arrivals_and_freezes_them_while_the_signal_is_dark() -> None:
    model = DarkSignalDelay(tau_s=1e-9)  # no smoothing: the latest rate
    assert model.cost_s(SIG) is None  # nothing measured yet
    model.update(snap(10.0, 4))  # 8 vehicles in 10 s on the two incoming lanes (outgoing ignored)
    busy = model.cost_s(SIG)
    assert busy == pytest.approx(dark_delay_s(0.8, 0.3, 900.0), abs=1e-3)
    model.update(snap(20.0, 0, POWER_NONE))  # dark: its entries measure the queue, not demand
    assert model.cost_s(SIG) == busy
    model.update(snap(30.0, 0))
    assert model.cost_s(SIG) == pytest.approx(STOP_DELAY_S)
    assert model.cost_s("urn:ngsi-ld:TrafficSignal:unknown") is None


def test_bad_readings_are_skipped() -> None:
    model = DarkSignalDelay()
    model.update(snap(10.0, 4, period=0.0))
    assert model.cost_s(SIG) is None
