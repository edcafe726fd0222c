"""Charging guidance in an EV surge: the responder's candidates and predicted outcomes (pure), the edge's limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.city.guidance import (
    ACTION,
    FLOOR_PU,
    LOOK_AHEAD_MIN,
    MAX_PAIRS,
    OFFER_EVERY_S,
    PRIOR_SLOPE,
    GuidanceResponder,
    Trip,
    average_kw,
    options_for,
    pairs_for,
    swap_action,
)
from aicity.domains.city.guide_edge import GuidanceEdge
from aicity.domains.city.meta import CHARGING_GUIDANCE, EV_TRIP_TYPE
from aicity.orchestrate.respond import choose

T = datetime(2019, 9, 3, 7, tzinfo=UTC)
FEEDER = {"Bus C12": "C", "Bus C13": "C", "Bus I2": "I"}


def trip(sid: str, feeder: str, kw: float, pos: tuple[float, float] = (0.0, 0.0),
         dest: tuple[float, float] = (100.0, 0.0)) -> Trip:
    return Trip(f"urn:ngsi-ld:{EV_TRIP_TYPE}:{sid}", sid, "Bus C12" if feeder == "C" else "Bus I2", feeder, kw, pos,
                dest)


def test_an_ev_needs_its_requested_energy_over_its_stay_at_most_a_chargers_rating() -> None:
    assert average_kw(11.0, 2 * 3600.0) == pytest.approx(5.5)
    assert average_kw(60.0, 3600.0) == pytest.approx(11.04)
    assert average_kw(5.0, 60.0) == pytest.approx(10.0)  # a stay under half an hour counts as half an hour


def test_no_feeder_near_the_floor_no_occasion() -> None:
    trips = [trip("a", "C", 8.0), trip("b", "I", 2.0)]
    stressed, opts = options_for(trips, {"Bus C12": 0.99, "Bus I2": 0.99}, {}, FEEDER, {})
    assert stressed == "" and opts == ()


def test_the_heavy_ev_on_the_stressed_feeder_swaps_with_the_light_one_on_the_feeder_with_headroom() -> None:
    trips = [trip("a", "C", 8.0), trip("b", "I", 2.0), trip("c", "C", 1.0)]
    volts = {"Bus C12": 0.951, "Bus C13": 0.9505, "Bus I2": 0.99}
    stressed, opts = options_for(trips, volts, {}, FEEDER, {"I": 100.0})
    assert stressed == "C"
    nothing, swap = opts  # c needs less than b: no second pair worth moving
    assert nothing.actions == () and nothing.outcome["violations"] == 2 * LOOK_AHEAD_MIN
    (dom, act), = swap.actions
    assert dom == "city" and act.action == ACTION and act.params == {"a": "a", "b": "b"}
    assert act.action_type == CHARGING_GUIDANCE
    # C takes 9 kW less with the swap: 0.951 - 3e-4*(9-6) stays above the floor, 0.9505 - 3e-4*3 does not
    assert swap.outcome["violations"] == 1 * LOOK_AHEAD_MIN < nothing.outcome["violations"]
    assert choose_name(opts) == swap.name


def choose_name(opts: Any) -> str:
    from aicity.domains.city.incident import RANKING
    from aicity.orchestrate.respond import Occasion

    chosen = choose(Occasion("x", opts, RANKING))
    assert chosen is not None
    return chosen.name


def test_a_swap_that_would_push_the_other_feeder_under_the_floor_is_not_taken() -> None:
    trips = [trip("a", "C", 11.0), trip("b", "I", 0.0)]
    volts = {"Bus C12": 0.9515, "Bus I2": 0.9531}  # I is relaxed now, but 11 kW more takes it under
    _, opts = options_for(trips, volts, {}, FEEDER, {"I": 100.0})
    nothing, swap = opts
    assert swap.outcome["violations"] >= nothing.outcome["violations"]
    assert choose_name(opts) == "nothing"  # a tie goes to doing nothing


def test_no_driver_is_sent_on_a_long_detour_and_no_feeder_beyond_its_transformer_headroom() -> None:
    far = [trip("a", "C", 8.0, pos=(0.0, 0.0), dest=(10.0, 0.0)), trip("b", "I", 1.0, dest=(5000.0, 0.0))]
    assert pairs_for(far, "C", {"I"}) == []
    near = [trip("a", "C", 8.0), trip("b", "I", 1.0)]
    assert len(pairs_for(near, "C", {"I"})) == 1
    _, opts = options_for(near, {"Bus C12": 0.95, "Bus I2": 0.99}, {}, FEEDER, {"I": 3.0})
    assert [o.name for o in opts] == ["nothing"]  # I's transformer has 3 kW left, the swap moves 7


def test_at_most_the_edge_limit_of_pairs_per_response() -> None:
    trips = [trip(f"c{i}", "C", 9.0) for i in range(5)] + [trip(f"i{i}", "I", 1.0) for i in range(5)]
    pairs = pairs_for(trips, "C", {"I"})
    assert len(pairs) == MAX_PAIRS
    assert len({b.sid for _, b in pairs}) == MAX_PAIRS  # each light EV in one pair only


def ent(eid: str, etype: str, **attrs: Any) -> Entity:
    return Entity.trusted(eid, etype, {k: Property(v, T) for k, v in attrs.items()})


def snap(el: float, *, c_volt: float = 0.951, c_kw: float = 100.0, driving: bool = True,
         guided: bool = False, read_at: float | None = None) -> Snapshot:
    stamp = datetime.fromtimestamp(T.timestamp() + (el if read_at is None else read_at), UTC)
    ents = [ent("urn:ngsi-ld:LoadPoint:Bus-C12", "LoadPoint", bus="Bus C12", feeder="C"),
            ent("urn:ngsi-ld:LoadPoint:Bus-I2", "LoadPoint", bus="Bus I2", feeder="I"),
            ent("urn:ngsi-ld:GridBusMeasurement:Bus-C12", "GridBusMeasurement", voltage=c_volt),
            ent("urn:ngsi-ld:GridBusMeasurement:Bus-I2", "GridBusMeasurement", voltage=0.99),
            Entity.trusted("urn:ngsi-ld:Transformer:C", "Transformer", {
                "loading_kw": Property(c_kw, stamp), "headroom": Property(100.0, stamp),
                "inService": Property(True, stamp), "feeder": Property("C")}),
            Entity.trusted("urn:ngsi-ld:Transformer:I", "Transformer", {
                "loading_kw": Property(20.0, stamp), "headroom": Property(100.0, stamp),
                "inService": Property(True, stamp), "feeder": Property("I")})]
    for sid, bus, feeder, kwh, dest in (("a", "Bus C12", "C", 30.0, [100.0, 0.0]),
                                        ("b", "Bus I2", "I", 2.0, [120.0, 0.0])):
        ents.append(ent(f"urn:ngsi-ld:{EV_TRIP_TYPE}:{sid}", EV_TRIP_TYPE, sessionId=sid,
                        status="driving" if driving else "arrived", charger=f"{bus[4:]}-0", bus=bus, feeder=feeder,
                        requestedEnergy=kwh, departure=el + 4 * 3600.0, position=[0.0, 0.0], destination=dest,
                        guided=guided))
    return Snapshot(T, el, {e.id: e for e in ents})


def run(r: GuidanceResponder, s: Snapshot) -> list[Any]:
    r.update(s)
    return r.occasions(s)


def test_the_responder_offers_guidance_from_the_drivers_reports_and_the_meters() -> None:
    r = GuidanceResponder()
    (occ,) = run(r, snap(900.0))
    assert "feeder C near the voltage floor" in occ.event
    chosen = choose(occ)
    assert chosen is not None and chosen.actions[0][1].params == {"a": "a", "b": "b"}
    assert run(r, snap(910.0)) == []  # at most once per interval: the edge would refuse a second swap
    assert len(run(r, snap(900.0 + OFFER_EVERY_S))) == 1


def test_no_offer_off_the_couplers_steps_nor_for_arrived_or_guided_drivers_nor_with_headroom() -> None:
    assert run(GuidanceResponder(), snap(905.0)) == []  # the coupler is not due
    assert run(GuidanceResponder(), snap(900.0, driving=False)) == []  # a stale report of an EV that arrived
    assert run(GuidanceResponder(), snap(900.0, guided=True)) == []  # each driver is guided at most once
    assert run(GuidanceResponder(), snap(900.0, c_volt=0.97)) == []  # feeder C has voltage headroom


def test_the_responder_learns_each_buses_sensitivity_from_new_readings_only() -> None:
    r = GuidanceResponder()
    assert r.slope("Bus C12") == PRIOR_SLOPE
    for k in range(12):  # voltage falls 0.001 pu per 10 kW more on feeder C
        r.update(snap(60.0 * k, c_kw=100.0 + 10 * k, c_volt=0.97 - 0.001 * k))
        assert r.slope("Bus C12") == (PRIOR_SLOPE if k + 1 < 10 else pytest.approx(-1e-4))
        # the grid's reading of this minute again (the bus meter's value here would spoil the fit if counted)
        r.update(snap(60.0 * k + 10.0, c_kw=100.0 + 10 * k, c_volt=0.90, read_at=60.0 * k))
    assert r.slope("Bus C12") == pytest.approx(-1e-4)


class Api:
    """A stand-in for libsumo's vehicle and simulation calls (the edge's limits, not SUMO, are under test)."""

    def __init__(self, live: set[str]) -> None:
        self.live = live
        self.targets: dict[str, str] = {}
        self.vehicle = self
        self.simulation = self

    def getIDList(self) -> list[str]:
        return sorted(self.live)

    def getRoute(self, vid: str) -> list[str]:
        return ["e0", "e1"]

    def getRouteIndex(self, vid: str) -> int:
        return 0

    def findRoute(self, a: str, b: str) -> Any:
        return type("R", (), {"edges": [a, b]})()

    def changeTarget(self, vid: str, edge: str) -> None:
        self.targets[vid] = edge


class Grid:
    def __init__(self) -> None:
        self.swaps: list[tuple[str, str]] = []

    def swap_chargers(self, a: str, b: str) -> str | None:
        self.swaps.append((a, b))
        return None


def test_the_edge_guides_only_consenting_drivers_on_their_way_within_its_rate() -> None:
    edge = GuidanceEdge(frozenset({"a", "b", "c", "d", "e", "f", "g"}))
    api, grid = Api({"ev:a", "ev:b", "ev:c", "ev:d", "ev:e", "ev:f", "ev:x"}), Grid()
    vehicle = {s: f"ev:{s}" for s in "abcdefgx"}
    dest = {s: f"d{s}" for s in "abcdefgx"}

    def act(a: str, b: str, t: float, g: object = grid) -> Any:
        return edge.actuate(swap_action(a, b), t, api=api, grid=g, vehicle_of=vehicle, dest=dest,
                            swapped=lambda *_: None)

    assert act("a", "x", 0.0).bound_by == ("consent",)  # x did not consent
    assert act("a", "g", 0.0).bound_by == ("en_route",)  # g is not on the road
    assert act("a", "b", 0.0, object()).bound_by == ("grid",)  # a grid port that cannot exchange chargers
    assert act("a", "b", 0.0).status == "applied"
    assert api.targets == {"ev:a": "db", "ev:b": "da"} and dest["a"] == "db" and grid.swaps == [("a", "b")]
    assert act("c", "d", 10.0).status == "applied"
    assert act("e", "f", 20.0).bound_by == ("max_per_interval",)
    assert act("e", "f", 20.0 + OFFER_EVERY_S).status == "applied"
    assert "ev:x" not in api.targets and "ev:g" not in api.targets
    assert FLOOR_PU == 0.95
