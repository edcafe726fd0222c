"""Charging guidance in an EV arrival surge: swap the chargers of two consenting drivers on their way, so that the
one who needs more energy charges on the feeder with voltage headroom.

A city sees a surge from what it has: the consenting drivers' own trip reports (``EVChargingTrip``, published by
the coupler: their booked charger and its bus and feeder, their requested energy and departure as entered in the
app, their position and destination), the grid's bus voltages (``GridBusMeasurement``) and transformer loadings
(``Transformer``). It never sees a driver who did not consent, nor when the next one will set off.

:class:`GuidanceResponder` is the city's :class:`aicity.orchestrate.respond.Responder` for it. Its look-ahead model
learns, per bus, how its voltage falls with its feeder's load (a least-squares slope over the readings so far, a
prior until there are enough); an EV on its way adds its average charging power (requested energy over its stay,
at most a charger's rating) to its feeder. When the predicted lowest voltage of a feeder comes within
:data:`MARGIN_PU` of the floor it offers *nothing* and *swap the chargers of the best 1…N pairs* (an EV booked on
the stressed feeder that needs much with one booked on a feeder with headroom that needs little), each with its
predicted bus-minutes under the floor over :data:`LOOK_AHEAD_MIN` and the drivers' detours. The AI City's stage
picks by the city's ranking; the ablation never asks. The coupler's edge (:mod:`.guide_edge`) executes it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aicity.core.domain import ProposedAction, Snapshot
from aicity.core.entity import Entity
from aicity.domains.city.incident import DECIDE_EVERY_S, RANKING
from aicity.domains.city.meta import CHARGING_GUIDANCE, EV_TRIP_TYPE
from aicity.orchestrate.respond import Occasion, ResponseOption

DOMAIN = "city"
ACTION = "swap_chargers"
EV_TRIP_PREFIX = f"urn:ngsi-ld:{EV_TRIP_TYPE}:"
BUS_TYPE = "GridBusMeasurement"
TRANSFORMER_TYPE = "Transformer"
FLOOR_PU = 0.95
"""The voltage band's lower limit (0.95 pu, as the energy domain's violations count it)."""
MARGIN_PU = 0.003
"""A feeder whose predicted lowest bus voltage is within this of the floor is stressed."""
LOOK_AHEAD_MIN = 15.0
"""Minutes of the look-ahead: the predicted bus-minutes under the floor are counted over it."""
MAX_PAIRS = 2
"""At most this many pairs of drivers are guided per response (the edge's limit per interval, too)."""
MAX_DETOUR_S = 300.0
"""No driver is offered a charger that costs more than this detour."""
MIN_GAIN_KW = 1.0
"""A swap must move at least this much average charging power off the stressed feeder."""
EV_MAX_KW = 11.04
"""A charger's rating (an EV's average power is capped by it)."""
SPEED_MPS, ROAD_FACTOR = 8.0, 1.3
"""Urban driving speed and road-to-straight-line distance ratio of the detour estimate."""
PRIOR_SLOPE = -3e-4
"""pu per kW of feeder load: a bus's voltage sensitivity until :data:`MIN_FIT` readings fit one."""
MIN_FIT = 10
OFFER_EVERY_S = 60.0
"""The responder offers guidance at most once in this many seconds (the edge's interval: no offer it refuses)."""


@dataclass(frozen=True, slots=True)
class Trip:
    """A consenting driver's report: booked charger's bus and feeder, average power it needs, where it is."""

    eid: str
    sid: str
    bus: str
    feeder: str
    kw: float
    pos: tuple[float, float]
    dest: tuple[float, float]


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def _xy(v: Any) -> tuple[float, float] | None:
    if isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2:
        x, y = _num(v[0]), _num(v[1])
        if x is not None and y is not None:
            return (x, y)
    return None


def _bus(eid: str) -> str:
    """A bus measurement's bus name from its entity id (``urn:ngsi-ld:GridBusMeasurement:Bus-C12`` → ``Bus C12``)."""
    return eid.rsplit(":", 1)[-1].replace("-", " ")


def average_kw(requested_kwh: float, stay_s: float) -> float:
    """An EV's average charging power over its stay (at most a charger's rating)."""
    return min(EV_MAX_KW, max(0.0, requested_kwh) / max(stay_s / 3600.0, 0.5))


def trip_of(ent: Entity, now_s: float) -> Trip | None:
    """The driver's report as a :class:`Trip` (None when incomplete, already guided or arrived)."""
    if ent.get("guided") is True or ent.get("status") != "driving":
        return None
    kwh, dep = _num(ent.get("requestedEnergy")), _num(ent.get("departure"))  # seconds of the window, as now_s
    pos, dest = _xy(ent.get("position")), _xy(ent.get("destination"))
    sid, bus, feeder = ent.get("sessionId"), ent.get("bus"), ent.get("feeder")
    if None in (kwh, dep, pos, dest) or not all(isinstance(x, str) for x in (sid, bus, feeder)):
        return None
    assert kwh is not None and dep is not None and pos is not None and dest is not None
    return Trip(ent.id, str(sid), str(bus), str(feeder), average_kw(kwh, dep - now_s), pos, dest)


def detour_s(trip: Trip, to: tuple[float, float]) -> float:
    """Seconds a driver would lose going to ``to`` instead of its own destination (straight-line estimate)."""
    extra = math.dist(trip.pos, to) - math.dist(trip.pos, trip.dest)
    return extra * ROAD_FACTOR / SPEED_MPS


def bus_minutes_under(volts: Mapping[str, float], slopes: Mapping[str, float], feeder_of: Mapping[str, str],
                      added_kw: Mapping[str, float]) -> float:
    """Predicted bus-minutes under the floor over the look-ahead when each feeder takes ``added_kw`` more (pure)."""
    under = sum(1 for b, v in volts.items()
                if v + slopes.get(b, PRIOR_SLOPE) * added_kw.get(feeder_of.get(b, ""), 0.0) < FLOOR_PU - 1e-9)
    return under * LOOK_AHEAD_MIN


def pairs_for(trips: Sequence[Trip], stressed: str, relaxed: set[str]) -> list[tuple[Trip, Trip]]:
    """Greedy pairs: EVs booked on the stressed feeder needing most with those on a relaxed one needing least."""
    heavy = sorted((t for t in trips if t.feeder == stressed), key=lambda t: (-t.kw, t.sid))
    light = sorted((t for t in trips if t.feeder in relaxed), key=lambda t: (t.kw, t.sid))
    out: list[tuple[Trip, Trip]] = []
    used: set[str] = set()
    for a in heavy:
        for b in light:
            if b.sid in used or a.kw - b.kw < MIN_GAIN_KW:
                continue
            if detour_s(a, b.dest) > MAX_DETOUR_S or detour_s(b, a.dest) > MAX_DETOUR_S:
                continue
            out.append((a, b))
            used.add(b.sid)
            break
        if len(out) >= MAX_PAIRS:
            break
    return out


def swap_action(a: str, b: str, inputs: Mapping[str, Any] | None = None) -> ProposedAction:
    """The action exchanging the booked chargers of sessions ``a`` and ``b`` (targets ``a``'s trip report)."""
    return ProposedAction(f"{EV_TRIP_PREFIX}{a}", ACTION, {"a": a, "b": b}, planner="city.charging_guidance",
                          action_type=CHARGING_GUIDANCE, inputs=dict(inputs or {}))


def options_for(trips: Sequence[Trip], volts: Mapping[str, float], slopes: Mapping[str, float],
                feeder_of: Mapping[str, str], headroom: Mapping[str, float]) -> tuple[str, tuple[ResponseOption, ...]]:
    """The stressed feeder (``""``: none) and *nothing* plus *swap the best k pairs*, k = 1…, each predicted (pure)."""
    added: dict[str, float] = {}
    for t in trips:
        added[t.feeder] = added.get(t.feeder, 0.0) + t.kw
    low: dict[str, float] = {}
    for bus, v in volts.items():
        f = feeder_of.get(bus)
        if f is not None:
            low[f] = min(low.get(f, math.inf), v + slopes.get(bus, PRIOR_SLOPE) * added.get(f, 0.0))
    if not low:
        return "", ()
    stressed = min(low, key=lambda f: (low[f], f))
    if low[stressed] >= FLOOR_PU + MARGIN_PU:
        return "", ()
    relaxed = {f for f, v in low.items() if f != stressed and v >= FLOOR_PU + MARGIN_PU}

    def outcome(under: float, detour: float) -> dict[str, float]:
        return {"ems_p90_s": 0.0, "critical_unserved_kwh": 0.0, "violations": under, "person_delay_s": detour,
                "energy_cost": 0.0}

    base = bus_minutes_under(volts, slopes, feeder_of, added)
    opts = [ResponseOption("nothing", (), outcome(base, 0.0),
                           f"{sum(1 for t in trips if t.feeder == stressed)} EV(s) on their way to feeder "
                           f"{stressed}, its lowest bus predicted at {low[stressed]:.4f} pu")]
    chosen: list[tuple[Trip, Trip]] = []
    moved = dict(added)
    detour = 0.0
    for a, b in pairs_for(trips, stressed, relaxed):
        gain = a.kw - b.kw
        if headroom.get(b.feeder, math.inf) < gain:
            continue
        chosen.append((a, b))
        moved[a.feeder] = moved.get(a.feeder, 0.0) - gain
        moved[b.feeder] = moved.get(b.feeder, 0.0) + gain
        detour += max(0.0, detour_s(a, b.dest)) + max(0.0, detour_s(b, a.dest))
        actions = tuple((DOMAIN, swap_action(x.sid, y.sid, {x.eid: {"feeder": x.feeder, "kw": round(x.kw, 3)},
                                                           y.eid: {"feeder": y.feeder, "kw": round(y.kw, 3)}}))
                        for x, y in chosen)
        opts.append(ResponseOption(
            f"swap the chargers of {len(chosen)} pair(s) of consenting drivers", actions,
            outcome(bus_minutes_under(volts, slopes, feeder_of, moved), detour),
            f"moves {sum(x.kw - y.kw for x, y in chosen):.1f} kW of average charging off feeder {stressed}; "
            f"detours {detour:.0f} s in all"))
    return stressed, tuple(opts)


class GuidanceResponder:
    """The city's look-ahead model of charging in a surge (see the module docstring)."""

    def __init__(self) -> None:
        self._fit: dict[str, list[float]] = {}  # bus -> [n, sx, sy, sxx, sxy]
        self._seen: dict[str, Any] = {}  # bus -> when its feeder's reading it last learnt from was taken
        self._now = 0.0
        self._offered: float | None = None

    def update(self, snapshot: Snapshot) -> None:
        """Learn each bus's voltage against its feeder's load from every new grid reading."""
        self._now = snapshot.elapsed_s
        feeders = self._feeders(snapshot)
        kw = self._loads(snapshot)
        for eid, ent in snapshot.entities.items():
            if ent.type != BUS_TYPE:
                continue
            bus = _bus(eid)
            f = feeders.get(bus)
            v = _num(ent.get("voltage"))
            reading = kw.get(f or "")
            if f is None or v is None or v <= 0 or reading is None:
                continue
            load, stamp = reading
            if self._seen.get(bus) == stamp:
                continue
            self._seen[bus] = stamp
            s = self._fit.setdefault(bus, [0.0] * 5)
            s[0] += 1
            s[1] += load
            s[2] += v
            s[3] += load * load
            s[4] += load * v

    def slope(self, bus: str) -> float:
        """The bus's learnt voltage sensitivity to its feeder's load (pu/kW; the prior until it fits)."""
        s = self._fit.get(bus)
        if s is None or s[0] < MIN_FIT:
            return PRIOR_SLOPE
        n, sx, sy, sxx, sxy = s
        var = sxx - sx * sx / n
        if var < 1.0:
            return PRIOR_SLOPE
        b = (sxy - sx * sy / n) / var
        return b if b < 0 else PRIOR_SLOPE

    @staticmethod
    def _feeders(snapshot: Snapshot) -> dict[str, str]:
        return {str(e.get("bus")): str(e.get("feeder")) for e in snapshot.entities.values()
                if e.type == "LoadPoint" and isinstance(e.get("bus"), str) and isinstance(e.get("feeder"), str)}

    @staticmethod
    def _loads(snapshot: Snapshot) -> dict[str, tuple[float, Any]]:
        """Feeder → (its transformer's loading kW, when it was read), for transformers in service."""
        out: dict[str, tuple[float, Any]] = {}
        for e in snapshot.entities.values():
            if e.type == TRANSFORMER_TYPE and e.get("inService") is True:
                kw = _num(e.get("loading_kw"))
                if kw is not None and "loading_kw" in e.attrs:
                    out[str(e.get("feeder"))] = (kw, e.attrs["loading_kw"].observed_at)
        return out

    def occasions(self, snapshot: Snapshot) -> list[Occasion]:
        """EVs of consenting drivers on their way while a feeder is predicted near the floor: nothing vs guidance
        (only on the steps the coupler is due, which acts on it)."""
        k = self._now / DECIDE_EVERY_S
        if abs(k - round(k)) > 1e-6 or (self._offered is not None and self._now - self._offered < OFFER_EVERY_S - 1e-6):
            return []
        trips = [t for e in snapshot.entities.values() if e.type == EV_TRIP_TYPE
                 if (t := trip_of(e, snapshot.elapsed_s)) is not None]
        if len(trips) < 2:
            return []
        feeders = self._feeders(snapshot)
        volts = {_bus(eid): v for eid, e in snapshot.entities.items()
                 if e.type == BUS_TYPE and (v := _num(e.get("voltage"))) is not None and v > 0}
        volts = {b: v for b, v in volts.items() if b in feeders}
        headroom = {str(e.get("feeder")): h for e in snapshot.entities.values() if e.type == TRANSFORMER_TYPE
                    if (h := _num(e.get("headroom"))) is not None}
        stressed, opts = options_for(trips, volts, {b: self.slope(b) for b in volts}, feeders, headroom)
        if len(opts) < 2:
            return []
        self._offered = self._now
        return [Occasion(f"EV arrivals: {len(trips)} consenting driver(s) on their way; feeder {stressed} near "
                         f"the voltage floor", opts, RANKING)]


__all__ = ["ACTION", "EV_TRIP_TYPE", "GuidanceResponder", "Trip", "options_for", "pairs_for", "swap_action",
           "trip_of"]
