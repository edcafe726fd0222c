"""The AI City energy controller: receding-horizon MPC, the dispatch LP of :mod:`.lp` re-solved every decision.

It reads only what a charging network sees — the site meter (power, the peak reached so far, the transformer
rating), every charger's connected session (connection time, requested energy, estimated departure, energy
delivered) and battery states — plus the forecasts of :class:`.learning.DemandLearner`: energy that new sessions
will bring (as anticipated flexible demand: the mean step by step, or on a charging site the learned upper quantile
of the energy still to arrive today, in hourly blocks), the inflexible net load, and how early people leave against
the departure they typed (each session is planned to finish by that earlier time; on the district only wanted by it,
``finish_penalty``, and due by the typed departure). The tariff is public. On the district the batteries keep a
reserve for the evening: the energy the heaviest of the recent days' measured load would need above the peak already
paid (``reserve_h``). Assets whose meters are implausible get their safe setpoint. Each proposal carries, from the
LP's duals, the constraints that bound the dispatch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from aicity.core.domain import ProposedAction, Snapshot
from aicity.core.entity import Entity
from aicity.domains.energy.const import (
    BATTERY_DISPATCH,
    BATTERY_TYPE,
    CHARGER_TYPE,
    EV_CHARGING,
    METER_TYPE,
    SET_POWER,
    TRANSFORMER_PREFIX,
)
from aicity.domains.energy.data import Tariff
from aicity.domains.energy.learning import KEY, PAST, TO_COME, parse_time, when
from aicity.domains.energy.lp import Job, Network, Problem, Solution, Storage, solve

PLANNER = "energy.ai.mpc@1"
REFILL = 1.02
"""With ``keep_energy="refill"`` on a flat price: stored energy is worth 2 % more than the energy that filled it."""
_WORDS = {"peak": "the site's peak so far", "transformer": "the transformer rating",
          "voltage_min": "the 0.95 pu voltage floor", "voltage_max": "the 1.05 pu voltage ceiling",
          "line_loading": "a line's thermal rating",
          "reserve": "the battery energy kept for an evening as heavy as the heaviest recent day's"}


@dataclass(frozen=True)
class MpcPlanner:
    """A pure planner: ``(snapshot, forecasts) -> proposals`` (its tariff and grid model are fixed inputs)."""

    tariff: Tariff
    demand_charge: float
    horizon_h: float = 12.0
    anticipate: bool = True
    network: Any = None
    name: str = PLANNER
    plan_step_s: float | None = None
    """The LP's step when coarser than the decision interval (it still decides every interval)."""
    battery_horizon_h: float = 4.0
    """The shortest plan while batteries are there (with no EV to plan for, the plan is otherwise one step)."""
    keep_energy: str = "none"
    """What the energy the batteries hold at the plan's end is worth: ``none``; ``lowest`` the horizon's lowest
    price after losses (free PV surplus is stored, not exported); ``highest`` its highest price before losses (the
    batteries discharge only to hold the peak: no arbitrage); ``refill`` as ``lowest``, but where the horizon's
    price is flat (a weekend: nothing to gain from arbitrage) a little over it before losses, so the batteries
    refill as insurance for the next evening's peak instead of idling empty."""
    arrivals: str = "mean"
    """What the plan expects new sessions to bring: ``mean`` (the arrival forecast's mean, step by step) or
    ``quantile`` (the learned upper quantile of the energy still to arrive, ``energy.arrivals_to_come``, in
    hourly blocks over the whole horizon; the mean until that is learned)."""
    reserve_h: float = 0.0
    """Where positive (and batteries and past-day scenarios ``energy.inflexible_past`` are there), the batteries
    keep at each step the energy they would need, over the rest of the next ``reserve_h`` hours, to hold the peak
    already paid if the inflexible load were that of the heaviest of the recent days (never below the forecast)."""
    reserve_jitter_steps: int = 0
    """The reserve reads each recent day's load at each step as its highest within this many forecast steps either
    side: an evening's heaviest quarter-hour does not come at the same quarter-hour every day."""
    energy_on_expected: bool = False
    """Where the inflexible-load forecast carries its ``expected`` value beside a cautious ``mean`` (the peak
    guard's upper bound), the plan buys energy for the expected load and holds the peak against the cautious one."""
    finish_penalty: float | None = None
    """Where given, each session's energy is due (hard) by the departure its user typed, and wanted by the learned
    finish (the typed dwell cut to the share people really stay) at this many $ per kWh late (soft): an evening at
    the paid peak defers charging past the learned finish instead of raising the peak (None: due by the learned
    finish)."""
    ramp_first_step: bool = False
    """The plan's first step keeps each battery within its reported ramp rate of the power it reports (the step
    about to be executed: the edge then executes it as planned, not clamped); later steps are free."""
    told_peak_kw: float = 0.0
    """A peak the plan takes as paid from the start (0: none). Only the ``ai_told_peak`` diagnostic sets it, to the
    oracle's window peak: ground truth no city has."""

    def __call__(self, snapshot: Snapshot, forecasts: Mapping[str, Any]) -> list[ProposedAction]:
        """One proposal per connected charger and per battery."""
        meters = snapshot.of_type(METER_TYPE)
        if not meters:
            return []
        meter = meters[0]
        now = when(meter, "activePower") or snapshot.time
        every_s = float(meter.get("decisionInterval") or 300.0)
        dt_s = max(every_s, self.plan_step_s or every_s)
        r = max(1, round(dt_s / every_s))
        dt_h = dt_s / 3600.0
        health: Mapping[str, str] = forecasts.get(f"{KEY}health", {})
        chargers = [e for e in snapshot.of_type(CHARGER_TYPE) if e.get("sessionId") is not None]
        batteries = snapshot.of_type(BATTERY_TYPE)
        if not chargers and not batteries:
            return []
        out: list[ProposedAction] = []
        if meter.id in health:  # the site meter is implausible: nothing is dispatched from it
            return [self._safe(e, meter, f"site meter {health[meter.id]}") for e in chargers] + [
                self._idle(b, meter) for b in batteries]
        share = float(forecasts.get(f"{KEY}departure_share", {}).get("mean", 0.8))
        active = [e for e in chargers if e.id not in health and e.get("status") != "SuspendedEV"]
        out += [self._safe(e, meter, f"meter {health[e.id]}") for e in chargers if e.id in health]
        out += [self._zero(e, meter, "the EV is full") for e in chargers
                if e.id not in health and e.get("status") == "SuspendedEV"]
        cut = {e.id: ("its bus is not supplied" if e.get("supplied") is False else "it is fed through a tie")
               for e in active if e.get("supplied") is False or e.get("viaTie") is True}
        out += [self._zero(e, meter, cut[e.id]) for e in active if e.id in cut]
        active = [e for e in active if e.id not in cut]
        deadlines = {e.id: self._deadline(e, now, share) for e in active}
        due = deadlines if self.finish_penalty is None else {e.id: self._deadline(e, now, 1.0) for e in active}
        n = max(1, min(int(self.horizon_h * 3600 / dt_s), max([math.ceil(d / dt_s) for d in due.values()] or [1])))
        n = max(n, int(min(self.battery_horizon_h, self.horizon_h) * 3600 / dt_s)) if batteries else n
        blocks = forecasts.get(f"{KEY}{TO_COME}") if self.anticipate and self.arrivals == "quantile" else None
        if blocks:  # arrivals over the whole horizon: the plan's peak covers a heavy day's later sessions
            n = max(n, int(self.horizon_h * 3600 / dt_s))
        if self.finish_penalty is None:
            jobs = [self._job(e, deadlines[e.id], n, dt_s, dt_h) for e in active]
        else:
            jobs = [dataclasses.replace(self._job(e, due[e.id], n, dt_s, dt_h),
                                        soft_steps=deadlines[e.id] / dt_s, soft_penalty=self.finish_penalty)
                    for e in active]
        if blocks:
            jobs += arrival_blocks(blocks, forecasts, n, every_s, r)
        elif self.anticipate and r == 1:
            jobs += self._anticipated(forecasts, n, dt_s)
        ramp = self.ramp_first_step and r == 1  # a plan step of one decision: the edge's ramp per decision
        storages = [Storage(b.id, _f(b.get("energyStored")), _f(b.get("capacity")), _f(b.get("maxPower")),
                            _f(b.get("socMin")), _f(b.get("socMax")), _f(b.get("efficiency")) or 0.95,
                            int(b.get("node") or 0), *(_first_ramp(b) if ramp else (math.inf, 0.0, None)))
                    for b in batteries]
        inflex = _blocks(self._series(forecasts, "inflexible_kw", n * r), r)
        expected, margin = inflex, None
        if self.energy_on_expected and (forecasts.get(f"{KEY}inflexible_kw") or {}).get("expected"):
            expected = _blocks(self._series(forecasts, "inflexible_kw", n * r, "expected"), r)
            margin = np.maximum(inflex - expected, 0.0)
        prices = np.array([self.tariff.price(now + timedelta(seconds=k * dt_s)) for k in range(n)])
        network = (self.network.restrict(_blocks(self._nodes(forecasts, n * r), r), n) if self.network is not None
                   else None)
        eff = min((s.efficiency for s in storages), default=1.0)
        value = {"lowest": float(prices.min()) * eff, "highest": float(prices.max()) / eff,
                 "refill": float(prices.min()) * (eff if float(np.ptp(prices)) > 1e-9 else REFILL / eff)
                 }.get(self.keep_energy, 0.0)
        paid = max(_f(meter.get("peakPower")), self.told_peak_kw)
        prob = Problem(n, dt_h, prices, expected, jobs, storages, _f(meter.get("transformerRating")) or math.inf,
                       paid, max(self.demand_charge, 1.0), network=network, stored_value=value,
                       reserve=self._reserve(forecasts, inflex, n, r, dt_h, paid, storages), peak_margin_kw=margin)
        sol = solve(prob)
        if not sol.ok:
            return out + [self._safe(e, meter, f"no feasible dispatch ({sol.status})") for e in active] + [
                self._idle(b, meter) for b in batteries]
        why = explain(sol, prob, now, dt_s)
        inputs_site = {meter.id: meter.get("activePower")}
        planned = {e.id: float(sol.rates[e.id][0]) for e in active if e.id in sol.rates}
        setpoints = to_steps(active, planned, deadlines)
        if network is not None and not within_rows(network, prob, sol, planned, setpoints):
            setpoints = to_steps(active, planned, deadlines, per_node=True)
        for e in active:
            kw = setpoints.get(e.id, 0.0)
            out.append(ProposedAction(
                e.id, SET_POWER, {"kw": round(kw, 3)}, score=round(sol.objective, 4),
                candidates=({"kw": round(kw, 3), "binding": why},),
                inputs={**inputs_site, e.id: e.get("energyDelivered")},
                forecasts={"departure_share": share, "planned_finish_s": round(deadlines[e.id], 1)},
                planner=self.name, action_type=EV_CHARGING, uses=_uses(e, kw)))
        for b in batteries:
            kw = float(sol.battery[b.id][0]) if b.id in sol.battery else 0.0
            out.append(ProposedAction(b.id, SET_POWER, {"kw": round(kw, 3)}, score=round(sol.objective, 4),
                                      candidates=({"kw": round(kw, 3), "binding": why},),
                                      inputs={**inputs_site, b.id: b.get("stateOfCharge")},
                                      forecasts={"planned_peak_kw": round(sol.peak_kw, 3)},
                                      planner=self.name, action_type=BATTERY_DISPATCH))
        return out

    def _reserve(self, forecasts: Mapping[str, Any], inflex: np.ndarray[Any, np.dtype[np.float64]], n: int, r: int,
                 dt_h: float, floor_kw: float, storages: list[Storage]) -> np.ndarray[Any, np.dtype[np.float64]] | None:
        """Energy (kWh above the floors) to keep at the end of each plan step: for each recent day, what the
        batteries would need over the rest of the next ``reserve_h`` hours to hold ``floor_kw`` (the peak already
        paid) if the inflexible load were that day's (at least the forecast), after losses; the most of any day,
        within what the batteries can hold. None without batteries or past days."""
        days = (forecasts.get(f"{KEY}{PAST}") or {}).get("days") if self.reserve_h > 0 and storages else None
        rows = np.array([widen(np.asarray(d, dtype=float), self.reserve_jitter_steps)[: n * r]
                         for d in days or [] if len(d) >= n * r], dtype=float)
        if rows.size == 0:
            return None
        steps = min(n, int(self.reserve_h / dt_h))
        eff = min(s.efficiency for s in storages)
        usable = sum(max(0.0, (s.soc_max - s.soc_min) * s.capacity_kwh) for s in storages)
        need = np.zeros((len(rows), n))
        need[:, :steps] = np.maximum(np.maximum(_blocks(rows, r), inflex[None, :n])[:, :steps] - floor_kw, 0.0)
        after = np.cumsum(need[:, ::-1], axis=1)[:, ::-1] - need  # what the steps after k need, per day
        return np.asarray(np.minimum(after.max(axis=0) * dt_h / eff, usable), dtype=float)

    def _deadline(self, e: Entity, now: datetime, share: float) -> float:
        """Seconds from now by which the session is planned to finish: the typed dwell cut to the share of it
        people really stay (learned), at least one interval."""
        since, est = parse_time(e.get("connectedSince")), parse_time(e.get("estimatedDeparture"))
        if since is None or est is None:
            return 3600.0
        finish = since + (est - since) * share
        return max(1.0, (finish - now).total_seconds())

    def _job(self, e: Entity, deadline_s: float, n: int, dt_s: float, dt_h: float) -> Job:
        avail = np.zeros(n)
        last = deadline_s / dt_s
        for k in range(min(n, max(1, math.ceil(last)))):
            avail[k] = 1.0 if k + 1 <= last or k == 0 else last - k
        need = max(0.0, _f(e.get("requestedEnergy")) - _f(e.get("energyDelivered")))
        return Job(e.id, avail, need, _f(e.get("maxPower")), int(e.get("node") or 0))

    def _anticipated(self, forecasts: Mapping[str, Any], n: int, dt_s: float) -> list[Job]:
        """Forecast arrivals as flexible jobs: the energy of step ``k`` due one typical dwell later (once the
        forecaster has learned a whole day: before that its level is one morning's burst, not a profile)."""
        fc = forecasts.get(f"{KEY}arrival_kwh") or {}
        if int(fc.get("n", 0)) < round(86400 / dt_s):
            return []
        mean = self._series(forecasts, "arrival_kwh", n)
        dwell_h = float(forecasts.get(f"{KEY}dwell_h", {}).get("mean", 4.0)) * float(
            forecasts.get(f"{KEY}departure_share", {}).get("mean", 0.8))
        span = max(1, int(dwell_h * 3600 / dt_s))
        jobs = []
        for k in range(1, n):
            if mean[k] <= 1e-6:
                continue
            avail = np.zeros(n)
            avail[k:k + span] = 1.0
            jobs.append(Job(f"forecast-{k}", avail, float(mean[k]), float(mean[k]) / (dwell_h / 2), penalty=100.0))
        return jobs

    @staticmethod
    def _series(forecasts: Mapping[str, Any], name: str, n: int,
                part: str = "mean") -> np.ndarray[Any, np.dtype[np.float64]]:
        fc = forecasts.get(f"{KEY}{name}")
        out = np.zeros(n)
        if fc:
            vals = np.array((fc.get(part) or fc["mean"])[:n], dtype=float)
            out[: len(vals)] = vals
            out[len(vals):] = vals[-1] if len(vals) else 0.0  # a shorter forecast holds its last value
        return out

    def _nodes(self, forecasts: Mapping[str, Any], n: int) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Forecast inflexible load per grid node (nodes × n)."""
        nn = int(self.network.sv.shape[1])
        out = np.zeros((nn, n))
        fc = forecasts.get(f"{KEY}inflexible_kw") or {}
        per = fc.get("nodes", {})
        for key, vals in per.items():
            i = int(key)
            if 0 <= i < nn:
                v = np.array(vals[:n], dtype=float)
                out[i, : len(v)] = v
                out[i, len(v):] = v[-1] if len(v) else 0.0
        return out

    def _safe(self, e: Entity, meter: Entity, reason: str) -> ProposedAction:
        kw = _f(e.get("safePower"))
        return ProposedAction(e.id, SET_POWER, {"kw": kw}, candidates=({"kw": kw, "binding": f"safe rate: {reason}"},),
                              inputs={meter.id: meter.get("activePower"), e.id: e.get("energyDelivered")},
                              planner=self.name, action_type=EV_CHARGING)

    def _zero(self, e: Entity, meter: Entity, reason: str) -> ProposedAction:
        return ProposedAction(e.id, SET_POWER, {"kw": 0.0}, candidates=({"kw": 0.0, "binding": reason},),
                              inputs={e.id: e.get("energyDelivered")}, planner=self.name, action_type=EV_CHARGING)

    def _idle(self, b: Entity, meter: Entity) -> ProposedAction:
        return ProposedAction(b.id, SET_POWER, {"kw": 0.0}, candidates=({"kw": 0.0, "binding": "safe: idle"},),
                              inputs={b.id: b.get("stateOfCharge")}, planner=self.name,
                              action_type=BATTERY_DISPATCH)


def arrival_blocks(fc: Mapping[str, Any], forecasts: Mapping[str, Any], n: int, every_s: float, r: int) -> list[Job]:
    """The energy expected to arrive in each hour of the plan as one flexible job, from that hour for one
    typical dwell, at up to twice its mean rate; hours whose dwell would end beyond the plan are left out
    (the plan would otherwise squeeze them into its last steps)."""
    kwh = np.asarray(fc.get("kwh") or [], dtype=float)
    dwell_h = float(forecasts.get(f"{KEY}dwell_h", {}).get("mean", 4.0)) * float(
        forecasts.get(f"{KEY}departure_share", {}).get("mean", 0.8))
    hour = max(1, round(3600 / (every_s * r)))
    span = max(1, int(dwell_h * 3600 / (every_s * r)))
    jobs = []
    for k in range(0, n - span + 1, hour):
        energy = float(kwh[k * r:(k + hour) * r].sum())
        if energy <= 1e-6:
            continue
        avail = np.zeros(n)
        avail[k + (1 if k == 0 else 0):k + span] = 1.0
        jobs.append(Job(f"forecast-{k}", avail, energy, energy / (dwell_h / 2), penalty=100.0))
    return jobs


def to_steps(chargers: list[Entity], rates: Mapping[str, float], deadlines: Mapping[str, float],
             per_node: bool = False) -> dict[str, float]:
    """Chargers' setpoints in their steps, within the LP's total (with ``per_node``, within each grid node's): a
    rate below a charger's minimum would round to nothing for ever (thinly spread energy never flows), so the total
    goes, most urgent first, in whole steps of at least the minimum, the last one floored to fit. Rounding up would
    lift the site's peak a step above the plan, and the next plan would start from that higher peak (a ratchet).
    Site-wide, power can move from one node's chargers to another's: :func:`within_rows` checks it against the
    grid."""
    by_node: dict[int, list[Entity]] = {}
    for e in chargers:
        by_node.setdefault(int(e.get("node") or 0) if per_node else 0, []).append(e)
    out: dict[str, float] = {}
    for group in by_node.values():
        out.update(_node_steps(group, rates, deadlines))
    return out


def _node_steps(chargers: list[Entity], rates: Mapping[str, float],
                deadlines: Mapping[str, float]) -> dict[str, float]:
    """One node's chargers' setpoints in whole steps within the node's planned total, most urgent first."""
    budget = sum(max(0.0, rates.get(e.id, 0.0)) for e in chargers)
    out: dict[str, float] = {}
    order = sorted((e for e in chargers if rates.get(e.id, 0.0) > 1e-6), key=lambda e: (deadlines[e.id], e.id))
    for e in order:
        lo, step, hi = _f(e.get("minPower")), _f(e.get("powerStep")) or 0.1, _f(e.get("maxPower"))
        want = max(rates[e.id], lo)
        kw = min(hi, lo + math.ceil((want - lo) / step - 1e-9) * step) if want > lo else lo
        if budget <= 1e-6:
            break
        if kw > budget + 1e-6:  # the remainder only: floor to a step, or nothing below the minimum
            kw = lo + math.floor((budget - lo) / step + 1e-9) * step if budget >= lo else 0.0
        if kw > 0:
            out[e.id] = round(kw, 3)
            budget -= kw
    return out


def within_rows(network: Network, prob: Problem, sol: Solution, rates: Mapping[str, float],
                setpoints: Mapping[str, float]) -> bool:
    """Whether the chargers' setpoints (for the jobs planned at ``rates``) keep the first step's linearised voltages
    and line flows as the plan left them: no bus or line further outside its limits than with the planned rates
    (rounding moves power between nodes)."""
    inj = np.zeros(network.sv.shape[1])
    delta = np.zeros_like(inj)
    for j in prob.jobs:
        if j.key in sol.rates:
            inj[j.node] += float(sol.rates[j.key][0])
        if j.key in rates:
            delta[j.node] += setpoints.get(j.key, 0.0) - max(0.0, rates[j.key])
    for st in prob.storages:
        if st.key in sol.battery:
            inj[st.node] += float(sol.battery[st.key][0])

    def excess(x: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
        v, f = network.v0[:, 0] + network.sv @ x, network.f0[:, 0] + network.sf @ x
        return np.concatenate([np.maximum(network.vmin - v, 0.0), np.maximum(v - network.vmax, 0.0),
                               np.maximum(np.abs(f) - network.fmax, 0.0)])

    return bool((excess(inj + delta) <= excess(inj) + 1e-6).all())


def explain(sol: Solution, prob: Problem, now: datetime, dt_s: float) -> str:
    """Which constraints bound the dispatch and when, from the LP's duals, in words."""
    if not sol.binding:
        return "no constraint bound: every session charges as early and cheaply as it can"
    spans: dict[str, list[int]] = {}
    for kind, k, _ in sol.binding:
        spans.setdefault(kind, []).append(k)
    parts = []
    for kind, ks in spans.items():
        a = now + timedelta(seconds=min(ks) * dt_s)
        b = now + timedelta(seconds=(max(ks) + 1) * dt_s)
        what = _WORDS.get(kind, kind)
        if kind == "peak":
            what = f"{what} ({sol.peak_kw:.1f} kW, demand charge {prob.peak_weight:g} $/kW)"
        elif kind == "transformer":
            what = f"the {prob.limit_kw:g} kW transformer rating"
        parts.append(f"{what} bound {a:%H:%M}-{b:%H:%M}")
    return "; ".join(parts) + "; the sessions with the latest departures were deferred"


def _first_ramp(b: Entity) -> tuple[float, float, int | None]:
    """The LP's ramp for battery ``b``: where it reports its ramp rate per decision, the first step may move only
    that far from the power it reports (the step about to be executed, so the edge does not clamp it away from the
    plan: a clamped charge at a bus the voltage band binds takes it below the band); later steps are free
    (re-planned before they run)."""
    ramp, power = b.get("rampRate"), b.get("power")
    if not isinstance(ramp, int | float) or not isinstance(power, int | float) or not math.isfinite(ramp):
        return math.inf, 0.0, None
    return float(ramp), float(power), 1


def widen(rows: np.ndarray[Any, np.dtype[np.float64]], steps: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Each row's value at each step replaced by its highest within ``steps`` steps either side (along the last
    axis; the ends see only what the row holds)."""
    out = rows.copy()
    for k in range(1, min(max(steps, 0), rows.shape[-1] - 1) + 1):
        out[..., k:] = np.maximum(out[..., k:], rows[..., :-k])
        out[..., :-k] = np.maximum(out[..., :-k], rows[..., k:])
    return out


def _blocks(series: np.ndarray[Any, np.dtype[np.float64]], r: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Means over blocks of ``r`` along the last axis (a plan step of ``r`` decision intervals)."""
    if r == 1:
        return series
    n = series.shape[-1] // r
    return np.asarray(series[..., : n * r].reshape(*series.shape[:-1], n, r).mean(axis=-1), dtype=float)


def _uses(e: Entity, kw: float) -> dict[str, float]:
    """The transformer headroom a charger's setpoint takes, where the charger says which feeder it is on."""
    feeder = e.get("feeder")
    return {f"{TRANSFORMER_PREFIX}{feeder}#headroom": round(kw, 3)} if isinstance(feeder, str) else {}


def _f(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else 0.0


__all__ = ["PLANNER", "MpcPlanner", "Network", "arrival_blocks", "explain"]
