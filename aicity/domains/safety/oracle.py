"""The ORACLES: perfect-foresight dispatch and relocation as a time-expanded MIP (HiGHS via scipy.optimize.milp).

They know every incident of the window in advance (time, place, priority, service times); ambulances move between
stations and hospitals on a time-expanded network (``slot_s`` slots), are sent from a station or hospital node to an
incident (possibly after waiting whole slots), and reappear at the hospital (or the node nearest the scene) when
done. Like any real service they must answer every call some ambulance can still reach within the window (a call
may wait, but is never abandoned to keep a unit free); a call goes unanswered only when none can. Then they
minimise late calls, then call-to-arrival time, then relocation driving. Two yardsticks, never controllers:

* the **free-flow oracle** (``travel`` = :class:`~.travel_times.FreeFlow`, the default) drives at the speed limit:
  optimistic, a lower bound on what any online policy can reach on the same incidents;
* the **traffic-aware oracle** (``travel`` = :class:`~.travel_times.Recorded`) also knows the day's travel times:
  SUMO's own edge times recorded per minute in the same day's simulation (ground truth, allowed for an oracle
  only), time-dependent in every move, dispatch and return. It is the optimum *of this model* (whole slots, a
  move's time taken at its departure, no signals beyond what the recorded edge times hold), not a plan replayed
  through SUMO: an estimate of the bound in traffic, not a proof.

Either can be asked for **dispatch only** (``relocate=False``): the offline yardstick of the literature's anchors
(Jagtenberg, van den Berg & van der Mei 2017, EJOR: closest idle ≈ 2.7×, DMEXCLP dispatch ≈ 1.9× its late
fraction), which knows every call but moves no unit towards one: between calls a unit may only drive to a home
station or wait where its last call left it (its ``relocations`` count those drives home). It bounds policies
that do not relocate, not AI City's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aicity.domains.safety.geo import SafetyMap
from aicity.domains.safety.incidents import Incident
from aicity.domains.safety.travel_times import FreeFlow, TravelTimes

LATE_WEIGHT = 1e4
UNSERVED_S = 3600.0


@dataclass(frozen=True, slots=True)
class OracleResult:
    """The optimum's calls: response per call (None when unserved), late flags, and solver facts."""

    responses: dict[str, float | None]
    late: dict[str, bool]
    relocations: int
    variables: int
    status: str

    @property
    def late_frac(self) -> float:
        """Share of calls beyond their target (unserved ones included); NaN (undefined) with no call."""
        return sum(self.late.values()) / len(self.late) if self.late else math.nan

    @property
    def mean_response_s(self) -> float:
        """Mean call-to-arrival time of the calls served; NaN (undefined) with none."""
        vals = [v for v in self.responses.values() if v is not None]
        return float(np.mean(vals)) if vals else math.nan

    @property
    def p90_response_s(self) -> float:
        """90th-percentile call-to-arrival time of the calls served; NaN (undefined) with none."""
        vals = [v for v in self.responses.values() if v is not None]
        return float(np.percentile(vals, 90)) if vals else math.nan


def _finish(smap: SafetyMap, inc: Incident, nodes: Sequence[str], back: Mapping[str, float]) -> tuple[str, float]:
    """Where the ambulance is free again after ``inc`` and the seconds from leaving the scene until then: the
    nearest hospital plus the handover when the patient is transported, else the nearest node."""
    if inc.transport:
        hosp = min(smap.hospitals, key=lambda h: (back.get(h, math.inf), h))
        return hosp, back.get(hosp, math.inf) + inc.handover_s
    finish = min(nodes, key=lambda w: (back.get(w, math.inf), w))
    return finish, back.get(finish, 0.0)


def solve(smap: SafetyMap, incidents: Sequence[Incident], homes: Sequence[str], *, horizon_s: float,
          call_processing_s: float, target_p1_s: float, target_p2_s: float, slot_s: float = 30.0,
          max_wait_slots: int | None = None, time_limit_s: float = 60.0,
          travel: TravelTimes | None = None, relocate: bool = True) -> OracleResult:
    """The perfect-foresight optimum for ``incidents`` with ambulances starting at ``homes``, on ``travel``'s
    times (free flow by default); a call may wait up to ``max_wait_slots`` slots (default: to the window's end);
    ``relocate=False``: moves between calls only towards a home station (dispatch-only optimum)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_matrix

    nodes = sorted(set(smap.sites.values()) | set(smap.hospitals) | set(homes))
    n_slots = max(1, math.ceil(horizon_s / slot_s))
    waits = n_slots if max_wait_slots is None else max_wait_slots
    unanswered = LATE_WEIGHT * (len(incidents) + 1) + UNSERVED_S  # above every late call together
    tt = travel if travel is not None else FreeFlow(smap)

    def times(v: str, s: int) -> Mapping[str, float]:
        return tt.times_from(v, s * slot_s)

    goals = nodes if relocate else sorted(set(homes))
    tau = {(v, w, s): max(1, math.ceil(times(v, s)[w] / slot_s)) for s in range(n_slots) for v in nodes
           for w in goals if v != w and math.isfinite(times(v, s).get(w, math.inf))}
    cols: list[tuple[str, tuple[object, ...]]] = []
    cost: list[float] = []
    ub: list[float] = []
    integ: list[int] = []

    def var(kind: str, key: tuple[object, ...], c: float, upper: float) -> int:
        cols.append((kind, key))
        cost.append(c)
        ub.append(upper)
        integ.append(1)
        return len(cols) - 1

    n_amb = len(homes)
    n = {(v, s): var("n", (v, s), 0.0, n_amb) for v in nodes for s in range(n_slots + 1)}
    m = {(v, w, s): var("m", (v, w, s), 1.0 * t, n_amb) for (v, w, s), t in tau.items()}
    y: dict[tuple[str, str, int], int] = {}
    resp: dict[tuple[str, str, int], float] = {}
    end: dict[tuple[str, str, int], tuple[str, int]] = {}
    u: dict[str, int] = {}
    for inc in incidents:
        reported = inc.call_s + call_processing_s
        target = call_processing_s + (target_p1_s if inc.priority == 1 else target_p2_s)
        first = max(0, int(reported // slot_s))
        for v in nodes:
            for d in range(waits + 1):
                s = first + d
                if s >= n_slots:
                    break
                go = times(v, s).get(inc.edge, math.inf)
                if not math.isfinite(go):
                    continue
                t_dispatch = max(reported, s * slot_s)
                leave = t_dispatch + go + inc.on_scene_s
                finish, after = _finish(smap, inc, nodes, tt.times_from(inc.edge, leave))
                r = t_dispatch + go - inc.call_s
                done = leave + after
                key = (inc.id, v, s)
                y[key] = var("y", key, r + (LATE_WEIGHT if r > target else 0.0), 1)
                resp[key] = r
                end[key] = (finish, min(n_slots, int(done // slot_s)))
        u[inc.id] = var("u", (inc.id,), unanswered, 1)
    rows: list[int] = []
    cs: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def row(entries: list[tuple[int, float]], low: float, high: float) -> None:
        r = len(lo)
        for c, val in entries:
            rows.append(r)
            cs.append(c)
            vals.append(val)
        lo.append(low)
        hi.append(high)

    out_of: dict[tuple[str, int], list[int]] = {}
    into: dict[tuple[str, int], list[int]] = {}
    for (v, w, s), c in m.items():
        out_of.setdefault((v, s), []).append(c)
        arrive = s + tau[(v, w, s)]
        if arrive <= n_slots:
            into.setdefault((w, arrive), []).append(c)
    for key, c in y.items():
        _, v, s = key
        out_of.setdefault((v, s), []).append(c)
        fin, slot = end[key]
        if slot <= n_slots:
            into.setdefault((fin, max(slot, s + 1)), []).append(c)
    counts = {h: homes.count(h) for h in set(homes)}
    for v in nodes:
        row([(n[(v, 0)], 1.0)], counts.get(v, 0), counts.get(v, 0))
        for s in range(n_slots):
            outs = out_of.get((v, s), [])
            row([(n[(v, s)], 1.0)] + [(c, -1.0) for c in outs], 0.0, np.inf)
            row([(n[(v, s + 1)], 1.0), (n[(v, s)], -1.0)] + [(c, 1.0) for c in outs]
                + [(c, -1.0) for c in into.get((v, s + 1), [])], 0.0, 0.0)
    for inc in incidents:
        row([(c, 1.0) for k, c in y.items() if k[0] == inc.id] + [(u[inc.id], 1.0)], 1.0, 1.0)
    a = coo_matrix((vals, (rows, cs)), shape=(len(lo), len(cols))).tocsr()
    res = milp(np.array(cost), constraints=LinearConstraint(a, lo, hi), integrality=np.array(integ),
               bounds=Bounds(np.zeros(len(cols)), np.array(ub)), options={"time_limit": time_limit_s})
    responses: dict[str, float | None] = {}
    late: dict[str, bool] = {}
    if res.x is None:
        return OracleResult({i.id: None for i in incidents}, {i.id: True for i in incidents}, 0, len(cols),
                            str(res.message))
    x = np.round(res.x).astype(int)
    for inc in incidents:
        target = call_processing_s + (target_p1_s if inc.priority == 1 else target_p2_s)
        chosen = [k for k, c in y.items() if k[0] == inc.id and x[c] > 0]
        responses[inc.id] = resp[chosen[0]] if chosen else None
        late[inc.id] = not chosen or resp[chosen[0]] > target
    relocations = int(sum(x[c] for c in m.values()))
    return OracleResult(responses, late, relocations, len(cols), "optimal" if res.status == 0 else str(res.message))
