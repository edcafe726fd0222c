"""The AI City restoration planner: which load points of a dead feeder the ``R`` feeder picks up through its tie.

A pure planner reading only published entities — transformers (in service or not), ties (capacity, headroom,
closed), load points (measured load and the load last measured while supplied, chargers' share of it) and
critical loads (kind, bus, the entity each serves) — and the per-load-point forecasts of :class:`LoadTrend`.
Right after a feeder trips it proposes, for the tie, the set of load points that maximises the energy served
over a 15-minute look-ahead weighted by criticality (hospitals and stations over signals over other loads)
while the look-ahead's peak stays within the tie's headroom. Chargers behind the tie are held off (not counted).
It knows nothing of ambulance routes: every alternative it considered is in ``candidates`` (whole sets, ranked,
each with the critical loads it leaves dark and the headroom it uses), so a later stage can swap the set.

A dead load point is measured only while supplied, so the planner cannot know that its load fell below what the
tie can take. Every ``trial_every_s`` it therefore also offers, for each dead load point with critical loads
whose last reading does not fit, a *trial*: that point alone, as a closing attempt the tie's edge refuses when the
point's load is still over the tie's capacity (the field crew's "close it and see", done by the switch's
load-aware interlock). The planner scores a trial low (``TRIAL_DISCOUNT`` of its value: it believes it will not
fit), so alone it never picks one; the orchestration stage may, when what the point's critical loads serve is
worth more to another domain than what the set in service keeps lit.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicity.core.domain import ProposedAction, Snapshot
from aicity.core.entity import Entity
from aicity.domains.energy.const import CRITICAL_TYPE, LOADPOINT_TYPE, RESTORE, TIE_TYPE, TRANSFORMER_TYPE

PLANNER = "energy.ai.restoration@1"
FORECAST_KEY = "energy.loadpoint_kw"
"""Forecasts: load point id → kW per minute over the look-ahead (load without chargers)."""
WEIGHTS: Mapping[str, float] = {"hospital": 10.0, "station": 10.0, "signal": 2.0}
"""Criticality weight per kW of each kind of critical load (other load: 1)."""
EXACT_MAX = 14
TRIAL_DISCOUNT = 0.25
"""A trial's score: this share of the point's value (the planner expects the edge to refuse it)."""
"""Up to this many load points every subset is scored; beyond, greedy sets from every start."""


@dataclass
class LoadTrend:
    """Learns each load point's load without chargers while it is supplied (level and per-minute trend, EWMA)
    and forecasts it over the look-ahead from the last supplied reading (a dead point's load is not measured)."""

    horizon_min: int = 15
    alpha: float = 0.3
    name: str = "energy.ai.loadtrend"
    _level: dict[str, tuple[float, float]] = field(default_factory=dict)
    _trend: dict[str, float] = field(default_factory=dict)

    def learn(self, snapshot: Snapshot) -> None:
        """Update level and trend of every supplied load point."""
        for e in snapshot.of_type(LOADPOINT_TYPE):
            if e.get("supplied") is not True:
                continue
            kw = _f(e.get("power")) - _f(e.get("evPower"))
            prev = self._level.get(e.id)
            if prev is not None and snapshot.elapsed_s > prev[1]:
                slope = (kw - prev[0]) / ((snapshot.elapsed_s - prev[1]) / 60.0)
                self._trend[e.id] = (1 - self.alpha) * self._trend.get(e.id, 0.0) + self.alpha * slope
            self._level[e.id] = (kw, snapshot.elapsed_s)

    def forecast(self, snapshot: Snapshot) -> Mapping[str, Any]:
        """Load point id → kW per minute of the look-ahead, from now."""
        out: dict[str, list[float]] = {}
        for pid, (kw, t) in self._level.items():
            gap = max(0.0, (snapshot.elapsed_s - t) / 60.0)
            slope = self._trend.get(pid, 0.0)
            out[pid] = [round(max(0.0, kw + slope * (gap + k)), 3) for k in range(1, self.horizon_min + 1)]
        return {FORECAST_KEY: out}


@dataclass(frozen=True)
class RestorationPlanner:
    """A pure planner: ``(snapshot, forecasts) -> [restore proposal per dead feeder with an open tie]``."""

    horizon_min: int = 15
    margin: float = 0.95
    top: int = 8
    trial_every_s: float = 120.0
    step_s: float = 60.0
    """The planner's decision interval (a trial is offered in the step that reaches each ``trial_every_s``)."""
    name: str = PLANNER

    def __call__(self, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """Propose a restoration set for every tie whose feeder is dead and that is not closed yet."""
        trafos = {str(e.get("feeder")): e for e in snapshot.of_type(TRANSFORMER_TYPE)}
        out = []
        for tie in snapshot.of_type(TIE_TYPE):
            feeder, source = str(tie.get("feeder")), str(tie.get("source"))
            if trafos.get(feeder) is None or trafos[feeder].get("inService") is not False:
                continue
            if trafos.get(source) is None or trafos[source].get("inService") is False:
                continue
            proposal = self._plan(snapshot, forecasts, tie, feeder)
            if proposal is not None:
                out.append(proposal)
        return out

    def _plan(self, snapshot: Snapshot, forecasts: Mapping[str, Any], tie: Entity,
              feeder: str) -> ProposedAction | None:
        """An open tie: the dead feeder's load points; a closed one is re-planned every decision over all of them
        (those it feeds are measured while supplied)."""
        closed = tie.get("closed") is True
        points = [e for e in snapshot.of_type(LOADPOINT_TYPE) if e.get("feeder") == feeder
                  and (closed or e.get("supplied") is not True)]
        crit: dict[str, list[Entity]] = {}
        for c in snapshot.of_type(CRITICAL_TYPE):
            crit.setdefault(str(c.get("bus")), []).append(c)
        loads, value = self._matrix(points, crit, forecasts.get(FORECAST_KEY, {}))
        used = _f(tie.get("used")) if closed else 0.0
        cap = (_f(tie.get("headroom")) + used) * self.margin
        trials = snapshot.elapsed_s % self.trial_every_s < self.step_s - 1e-9
        return self._ranked(tie, points, crit, loads, value, cap, used, trials)

    def _matrix(self, points: list[Entity], crit: Mapping[str, list[Entity]], fc: Mapping[str, list[float]]
                ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Each load point's look-ahead load (kW per minute; its critical loads at least) and its value (energy
        served over the look-ahead, critical loads weighted by kind)."""
        h = self.horizon_min
        loads = np.zeros((len(points), h))
        value = np.zeros(len(points))
        for i, p in enumerate(points):
            cs = crit.get(str(p.get("bus")), [])
            crit_kw = self._crit_kw(cs)
            base = _f(p.get("power")) - _f(p.get("evPower")) if p.get("supplied") is True else \
                _f(p.get("lastPower")) - _f(p.get("lastEvPower"))
            series = fc.get(p.id) or [max(0.0, base)] * h
            row = np.maximum(np.array((list(series) + [series[-1]] * h)[:h], dtype=float), crit_kw)
            loads[i] = row
            other = np.maximum(row - crit_kw, 0.0)
            value[i] = (other.sum() + sum(WEIGHTS.get(str(c.get("kind")), 1.0) * self._crit_kw([c]) * h
                                          for c in cs)) / 60.0
        return loads, value

    def _ranked(self, tie: Entity, points: list[Entity], crit: Mapping[str, list[Entity]],
                loads: np.ndarray[Any, Any], value: np.ndarray[Any, Any], cap: float,
                used: float, trials: bool = False) -> ProposedAction | None:
        """The proposal: the best set first, then the other ranked sets and, for every load point with critical
        loads, the best set that picks it up (so a later stage can keep any critical load lit), or its trial."""
        h = self.horizon_min
        sets = self._sets(loads, value, cap)
        if not sets:  # nothing fits: no proposal (a trial is only ever an alternative to a set that fits)
            return None
        tried = [i for i, p in enumerate(points) if trials and crit.get(str(p.get("bus")))
                 and p.get("supplied") is not True and loads[i].max() > cap + 1e-9]
        for i, p in enumerate(points):
            if crit.get(str(p.get("bus"))) and not any(i in c for c in sets):
                forced = self._forced(loads, value, cap, i)
                if forced:
                    sets.append(forced)
        key = f"{tie.id}#headroom"

        def described(chosen: tuple[int, ...]) -> dict[str, Any]:
            buses = sorted(str(points[i].get("bus")) for i in chosen)
            dark = sorted(str(c.get("servedEntity")) for p in points if str(p.get("bus")) not in buses
                          for c in crit.get(str(p.get("bus")), []))
            peak = float(loads[list(chosen)].sum(axis=0).max()) if chosen else 0.0
            return {"params": {"buses": buses}, "affects": dark, "uses": {key: round(peak - used, 3)},
                    "score": round(float(value[list(chosen)].sum()), 4)}

        ranked = sorted((described(c) for c in sets), key=lambda r: -float(r["score"]))
        for i in tried:
            trial = described((i,))
            room = max(0.0, cap - used)  # if it fits, it draws at most what the tie has left
            worth = float(value[i]) * min(1.0, room / max(float(loads[i].max()), 1e-9))
            trial.update(score=round(worth * TRIAL_DISCOUNT, 4), uses={key: round(room, 3)}, trial=True)
            ranked.append(trial)
        current = sorted(str(b) for b in (tie.get("buses") or [])) if tie.get("closed") is True else []
        keep = next((r for r in ranked if r["params"]["buses"] == current), None)
        index = {str(p.get("bus")): i for i, p in enumerate(points)}
        if keep is None and current and all(b in index for b in current):
            mine = tuple(sorted(index[b] for b in current))
            if float(loads[list(mine)].sum(axis=0).max()) <= cap / self.margin + 1e-9:  # still within the tie
                keep = described(mine)
        if keep is not None:  # a closed tie keeps its set (no switching every minute); the others stay offered
            ranked = [keep, *(r for r in ranked if r["params"] != keep["params"])]
        best = ranked[0]
        return ProposedAction(
            tie.id, RESTORE, best["params"], score=best["score"], candidates=tuple(ranked),
            inputs={tie.id: tie.get("headroom"), **{p.id: p.get("lastPower") for p in points}},
            forecasts={"horizon_min": h, "kw": {p.id: round(float(loads[i].max()), 3) for i, p in enumerate(points)}},
            planner=self.name, action_type=RESTORE, affects=tuple(best["affects"]), uses=best["uses"])

    @staticmethod
    def _forced(loads: np.ndarray[Any, Any], value: np.ndarray[Any, Any], cap: float, first: int) -> tuple[int, ...]:
        """The greedy set that starts with load point ``first`` (empty when it alone does not fit)."""
        if loads[first].max() > cap + 1e-9:
            return ()
        chosen, total = [first], loads[first].copy()
        for j in np.argsort(-value / np.maximum(loads.max(axis=1), 1e-3)):
            if int(j) not in chosen and (total + loads[j]).max() <= cap + 1e-9:
                chosen.append(int(j))
                total = total + loads[j]
        return tuple(sorted(chosen))

    @staticmethod
    def _crit_kw(cs: list[Entity]) -> float:
        return sum(_f(c.get("power")) for c in cs)

    def _sets(self, loads: np.ndarray[Any, Any], value: np.ndarray[Any, Any], cap: float) -> list[tuple[int, ...]]:
        """The best maximal sets (no other load point fits beside them), by score, at most ``top``."""
        n = len(value)
        if n == 0 or cap <= 0:
            return []
        if n <= EXACT_MAX:
            masks = np.array(list(itertools.product((0, 1), repeat=n)), dtype=float)  # 2^n × n
            totals = masks @ loads  # 2^n × h
            peaks = totals.max(axis=1)
            ok = peaks <= cap + 1e-9
            # maximal: adding any excluded point breaks the cap
            add = (totals[:, None, :] + loads[None, :, :]).max(axis=2)  # 2^n × n
            maximal = ok & np.all((masks > 0) | (add > cap + 1e-9), axis=1)
            scores = masks @ value
            idx = np.flatnonzero(maximal & (masks.sum(axis=1) > 0))
            order = idx[np.lexsort((peaks[idx], -scores[idx]))][: self.top]
            return [tuple(int(j) for j in np.flatnonzero(masks[i])) for i in order]
        found: dict[tuple[int, ...], float] = {}
        for first in [None, *range(n)]:
            chosen = [first] if first is not None and loads[first].max() <= cap else []
            total = loads[chosen].sum(axis=0) if chosen else np.zeros(loads.shape[1])
            for j in np.argsort(-value / np.maximum(loads.max(axis=1), 1e-3)):
                if int(j) not in chosen and (total + loads[j]).max() <= cap + 1e-9:
                    chosen.append(int(j))
                    total = total + loads[j]
            if chosen:
                found[tuple(sorted(chosen))] = float(value[chosen].sum())
        return sorted(found, key=lambda c: -found[c])[: self.top]


def _f(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else 0.0


__all__ = ["FORECAST_KEY", "PLANNER", "LoadTrend", "RestorationPlanner"]
