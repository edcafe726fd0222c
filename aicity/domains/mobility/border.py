"""The borders of one district's SUMO twin: vehicles leave through outgoing border edges and enter on incoming ones.

A district's scenario names its border edges in its ``borders`` option (set by
:func:`aicity.domains.mobility.districts.partition`). Every 1 s step the port remembers the vehicles on its
outgoing border edges; :meth:`BorderPort.outbound` removes them from SUMO (and reports those that reached the end
of a border edge since, with the time they did) as :class:`~aicity.core.capabilities.Crossing` s, and
:meth:`BorderPort.inbound` inserts the neighbour's vehicles on the same edge, lane, position and speed.

Differences from a whole-city run: an exchange happens once per decision interval, so a vehicle that reached
the end of a border edge waits there until the exchange (``border_lag_s``); a vehicle added at an exchange enters
at the end of SUMO's next step (1 s behind); and queues on a border edge are seen only in the receiving district
(the sending one drives to its dead end freely), so a vehicle may be inserted later than it arrived (its
``departDelay``). When SUMO refuses a vehicle at the speed it crossed with (a red light or a queue right
ahead in the receiving district), it is added again at the highest safe speed a step later (``retried``).

A district's checkpoint carries the port's state (:meth:`BorderPort.state`); after a restore a vehicle handed in
and not inserted yet that SUMO's state file does not hold is added again as it was (:meth:`BorderPort.add_unsaved`).
See ``aicity/scale/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from aicity.core.capabilities import Crossing, RejectedInput
from aicity.core.errors import UserError
from aicity.domains.mobility.gridcity import ROUTE_PARAM

KIND = "vehicle"
MAX_SPEED = 70.0  # m/s: anything faster is not a road vehicle


def check_borders(value: Any) -> Any:
    """The ``borders`` option: ``{"district": name, "out": {edge: district}, "in": {edge: district}}``."""
    ok = (isinstance(value, Mapping) and isinstance(value.get("district"), str)
          and all(isinstance(value.get(k), Mapping) and all(isinstance(e, str) and isinstance(d, str)
                                                             for e, d in value[k].items()) for k in ("out", "in")))
    if not ok:
        raise UserError('option borders must be {"district": name, "out": {edge: district}, "in": {edge: district}}')
    return {"district": value["district"], "out": dict(value["out"]), "in": dict(value["in"])}


@dataclass(slots=True)
class BorderPort:
    """Crossings in and out of one district's SUMO (``api``: libsumo or a TraCI connection)."""

    api: Any
    begin_s: float
    out: dict[str, str]
    entries: dict[str, str]
    now_s: float = 0.0
    left: list[tuple[str, float]] = field(default_factory=list)
    """(vehicle, its segment's depart time) of every segment that ended at a border (sent or waiting)."""
    received: int = 0
    retried: int = 0
    """Vehicles SUMO refused at the speed they crossed with (unsafe there) and that were added again at the
    highest safe speed."""
    lag_s: float = 0.0
    lag_n: int = 0
    _seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ended: list[dict[str, Any]] = field(default_factory=list)
    _prior: dict[str, dict[str, float]] = field(default_factory=dict)
    _lengths: dict[str, float] = field(default_factory=dict)
    _entering: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: Mapping[str, Any], api: Any, begin_s: float) -> BorderPort:
        """The port for a checked ``borders`` option."""
        return cls(api, begin_s, dict(spec["out"]), dict(spec["in"]), now_s=begin_s)

    def after_step(self, t: float) -> None:
        """After each step: note who reached a border edge's end, remember who is on one now."""
        self.now_s = t
        if self._entering:
            self._retry_refused()
        for vid in self.api.simulation.getArrivedIDList():
            snap = self._seen.get(vid)
            if snap is not None:
                self._ended.append({**snap, "pos": self._length(snap["lane_id"]), "arrived_s": t - self.begin_s})
        self._seen = {vid: self._snapshot(vid) for vid in self._on_borders()}

    def _retry_refused(self) -> None:
        """Add again, at the highest safe speed, what SUMO dropped because its given speed was unsafe there."""
        sim = self.api.simulation
        for vid in sim.getDepartedIDList():
            self._entering.pop(vid, None)
        waiting = set(sim.getPendingVehicles())
        for vid, add in sorted(self._entering.items()):
            if vid not in waiting:
                self.api.vehicle.add(vid, add["route"], typeID=add["vtype"], depart="now", departLane=add["lane"],
                                     departPos=add["pos"], departSpeed="max")
                self.api.vehicle.setParameter(vid, ROUTE_PARAM, add["full"])
                self.retried += 1

    def state(self) -> dict[str, Any]:
        """Everything the port remembers, for a checkpoint (SUMO's own state is saved apart)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api"}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a :meth:`state` (then :meth:`add_unsaved` once SUMO loaded its own)."""
        for name, value in state.items():
            setattr(self, name, value)

    def add_unsaved(self, saved: set[str]) -> None:
        """After SUMO loaded a state file holding vehicles ``saved``: add again, as it was, every vehicle handed in
        and not inserted yet that it does not hold."""
        here = saved | set(self.api.vehicle.getIDList()) | set(self.api.simulation.getPendingVehicles())
        for vid, add in sorted(self._entering.items()):
            if vid in here:
                continue
            if add["route"] not in self.api.route.getIDList():
                self.api.route.add(add["route"], add["edges"].split())
            self.api.vehicle.add(vid, add["route"], typeID=add["vtype"], depart="now", departLane=add["lane"],
                                 departPos=add["pos"], departSpeed=add["speed"])
            self.api.vehicle.setParameter(vid, ROUTE_PARAM, add["full"])

    def not_entered(self, known: set[str]) -> list[tuple[str, float]]:
        """Vehicles handed in that SUMO has not inserted nor listed as pending yet (added at the very end), with
        the seconds they waited, for the run's never-inserted list."""
        return [(vid, self.now_s - float(add["at"])) for vid, add in sorted(self._entering.items())
                if vid not in known]

    def _on_borders(self) -> list[str]:
        return [vid for e in sorted(self.out) for vid in self.api.edge.getLastStepVehicleIDs(e)]

    def _length(self, lane: str) -> float:
        if lane not in self._lengths:
            self._lengths[lane] = float(self.api.lane.getLength(lane))
        return self._lengths[lane]

    def _snapshot(self, vid: str) -> dict[str, Any]:
        veh = self.api.vehicle
        edge = veh.getRoadID(vid)
        full = veh.getParameter(vid, ROUTE_PARAM).split() or list(veh.getRoute(vid))
        rest = full[full.index(edge):] if edge in full else [edge]
        prior = self._prior.get(vid, {})
        depart = float(veh.getDeparture(vid))
        trip = {"depart_s": prior.get("depart_s", depart - self.begin_s),
                "depart_delay_s": prior.get("depart_delay_s", float(veh.getDepartDelay(vid))),
                "time_loss_s": prior.get("time_loss_s", 0.0) + float(veh.getTimeLoss(vid)),
                "waiting_s": prior.get("waiting_s", 0.0) + float(veh.getAccumulatedWaitingTime(vid)),
                "segments": prior.get("segments", 0.0) + 1}
        return {"id": vid, "vtype": veh.getTypeID(vid), "route": rest, "lane": int(veh.getLaneIndex(vid)),
                "lane_id": veh.getLaneID(vid), "pos": float(veh.getLanePosition(vid)),
                "speed": float(veh.getSpeed(vid)), "trip": trip, "segment_depart": depart, "via": edge}

    def outbound(self) -> list[Crossing]:
        """Remove every vehicle on an outgoing border edge and hand it over, with those that reached the end."""
        out: list[Crossing] = []
        at = self.now_s - self.begin_s
        for snap in [*self._ended, *self._seen.values()]:
            if "arrived_s" not in snap:
                self.api.vehicle.remove(snap["id"])
            self.left.append((snap["id"], snap["segment_depart"]))
            payload = {k: v for k, v in snap.items() if k not in ("lane_id", "segment_depart", "via")}
            out.append({"via": snap["via"], "kind": KIND, "at_s": at, "payload": payload})
            self._prior.pop(snap["id"], None)
        self._ended = []
        self._seen = {}
        return out

    def pending_ends(self) -> list[tuple[str, float]]:
        """Segments that reached a border edge's end but were not handed over yet (at the run's end)."""
        return [(s["id"], s["segment_depart"]) for s in self._ended]

    def inbound(self, crossings: list[Crossing]) -> list[RejectedInput]:
        """Insert each crossing vehicle where it was; what cannot be inserted comes back with its reason."""
        rejected: list[RejectedInput] = []
        for c in crossings:
            try:
                self._insert(c)
            except (UserError, KeyError, TypeError, ValueError) as exc:
                rejected.append({"source": f"border:{_text(c, 'via')}", "reason": _reason(exc), "payload": c})
        return rejected

    def _insert(self, c: Crossing) -> None:
        api = self.api
        if not isinstance(c, Mapping) or c.get("kind") != KIND:
            raise UserError(f"not a vehicle crossing (kind {_text(c, 'kind')!r})")
        via, p = c["via"], c["payload"]
        if via not in self.entries:
            raise UserError(f"edge {via!r} is no border edge into this district")
        vid, vtype, route = p["id"], p["vtype"], p["route"]
        if not (isinstance(vid, str) and vid and isinstance(vtype, str) and isinstance(route, list)
                and route and all(isinstance(e, str) for e in route) and route[0] == via):
            raise UserError("payload needs an id, a vtype and a route (a list of edges) starting on the border edge")
        if vtype not in api.vehicletype.getIDList():
            raise UserError(f"unknown vehicle type {vtype!r}")
        if vid in api.vehicle.getIDList() or vid in api.simulation.getPendingVehicles():
            raise UserError(f"vehicle {vid!r} is already in this district")
        lane, pos, speed = p["lane"], _number(p, "pos"), _number(p, "speed")
        if isinstance(lane, bool) or not isinstance(lane, int) or not 0 <= lane < api.edge.getLaneNumber(via):
            raise UserError(f"lane {lane!r} does not exist on edge {via!r}")
        length = self._length(f"{via}_{lane}")
        if not 0.0 <= pos <= length + 1e-6 or not 0.0 <= speed <= MAX_SPEED:
            raise UserError(f"position {pos!r} or speed {speed!r} is impossible on edge {via!r} ({length:g} m)")
        known = set(api.edge.getIDList())
        cut: list[str] = []
        for e in route:
            if e not in known:
                raise UserError(f"route edge {e!r} is not in this district and no border leads to it")
            cut.append(e)
            if e in self.out:
                break
        trip = p.get("trip") or {}
        prior = {k: float(trip[k]) for k in ("depart_s", "depart_delay_s", "time_loss_s", "waiting_s", "segments")
                 if isinstance(trip.get(k), int | float) and math.isfinite(trip[k])}
        rid = f"aicity_border_{vid}_{self.received}"
        add = {"route": rid, "vtype": vtype, "lane": str(lane), "pos": f"{min(pos, length):.2f}",
               "full": " ".join(route), "at": f"{self.now_s:g}", "edges": " ".join(cut), "speed": f"{speed:.2f}"}
        try:
            api.route.add(rid, cut)
            api.vehicle.add(vid, rid, typeID=vtype, depart="now", departLane=add["lane"], departPos=add["pos"],
                            departSpeed=add["speed"])
            api.vehicle.setParameter(vid, ROUTE_PARAM, add["full"])
            self._entering[vid] = add
        except Exception as exc:  # SUMO's own refusal (libsumo and TraCI raise different classes)
            raise UserError(f"SUMO refused the vehicle: {exc}") from exc
        self._prior[vid] = prior
        self.received += 1
        arrived = p.get("arrived_s")
        if arrived is not None:
            self.lag_s += max(float(c["at_s"]) - _number(p, "arrived_s"), 0.0)
            self.lag_n += 1

    def extra(self) -> dict[str, Any]:
        """What the district's result carries about its borders."""
        return {"district_out": dict(self.out), "district_in": dict(self.entries), "crossed_out": len(self.left),
                "crossed_in": self.received, "retried": self.retried, "border_lag_s": self.lag_s,
                "border_lag_n": self.lag_n}


def _number(p: Mapping[str, Any], key: str) -> float:
    v = p[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise UserError(f"{key} {v!r} is not a finite number")
    return float(v)


def _text(c: Any, key: str) -> str:
    return str(c.get(key, "")) if isinstance(c, Mapping) else ""


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"crossing lacks {exc.args[0]!r}"
    if isinstance(exc, UserError):
        return str(exc)
    return f"malformed crossing: {exc}".splitlines()[0]
