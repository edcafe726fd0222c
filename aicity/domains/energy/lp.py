"""The dispatch linear programme shared by the AI City MPC and the perfect-foresight oracle (HiGHS via scipy).

Variables per step: each EV job's power while it is available, each battery's charge / discharge / state of
charge, the site's net grid power ``g`` and its import ``imp = max(g, 0)``, one peak ``P``, and per job the energy
left unserved. Constraints: energy due per job (soft, heavily penalised), power balance, the transformer limit
``|g| <= limit``, ``g <= P`` with ``P`` at least the peak already reached, battery dynamics and ramp limits (soft),
and where a grid is modelled, linearised bus voltages (0.95-1.05 pu) and line loadings (<= 100 %) from power-flow
sensitivities. Where given, the batteries keep a reserve of energy at the end of each step (soft: a shortfall is
paid for). Objective: demand charge x ``P`` + energy price x import + unserved penalty + a tiny preference for early
charging, of EVs (robust to early departures) and batteries (when prices are flat, a plan re-solved every step
would otherwise put the charging off at every step) - the value of the energy stored at the horizon's end (where
given).
Duals name the constraints that bound (:attr:`Solution.binding`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class Job:
    """Energy to deliver through one charger: ``avail[k]`` is the share of step ``k`` the EV is there."""

    key: str
    avail: FArray
    energy_kwh: float
    max_kw: float
    node: int = 0
    penalty: float = 1000.0
    soft_steps: float | None = None
    """Where given, the energy is wanted within the first ``soft_steps`` steps too, each kWh later costing
    ``soft_penalty`` (it stays due, at ``penalty``, by the end of ``avail``)."""
    soft_penalty: float = 1.0


@dataclass(frozen=True, slots=True)
class Storage:
    """A battery as the LP sees it."""

    key: str
    soc_kwh: float
    capacity_kwh: float
    power_kw: float
    soc_min: float
    soc_max: float
    efficiency: float
    node: int = 0
    ramp_kw: float = float("inf")
    """Most the power may change from one step to the next (the edge's ramp limit per step)."""
    power0_kw: float = 0.0
    """The power (charge positive) in the step before the first, which the first step ramps from."""
    ramp_steps: int | None = None
    """The steps, from the first, the ramp limit holds at (None: all; 1: only the step about to be executed, from
    the battery's present power, so the edge need not clamp it)."""


@dataclass(frozen=True, slots=True)
class Network:
    """Linearised grid: ``v[:, k] = v0[:, k] + sv @ inj[:, k]`` per bus and ``flow = f0 + sf @ inj`` per line and
    transformer (signed kW, |flow| <= fmax), ``inj`` the controllable assets' kW per node (load positive); ``v0``
    and ``f0`` (buses or lines × steps) hold the forecast inflexible load's share."""

    v0: FArray
    sv: FArray
    vmin: float
    vmax: float
    f0: FArray
    sf: FArray
    fmax: FArray
    bus_names: tuple[str, ...]
    line_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One dispatch problem over ``n`` steps of ``dt_h`` hours."""

    n: int
    dt_h: float
    price: FArray
    inflexible_kw: FArray
    jobs: Sequence[Job]
    storages: Sequence[Storage] = ()
    limit_kw: float = float("inf")
    peak_floor_kw: float = 0.0
    peak_weight: float = 15.0
    early_weight: float = 1e-5
    cycle_weight: float = 1e-3
    network: Network | None = None
    stored_value: float = 0.0
    """$ per kWh the batteries hold at the horizon's end (0: energy left over is worth nothing to the plan)."""
    reserve: FArray | None = None
    """Energy (kWh above the floors, all batteries together) to keep at the end of each step (soft: each kWh short
    costs ``reserve_penalty``)."""
    reserve_penalty: float = 1.0
    ramp_penalty: float = 100.0
    """$ per kW a battery's step-to-step change exceeds its ramp limit (soft, so a battery at its state-of-charge
    limit may stop at once, as the edge lets it)."""
    peak_margin_kw: FArray | None = None
    """kW added to the net power in the peak rows only (``g + margin <= P``): the energy bought for the expected
    load, the peak held against an upper bound of it."""


@dataclass(slots=True)
class Solution:
    """The optimum: power per job and battery per step, the peak, what bound it (from the duals)."""

    ok: bool
    status: str
    rates: dict[str, FArray] = field(default_factory=dict)
    battery: dict[str, FArray] = field(default_factory=dict)
    unserved: dict[str, float] = field(default_factory=dict)
    peak_kw: float = 0.0
    grid_kw: FArray = field(default_factory=lambda: np.zeros(0))
    objective: float = 0.0
    binding: list[tuple[str, int, float]] = field(default_factory=list)
    solve_s: float = 0.0


class _Builder:
    """Sparse rows of the LP, assembled once."""

    def __init__(self) -> None:
        self.n_var = 0
        self.cost: list[float] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.ub_rows: list[tuple[list[int], list[float], float, tuple[str, int]]] = []
        self.eq_rows: list[tuple[list[int], list[float], float]] = []

    def var(self, cost: float, lo: float, hi: float) -> int:
        self.cost.append(cost)
        self.lo.append(lo)
        self.hi.append(hi)
        self.n_var += 1
        return self.n_var - 1

    def vars(self, costs: FArray, lo: FArray, hi: FArray) -> np.ndarray[Any, np.dtype[np.int64]]:
        first = self.n_var
        self.cost.extend(costs.tolist())
        self.lo.extend(lo.tolist())
        self.hi.extend(hi.tolist())
        self.n_var += len(costs)
        return np.arange(first, self.n_var)


def solve(p: Problem) -> Solution:
    """Solve ``p`` with HiGHS; a failed solve returns ``ok=False`` (callers then fall back to a safe plan)."""
    import time

    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix

    t0 = time.perf_counter()
    b = _Builder()
    n, dt = p.n, p.dt_h
    steps = np.arange(n, dtype=float)
    grid = b.vars(np.zeros(n), np.full(n, -p.limit_kw), np.full(n, p.limit_kw))
    imp = b.vars(p.price * dt, np.zeros(n), np.full(n, np.inf))
    peak = b.var(p.peak_weight, p.peak_floor_kw, np.inf)
    balance: list[tuple[list[int], list[float]]] = [([int(grid[k])], [1.0]) for k in range(n)]
    node_terms: dict[int, list[tuple[int, int, float]]] = {}  # node -> (step, var, sign)
    job_vars: list[tuple[Job, np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.int64]], int]] = []
    for job in p.jobs:
        ks = np.flatnonzero(job.avail[:n] > 0)
        cap = job.max_kw * job.avail[ks]
        xs = b.vars(p.early_weight * (steps[ks] + 1) * dt, np.zeros(len(ks)), cap)
        u = b.var(job.penalty, 0.0, max(job.energy_kwh, 0.0))
        b.ub_rows.append(([*xs.tolist(), u], [-dt] * len(ks) + [-1.0], -max(job.energy_kwh, 0.0), ("energy", -1)))
        if job.soft_steps is not None:  # energy wanted by the soft deadline: a shortfall there costs soft_penalty
            late = b.var(job.soft_penalty, 0.0, max(job.energy_kwh, 0.0))
            share = np.clip(job.soft_steps - ks, 0.0, 1.0)  # of each step's delivery, the part before it
            keep = share > 0
            b.ub_rows.append(([*xs[keep].tolist(), late], [*(-dt * share[keep]).tolist(), -1.0],
                              -max(job.energy_kwh, 0.0), ("soft", -1)))
        for k, x in zip(ks.tolist(), xs.tolist(), strict=True):
            balance[k][0].append(x)
            balance[k][1].append(-1.0)
            node_terms.setdefault(job.node, []).append((k, x, 1.0))
        job_vars.append((job, ks, xs, u))
    bat_vars: list[tuple[Storage, Any, Any, Any]] = []
    for s in p.storages:
        ch = b.vars(p.cycle_weight * dt + p.early_weight * (steps + 1) * dt, np.zeros(n), np.full(n, s.power_kw))
        dis = b.vars(np.full(n, p.cycle_weight * dt), np.zeros(n), np.full(n, s.power_kw))
        soc = b.vars(np.zeros(n), np.full(n, s.soc_min * s.capacity_kwh), np.full(n, s.soc_max * s.capacity_kwh))
        b.cost[int(soc[-1])] = -p.stored_value
        for k in range(n):
            prev_idx, prev_const = ([int(soc[k - 1])], 0.0) if k else ([], s.soc_kwh)
            b.eq_rows.append(([int(soc[k]), *prev_idx, int(ch[k]), int(dis[k])],
                              [1.0, *([-1.0] * len(prev_idx)), -s.efficiency * dt, dt / s.efficiency], prev_const))
            balance[k][0].extend([int(ch[k]), int(dis[k])])
            balance[k][1].extend([-1.0, 1.0])
            node_terms.setdefault(s.node, []).append((k, int(ch[k]), 1.0))
            node_terms.setdefault(s.node, []).append((k, int(dis[k]), -1.0))
        if np.isfinite(s.ramp_kw):  # |p_k - p_(k-1)| <= ramp + slack, p = charge - discharge
            m = n if s.ramp_steps is None else max(0, min(n, s.ramp_steps))
            slack = b.vars(np.full(m, p.ramp_penalty), np.zeros(m), np.full(m, np.inf))
            for k in range(m):
                cols = [int(ch[k]), int(dis[k])] + ([int(ch[k - 1]), int(dis[k - 1])] if k else []) + [int(slack[k])]
                vals = [1.0, -1.0] + ([-1.0, 1.0] if k else [])
                prev = 0.0 if k else s.power0_kw
                b.ub_rows.append((cols, [*vals, -1.0], s.ramp_kw + prev, ("ramp", k)))
                b.ub_rows.append((cols, [*(-v for v in vals), -1.0], s.ramp_kw - prev, ("ramp", k)))
        bat_vars.append((s, ch, dis, soc))
    for k in range(n):
        b.eq_rows.append((balance[k][0], balance[k][1], float(p.inflexible_kw[k])))
        b.ub_rows.append(([int(grid[k]), int(imp[k])], [1.0, -1.0], 0.0, ("import", k)))
        margin = float(p.peak_margin_kw[k]) if p.peak_margin_kw is not None and k < len(p.peak_margin_kw) else 0.0
        b.ub_rows.append(([int(grid[k]), peak], [1.0, -1.0], -margin, ("peak", k)))
    if p.reserve is not None and bat_vars:  # sum of soc + shortfall >= floors + reserve, the shortfall paid for
        floor = sum(s.soc_min * s.capacity_kwh for s, _, _, _ in bat_vars)
        short = b.vars(np.full(n, p.reserve_penalty), np.zeros(n), np.full(n, np.inf))
        for k in range(min(n, len(p.reserve))):
            if p.reserve[k] > 1e-9:
                cols = [int(soc[k]) for _, _, _, soc in bat_vars] + [int(short[k])]
                b.ub_rows.append((cols, [-1.0] * (len(bat_vars) + 1), -floor - float(p.reserve[k]), ("reserve", k)))
    a_ub, b_ub, tags = _matrix([(c, v) for c, v, _, _ in b.ub_rows], b.n_var, csr_matrix), \
        np.array([r[2] for r in b.ub_rows]), [r[3] for r in b.ub_rows]
    grid_tags = _GridTags(np.zeros(0, dtype=np.int64), 0, 0)
    lo, hi = np.array(b.lo), np.array(b.hi)
    keep = np.ones(len(b_ub), dtype=bool)
    if p.network is not None:
        from scipy.sparse import vstack

        cap = np.zeros(p.network.sv.shape[1])
        for job in p.jobs:
            cap[job.node] += job.max_kw
        for s in p.storages:
            cap[s.node] += s.power_kw
        block, rhs, grid_tags = _network_block(p.network, node_terms, n, b.n_var, cap)
        keep = np.concatenate([keep, _can_bind(block, rhs, lo, hi)])
        a_ub, b_ub = vstack([a_ub, block]).tocsr(), np.concatenate([b_ub, rhs])
    a_eq = _matrix([(c, v) for c, v, _ in b.eq_rows], b.n_var, csr_matrix)
    b_eq = np.array([r[2] for r in b.eq_rows])
    if not keep.all():
        a_ub, b_ub = a_ub[keep], b_ub[keep]
    res = linprog(np.array(b.cost), A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=np.column_stack([lo, hi]),
                  method="highs")
    elapsed = time.perf_counter() - t0
    if res.status != 0 or res.x is None:
        return Solution(False, str(res.message), solve_s=elapsed)
    x = res.x
    sol = Solution(True, "optimal", peak_kw=float(x[peak]), grid_kw=x[grid].copy(), objective=float(res.fun),
                   solve_s=elapsed)
    for job, ks, xs, u in job_vars:
        rate = np.zeros(n)
        rate[ks] = x[xs]
        sol.rates[job.key] = rate
        sol.unserved[job.key] = float(x[u])
    for s, ch, dis, _ in bat_vars:
        sol.battery[s.key] = x[ch] - x[dis]
    marg = np.zeros(len(keep))  # a row left out cannot bind: its dual is 0
    marg[keep] = np.asarray(res.ineqlin.marginals)
    bound = [(kind, k, float(-marg[i])) for i in np.flatnonzero(marg < -1e-7).tolist()
             for kind, k in (tags[i] if i < len(tags) else grid_tags.tag(i - len(tags)),)
             if kind not in ("import", "energy")]
    lim_m = np.asarray(res.upper.marginals)[grid]
    bound += [("transformer", int(k), float(-lim_m[k])) for k in np.flatnonzero(lim_m < -1e-7)]
    sol.binding = sorted(bound, key=lambda t: (t[1], t[0]))
    return sol


def _can_bind(a: Any, rhs: FArray, lo: FArray, hi: FArray) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The rows ``a x <= rhs`` some ``x`` within the variables' bounds could violate. The others hold wherever the
    variables are (most grid rows: a voltage or a loading the assets cannot reach at that step), so leaving them out
    changes the problem in nothing, only the solver's work (on a village day, 11,258 of 11,978 rows; HiGHS's own
    presolve finds them too, but after reading them, at 3× the time)."""
    pos, neg = a.maximum(0), a.minimum(0)
    unbounded = (pos.sign() @ np.isinf(hi).astype(float) - neg.sign() @ np.isinf(lo).astype(float)) > 0
    most = pos @ np.where(np.isinf(hi), 0.0, hi) + neg @ np.where(np.isinf(lo), 0.0, lo)
    out: np.ndarray[Any, np.dtype[np.bool_]] = unbounded | (most > rhs - 1e-9 * np.maximum(1.0, np.abs(rhs)))
    return out


@dataclass(frozen=True, slots=True)
class _GridTags:
    """What each row of the grid block constrains, worked out only for the rows that bind: at each step of ``ks``,
    ``nb`` voltage-max rows, ``nb`` voltage-min rows, then ``2 nl`` line-loading rows."""

    ks: np.ndarray[Any, np.dtype[np.int64]]
    nb: int
    nl: int

    def tag(self, row: int) -> tuple[str, int]:
        """The kind and step of the block's row ``row``."""
        i, j = divmod(row, 2 * (self.nb + self.nl))
        kind = "voltage_max" if j < self.nb else "voltage_min" if j < 2 * self.nb else "line_loading"
        return kind, int(self.ks[i])


def _network_block(net: Network, node_terms: dict[int, list[tuple[int, int, float]]], n: int, n_var: int,
                   node_cap: FArray) -> tuple[Any, FArray, _GridTags]:
    """Voltage-band and loading rows as one sparse block, for the buses each node moves most and the lines and
    transformers the controllable assets could overload (the others cannot bind)."""
    from scipy.sparse import csr_matrix, identity, kron, vstack

    nn = net.sv.shape[1]
    rows, cols, vals = [], [], []
    for node, terms in node_terms.items():
        for k, var, sign in terms:
            rows.append(node * n + k)
            cols.append(var)
            vals.append(sign)
    inj = csr_matrix((vals, (rows, cols)), shape=(nn * n, n_var))
    buses = sorted({int(np.argmax(np.abs(net.sv[:, j]))) for j in range(nn) if np.abs(net.sv[:, j]).max() > 0}
                   | {int(np.argmax(net.v0.max(axis=1))), int(np.argmin(net.v0.min(axis=1)))})
    reach = np.abs(net.f0).max(axis=1) + np.abs(net.sf) @ node_cap
    lines = [int(i) for i in np.flatnonzero(reach > net.fmax)]
    ks = np.flatnonzero(np.diff(inj.indptr).reshape(nn, n).sum(axis=0) > 0)  # the steps any asset moves
    if not ks.size:
        return csr_matrix((0, n_var)), np.zeros(0), _GridTags(ks, 0, 0)
    # every step at once: row b*n + k of kron(S, I) @ inj is S[b] @ (the injections at step k), then the rows
    # are taken step by step (v, -v, flow, -flow at each step) as _GridTags and the right-hand side list them
    nb, nl = len(buses), len(lines)
    eye = identity(n, format="csr")
    v = kron(csr_matrix(net.sv[buses]), eye, format="csr") @ inj
    f = kron(csr_matrix(net.sf[lines]), eye, format="csr") @ inj
    vi = np.arange(nb)[None, :] * n + ks[:, None]
    fi = np.arange(nl)[None, :] * n + ks[:, None]
    order = np.concatenate([vi, vi + nb * n, fi + 2 * nb * n, fi + (2 * nb + nl) * n], axis=1).ravel()
    block = vstack([v, -v, f, -f], format="csr")[order]
    v0, f0, fmax = net.v0[buses][:, ks].T, net.f0[lines][:, ks].T, net.fmax[lines]
    rhs = np.concatenate([net.vmax - v0, v0 - net.vmin, fmax - f0, fmax + f0], axis=1).ravel()
    return block, rhs, _GridTags(ks, nb, nl)


def _matrix(rows: list[tuple[list[int], list[float]]], n_var: int, csr: Any) -> Any:
    data: list[float] = []
    cols: list[int] = []
    ptr = [0]
    for c, v in rows:
        cols.extend(c)
        data.extend(v)
        ptr.append(len(cols))
    return csr((data, cols, ptr), shape=(len(rows), n_var))
