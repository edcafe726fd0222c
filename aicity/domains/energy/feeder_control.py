"""AI City's control of a ``feeders`` scenario: per feeder, the forecasts and the MPC of the district scenario,
each on that feeder's own entities only, and the shared substation respected three times.

1. **A real-time cap.** Every battery command carries ``cap_kw``, the feeder's import cap: ``rating × 0.95 /
   feeds`` (the rating and the number of transformers it feeds as the substation — or a district's local copy of
   it — publishes them; 0.05 is left for reactive power). The feeder's batteries hold its live import under the cap
   within the step (their inverters' import-limit mode, :class:`.feeders.FeederTwin`), within their power, ramp
   and state-of-charge limits: a sudden evening spike is shaved as it happens, not a step late.
2. **Energy kept for it.** The MPC plans against a cautious inflexible load — the forecast mean plus the root sum
   of squares of its nodes' 80 % half-widths, never below the load just measured over the next hour (cold
   forecasters under-forecast the evening; a time of day never yet observed is planned at the load just measured
   plus that margin) — and the batteries' floors are raised to keep the energy that
   cautious load needs above the cap over the next six hours; the MPC dispatches only the rest (no arbitrage
   empties them before the peak). Its transformer limit is the feeder's firm share (``rating × 0.9 / feeds``),
   raised only as far as the batteries cannot hold the cautious load (the lowest level they can, not its peak).
3. **The stage.** Every charger and battery proposal declares ``uses`` on
   ``urn:ngsi-ld:Transformer:substation#headroom``: the power it would add to what the asset draws now
   (``max(0, kW − power)``; the headroom is the rating less the substation's apparent power), so the whole-city
   orchestration stage keeps the summed increases within what is left.

Controllers read only meters, connected sessions and the substation's published state (its rating and the
number of feeders: every district computes its feeders' cap and share from what it sees).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aicity.core.domain import ForecastProvider, Planner, ProposedAction, Scenario, Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.energy.const import BATTERY_TYPE, BUS_TYPE, CHARGER_TYPE, METER_TYPE, TRANSFORMER_TYPE
from aicity.domains.energy.feeders import SUBSTATION, SUBSTATION_ID, Layout
from aicity.domains.energy.learning import KEY, DemandLearner
from aicity.domains.energy.mpc import PLANNER, MpcPlanner

SHARE_MARGIN = 0.9
CAP_MARGIN = 0.95
"""Each feeder's import cap, the share of the rating its batteries hold it to in real time (the rest of the
rating is left for reactive power)."""
RESERVE_STEPS = 24
"""Steps ahead (six hours) whose forecast need above the cap the batteries keep in reserve."""
FLOOR_STEPS = 4
"""Steps ahead (an hour) over which the plan never expects the inflexible load below the last measured."""
FEEDERS_KEY = f"{KEY}feeders"
"""Forecast key: per feeder, the forecasts its own learner gives (the keys :class:`MpcPlanner` reads)."""


def feeder_view(snapshot: Snapshot, feeder: str, limit_kw: float | None) -> Snapshot:
    """The entities of one feeder (ids ``…:<feeder>.<local>``), its meter's rating cut to ``limit_kw``."""
    tag = f"{feeder}."
    ents: dict[str, Entity] = {}
    for eid, e in snapshot.entities.items():
        if not e.local_id.startswith(tag):
            continue
        if e.type == METER_TYPE and limit_kw is not None:
            own = e.get("transformerRating")
            if isinstance(own, int | float) and not isinstance(own, bool):
                limit_kw = min(limit_kw, float(own))
            e = Entity.trusted(e.id, e.type, {**e.attrs, "transformerRating": Property(limit_kw, None, "KWT")})
        ents[eid] = e
    return Snapshot(snapshot.time, snapshot.elapsed_s, ents)


def share_kw(snapshot: Snapshot, margin: float = SHARE_MARGIN) -> float | None:
    """Each feeder's firm share of the substation (``margin`` of it), from the substation's (or a copy's)
    published rating."""
    for e in snapshot.of_type(TRANSFORMER_TYPE):
        if e.local_id == SUBSTATION or e.get("copyOf") == SUBSTATION_ID:
            rating, feeds = e.get("rating"), e.get("feeds")
            if isinstance(rating, int | float) and isinstance(feeds, int) and feeds > 0:
                return float(rating) * margin / feeds
    return None


def measured_inflexible(view: Snapshot) -> float | None:
    """A feeder's inflexible load over the last step (loads less PV): its buses' smart meters summed, else the
    site meter less chargers and batteries."""
    buses = view.of_type(BUS_TYPE)
    if buses:
        return sum(_f(b.get("inflexibleLoad")) for b in buses)
    meters = view.of_type(METER_TYPE)
    if not meters or not isinstance(meters[0].get("activePower"), int | float):
        return None
    flex = sum(_f(e.get("power")) for e in (*view.of_type(CHARGER_TYPE), *view.of_type(BATTERY_TYPE)))
    return _f(meters[0].get("activePower")) - flex


def cautious(fc: Mapping[str, Any], measured: float | None) -> dict[str, Any]:
    """A feeder's forecasts with the inflexible load planned at an upper bound (the mean kept as ``expected``) —
    the mean plus the root sum of squares of its nodes' 80 % half-widths (errors not all at once) — never below
    the load just measured over the next hour; a time of day the learner has never observed (less than a day of
    readings) is planned at the load just measured plus that margin, not at the level of the hours it has seen."""
    out = dict(fc)
    inf = fc.get(f"{KEY}inflexible_kw")
    if not isinstance(inf, Mapping) or not inf.get("mean"):
        return out
    mean = [float(v) for v in inf["mean"]]
    nodes, uppers = inf.get("nodes") or {}, inf.get("nodes_upper_80") or {}
    steps, period = inf.get("steps"), inf.get("period")
    unseen = period - steps if isinstance(steps, int) and isinstance(period, int) else 0
    plan = list(mean)
    for k in range(len(plan)):
        half = [float(uppers[i][k]) - float(nodes[i][k]) for i in nodes
                if i in uppers and k < min(len(nodes[i]), len(uppers[i]))]
        if measured is not None and k < unseen:  # step k is k + 1 steps ahead: its time of day never read
            plan[k] = measured
        plan[k] += math.sqrt(sum(max(0.0, h) ** 2 for h in half))
        if measured is not None and k < FLOOR_STEPS:
            plan[k] = max(plan[k], measured)
    out[f"{KEY}inflexible_kw"] = {**inf, "mean": plan, "expected": mean}
    return out


def reserve(view: Snapshot, plan: list[float], cap: float, step_h: float) -> Snapshot:
    """The view with its batteries' floors raised to keep, for the real-time cap, the energy the planned load
    needs above ``cap`` over the next :data:`RESERVE_STEPS` (the MPC plans with the rest)."""
    bats = view.of_type(BATTERY_TYPE)
    need = sum(max(0.0, v - cap) for v in plan[:RESERVE_STEPS]) * step_h
    usable = {b.id: max(0.0, _f(b.get("energyStored")) - _f(b.get("socMin")) * _f(b.get("capacity")))
              * (_f(b.get("efficiency")) or 0.95) for b in bats}
    total = sum(usable.values())
    if need <= 0 or total <= 0:
        return view
    keep = min(1.0, need / total)
    ents = dict(view.entities)
    for b in bats:
        capacity = _f(b.get("capacity"))
        if capacity <= 0:
            continue
        floor = _f(b.get("socMin")) * capacity + keep * usable[b.id] / (_f(b.get("efficiency")) or 0.95)
        floor = min(floor, _f(b.get("energyStored")))
        ents[b.id] = Entity.trusted(b.id, b.type, {**b.attrs, "socMin": Property(floor / capacity)})
    return Snapshot(view.time, view.elapsed_s, ents)


def holdable(load: list[float], batteries: list[Entity], step_h: float) -> float:
    """The lowest import the feeder's batteries can hold ``load`` (kW per step) to: the energy above it within
    what they hold above their floor (after losses), the power above it within their rating."""
    if not load:
        return 0.0
    energy = sum(max(0.0, _f(b.get("energyStored")) - _f(b.get("socMin")) * _f(b.get("capacity")))
                 * (_f(b.get("efficiency")) or 0.95) for b in batteries)
    power = sum(_f(b.get("maxPower")) for b in batteries)
    top = max(load)
    lo, hi = top - power, top
    for _ in range(40):
        mid = (lo + hi) / 2
        if sum(max(0.0, v - mid) for v in load) * step_h <= energy:
            hi = mid
        else:
            lo = mid
    return hi


def _f(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0


@dataclass(frozen=True)
class FeedersPlanner:
    """A pure planner: each feeder's MPC on its own view; every proposal ``uses`` the substation's headroom."""

    planners: Mapping[str, MpcPlanner]
    name: str = PLANNER
    step_h: float = 0.25

    def __call__(self, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """Proposals of every feeder, in feeder order."""
        share = share_kw(snapshot)
        cap = share_kw(snapshot, CAP_MARGIN)
        per: Mapping[str, Any] = forecasts.get(FEEDERS_KEY, {})
        out: list[ProposedAction] = []
        for feeder, mpc in self.planners.items():
            fc = per.get(feeder, {})
            limit = None
            view = feeder_view(snapshot, feeder, None)
            if share is not None and cap is not None:
                fc = cautious(fc, measured_inflexible(view))
                plan = [float(v) for v in fc.get(f"{KEY}inflexible_kw", {}).get("mean") or [0.0]]
                view = reserve(view, plan, cap, self.step_h)
                limit = max(share, holdable(plan, view.of_type(BATTERY_TYPE), self.step_h) + 1.0)
                view = feeder_view(view, feeder, limit)
            for p in mpc(view, fc):
                ent = view.entities.get(p.target)
                now = ent.get("power") if ent is not None else None
                kw = p.params.get("kw")
                more = max(0.0, float(kw) - (float(now) if isinstance(now, int | float) else 0.0)) if isinstance(
                    kw, int | float) else 0.0
                params = dict(p.params)
                if cap is not None and ent is not None and ent.type == BATTERY_TYPE:
                    params["cap_kw"] = round(cap, 3)
                out.append(dataclasses.replace(p, params=params,
                                               uses={**p.uses, f"{SUBSTATION_ID}#headroom": round(more, 3)}))
        return out


@dataclass
class FeedersLearner:
    """One :class:`DemandLearner` per feeder, each learning from its feeder's entities only."""

    learners: dict[str, DemandLearner]
    name: str = "energy.ai.demand"
    _views: dict[str, Snapshot] = field(default_factory=dict)

    def learn(self, snapshot: Snapshot) -> None:
        """Each feeder's learner on its own view."""
        for f, learner in self.learners.items():
            learner.learn(feeder_view(snapshot, f, None))

    def forecast(self, snapshot: Snapshot) -> Mapping[str, Any]:
        """Per feeder, its learner's forecasts."""
        return {FEEDERS_KEY: {f: learner.forecast(feeder_view(snapshot, f, None))
                              for f, learner in self.learners.items()}}

    def accuracy(self) -> dict[str, float]:
        """Per statistic, the worst feeder's (a guard then acts on the weakest forecasts)."""
        out: dict[str, float] = {}
        for learner in self.learners.values():
            for k, v in learner.accuracy().items():
                out[k] = max(out.get(k, v), v)
        return out


def controller_parts(scenario: Scenario, name: str, params: Mapping[str, Any],
                     layout: Layout) -> tuple[list[Planner], list[ForecastProvider]]:
    """The planners and forecast providers of controller ``name`` (``ai`` or ``ai_noforecast``) on a feeders
    scenario; the oracle is not offered (it does not know the substation)."""
    from aicity.core.errors import UserError
    from aicity.domains.energy.data import Tariff
    from aicity.domains.energy.district import NODES
    from aicity.domains.energy.grid import GridModel, bus_names

    if name == "oracle":
        raise UserError(f"the oracle controller does not run on {scenario.name} (it does not know the substation)")
    buses = bus_names()
    view = GridModel(tuple(buses.index(n) for n, _, _ in NODES)).planner_view()  # every feeder is CIGRE LV
    tariff = Tariff.load()
    from datetime import datetime

    from aicity.domains.energy.scenarios import TZ

    charge = tariff.demand_charge(datetime(2019, 9, 2, tzinfo=TZ))
    step_s = 900.0
    dt = float(params.get("decision_interval_s") or step_s)
    horizon = int(float(params["horizon_h"]) * 3600 / dt)
    planners = {f: MpcPlanner(tariff, charge, float(params["horizon_h"]), bool(params["anticipate"]) and name == "ai",
                              view) for f in layout.mine()}
    learners = {f: DemandLearner(horizon=max(1, horizon), model=str(params["forecast_model"]),
                                 period=max(1, round(86400 / dt))) for f in layout.mine()}
    return [FeedersPlanner(planners)], [FeedersLearner(learners)]
