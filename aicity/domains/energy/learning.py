"""What the AI City energy controller learns online, from meters and connected sessions only.

:class:`DemandLearner` (a :class:`aicity.core.domain.ForecastProvider` with live accuracy) learns, with an
:mod:`aicity.forecast` model (conformal 80 % / 90 % intervals), the energy that new sessions bring per decision
step and the site's inflexible net load (meter minus chargers and batteries: loads less PV); from sessions that
ended, how early people leave against the departure they typed (a low quantile of actual ÷ typed dwell); and the
health of every meter (a reading that stays frozen while power flows marks the meter, and the assets it drives
go to their safe state); where asked (``past_days``), the measured total inflexible load of the recent days, as
past-day scenarios of the horizon.

:class:`ArrivalProfile` learns, from completed past days only (weekdays and weekends apart), an upper quantile of
the energy that new sessions still bring between each time of day and midnight; the MPC plans that energy as
flexible demand, so the peak it pays for already covers a heavy day's later arrivals. It may warm up on the site's
session records before the window (a real charging network has its history).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity
from aicity.domains.energy.const import BATTERY_TYPE, BUS_TYPE, CHARGER_TYPE, METER_TYPE
from aicity.forecast.accuracy import AccuracyTracker

FArray = np.ndarray[Any, np.dtype[np.float64]]

ARRIVALS = "arrival_kwh"
TO_COME = "arrivals_to_come"
INFLEXIBLE = "inflexible_kw"
PAST = "inflexible_past"
KEY = "energy."
"""Forecast keys start with this: ``energy.arrival_kwh``, ``energy.inflexible_kw``, ``energy.dwell_h``,
``energy.departure_share``, ``energy.health``, ``energy.arrivals_to_come``, ``energy.inflexible_past``."""

@dataclass
class ArrivalProfile:
    """Upper quantile of the energy still to arrive before midnight, by time-of-day slot and day type (weekday or
    weekend), from the last ``days`` completed days of each type; only days observed from midnight count."""

    period: int = 288
    quantile: float = 0.6
    days: int = 20
    min_days: int = 3
    _past: dict[bool, deque[FArray]] = field(default_factory=dict)
    _curve: dict[bool, FArray] = field(default_factory=dict)
    _day: date | None = None
    _whole: bool = False
    _today: FArray = field(default_factory=lambda: np.zeros(0))

    def slot(self, t: datetime) -> int:
        """The time-of-day slot of local time ``t``."""
        return min(self.period - 1, (t.hour * 3600 + t.minute * 60 + t.second) * self.period // 86400)

    def add(self, t: datetime, kwh: float) -> None:
        """Energy of sessions first seen at local time ``t`` (call in time order, with 0 when none arrived)."""
        if t.date() != self._day:
            if self._day is not None and self._whole:
                self._keep(self._day, self._today)
            self._day, self._today, self._whole = t.date(), np.zeros(self.period), self.slot(t) == 0
        self._today[self.slot(t)] += max(0.0, kwh)

    def _keep(self, day: date, profile: FArray) -> None:
        weekend = day.weekday() >= 5
        self._past.setdefault(weekend, deque(maxlen=self.days)).append(profile)
        self._curve.pop(weekend, None)

    def warm(self, history: Iterable[tuple[datetime, float]], since: date, until: date) -> None:
        """Learn the whole days ``[since, until)`` from session records ``(local arrival time, kWh)``."""
        by_day: dict[date, FArray] = {}
        for t, kwh in history:
            if since <= t.date() < until:
                by_day.setdefault(t.date(), np.zeros(self.period))[self.slot(t)] += max(0.0, kwh)
        for o in range(since.toordinal(), until.toordinal()):
            day = date.fromordinal(o)
            self._keep(day, by_day.get(day, np.zeros(self.period)))

    def remaining(self, weekend: bool) -> FArray | None:
        """``R[s]``: the quantile of the energy arriving from slot ``s`` to midnight (``period + 1`` values, the
        last 0), or None with fewer than ``min_days`` past days of the type."""
        days = self._past.get(weekend)
        if days is None or len(days) < self.min_days:
            return None
        if weekend not in self._curve:
            tails = np.array([np.concatenate([np.cumsum(d[::-1])[::-1], [0.0]]) for d in days])
            self._curve[weekend] = np.asarray(np.quantile(tails, self.quantile, axis=0), dtype=float)
        return self._curve[weekend]

    def ahead(self, now: datetime, horizon: int) -> list[float] | None:
        """Energy planned to arrive in each of the next ``horizon`` slots after ``now`` (today's remaining curve,
        then the next days'), or None while a day type in reach has too little history."""
        out: list[float] = []
        s0 = self.slot(now) + 1
        day = now.date()
        while len(out) < horizon:
            curve = self.remaining(day.weekday() >= 5)
            if curve is None:
                return None
            inc = np.maximum(curve[:-1] - curve[1:], 0.0)
            out.extend(float(v) for v in inc[s0:])
            s0, day = 0, date.fromordinal(day.toordinal() + 1)
        return out[:horizon]

    @property
    def n_days(self) -> int:
        """Completed days learned."""
        return sum(len(d) for d in self._past.values())


def when(ent: Entity, attr: str) -> datetime | None:
    """The observation time of one attribute."""
    a = ent.attrs.get(attr)
    return getattr(a, "observed_at", None)


def parse_time(text: Any) -> datetime | None:
    """An ISO time, or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass
class DemandLearner:
    """Online forecasts of arrivals and inflexible load, departure behaviour and meter health (see module)."""

    horizon: int = 144
    model: str = "seasonal_average"
    period: int = 288
    seed: int = 0
    name: str = "energy.ai.demand"
    quantile: float = 0.2
    prior_share: float = 0.85
    min_ratios: int = 100
    frozen_after: int = 3
    _model: Any = None
    _seen: set[str] = field(default_factory=set)
    _open: dict[str, tuple[datetime, datetime, datetime]] = field(default_factory=dict)
    _ratios: deque[float] = field(default_factory=lambda: deque(maxlen=400))
    _dwells: deque[float] = field(default_factory=lambda: deque(maxlen=400))
    _last: dict[str, tuple[Any, int]] = field(default_factory=dict)
    _health: dict[str, str] = field(default_factory=dict)
    _fc: dict[str, Any] = field(default_factory=dict)
    tracker: AccuracyTracker = field(default_factory=lambda: AccuracyTracker(window=48))
    _hour: list[dict[str, float]] = field(default_factory=list)
    _hour_fc: dict[str, float] = field(default_factory=dict)
    _steps: int = 0
    profile: ArrivalProfile | None = None
    """Where given, the quantile of arrivals still to come today is learned too (``energy.arrivals_to_come``)."""
    past_days: int = 0
    """Days of the measured total inflexible load kept and published as past-day scenarios of the horizon
    (``energy.inflexible_past``: row ``d`` is what the load was ``d + 1`` days before each step ahead); 0 none."""
    _now: datetime | None = None
    _total: deque[float] = field(default_factory=deque)

    def __post_init__(self) -> None:
        from aicity.forecast import registry

        self._model = registry.make_multi(self.model, period=self.period, seed=self.seed)

    def warm(self, sessions: Iterable[tuple[datetime, float, float, float]], since: date, until: date) -> None:
        """Learn past sessions of the site's records ``(local arrival, kWh shown, dwell shown s, real dwell s)``
        arriving on the days ``[since, until)``: the arrival profile, typed dwells and departure shares."""
        past = sorted((s for s in sessions if since <= s[0].date() < until), key=lambda s: s[0])
        if self.profile is not None:
            self.profile.warm(((t, kwh) for t, kwh, _, _ in past), since, until)
        for _, _, shown, real in past:
            self._dwells.append(max(0.0, shown / 3600))
            if shown > 600:
                self._ratios.append(min(2.0, max(0.0, real / shown)))

    def warm_meters(self, net_kw: FArray, arrivals: Iterable[tuple[float, float]], start: datetime,
                    step_s: float) -> int:
        """Learn past readings before ``start``: ``net_kw`` (node × step, the bus meters' net load over the
        steps just before it) and past sessions ``(arrival s relative to start, kWh)``, each counted at the first
        reading after it arrived, as live; returns the steps learned. A reading is stamped, as a live meter's, at
        the end of the interval it measured; the last interval's reading is the meters' first live one (at
        ``start``), so it is left to the live loop and not learned twice."""
        from datetime import timedelta

        steps = max(int(net_kw.shape[1]) - 1, 0)
        per = np.zeros(steps)
        for a, kwh in arrivals:
            k = steps + math.ceil(a / step_s - 1e-9)  # the reading at the end of the interval it arrived in
            if 0 <= k < steps:
                per[k] += max(0.0, kwh)
        for k in range(steps):
            values = {ARRIVALS: float(per[k]), **{f"{INFLEXIBLE}:{i}": float(v) for i, v in enumerate(net_kw[:, k])}}
            self._model.learn_step(values, t=start - timedelta(seconds=(steps - k) * step_s))
            self._remember(float(net_kw[:, k].sum()))
            self._steps += 1
        return steps

    def _remember(self, total_kw: float) -> None:
        """Keep one step's measured total inflexible load for the past-day scenarios."""
        if self.past_days > 0:
            self._total.append(total_kw)
            while len(self._total) > self.past_days * self.period:
                self._total.popleft()

    def past(self) -> list[list[float]]:
        """Past-day scenarios of the horizon: row ``d`` holds, for each of the next ``horizon`` steps, the total
        inflexible load measured ``d + 1`` days before it (only whole rows the memory covers)."""
        tot = list(self._total)
        n, out = len(tot), []
        for d in range(1, self.past_days + 1):
            first = n - d * self.period  # the value one step ahead, d days earlier, is at ``first``
            if first < 0:
                break
            out.append([tot[first + h - self.period * ((first + h - n) // self.period + 1)]
                        if first + h >= n else tot[first + h] for h in range(self.horizon)])
        return out

    def learn(self, snapshot: Snapshot) -> None:
        """One step: new sessions' energy, sessions that left, inflexible load, meter health."""
        meters = snapshot.of_type(METER_TYPE)
        if not meters:
            return
        meter = meters[0]
        now = when(meter, "activePower") or snapshot.time
        arrived = 0.0
        ev_kw = 0.0
        connected: set[str] = set()
        for ent in snapshot.of_type(CHARGER_TYPE):
            self._check_frozen(ent, "energyDelivered", _num(ent.get("power")) > 0.05)
            ev_kw += _num(ent.get("power"))
            sid = ent.get("sessionId")
            if sid is None:
                continue
            sid = str(sid)
            connected.add(sid)
            if sid not in self._seen:
                self._seen.add(sid)
                arrived += max(0.0, _num(ent.get("requestedEnergy")))
                since, est = parse_time(ent.get("connectedSince")), parse_time(ent.get("estimatedDeparture"))
                if since is not None and est is not None:
                    self._open[sid] = (since, est, now)
                    self._dwells.append(max(0.0, (est - since).total_seconds() / 3600))
            elif sid in self._open:
                since, est, _ = self._open[sid]
                self._open[sid] = (since, est, now)
        for sid in [s for s in self._open if s not in connected]:
            since, est, last = self._open.pop(sid)
            typed = (est - since).total_seconds()
            if typed > 600:
                self._ratios.append(min(2.0, max(0.0, (last - since).total_seconds() / typed)))
        bat_kw = sum(_num(b.get("power")) for b in snapshot.of_type(BATTERY_TYPE))
        self._check_frozen(meter, "totalActiveEnergyImport", abs(_num(meter.get("activePower"))) > 0.05
                           or ev_kw > 0.05)
        values = {ARRIVALS: arrived}
        if self.profile is not None:
            self.profile.add(now, arrived)
        self._now = now
        buses = snapshot.of_type(BUS_TYPE)
        if buses:  # per-node smart-meter aggregates (loads less PV) where the grid reports them
            for bus in buses:
                values[f"{INFLEXIBLE}:{int(bus.get('node') or 0)}"] = _num(bus.get("inflexibleLoad"))
        else:
            values[f"{INFLEXIBLE}:0"] = _num(meter.get("activePower")) - ev_kw - bat_kw
        self._track(values)
        self._remember(float(sum(v for k, v in values.items() if k.startswith(INFLEXIBLE))))
        self._model.learn_step(values, t=now)
        self._steps += 1
        mean, lo, hi = (np.asarray(a, dtype=float) for a in self._model.forecast_level(self.horizon, 0.8))
        n_obs = self._model.n_observations
        self._fc = {}
        for j, sid in enumerate(self._model.series_ids):
            m = mean[:, j].tolist()
            self._fc[sid] = {"mean": [max(0.0, v) for v in m] if sid == ARRIVALS else m,
                             "interval_80": np.column_stack([lo[:, j], hi[:, j]]).tolist(), "model": f"{self.model}",
                             "n": n_obs}
        nodes = sorted((int(k.split(":")[1]), k) for k in self._fc if k.startswith(f"{INFLEXIBLE}:"))
        if nodes:
            per = [self._fc[k]["mean"] for _, k in nodes]
            upper = [[p[1] for p in self._fc[k]["interval_80"]] for _, k in nodes]
            self._fc[INFLEXIBLE] = {"mean": [float(sum(v)) for v in zip(*per, strict=True)],
                                    "upper_80": [float(sum(v)) for v in zip(*upper, strict=True)],
                                    "interval_80": [], "model": self.model,
                                    "steps": self._steps, "period": self.period,
                                    "nodes": {str(i): list(self._fc[k]["mean"]) for i, k in nodes},
                                    "nodes_upper_80": {str(i): u for (i, _), u in zip(nodes, upper, strict=True)}}

    def _track(self, values: Mapping[str, float]) -> None:
        """Live accuracy on hourly sums (one-step arrivals are bursty: persistence is exact whenever nothing
        arrives): each hour, what arrived and the load against the hour ahead forecast an hour earlier."""
        self._hour.append(dict(values))
        per_hour = max(1, round(self.period / 24))
        if len(self._hour) < per_hour:
            return
        got = {k: float(sum(v.get(k, 0.0) for v in self._hour)) for k in self._hour[-1]}
        self._hour = []
        ahead = {k: float(sum(fc["mean"][:per_hour])) for k, fc in self._fc.items() if k in got}
        self.tracker.observe(got, self._hour_fc)
        self._hour_fc = ahead

    def _check_frozen(self, ent: Entity, attr: str, flowing: bool) -> None:
        """A cumulative reading unchanged for ``frozen_after`` steps while power flows marks its meter frozen."""
        value = ent.get(attr)
        last = self._last.get(ent.id)
        count = last[1] + 1 if last is not None and last[0] == value and flowing else 0
        self._last[ent.id] = (value, count)
        if count >= self.frozen_after:
            self._health[ent.id] = "frozen"
        else:
            self._health.pop(ent.id, None)

    def accuracy(self) -> dict[str, float]:
        """Rolling one-step accuracy of the arrival and inflexible-load forecasts against persistence."""
        return self.tracker.stats()

    def forecast(self, snapshot: Snapshot) -> Mapping[str, Any]:
        """The forecasts and learned behaviour the MPC reads (copies: planners cannot change them)."""
        ratio = self.prior_share
        if len(self._ratios) >= self.min_ratios:  # before that, the prior (early leavers finish first: biased)
            ratio = float(np.quantile(np.array(self._ratios), self.quantile))
        dwell = float(np.median(np.array(self._dwells))) if self._dwells else 4.0
        out: dict[str, Any] = {f"{KEY}{k}": {**v, "mean": list(v["mean"]), "interval_80": [list(p) for p in
                                                                                            v["interval_80"]]}
                               for k, v in self._fc.items() if ":" not in k}
        if INFLEXIBLE in self._fc:
            for part in ("nodes", "nodes_upper_80"):
                out[f"{KEY}{INFLEXIBLE}"][part] = {i: list(v) for i, v in self._fc[INFLEXIBLE][part].items()}
            out[f"{KEY}{INFLEXIBLE}"]["upper_80"] = list(self._fc[INFLEXIBLE]["upper_80"])
        out[f"{KEY}departure_share"] = {"mean": round(min(1.0, max(0.5, ratio)), 4), "n": len(self._ratios)}
        out[f"{KEY}dwell_h"] = {"mean": round(dwell, 3), "n": len(self._dwells)}
        out[f"{KEY}health"] = dict(sorted(self._health.items()))
        if self.past_days > 0:
            out[f"{KEY}{PAST}"] = {"days": self.past()}
        if self.profile is not None and self._now is not None:
            ahead = self.profile.ahead(self._now, self.horizon)
            if ahead is not None:
                out[f"{KEY}{TO_COME}"] = {"kwh": ahead, "quantile": self.profile.quantile,
                                          "days": self.profile.n_days}
        return out


def _num(v: Any) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else 0.0
