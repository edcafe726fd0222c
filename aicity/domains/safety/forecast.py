"""The online incident forecast per zone and hour (``aicity.forecast``, with 80 % / 90 % intervals).

It starts from the city's call history (28 days of hourly counts per zone, what an EMS agency's records hold)
and learns every completed hour of the run from the incidents reported in it. Planners read
``safety.zone:<zone>#incidents_per_h`` → ``{"mean", "lo80", "hi80", "lo90", "hi90"}`` for the current hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicity.core.domain import Snapshot
from aicity.domains.safety.const import INCIDENT_TYPE
from aicity.domains.safety.geo import SafetyMap
from aicity.domains.safety.planners import FORECAST_KEY

MODEL = "seasonal_average"


class IncidentForecast:
    """Incidents per zone and hour: a seasonal-average learner with conformal intervals, fed hour by hour."""

    name = "safety.incident-forecast"

    def __init__(self, smap: SafetyMap, *, begin_s: float, load_multiplier: float) -> None:
        self.smap = smap
        self.begin_s = begin_s
        self.load_multiplier = load_multiplier
        self.zones = sorted(smap.zones)
        self._model: Any = None
        self._hours_learned = 0
        self._seen: set[str] = set()
        self._counts: dict[str, float] = {}
        self._cache: dict[str, Any] = {}

    def _ensure(self) -> Any:
        if self._model is None:
            from aicity.domains.safety.incidents import history_counts
            from aicity.forecast.registry import make_multi

            self._model = make_multi(MODEL, period=24)
            hist = history_counts(self.smap, load_multiplier=self.load_multiplier)
            for row in hist:
                self._model.learn_step({z: float(v) for z, v in zip(self.zones, row, strict=True)})
            for _ in range(int(self.begin_s // 3600) % 24):  # today's hours before the window: not observed
                self._model.learn_step({z: float("nan") for z in self.zones})
        return self._model

    def learn(self, snapshot: Snapshot) -> None:
        """Count newly reported incidents per zone; learn each hour once it is complete."""
        model = self._ensure()
        hour_idx = int(snapshot.elapsed_s // 3600)
        while self._hours_learned < hour_idx:
            model.learn_step({z: self._counts.get(z, 0.0) for z in self.zones})
            self._counts = {}
            self._hours_learned += 1
            self._cache = {}
        for e in snapshot.of_type(INCIDENT_TYPE):
            if e.id not in self._seen and (e.get("callTime") or 0.0) >= 0:
                self._seen.add(e.id)
                z = str(e.get("zone"))
                self._counts[z] = self._counts.get(z, 0.0) + 1.0

    def forecast(self, snapshot: Snapshot) -> Mapping[str, Any]:
        """The current hour's forecast per zone, with intervals."""
        if not self._cache:
            model = self._ensure()
            out: dict[str, Any] = {}
            for z in self.zones:
                fc = model.forecast(z, 1)  # the model's next step is the hour under way
                step = 0
                lo80, hi80 = fc.interval(0.8, step)
                lo90, hi90 = fc.interval(0.9, step)
                out[FORECAST_KEY.format(zone=z)] = {
                    "mean": round(max(fc.mean[step], 0.0), 5), "lo80": round(max(lo80, 0.0), 5),
                    "hi80": round(hi80, 5), "lo90": round(max(lo90, 0.0), 5), "hi90": round(hi90, 5)}
            self._cache = out
        return dict(self._cache)
