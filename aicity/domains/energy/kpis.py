"""The energy domain's KPIs: what a twin accumulates step by step (:class:`Ledger`) and the declared KPIs,
per-group delivered shares and time series it reports (:func:`result`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aicity.core.domain import DomainResult
from aicity.domains.energy.const import VMAX, VMIN
from aicity.domains.energy.data import Session
from aicity.domains.energy.site import Site


@dataclass(frozen=True, slots=True)
class Flow:
    """One power flow's outcome: bus voltages (pu), loadings of lines and transformers (%), by name, and the
    transformers' loadings alone."""

    vm_pu: Mapping[str, float]
    loading_pct: Mapping[str, float]
    converged: bool = True
    transformers: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Ledger:
    """Running totals of one twin run."""

    site: Site
    begin_step: int
    peak_kw: float = 0.0
    cost: float = 0.0
    co2: float = 0.0
    imported: float = 0.0
    ev_kwh: float = 0.0
    throughput: float = 0.0
    v_viol: int = 0
    v_worst: float = 0.0
    l_viol: int = 0
    l_worst: float = 0.0
    pf_failed: int = 0
    v_min: float = 1.0
    v_max: float = 1.0
    delivered: float = 0.0
    demand: float = 0.0
    sessions: int = 0
    overload_min: float = 0.0
    unserved: float = 0.0
    critical_unserved: float = 0.0
    ev_unserved: bool = True
    """Whether EV energy requested but not delivered counts as unserved (False where only loads cut off count)."""
    groups: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def step(self, ks: int, t_s: float, grid_kw: float, ev_kw: float, bat_kw: float, flow: Flow | None,
             socs: Sequence[float]) -> None:
        """Account one step of ``site.step_s`` seconds (``ks`` from the epoch, ``t_s`` elapsed at its start)."""
        dt_h = self.site.dt_h
        imp = max(grid_kw, 0.0)
        self.peak_kw = max(self.peak_kw, grid_kw)
        self.imported += imp * dt_h
        self.cost += imp * dt_h * float(self.site.price[ks])
        self.co2 += imp * dt_h * float(self.site.carbon[ks])
        self.ev_kwh += ev_kw * dt_h
        self.throughput += abs(bat_kw) * dt_h
        loading = 100.0 * abs(grid_kw) / self.site.limit_kw
        if flow is not None:
            if not flow.converged:
                self.pf_failed += 1
            for v in flow.vm_pu.values():
                dev = max(VMIN - v, v - VMAX, 0.0)
                self.v_viol += dev > 1e-9
                self.v_worst = max(self.v_worst, dev)
            if flow.vm_pu:
                self.v_min = min(self.v_min, *flow.vm_pu.values())
                self.v_max = max(self.v_max, *flow.vm_pu.values())
                self._point("voltage_min_pu", t_s, min(flow.vm_pu.values()))
                self._point("voltage_max_pu", t_s, max(flow.vm_pu.values()))
            pcts = list(flow.loading_pct.values())
            self.l_viol += sum(p > 100.0 + 1e-6 for p in pcts)
            trafo = max(flow.transformers.values(), default=loading)
            self.overload_min += self.site.step_s / 60.0 if trafo > 100.0 + 1e-6 else 0.0
            loading = max([loading, *pcts])
        else:
            self.l_viol += loading > 100.0 + 1e-6
            self.overload_min += self.site.step_s / 60.0 if loading > 100.0 + 1e-6 else 0.0
        self.l_worst = max(self.l_worst, loading)
        self._point("site_power_kw", t_s, grid_kw)
        self._point("peak_kw", t_s, self.peak_kw)
        self._point("ev_power_kw", t_s, ev_kw)
        if socs:
            self._point("battery_soc_kwh", t_s, sum(socs))

    def _point(self, name: str, t: float, v: float) -> None:
        self.series.setdefault(name, []).append((t, round(v, 4)))

    def session_done(self, s: Session, delivered: float, demand: float, group: str, district: str) -> None:
        """Score one session: delivered (capped at its demand) against its demand, per group."""
        got = min(delivered, demand)
        self.delivered += got
        self.demand += demand
        self.sessions += 1
        user = "app_user" if s.claimed else "no_app"
        for dim, g in (("charger_group", group), ("user_group", user), ("district", district)):
            tot = self.groups.setdefault(dim, {}).setdefault(g, [0.0, 0.0])
            tot[0] += got
            tot[1] += demand


def result(ledger: Ledger, site: Site, oracle: Mapping[str, float] | None) -> DomainResult:
    """The declared KPIs (see :mod:`.meta`), delivered share per group, series, counts and the oracle."""
    frac = ledger.delivered / ledger.demand if ledger.demand > 0 else 1.0
    kpis = {
        "peak_kw": ledger.peak_kw,
        "energy_cost": ledger.cost,
        "demand_cost": ledger.peak_kw * site.demand_charge,
        "bill": ledger.cost + ledger.peak_kw * site.demand_charge,
        "co2_kg": ledger.co2,
        "delivered_frac": frac,
        "unserved_kwh": (max(0.0, ledger.demand - ledger.delivered) if ledger.ev_unserved else 0.0) + ledger.unserved,
        "critical_unserved_kwh": ledger.critical_unserved,
        "transformer_overload_min": ledger.overload_min,
        "voltage_violations": float(ledger.v_viol),
        "voltage_worst_pu": ledger.v_worst,
        "loading_violations": float(ledger.l_viol),
        "loading_worst_pct": ledger.l_worst,
        "battery_throughput_kwh": ledger.throughput,
    }
    groups = {dim: {g: (v[0] / v[1] if v[1] > 0 else 1.0) for g, v in sorted(per.items())}
              for dim, per in ledger.groups.items()}
    counts: dict[str, Any] = {"sessions": ledger.sessions, "ev_energy_kwh": round(ledger.ev_kwh, 3),
                              "imported_kwh": round(ledger.imported, 3), "power_flow_failures": ledger.pf_failed}
    extra: dict[str, Any] = {"counts": counts}
    if oracle is not None:
        extra["oracle"] = dict(oracle)
        counts.update({f"oracle_{k}": round(v, 3) for k, v in oracle.items()})
    reference = {k: float(v) for k, v in (oracle or {}).items() if k in kpis}
    return DomainResult({k: float(v) for k, v in kpis.items()}, groups, ledger.series, extra, reference,
                        "oracle (perfect foresight)" if reference else "")


def gap_closed(baseline: float, controller: float, oracle: float) -> float | None:
    """``(baseline − controller) / (baseline − oracle)``: 1 = as good as the oracle, 0 = no better than the
    baseline; None when the oracle is no better than the baseline."""
    span = baseline - oracle
    if abs(span) < 1e-9:
        return None
    return (baseline - controller) / span
