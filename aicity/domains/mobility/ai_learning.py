"""Online learning for the AI City signal controller: per-lane arrival rates and saturation flows.

Everything is learned from detector entities only (``TrafficFlowObserved`` of incoming lanes and the
``TrafficSignal`` phase they were shown): arrivals are the ``intensity`` (vehicles entering the 200 m area)
per second; saturation flow is the observed discharge rate of a lane while it is shown green with a standing
queue (departures = entered + previous count − count). Both are exponentially weighted, so they track the
time of day. This is a small estimator of our own: a per-second update for every lane of a city must cost
microseconds, and these two quantities need no season model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aicity.core.domain import Snapshot

FLOW_TYPE = "TrafficFlowObserved"
SIGNAL_TYPE = "TrafficSignal"
ARRIVAL_KEY = "arrivalRate"
SATURATION_KEY = "saturationFlow"
RED_KEY = "redTime"
Z90 = 1.6449


@dataclass(slots=True)
class Ewma:
    """An exponentially weighted mean and variance with a time constant in seconds."""

    tau_s: float
    mean: float
    var: float = 0.0
    n: int = 0

    def update(self, value: float, weight_s: float) -> None:
        """Fold in ``value`` observed over ``weight_s`` seconds."""
        a = 1.0 - math.exp(-max(weight_s, 0.0) / self.tau_s)
        d = value - self.mean
        self.mean += a * d
        self.var = (1.0 - a) * (self.var + a * d * d)
        self.n += 1

    def as_forecast(self, lo: float = 0.0) -> dict[str, Any]:
        """Mean with a 90 % band (normal approximation of the weighted spread)."""
        sd = math.sqrt(max(self.var, 0.0))
        return {"mean": round(self.mean, 5), "interval_90": [round(max(lo, self.mean - Z90 * sd), 5),
                                                             round(self.mean + Z90 * sd, 5)], "n": self.n}


@dataclass(slots=True)
class LaneRateLearner:
    """A :class:`aicity.core.domain.ForecastProvider`: arrival rate and saturation flow per incoming lane.

    Forecast keys: ``"<TrafficFlowObserved id>#arrivalRate"`` and ``"...#saturationFlow"`` (veh/s), each
    ``{"mean", "interval_90": [lo, hi], "n"}``; ``"...#redTime"``: ``{"mean"}`` seconds since the lane was
    last shown green.
    """

    name: str = "mobility.ai.lane-rates"
    arrival_tau_s: float = 300.0
    saturation_tau_s: float = 900.0
    prior_saturation: float = 0.5
    min_queue_for_discharge: int = 3
    arrivals: dict[str, Ewma] = field(default_factory=dict)
    saturation: dict[str, Ewma] = field(default_factory=dict)
    last_green: dict[str, float] = field(default_factory=dict)
    _prev: dict[str, tuple[float, int, int, bool]] = field(default_factory=dict)

    def learn(self, snapshot: Snapshot) -> None:
        """Update every incoming lane's estimates from the latest observations."""
        ents = snapshot.entities
        green_lanes = _green_lanes(ents)
        t = snapshot.elapsed_s
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
            est = self.arrivals.get(eid)
            if est is None:
                est = self.arrivals[eid] = Ewma(self.arrival_tau_s, entered / period)
            est.update(entered / period, period)
            _, pcount, pqueue, pgreen = prev
            if pgreen and green and pqueue >= self.min_queue_for_discharge:
                departed = max(entered + pcount - count, 0)
                sat = self.saturation.get(eid)
                if sat is None:
                    sat = self.saturation[eid] = Ewma(self.saturation_tau_s, self.prior_saturation)
                sat.update(min(departed / period, 2.0), period)

    def forecast(self, snapshot: Snapshot) -> Mapping[str, Any]:
        """Current estimates for every incoming lane seen so far."""
        out: dict[str, Any] = {}
        for eid, est in self.arrivals.items():
            out[f"{eid}#{ARRIVAL_KEY}"] = est.as_forecast()
        for eid, sat in self.saturation.items():
            out[f"{eid}#{SATURATION_KEY}"] = sat.as_forecast(lo=0.05)
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
