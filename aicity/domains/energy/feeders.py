"""A city of low-voltage districts behind one shared substation: the ``feeders-<K>`` family of energy scenarios.

Each of the K feeders ``f1``..``fK`` is the district of :mod:`.district` (CIGRE LV on pandapower, real household
profiles, rooftop PV, four batteries, 48 home chargers replaying real ACN sessions) with its own seeded draw
(``draw * 1000 + i``), so no two feeders are alike. Upstream of the K district transformers sits one **shared
substation** (``urn:ngsi-ld:Transformer:substation``) rated below their sum (``substation_kw``, default 230 kVA
per feeder), so it binds at the evening peak. Its loading is the sum of the feeders' imports that step (active
and reactive power at each district transformer's high-voltage side, from the AC power flow); it publishes
``rating``, ``loading_kw``, ``reactivePower``, ``apparentPower`` and ``headroom`` (rating less apparent power).

The window is Monday 2 September 2019, 17:00 for 24 h (15-min steps). Every entity of feeder ``fN`` carries ``fN.``
before its local id (``urn:ngsi-ld:EVChargingStation:f2.R11-0``), so the feeders' ids never clash, in one process or
as districts (:mod:`.energy_districts`). In AI City mode a battery command may carry ``cap_kw``: the feeder's
batteries then hold its live import under that cap within each step (an inverter's import-limit mode), within the
edge's power, ramp and state-of-charge limits (:class:`FeederTwin`). :class:`FeedersTwin` runs the feeders a
scenario holds: all K in one process (``feeders-K``), or one district's share of them (``feeders-K.dJofD``), where
it is :class:`~aicity.core.capabilities.Bordered`: what crosses is the districts' imports to the substation's owner
and the substation's state back (see :mod:`.energy_districts` for what differs from one process).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aicity.core.capabilities import Crossing, EdgeActionData, RejectedInput
from aicity.core.domain import DomainResult, Outcome, ProposedAction, Scenario
from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.domains.energy.const import DOMAIN, TRANSFORMER_PREFIX, TRANSFORMER_TYPE, URN
from aicity.domains.energy.twin import EnergyTwin, TwinConfig

PREFIX = "feeders-"
MAX_FEEDERS = 64
BEGIN_S = 17 * 3600.0
"""Monday 2 September 2019, 17:00 (the district's epoch is that day's midnight): the evening peak comes first."""
WINDOW_S = 86400.0
KVA_PER_FEEDER = 230.0
"""The substation's default rating per feeder: below one feeder's uncontrolled evening peak (about 240-300 kW),
far below its own transformer (950 kW)."""
SUBSTATION = "substation"
SUBSTATION_ID = f"{TRANSFORMER_PREFIX}{SUBSTATION}"
OWNER = "d1"
"""The district that owns the substation (the one holding ``f1``)."""
FLOW, STATE, VIA = "power_flow", "substation_state", "substation"
_NAME = re.compile(r"^feeders-(?P<k>\d+)(?:\.(?P<d>d\d+)of(?P<n>\d+))?$")


def feeder_name(i: int) -> str:
    """The ``i``-th feeder (0-based): ``f1``, ``f2``, ..."""
    return f"f{i + 1}"


def district_name(j: int) -> str:
    """The ``j``-th district (0-based): ``d1``, ``d2``, ... (the names mobility's gridcity districts take)."""
    return f"d{j + 1}"


def copy_id(district: str) -> str:
    """The id of district ``district``'s local copy of the substation's state (its SCADA view)."""
    return f"{SUBSTATION_ID}.{district}"


@dataclass(frozen=True, slots=True)
class Layout:
    """Which feeders a scenario runs: ``k`` feeders in ``districts`` districts, ``here`` (None: all, one process)."""

    k: int
    districts: int = 1
    here: str | None = None

    @property
    def role(self) -> str:
        """``city`` (one process: every feeder), ``owner`` (the substation's district) or ``member``."""
        return "city" if self.here is None else ("owner" if self.here == OWNER else "member")

    def feeders_of(self, district: str) -> list[str]:
        """The feeders district ``district`` holds."""
        j = int(district[1:]) - 1
        per = self.k // self.districts
        return [feeder_name(i) for i in range(j * per, (j + 1) * per)]

    def mine(self) -> list[str]:
        """The feeders this scenario runs."""
        return [feeder_name(i) for i in range(self.k)] if self.here is None else self.feeders_of(self.here)

    def others(self) -> list[str]:
        """The districts other than this one."""
        return [d for d in (district_name(j) for j in range(self.districts)) if d != self.here]


def layout_of(name: str) -> Layout | None:
    """The layout a scenario name stands for (``feeders-K`` or ``feeders-K.dJofD``), else None."""
    m = _NAME.match(name)
    if m is None:
        return None
    k = int(m["k"])
    if not 1 <= k <= MAX_FEEDERS:
        return None
    if m["d"] is None:
        return Layout(k)
    n, j = int(m["n"]), int(m["d"][1:])
    if n < 1 or k % n or not 1 <= j <= n:
        return None
    return Layout(k, n, m["d"])


def scenario(k: int, params: Mapping[str, Any] | None = None) -> Scenario:
    """``feeders-<k>``: ``k`` LV districts behind one shared substation, Monday 17:00 for 24 h."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_FEEDERS:
        raise UserError(f"a feeders scenario has 1 to {MAX_FEEDERS} feeders, not {k!r}")
    return Scenario(f"{PREFIX}{k}", DOMAIN, f"{k} CIGRE LV district(s) (pandapower; real loads, PV, batteries, "
                    "48 chargers on real ACN sessions each) behind one shared substation rated below their sum",
                    BEGIN_S, BEGIN_S + WINDOW_S, params=dict(params or {}))


def rating_kva(layout: Layout, params: Mapping[str, Any]) -> float:
    """The substation's rating: the ``substation_kw`` option, else 230 kVA per feeder."""
    value = params.get("substation_kw")
    return float(value) if value is not None else KVA_PER_FEEDER * layout.k


def feeder_scenario(scen: Scenario, feeder: str, draw: int) -> tuple[Scenario, dict[str, Any]]:
    """The district scenario one feeder runs (the feeders' window) and its build parameters (its own draw)."""
    one = dataclasses.replace(scen, name="district-cigre-lv")
    return one, {**scen.params, "draw": draw * 1000 + int(feeder[1:])}


@dataclass
class FeederTwin(EnergyTwin):
    """One feeder's :class:`EnergyTwin` that also keeps its import at the district transformer's high-voltage
    side each step: ``(elapsed s at the step's start, kW, kvar)`` from the AC power flow (metered, at a 0.2
    kvar/kW load power factor, when the flow failed); in AI City mode its batteries can hold the feeder's live
    import under a cap (:class:`EnergyTwin`'s import-limit mode, set by a battery command's ``cap_kw``)."""

    imports: list[tuple[float, float, float]] = field(default_factory=list)

    def _step(self) -> None:
        t = self.k * self.site.step_s
        super()._step()
        self.imports.append((t, *self._import()))

    def _import(self) -> tuple[float, float]:
        grid = self.site.grid
        if grid is not None and grid.last is not None and grid.last.converged and grid.net is not None:
            ext = grid.net.res_ext_grid
            return float(ext.p_mw.sum()) * 1000.0, float(ext.q_mvar.sum()) * 1000.0
        return self.grid_kw, 0.2 * max(0.0, self.grid_kw)


@dataclass
class SubstationState:
    """The substation's loading over one step (kW, kvar; None before the first step), when it was published."""

    p_kw: float | None
    q_kvar: float | None
    at_s: float

    @property
    def s_kva(self) -> float | None:
        """Apparent power."""
        return None if self.p_kw is None or self.q_kvar is None else math.hypot(self.p_kw, self.q_kvar)


class FeedersTwin:
    """The feeders a ``feeders`` scenario runs and the substation they share (see the module docstring)."""

    def __init__(self, scen: Scenario, layout: Layout, feeders: Mapping[str, FeederTwin], rating: float) -> None:
        self.scenario, self.layout, self.rating = scen, layout, rating
        self.feeders = dict(feeders)
        first = next(iter(self.feeders.values()))
        self.decision_interval_s: float = first.decision_interval_s
        self.start_time: datetime = first.start_time
        self._first = first
        self._published: SubstationState | None = None
        self._received: SubstationState | None = None
        self._reports: dict[str, dict[str, tuple[float, float]]] = {}
        """Per other district, its feeders' latest import (the owner's view)."""
        self._out: list[Crossing] = []

    # ---- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every feeder."""
        for tw in self.feeders.values():
            tw.start()

    def elapsed_s(self) -> float:
        """Simulated seconds since the window's begin (the feeders step together)."""
        return self._first.elapsed_s()

    def done(self) -> bool:
        """True at the end of the window."""
        return self._first.done()

    def advance(self, seconds: float) -> None:
        """Advance every feeder; queue what crosses to other districts after the step."""
        for tw in self.feeders.values():
            tw.advance(seconds)
        if self.layout.role == "member" and self._first.imports:
            self._out.append({"via": VIA, "kind": FLOW, "at_s": self.elapsed_s(), "payload": {
                "district": self.layout.here, "step": len(self._first.imports) - 1,
                "feeders": {f: [tw.imports[-1][1], tw.imports[-1][2]] for f, tw in self.feeders.items()}}})
        elif self.layout.role == "owner" and self._published is not None:
            st = self._published
            for d in self.layout.others():
                self._out.append({"via": f"{VIA}>{d}", "kind": STATE, "at_s": self.elapsed_s(), "payload": {
                    "p_kw": st.p_kw, "q_kvar": st.q_kvar, "at_s": st.at_s}})

    # ---- the substation ----------------------------------------------------------------------------------
    def substation(self) -> SubstationState:
        """The substation's loading over the last step: this twin's feeders and what the others reported."""
        if not self._first.imports:
            return SubstationState(None, None, self.elapsed_s())
        per = {f: (tw.imports[-1][1], tw.imports[-1][2]) for f, tw in self.feeders.items()}
        for rep in self._reports.values():
            per.update(rep)
        p = q = 0.0
        for i in range(self.layout.k):  # in feeder order, whoever sums (the same floats as one process)
            pq = per.get(feeder_name(i))
            if pq is not None:
                p += pq[0]
                q += pq[1]
        return SubstationState(p, q, self.elapsed_s())

    def _substation_entity(self, eid: str, st: SubstationState | None, extra: Mapping[str, Any]) -> Entity:
        at = self.start_time + timedelta(seconds=st.at_s if st is not None else 0.0)
        s = st.s_kva if st is not None else None
        p = st.p_kw if st is not None else None
        q = st.q_kvar if st is not None else None
        return Entity(eid, TRANSFORMER_TYPE, {
            "rating": Property(self.rating, None, "KVA"),
            "loading_kw": Property(None if p is None else round(p, 3), at, "KWT"),
            "reactivePower": Property(None if q is None else round(q, 3), at, "KVR"),
            "apparentPower": Property(None if s is None else round(s, 3), at, "KVA"),
            "headroom": Property(None if s is None else round(max(0.0, self.rating - s), 3), at, "KVA"),
            "feeds": Property(self.layout.k), "owner": Property(OWNER), **extra})

    # ---- sensors and actuators ---------------------------------------------------------------------------
    def observe(self) -> list[Any]:
        """Every feeder's entities (ids tagged with the feeder) and the substation: its own state where this
        twin holds it, else the local copy of the state last received from its owner."""
        ents: list[Any] = []
        for f, tw in self.feeders.items():
            ents += [_tag(e, f) for e in tw.observe()]
        if self.layout.role == "member":
            assert self.layout.here is not None
            ents.append(self._substation_entity(copy_id(self.layout.here), self._received,
                                                {"copyOf": Property(SUBSTATION_ID)}))
        else:
            self._published = self.substation()
            ents.append(self._substation_entity(SUBSTATION_ID, self._published, {}))
        return ents

    def actuate(self, action: ProposedAction) -> Outcome:
        """Pass the action to the feeder its target names."""
        found = _untag(action.target)
        if found is None or found[0] not in self.feeders:
            return Outcome(action, "refused", bound_by=("known_target",),
                           reason=f"no feeder of this twin has {action.target}")
        out = self.feeders[found[0]].actuate(dataclasses.replace(action, target=found[1]))
        return dataclasses.replace(out, action=action)

    def safe_state(self) -> None:
        """Every feeder's chargers to their safe rate, batteries idle."""
        for tw in self.feeders.values():
            tw.safe_state()

    def safe_state_for(self, target: str) -> bool:
        """One charger or battery in its safe state."""
        found = _untag(target)
        return found is not None and found[0] in self.feeders and self.feeders[found[0]].safe_state_for(found[1])

    def resume(self) -> None:
        """Hand control back."""
        for tw in self.feeders.values():
            tw.resume()

    def edge_events(self) -> list[EdgeActionData]:
        """What the feeders' edges did on their own (targets tagged)."""
        out: list[EdgeActionData] = []
        for f, tw in self.feeders.items():
            out += [{**e, "target": _tag_id(e["target"], f)} for e in tw.edge_events()]
        return out

    # ---- borders -----------------------------------------------------------------------------------------
    def outbound(self) -> list[Crossing]:
        """What left for other districts since the last call (imports to the owner, or its state back)."""
        out, self._out = self._out, []
        return out

    def inbound(self, crossings: list[Crossing]) -> list[RejectedInput]:
        """Take in imports (the owner) or the substation's state (the others); the rest is returned."""
        rejects: list[RejectedInput] = []
        for c in crossings:
            why = self._take(c)
            if why is not None:
                rejects.append({"source": f"{DOMAIN}.border", "reason": why,
                                "payload": dict(c) if isinstance(c, Mapping) else repr(c)})
        return rejects

    def _take(self, c: Any) -> str | None:
        if not isinstance(c, Mapping) or not isinstance(c.get("payload"), Mapping):
            return "a crossing must be a mapping with a payload mapping"
        pay, kind = c["payload"], c.get("kind")
        role = self.layout.role
        if role == "owner" and kind == FLOW:
            d = pay.get("district")
            if d not in self.layout.others():
                return f"power flow from {d!r}, which is no other district of {self.scenario.name}"
            rep = pay.get("feeders")
            want = self.layout.feeders_of(str(d))
            if (not isinstance(rep, Mapping) or sorted(rep) != sorted(want)
                    or not all(_pair(v) for v in rep.values())):
                return f"power flow from {d} must give [kW, kvar] (finite numbers) for each of {', '.join(want)}"
            self._reports[str(d)] = {f: (float(rep[f][0]), float(rep[f][1])) for f in want}
            return None
        if role == "member" and kind == STATE:
            p, q, at = pay.get("p_kw"), pay.get("q_kvar"), pay.get("at_s")
            if not _num(at) or not ((p is None and q is None) or (_num(p) and _num(q))):
                return "substation state must give p_kw and q_kvar (finite numbers, or both None) and at_s"
            self._received = SubstationState(None if p is None else float(p), None if q is None else float(q),
                                             float(at))
            return None
        return f"a {self.layout.role} twin of {self.scenario.name} takes no {kind!r} crossing"

    # ---- results -----------------------------------------------------------------------------------------
    def close(self) -> DomainResult:
        """Every feeder closed; their merged result, with each feeder's raw figures for a later merge."""
        from aicity.domains.energy.energy_districts import combine

        return combine({f: self._raw(f, tw) for f, tw in self.feeders.items()}, self.layout.here or "city")

    def _raw(self, name: str, tw: FeederTwin) -> dict[str, Any]:
        res = tw.close()
        led = tw.ledger
        return {"kpis": dict(res.kpis), "series": {k: list(v) for k, v in res.series.items()},
                "imports": [list(x) for x in tw.imports], "delivered_kwh": led.delivered, "demand_kwh": led.demand,
                "groups": {dim: {g: list(v) for g, v in per.items()} for dim, per in led.groups.items()},
                "counts": dict(res.extra.get("counts", {})), "demand_charge": tw.site.demand_charge,
                "rating_kva": self.rating, "step_s": tw.site.step_s}


def open_twin(scen: Scenario, mode: str, seed: int, params: Mapping[str, Any], cfg: TwinConfig) -> FeedersTwin:
    """The twin of a ``feeders`` scenario (or one district of it) in ``mode``; options already validated."""
    from aicity.domains.energy.district import build_district, draw_of

    layout = layout_of(scen.name)
    if layout is None:
        raise UserError(f"{scen.name!r} is no feeders scenario (feeders-<K>, K from 1 to {MAX_FEEDERS})")
    step_s = 900.0
    if abs(cfg.decision_interval_s / step_s - round(cfg.decision_interval_s / step_s)) > 1e-9:
        raise UserError(f"option decision_interval_s must be a multiple of {step_s:g} s on {scen.name}, "
                        f"got {cfg.decision_interval_s:g}")
    cfg = dataclasses.replace(cfg, oracle=False)  # the oracle does not know the substation
    twins = {}
    for f in layout.mine():
        one, p = feeder_scenario(scen, f, draw_of(params))
        site = build_district(one, p)
        twins[f] = FeederTwin(site, one, mode, seed, cfg)
    return FeedersTwin(scen, layout, twins, rating_kva(layout, params))


def _tag_id(eid: str, feeder: str) -> str:
    head, _, local = eid.rpartition(":")
    return f"{head}:{feeder}.{local}" if head else f"{feeder}.{eid}"


def _tag(ent: Any, feeder: str) -> Any:
    if isinstance(ent, Entity):
        return Entity.trusted(_tag_id(ent.id, feeder), ent.type, ent.attrs)
    if isinstance(ent, dict) and isinstance(ent.get("id"), str):  # a faulty reading, raw: the loop rejects it
        return {**ent, "id": _tag_id(ent["id"], feeder)}
    return ent


def _untag(eid: str) -> tuple[str, str] | None:
    """(feeder, the feeder twin's own id) of a tagged id, else None."""
    head, _, local = eid.rpartition(":")
    feeder, dot, rest = local.partition(".")
    if not head or not dot or not head.startswith(URN):
        return None
    return feeder, f"{head}:{rest}"


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _pair(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2 and all(_num(x) for x in v)
