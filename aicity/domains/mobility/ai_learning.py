"""Online learning for the AI City signal controller: per-lane arrival rates and saturation flows.

Everything is learned from detector entities only (``TrafficFlowObserved`` of incoming lanes and the
``TrafficSignal`` phase they were shown): arrivals are the ``intensity`` (vehicles entering the 200 m area)
per second; saturation flow is the observed discharge rate of a lane while it is shown green with a standing
queue (departures = entered + previous count − count). Both are learned by forecasting-module models,
:class:`aicity.forecast.smoothing.Ewma` (registered as ``ewma``), one multi-series model per quantity with the
``TrafficFlowObserved`` ids as series ids: every decision step is one vector update of all lanes (NaN where a
lane is not observed, e.g. the saturation flow of a lane that is red or has no queue), weighted by the
observation period, ``alpha = 1 − exp(−period/tau)``, so the rates track the time of day at a cost of
microseconds per lane.

The arrival forecast of each lane is chosen online between that model's level and persistence (the rate just
observed), by their exponentially weighted absolute one-step errors (time constant ``selection_tau_s``): on a
congested network, where a lane's inflow is set by the queue ahead and moves in long runs, persistence forecasts
better than any level, and the lane then follows it; elsewhere the smoothed level wins. So the forecasts are never
much worse than persistence on any network (4x4loop, gridlocked: the level alone was 1.78x persistence).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicity.core.domain import Snapshot
from aicity.forecast.accuracy import AccuracyTracker
from aicity.forecast.smoothing import Ewma
from aicity.forecast.vector import FArray, pad_last

FLOW_TYPE = "TrafficFlowObserved"
SIGNAL_TYPE = "TrafficSignal"
ARRIVAL_KEY = "arrivalRate"
SATURATION_KEY = "saturationFlow"
RED_KEY = "redTime"
Z90 = 1.6449
PERSISTENCE = "persistence"
"""The model tag of an arrival forecast that follows persistence (the rate last observed)."""
SECONDS_PER_DAY = 86400
"""The models' step is one second (``period`` = steps per day), so ``tau`` is in seconds."""


def _model(tau_s: float, prior: float | None = None) -> Ewma:
    return Ewma(period=SECONDS_PER_DAY, tau=tau_s, prior=prior)


@dataclass(slots=True)
class LaneRateLearner:
    """A :class:`aicity.core.domain.ForecastProvider`: arrival rate and saturation flow per incoming lane.

    Forecast keys: ``"<TrafficFlowObserved id>#arrivalRate"`` and ``"...#saturationFlow"`` (veh/s), each
    ``{"mean", "interval_90": [lo, hi], "n", "model"}``: the level of the lane's ``ewma`` series, a 90 % band
    from its exponentially weighted variance (normal approximation ``mean ± 1.645·sd``, not the module's
    conformal wrapper, which would cost a multi-step calibration per decision), the observations learned and
    ``"ewma@<version>"``; a lane appears once it has been observed. ``"...#redTime"``: ``{"mean"}`` seconds
    since the lane was last shown green. :attr:`models` names the forecasting model of each quantity.
    :meth:`accuracy` is the live one-step accuracy of the arrival forecasts against persistence, which the policy's
    accuracy guard watches (a controller whose forecasts fall below the declared accuracy is demoted to advise).
    """

    name: str = "mobility.ai.lane-rates"
    arrival_tau_s: float = 300.0
    saturation_tau_s: float = 900.0
    prior_saturation: float = 0.5
    min_queue_for_discharge: int = 3
    arrivals: Ewma = field(init=False)
    saturation: Ewma = field(init=False)
    last_green: dict[str, float] = field(default_factory=dict)
    _prev: dict[str, tuple[float, int, int, bool]] = field(default_factory=dict)
    selection_tau_s: float = 200.0
    """Time constant (s) of the per-lane errors that choose between the arrival model and persistence."""
    tracker: AccuracyTracker = field(default_factory=lambda: AccuracyTracker(window=30))
    _last: FArray = field(init=False)
    _err: FArray = field(init=False)

    def __post_init__(self) -> None:
        self.arrivals = _model(self.arrival_tau_s)
        self.saturation = _model(self.saturation_tau_s, self.prior_saturation)
        self._last = np.zeros(0)
        self._err = np.zeros((2, 0))

    @property
    def models(self) -> dict[str, str]:
        """The forecasting model (``name@version``) behind each learned quantity."""
        return {ARRIVAL_KEY: f"{self.arrivals.name}@{self.arrivals.version}",
                SATURATION_KEY: f"{self.saturation.name}@{self.saturation.version}"}

    def learn(self, snapshot: Snapshot) -> None:
        """Update every incoming lane's estimates from the latest observations (one vector step per model)."""
        ents = snapshot.entities
        green_lanes = _green_lanes(ents)
        t = snapshot.elapsed_s
        lanes: list[str] = []
        rates: list[float] = []
        periods: list[float] = []
        sat_at: list[int] = []
        sat_rates: list[float] = []
        for eid, ent in ents.items():
            if ent.type != FLOW_TYPE or ent.get("flowDirection") != "incoming":
                continue
            count = int(ent.get("vehicleCount", 0) or 0)
            queue = int(ent.get("queue", 0) or 0)
            entered = int(ent.get("intensity", 0) or 0)
            period = ent.get("observationPeriod")
            green = eid in green_lanes
            if green or eid not in self.last_green:
                self.last_green[eid] = t
            prev = self._prev.get(eid)
            self._prev[eid] = (t, count, queue, green)
            if prev is None or not period or period <= 0:
                continue
            _, pcount, pqueue, pgreen = prev
            if pgreen and green and pqueue >= self.min_queue_for_discharge:
                sat_at.append(len(lanes))
                sat_rates.append(min(max(entered + pcount - count, 0) / period, 2.0))
            lanes.append(eid)
            rates.append(entered / period)
            periods.append(float(period))
        if lanes:
            self._learn_lanes(lanes, rates, periods, sat_at, sat_rates)

    def _learn_lanes(self, lanes: list[str], rates: list[float], periods: list[float], sat_at: list[int],
                     sat_rates: list[float]) -> None:
        """One vector step of both models (both hold the same series in the same order)."""
        self.arrivals.add_series(lanes)
        self.saturation.add_series(lanes)
        idx = np.fromiter(map(self.arrivals.index_of, lanes), dtype=np.intp, count=len(lanes))
        n = self.arrivals.n_series
        steps: float | np.ndarray[Any, Any] = periods[0]
        if min(periods) != max(periods):
            steps = np.ones(n)
            steps[idx] = periods
        y = np.full(n, np.nan)
        y[idx] = rates
        self._score_references(idx, y[idx], steps if isinstance(steps, float) else steps[idx])
        self.arrivals.learn_array(y, None, steps)
        self._last[idx] = y[idx]
        chosen = self.arrival_means()
        self.tracker.observe(dict(zip(lanes, rates, strict=True)),
                             dict(zip(lanes, chosen[idx].tolist(), strict=True)))
        if sat_at:
            y = np.full(n, np.nan)
            y[idx[sat_at]] = sat_rates
            self.saturation.learn_array(y, None, steps)

    def _score_references(self, idx: np.ndarray[Any, np.dtype[np.intp]], y: FArray,
                          periods: float | FArray) -> None:
        """Update the per-lane errors of the model's level and of persistence against this step's rates."""
        n = self.arrivals.n_series
        if self._last.size < n:
            self._last = pad_last(self._last, n - self._last.size, np.nan)
            self._err = pad_last(self._err, n - self._err.shape[1], 0.0)
        seen = (self.arrivals.count[idx] > 0) & np.isfinite(self._last[idx])
        if not seen.any():
            return
        at = idx[seen]
        w = (1.0 - np.exp(-np.asarray(periods, dtype=float) / self.selection_tau_s)) * np.ones(idx.size)
        w = w[seen]
        for row, ref in ((0, self.arrivals.level[at]), (1, self._last[at])):
            self._err[row, at] += w * (np.abs(y[seen] - ref) - self._err[row, at])

    def arrival_means(self) -> FArray:
        """Each lane's arrival forecast (veh/s): persistence where its recent error is lower, else the level."""
        level = self.arrivals.level
        if self._last.size < level.size:
            return level.copy()
        return np.where(self._err[1] < self._err[0], self._last, level)

    def persistence_lanes(self) -> set[str]:
        """The lanes whose arrival forecast follows persistence now."""
        if self._last.size < self.arrivals.n_series:
            return set()
        return {sid for sid, p in zip(self.arrivals.series_ids, (self._err[1] < self._err[0]).tolist(),
                                      strict=True) if p}

    def accuracy(self) -> dict[str, float]:
        """Rolling one-step accuracy of the arrival-rate forecasts (see :class:`AccuracyTracker`)."""
        return self.tracker.stats()

    def forecast(self, snapshot: Snapshot) -> Mapping[str, Any]:
        """Current estimates for every incoming lane observed so far."""
        out: dict[str, Any] = {}
        persist = self.persistence_lanes()
        for key, model, lo in ((ARRIVAL_KEY, self.arrivals, 0.0), (SATURATION_KEY, self.saturation, 0.05)):
            tag = f"{model.name}@{model.version}"
            level = self.arrival_means() if model is self.arrivals else model.level
            means, sds, counts = level.tolist(), model.std_array().tolist(), model.count.tolist()
            for eid, m, sd, n in zip(model.series_ids, means, sds, counts, strict=True):
                if n:
                    out[f"{eid}#{key}"] = {"mean": round(m, 5), "interval_90": [round(max(lo, m - Z90 * sd), 5),
                                                                                 round(m + Z90 * sd, 5)],
                                           "n": n, "model": PERSISTENCE if key == ARRIVAL_KEY and eid in persist
                                           else tag}
        for eid, since in self.last_green.items():
            out[f"{eid}#{RED_KEY}"] = {"mean": round(snapshot.elapsed_s - since, 3)}
        return out


def _green_lanes(ents: Mapping[str, Any]) -> set[str]:
    """Detector ids of incoming lanes shown green now."""
    out: set[str] = set()
    for ent in ents.values():
        if ent.type != SIGNAL_TYPE or ent.get("phaseKind") != "green":
            continue
        cur = ent.get("currentPhase")
        phases = ent.get("phases") or []
        if cur is None or not 0 <= cur < len(phases):
            continue
        for serve in phases[cur].get("serves", []):
            det = serve.get("detector")
            if det:
                out.add(det)
    return out
