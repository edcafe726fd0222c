"""AI City's control of a ``feeders`` scenario: per feeder, the forecasts and the MPC of the district scenario,
each on that feeder's own entities only, and the shared substation respected twice.

Each feeder's MPC plans within its firm share of the substation: ``rating × 0.9 / feeds`` (the rating and the
number of transformers it feeds as the substation — or a district's local copy of it — publishes them; 0.9 keeps
reactive power and losses clear, as the grid view's margin does), or its own transformer's rating if lower; where
the feeder's forecast inflexible load alone exceeds that share, the limit is raised to it (the plan stays
feasible and moves every flexible kW out of those hours, instead of falling back to safe rates). And
every charger and battery proposal declares ``uses`` on ``urn:ngsi-ld:Transformer:substation#headroom``: the
power it would add to what the asset draws now (``max(0, kW − power)``; the headroom is the rating less the
substation's apparent power), so the whole-city orchestration stage keeps the summed increases within what is
left. Controllers read only meters, connected sessions and the substation's published state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aicity.core.domain import ForecastProvider, Planner, ProposedAction, Scenario, Snapshot
from aicity.core.entity import Entity, Property
from aicity.domains.energy.const import METER_TYPE, TRANSFORMER_TYPE
from aicity.domains.energy.feeders import SUBSTATION, SUBSTATION_ID, Layout
from aicity.domains.energy.learning import KEY, DemandLearner
from aicity.domains.energy.mpc import PLANNER, MpcPlanner

SHARE_MARGIN = 0.9
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


def share_kw(snapshot: Snapshot) -> float | None:
    """Each feeder's firm share of the substation, from the substation's (or a copy's) published rating."""
    for e in snapshot.of_type(TRANSFORMER_TYPE):
        if e.local_id == SUBSTATION or e.get("copyOf") == SUBSTATION_ID:
            rating, feeds = e.get("rating"), e.get("feeds")
            if isinstance(rating, int | float) and isinstance(feeds, int) and feeds > 0:
                return float(rating) * SHARE_MARGIN / feeds
    return None


@dataclass(frozen=True)
class FeedersPlanner:
    """A pure planner: each feeder's MPC on its own view; every proposal ``uses`` the substation's headroom."""

    planners: Mapping[str, MpcPlanner]
    name: str = PLANNER

    def __call__(self, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """Proposals of every feeder, in feeder order."""
        share = share_kw(snapshot)
        per: Mapping[str, Any] = forecasts.get(FEEDERS_KEY, {})
        out: list[ProposedAction] = []
        for feeder, mpc in self.planners.items():
            fc = per.get(feeder, {})
            inflexible = fc.get(f"{KEY}inflexible_kw", {}).get("mean") or [0.0]
            limit = None if share is None else max(share, max(float(v) for v in inflexible) + 1.0)
            view = feeder_view(snapshot, feeder, limit)
            for p in mpc(view, fc):
                ent = view.entities.get(p.target)
                now = ent.get("power") if ent is not None else None
                kw = p.params.get("kw")
                more = max(0.0, float(kw) - (float(now) if isinstance(now, int | float) else 0.0)) if isinstance(
                    kw, int | float) else 0.0
                out.append(dataclasses.replace(p, uses={**p.uses, f"{SUBSTATION_ID}#headroom": round(more, 3)}))
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
    from aicity.domains.energy.grid import GridModel, cigre_bus_names

    if name == "oracle":
        raise UserError(f"the oracle controller does not run on {scenario.name} (it does not know the substation)")
    buses = cigre_bus_names()
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
