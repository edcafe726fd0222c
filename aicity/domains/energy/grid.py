"""The grid under a district: a pandapower network it ships (CIGRE LV, Kerber's village feeder), AC power flow
each step (numba off: it is slower on grids this small), the bus voltages and line / transformer loadings it
reports, and the linear sensitivities the MPC and the oracle constrain (voltage band, loadings) found by perturbing
the same power flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np

from aicity.core.entity import Entity, Property
from aicity.domains.energy.const import VMAX, VMIN
from aicity.domains.energy.kpis import Flow
from aicity.domains.energy.lp import Network

FArray = np.ndarray[Any, np.dtype[np.float64]]
MARGIN_V = 0.004
"""pu kept clear of the band's edges by the LP (the linearisation's error at these loadings is below it)."""
MARGIN_LOADING = 0.9
"""share of a line's or transformer's rating the LP plans up to (reactive power and linearisation error)."""
_PF = {"numba": False, "recycle": {"trafo": False, "gen": False, "bus_pq": True}}


def linear_floor(floor: float, v_nl: FArray) -> float:
    """The linearised voltage that keeps the AC voltage at or above ``floor``: the sensitivities are taken at no
    load, but a constant-power load draws current ∝ 1/V, so the real drop is the linear one × ``v_nl / v``
    (at 0.95 pu about 5 % more: 0.0022 pu at the band's edge, half the margin)."""
    top = float(np.max(v_nl)) if v_nl.size else 1.0
    return top - (top - floor) * floor / top


NETWORKS = {"cigre_lv": "create_cigre_network_lv", "kerber_dorfnetz": "create_kerber_dorfnetz"}
"""The pandapower networks a district can stand on, by name: the function of ``pandapower.networks`` building it."""


NETWORK_SEED = 2019
"""Seeds what a network's builder leaves to chance (the cables of Kerber's house connections): every process builds
the same feeder."""


@lru_cache(maxsize=len(NETWORKS))
def _template(name: str) -> Any:
    """The network as pandapower builds it, its chance parts drawn with :data:`NETWORK_SEED` (read only: Kerber's
    feeder takes a second to build, element by element)."""
    import pandapower.networks as pn

    net = getattr(pn, NETWORKS[name])()
    if name.startswith("kerber"):
        kerber_connections(net, np.random.default_rng(NETWORK_SEED))
    return net


def kerber_connections(net: Any, rng: np.random.Generator) -> None:
    """Redraw each Kerber house connection's cable with ``rng``: pandapower draws them (after each cable's first, a
    NAYY 4x50) half and half NAYY 4x50 or NAYY 4x50 SE from Python's unseeded global ``random``, so every process
    built a different feeder."""
    import pandapower as pp

    for idx, name in net.line.name.items():
        if str(name).startswith("branchout_line_"):
            first = str(name).rsplit("_", 1)[1] == "1"
            kind = "NAYY 4x50" if first or rng.random() <= 0.5 else "NAYY 4x50 SE"
            pp.change_std_type(net, idx, kind, element="line")


def make_network(name: str) -> Any:
    """A fresh pandapower network of :data:`NETWORKS` by name (a copy: the caller may change it)."""
    import copy

    return copy.deepcopy(_template(name))


def bus_names(network: str = "cigre_lv") -> list[str]:
    """A shipped network's bus names, in pandapower's bus order."""
    return [str(x) for x in _template(network).bus.name]


@dataclass(frozen=True, slots=True)
class GridView:
    """What an operator knows of its grid: sensitivities at no load, ratings; no load or weather data."""

    v_nl: FArray
    sv: FArray
    f_nl: FArray
    sf: FArray
    fmax: FArray
    bus_names: tuple[str, ...]
    line_names: tuple[str, ...]

    def restrict(self, inflexible: FArray, n: int) -> Network:
        """The LP's :class:`Network` for ``n`` steps with the forecast inflexible load per node (nodes × n)."""
        inj = inflexible[:, :n]
        return Network(self.v_nl[:, None] + self.sv @ inj, self.sv, linear_floor(VMIN + MARGIN_V, self.v_nl),
                       VMAX - MARGIN_V,
                       self.f_nl[:, None] + self.sf @ inj, self.sf, self.fmax * MARGIN_LOADING, self.bus_names,
                       self.line_names)


@dataclass
class GridModel:
    """A pandapower network with the district's nodes (the buses assets hang on)."""

    node_buses: tuple[int, ...]
    q_ratio: float = 0.2
    network: str = "cigre_lv"
    net: Any = field(default=None, repr=False)
    _loads: list[int] = field(default_factory=list)
    _view: GridView | None = None
    last: Flow | None = None

    def start(self) -> None:
        """Build the network: one load element per node (its net power, kW → MW), nothing else connected."""
        import pandapower as pp

        net = make_network(self.network)
        net.load.drop(net.load.index, inplace=True)
        self._loads = [int(pp.create_load(net, bus, 0.0, 0.0)) for bus in self.node_buses]
        if list(net.load.index) != self._loads:
            raise RuntimeError(f"grid {self.network}: the nodes' loads are not the network's loads in order")
        self.net = net
        pp.runpp(net, numba=False)

    def _run(self, node_kw: Sequence[float] | FArray) -> Flow:
        import pandapower as pp

        net = self.net
        p = np.asarray(node_kw, dtype=float) / 1000.0
        # the nodes' loads are the network's only loads, in index order (start): whole columns are set at once
        net.load["p_mw"] = p
        net.load["q_mvar"] = np.where(p > 0, p * self.q_ratio, 0.0)
        try:
            pp.runpp(net, **_PF)
        except Exception:  # pandapower raises its own LoadflowNotConverged and numerical errors
            return Flow({}, {}, converged=False)
        buses = net.bus.index[net.bus.vn_kv < 1.0]
        vm = dict(zip(net.bus.name.loc[buses].astype(str).tolist(), net.res_bus.vm_pu.loc[buses].tolist(),
                      strict=True))
        loading = dict(zip(net.line.name.astype(str).tolist(), net.res_line.loading_percent.tolist(), strict=True))
        trafos = dict(zip(net.trafo.name.astype(str).tolist(), net.res_trafo.loading_percent.tolist(), strict=True))
        loading.update(trafos)
        return Flow(vm, loading, transformers=trafos)

    def run(self, node_kw: Sequence[float] | FArray) -> Flow:
        """One AC power flow with the nodes' net loads (kW, load positive)."""
        if self.net is None:
            self.start()
        self.last = self._run(node_kw)
        return self.last

    def observe(self, now: datetime, entity_type: str, inflexible_kw: Sequence[float]) -> list[Entity]:
        """Per node: the bus voltage of the last power flow and the smart meters' net load there (loads less PV,
        kW) — what a grid operator's meters report."""
        if self.net is None:
            return []
        names = [str(self.net.bus.name[b]) for b in self.node_buses]
        vm = self.last.vm_pu if self.last is not None else {}
        return [Entity(f"urn:ngsi-ld:{entity_type}:{name.replace(' ', '-')}", entity_type, {
            "voltage": Property(round(vm.get(name, 1.0), 5), now, "pu"),
            "inflexibleLoad": Property(round(float(inflexible_kw[i]), 3), now, "KWT"),
            "node": Property(i)}) for i, name in enumerate(names)]

    def planner_view(self) -> GridView:
        """Sensitivities at no load, by perturbing each node by 10 kW (one power flow per node)."""
        if self._view is not None:
            return self._view
        if self.net is None:
            self.start()
        nn = len(self.node_buses)
        base = self._run(np.zeros(nn))
        bus_names = tuple(base.vm_pu)
        line_names = tuple(base.loading_pct)
        v0 = np.array([base.vm_pu[b] for b in bus_names])
        rating = self._ratings_kw(line_names)
        f0 = self._flows_kw()
        sv = np.zeros((len(bus_names), nn))
        sf = np.zeros((len(line_names), nn))
        for j in range(nn):
            kw = np.zeros(nn)
            kw[j] = 10.0
            fl = self._run(kw)
            sv[:, j] = (np.array([fl.vm_pu[b] for b in bus_names]) - v0) / 10.0
            sf[:, j] = (self._flows_kw() - f0) / 10.0
        self._view = GridView(v0, sv, f0, sf, rating, bus_names, line_names)
        return self._view

    def _flows_kw(self) -> FArray:
        """Signed active power into every line (from bus) and transformer (high-voltage side), kW."""
        net = self.net
        return np.concatenate([net.res_line.p_from_mw.to_numpy(), net.res_trafo.p_hv_mw.to_numpy()]) * 1000.0

    def _ratings_kw(self, names: Sequence[str]) -> FArray:
        """Each line's (at its from bus' voltage) and transformer's rating, kVA."""
        net = self.net
        out = []
        for name in names:
            tr = net.trafo[net.trafo.name == name]
            if len(tr):
                out.append(float(tr.sn_mva.iloc[0]) * 1000.0)
                continue
            ln = net.line[net.line.name == name].iloc[0]
            vn = float(net.bus.vn_kv[ln.from_bus])
            out.append(float(np.sqrt(3) * vn * ln.max_i_ka * ln.parallel) * 1000.0)
        return np.array(out)

    def close(self) -> None:
        """Nothing to release (the network lives in memory)."""
