"""Connected-vehicle probe data, read only through the consent layer, and the per-lane features built from it.

:class:`ProbeFeed` (owned by the twin when probes are on) is what a real probe-data feed gives: for a seeded
share of normal vehicles ("connected", their owners consented in the app) a ``Vehicle`` entity (Smart Data
Models name) with ``speed``, ``position`` (network metres), ``laneId`` and ``lanePosition``, under a
pseudonymous subject id. Each connected vehicle gives consent (ISO/IEC TS 27560 record, ledgered when the
registry has a ledger) for :data:`PURPOSE` when it first reports. The feed never hands data out except through
:class:`aicity.governance.consent.PurposeBoundAccess` (:meth:`ProbeFeed.read`); a withdrawal drops what the
feed holds on the subject at once, and its reads raise :class:`aicity.governance.consent.ConsentRefused`.

:class:`ProbeFeatures` is a ForecastProvider: every step it reads the consented vehicles for :data:`PURPOSE`
and produces, per incoming detector group with at least one probe on it, ``"<TrafficFlowObserved id>#probeSpeed"``
→ ``{"mean": mean probe speed (m/s), "n": probes}``, ``"<id>#probeCount"`` → ``{"mean": probes}`` and, where
probes are moving, ``"<id>#probeArrivingShare"`` → ``{"mean": share of the moving probes that reach the stop
line within ``horizon_s`` at their own speed, "n": moving probes}`` — what the AI controller weighs the
detector's moving vehicles by. It keeps nothing per subject between steps (only aggregates leave it, so
decision records hold no pseudonyms).

The twin that owns the feed hands its provider to the loop (:meth:`SumoTwin.feed_providers`): nothing is
found through module state.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property, urn
from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.domains.mobility.const import VEHICLE_TYPE
from aicity.governance.consent import ConsentRefused, ConsentRegistry, Controller, Purpose, PurposeBoundAccess

PURPOSE = "traffic-signal-optimisation"
DATASET = "mobility.vehicle-probes"
PII_CATEGORY = "location"
SPEED_KEY = "probeSpeed"
COUNT_KEY = "probeCount"
ARRIVING_KEY = "probeArrivingShare"
MOVING_MPS = 1.0
"""Probes slower than this count as queued, not moving."""
CONTROLLER = Controller("City traffic management (aicity twin)", "traffic-control@city.example")
PROBE_PURPOSE = Purpose(PURPOSE, "Traffic management", ("location", "speed"),
                        termination="on withdrawal, or at the end of the trip")


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """Probe-data options: the connected share of normal vehicles (0..1)."""

    fraction: float = 0.2

    @classmethod
    def parse(cls, data: ProbeConfig | Mapping[str, Any] | bool | float | None) -> ProbeConfig | None:
        """From ``True``, a fraction, or ``{"fraction": f}``; None/False means off. :class:`UserError` if bad."""
        if data is None or data is False or isinstance(data, ProbeConfig):
            return data or None
        if data is True:
            return cls()
        frac = data.get("fraction", 0.2) if isinstance(data, Mapping) else data
        if isinstance(data, Mapping) and set(data) - {"fraction"}:
            raise UserError(f"probes has unknown keys {sorted(set(data) - {'fraction'})} (fraction)")
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac <= 1:
            raise UserError(f"probes fraction must be a number in (0, 1], got {frac!r}")
        return cls(float(frac))


class ProbeFeed:
    """Probe data of the connected vehicles, behind purpose-bound access."""

    def __init__(self, config: ProbeConfig, *, seed: int, registry: ConsentRegistry | None = None) -> None:
        self.config = config
        self.seed = int(seed)
        self.registry = registry or ConsentRegistry(SqliteStore())
        self.access = PurposeBoundAccess(self.registry, DATASET, PII_CATEGORY)
        self.areas: dict[str, list[tuple[float, float, str, float]]] = {}
        self._connected: dict[str, str | None] = {}  # sumo id -> pseudonym (None: not connected)
        self._data: dict[str, Entity] = {}
        self._enrolled: set[str] = set()
        self.registry.on_withdraw(self._forget)

    def state(self) -> dict[str, Any]:
        """What the feed remembers (pseudonyms, enrolled subjects, the latest reports), for a checkpoint."""
        return {"connected": dict(self._connected), "data": dict(self._data), "enrolled": set(self._enrolled)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a :meth:`state` (the consent registry is the run's own, in its store)."""
        self._connected, self._data, self._enrolled = (dict(state["connected"]), dict(state["data"]),
                                                       set(state["enrolled"]))

    def set_areas(self, areas: Mapping[str, list[tuple[float, float, str, float]]]) -> None:
        """Static detection areas: lane -> [(start m, end m, incoming TrafficFlowObserved id, m from end to stop
        line)]."""
        self.areas = {k: list(v) for k, v in areas.items()}

    def _pseudonym(self, vid: str) -> str | None:
        if vid not in self._connected:
            rng = random.Random(f"{self.seed}:{vid}")
            connected = rng.random() < self.config.fraction
            digest = hashlib.sha256(f"aicity-probe:{self.seed}:{vid}".encode()).hexdigest()[:16]
            self._connected[vid] = f"veh-{digest}" if connected else None
        return self._connected[vid]

    def connected(self, vid: str) -> bool:
        """True when simulation vehicle ``vid`` is connected (a seeded draw per vehicle, cached)."""
        return self._pseudonym(vid) is not None

    def update(self, vehicles: Mapping[str, dict[str, Any]], now: datetime) -> None:
        """New probe reports (sumo id -> speed, x, y, lane, pos); first reports enrol the vehicle's consent."""
        data: dict[str, Entity] = {}
        for vid in sorted(vehicles):
            subject = self._pseudonym(vid)
            if subject is None:
                continue
            if subject not in self._enrolled:
                self._enrolled.add(subject)
                self.registry.give(subject, [PROBE_PURPOSE], CONTROLLER, now=now, by=subject)
            if not self.registry.allows(subject, PURPOSE, PII_CATEGORY, now):
                continue  # withdrawn: the feed does not even keep it
            v = vehicles[vid]
            data[subject] = Entity.trusted(urn(VEHICLE_TYPE, subject), VEHICLE_TYPE, {
                "speed": Property(round(float(v["speed"]), 2), now, "MTS"),
                "position": Property([round(float(v["x"]), 1), round(float(v["y"]), 1)], now),
                "laneId": Property(str(v["lane"]), now),
                "lanePosition": Property(round(float(v["pos"]), 1), now, "MTR"),
            })
        self._data = data

    def subjects(self) -> list[str]:
        """Pseudonyms of the vehicles reporting now (held only while they consent)."""
        return sorted(self._data)

    def read(self, subject: str, purpose: str, now: datetime) -> Entity:
        """One vehicle's probe entity for ``purpose``; raises ConsentRefused without consent or lawful basis."""
        return self.access.read(subject, purpose, now, self._load)

    def _load(self, subject: str) -> Entity:
        ent = self._data.get(subject)
        if ent is None:
            raise UserError(f"vehicle {subject} is not reporting probe data now")
        return ent

    def _forget(self, subject: str, purposes: Any) -> None:
        self._data.pop(subject, None)


class ProbeFeatures:
    """ForecastProvider: per incoming detector group, mean speed and count of consented probe vehicles."""

    name = "mobility.probe-features"

    def __init__(self, feed: ProbeFeed | None, purpose: str = PURPOSE, horizon_s: float = 10.0) -> None:
        self.feed = feed
        self.purpose = purpose
        self.horizon_s = horizon_s
        self.last_used: tuple[str, ...] = ()
        self.refused = 0

    def learn(self, snapshot: Snapshot) -> None:
        """Nothing is learned (no per-subject state survives a step)."""

    def forecast(self, snapshot: Snapshot) -> dict[str, Any]:
        """Probe features for this step, from the consented vehicles only."""
        feed = self.feed
        if feed is None:
            return {}
        speeds: dict[str, list[float]] = {}
        arriving: dict[str, list[bool]] = {}
        used = []
        for subject in feed.subjects():
            try:
                ent = feed.read(subject, self.purpose, snapshot.time)
            except ConsentRefused:
                self.refused += 1
                continue
            used.append(subject)
            lane, pos, speed = ent.get("laneId"), ent.get("lanePosition"), ent.get("speed")
            for start, end, group, to_stop in feed.areas.get(str(lane), ()):
                if start - 1e-6 <= float(pos) <= end + 1e-6:
                    speeds.setdefault(group, []).append(float(speed))
                    if float(speed) >= MOVING_MPS:
                        eta = (end - float(pos) + to_stop) / float(speed)
                        arriving.setdefault(group, []).append(eta <= self.horizon_s)
                    break
        self.last_used = tuple(used)
        out: dict[str, Any] = {}
        for group, vals in sorted(speeds.items()):
            out[f"{group}#{SPEED_KEY}"] = {"mean": round(sum(vals) / len(vals), 3), "n": len(vals)}
            out[f"{group}#{COUNT_KEY}"] = {"mean": float(len(vals))}
            if group in arriving:
                flags = arriving[group]
                out[f"{group}#{ARRIVING_KEY}"] = {"mean": round(sum(flags) / len(flags), 3), "n": len(flags)}
        return out
