"""The grid under the cologne8 road map: the CIGRE LV network (pandapower) with its three feeders named ``R``
(residential), ``I`` (industrial) and ``C`` (commercial), each behind its own transformer; every low-voltage bus
is a load point; normally-open tie lines let the ``R`` feeder pick up load points of a dead ``I`` or ``C`` feeder.

A bus is supplied when its feeder's transformer is in service, or when it was picked up through a closed tie
(each load point has its own sectionalising switch: a dead feeder's cable is energised from the tie, but only
picked-up load points are reconnected). Unsupplied load points draw nothing in the power flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from aicity.core.entity import Entity, Property
from aicity.domains.energy.grid import _PF, FArray, GridModel
from aicity.domains.energy.kpis import Flow

FEEDERS = ("R", "I", "C")
"""The three feeders, each behind its own transformer (CIGRE LV: 500, 150 and 300 kVA)."""
SOURCE = "R"
"""The feeder whose transformer picks up load points of a dead feeder through a tie."""
TIE_BUS = "Bus R18"
"""The ``R`` feeder's end of every tie line (the far end of its longest branch)."""
TIE_TO = {"C": "Bus C1", "I": "Bus I1"}
"""Where each tie lands on the feeder it can pick up."""
_TRAFOS = {"Trafo R0-R1": "R", "Trafo I0-I1": "I", "Trafo C0-C1": "C"}
_NW = ("Bus R1", "Bus R2", "Bus R3", "Bus R4", "Bus R5", "Bus R11", "Bus R12", "Bus R13", "Bus R14", "Bus R15")
_NE = ("Bus C1", "Bus C2", "Bus C3", "Bus C4", "Bus C10", "Bus C11", "Bus C12", "Bus C13", "Bus C14")


def tie_name(feeder: str) -> str:
    """The tie that lets ``R`` pick up ``feeder`` (e.g. ``R-C``)."""
    return f"{SOURCE}-{feeder}"


def lv_buses(net: Any = None) -> list[str]:
    """The CIGRE LV network's low-voltage bus names, in pandapower's bus order."""
    import pandapower.networks as pn

    net = pn.create_cigre_network_lv() if net is None else net
    return [str(net.bus.name[b]) for b in net.bus.index if float(net.bus.vn_kv[b]) < 1.0]


def feeder_of(bus: str) -> str:
    """The feeder of an LV bus (``Bus C12`` → ``C``)."""
    return bus.split()[1][0]


def district_of(bus: str) -> str:
    """The road map quadrant over a bus: residential NW/SW, commercial NE/SE, industrial SE."""
    feeder = feeder_of(bus)
    if feeder == "R":
        return "NW" if bus in _NW else "SW"
    if feeder == "C":
        return "NE" if bus in _NE else "SE"
    return "SE"


@dataclass
class CityGrid(GridModel):
    """A :class:`GridModel` whose nodes are every LV bus, with feeder outages and tie restoration (see module)."""

    names: tuple[str, ...] = ()
    in_service: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(FEEDERS, True))
    tie_closed: dict[str, bool] = field(default_factory=dict)
    picked: set[str] = field(default_factory=set)
    _changed: bool = True
    _tie_switch: dict[str, int] = field(default_factory=dict)
    published: frozenset[str] | None = None
    """Buses whose measurements are reported (None: all)."""
    template: Any = field(default=None, repr=False)

    def start(self) -> None:
        """Build the network: one load per LV bus, transformers named by feeder, the open tie lines."""
        import pandapower as pp
        import pandapower.networks as pn

        net = self.template if self.template is not None else pn.create_cigre_network_lv()
        self.template = None
        net.load.drop(net.load.index, inplace=True)
        net.trafo["name"] = [_TRAFOS[str(n)] for n in net.trafo.name]
        index = {str(n): int(i) for i, n in net.bus.name.items()}
        self._loads = [int(pp.create_load(net, bus, 0.0, 0.0)) for bus in self.node_buses]
        for feeder, to in TIE_TO.items():
            name = f"Tie {tie_name(feeder)}"
            line = pp.create_line_from_parameters(net, index[TIE_BUS], index[to], 0.1, 0.162, 0.0832, 0.0, 1.0,
                                                  name=name)
            self._tie_switch[feeder] = int(pp.create_switch(net, index[TIE_BUS], line, "l", closed=False,
                                                            name=name))
            self.tie_closed.setdefault(tie_name(feeder), False)
        self.net = net
        self._changed = True
        pp.runpp(net, numba=False)

    # ---- topology --------------------------------------------------------------------------------
    def feeders(self) -> dict[str, tuple[str, ...]]:
        """Feeder → its LV buses."""
        return {f: tuple(b for b in self.names if feeder_of(b) == f) for f in FEEDERS}

    def supplied(self, bus: str) -> bool:
        """Is ``bus`` energised (its transformer in service, or picked up through a closed tie)?"""
        feeder = feeder_of(bus)
        if self.in_service.get(feeder, False):
            return True
        return (bus in self.picked and self.tie_closed.get(tie_name(feeder), False)
                and self.in_service.get(SOURCE, False))

    def set_in_service(self, feeder: str, on: bool) -> None:
        """Trip (``on=False``) or restore a feeder's transformer; a restored feeder opens its tie."""
        self.in_service[feeder] = on
        if on:
            self.set_tie(feeder, ())
        self._changed = True

    def set_tie(self, feeder: str, buses: Sequence[str]) -> None:
        """Pick up exactly ``buses`` of ``feeder`` through its tie (closed when any, open when none)."""
        self.picked = {b for b in self.picked if feeder_of(b) != feeder} | set(buses)
        self.tie_closed[tie_name(feeder)] = bool(buses)
        self._changed = True

    def ratings_kw(self) -> dict[str, float]:
        """Each feeder transformer's rating (kVA, read as kW)."""
        if self.net is None:
            self.start()
        return {str(n): float(s) * 1000.0 for n, s in zip(self.net.trafo.name, self.net.trafo.sn_mva, strict=True)}

    # ---- power flow ------------------------------------------------------------------------------
    def _run(self, node_kw: Sequence[float] | FArray) -> Flow:
        import pandapower as pp

        net = self.net
        if self._changed:
            net.trafo["in_service"] = [self.in_service[str(n)] for n in net.trafo.name]
            for feeder, sw in self._tie_switch.items():
                net.switch.loc[sw, "closed"] = self.tie_closed.get(tie_name(feeder), False)
        p = np.asarray(node_kw, dtype=float) / 1000.0
        net.load.loc[self._loads, "p_mw"] = p
        net.load.loc[self._loads, "q_mvar"] = np.where(p > 0, p * self.q_ratio, 0.0)
        try:
            if self._changed:
                pp.runpp(net, numba=False)
                self._changed = False
            else:
                pp.runpp(net, **_PF)
        except Exception:  # pandapower raises its own LoadflowNotConverged and numerical errors
            self._changed = True
            return Flow({}, {}, converged=False)
        vm = {str(net.bus.name[b]): float(v) for b, v in zip(net.bus.index, net.res_bus.vm_pu, strict=True)
              if float(net.bus.vn_kv[b]) < 1.0 and np.isfinite(v) and self.supplied(str(net.bus.name[b]))}
        loading = {str(n): float(v) for n, v in zip(net.line.name, net.res_line.loading_percent, strict=True)
                   if np.isfinite(v)}
        trafos = {str(n): float(v) if np.isfinite(v) else 0.0
                  for n, v in zip(net.trafo.name, net.res_trafo.loading_percent, strict=True)}
        loading.update(trafos)
        return Flow(vm, loading, transformers=trafos)

    def observe(self, now: datetime, entity_type: str, inflexible_kw: Sequence[float]) -> list[Entity]:
        """The published buses' voltage (0 when not supplied) and net load."""
        out = []
        for ent in super().observe(now, entity_type, inflexible_kw):
            i = int(ent.get("node"))
            bus = self.names[i]
            if self.published is not None and bus not in self.published:
                continue
            if not self.supplied(bus):
                ent = Entity(ent.id, ent.type, {**ent.attrs, "voltage": Property(0.0, now, "pu")})
            out.append(ent)
        return out

    def transformer_kw(self) -> dict[str, float]:
        """Active power through each transformer in the last power flow (kW, high-voltage side)."""
        if self.net is None or self.last is None or not self.last.converged:
            return dict.fromkeys(FEEDERS, 0.0)
        return {str(n): float(np.nan_to_num(v)) * 1000.0
                for n, v in zip(self.net.trafo.name, self.net.res_trafo.p_hv_mw, strict=True)}

    def tie_kw(self) -> dict[str, float]:
        """Active power through each tie line in the last power flow (kW)."""
        out = {tie_name(f): 0.0 for f in TIE_TO}
        if self.net is None or self.last is None or not self.last.converged:
            return out
        for f in TIE_TO:
            row = self.net.line.index[self.net.line.name == f"Tie {tie_name(f)}"]
            out[tie_name(f)] = abs(float(np.nan_to_num(self.net.res_line.p_from_mw[row[0]]))) * 1000.0
        return out


def city_grid() -> CityGrid:
    """A :class:`CityGrid` whose nodes are every LV bus (one CIGRE LV network built, kept for :meth:`start`)."""
    import pandapower.networks as pn

    net = pn.create_cigre_network_lv()
    names = lv_buses(net)
    index = {str(n): int(i) for i, n in net.bus.name.items()}
    return CityGrid(tuple(index[n] for n in names), names=tuple(names), template=net)

