"""The ``feeders-<K>`` city as districts: its K feeders split into D districts ``d1``..``dD`` (D divides K), each
running its own feeders' LV grids; the shared substation is owned by ``d1``.

What crosses, every decision interval: each other district sends the owner its feeders' imports over the step
just simulated (``kind="power_flow"``, ``via="substation"``: kW and kvar per feeder); the owner's twin publishes
the substation from the latest imports and sends its state back to every district (``kind="substation_state"``,
via ``substation>dJ``), whose twins publish it as a local copy (``urn:ngsi-ld:Transformer:substation.dJ``, as a
utility's SCADA would). A malformed crossing is returned as a ``RejectedInput`` (dead-lettered, never dropped).

**What differs from one process.** The owner's substation entity — the one the whole-city orchestration stage reads
for every proposal's ``uses`` of ``…:substation#headroom`` — equals the one-process entity at every step (the
imports of step t reach the owner before it senses at step t+1, and it sums them feeder by feeder in the same
order). The other districts' local copies lag one decision interval behind it (the owner's state of step t arrives
at step t+1), and before the first exchange they carry the rating only. No controller reads the copies' loading:
each district's MPC plans its feeders within their firm share of the substation's published rating (``rating × 0.9 /
K`` per feeder) and its batteries hold each feeder's live import under ``rating × 0.95 / K`` (see
:mod:`.feeder_control`; both from the rating and feeder count every copy carries, and the feeder's own meters), and
the stage enforces the live headroom for the whole city. So, for the same seed, the merged KPIs equal the
one-process run's (the tests assert it to 1e-6 relative); what differs is the copies' values in each district's
store, the districts' stores and ledgers themselves, and the accuracy guard, which in one process demotes all
feeders and as districts only the district whose forecasts fall behind. If a district's report were lost, the owner
would sum that district's last import instead.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from aicity.core.capabilities import DistrictScenario
from aicity.core.domain import DomainResult, Scenario
from aicity.core.errors import UserError
from aicity.domains.energy.feeders import OWNER, VIA, district_name, layout_of

SUMMED = ("energy_cost", "co2_kg", "unserved_kwh", "critical_unserved_kwh", "transformer_overload_min",
          "voltage_violations", "loading_violations", "battery_throughput_kwh")
WORST = ("voltage_worst_pu", "loading_worst_pct")


def partition(scenario: Scenario, districts: int) -> list[DistrictScenario]:
    """``feeders-K`` as ``districts`` districts (a number dividing K), or a :class:`UserError`."""
    layout = layout_of(scenario.name)
    if layout is None or layout.here is not None:
        raise UserError(f"scenario {scenario.name!r} cannot be partitioned: only feeders-<K> energy scenarios can")
    k = layout.k
    if isinstance(districts, bool) or not isinstance(districts, int) or districts < 1 or k % districts:
        raise UserError(f"{scenario.name} splits into a number of districts that divides {k}, not {districts!r}")
    out = []
    for j in range(districts):
        name = district_name(j)
        others = [district_name(i) for i in range(districts) if i != j]
        borders = {f"{VIA}>{d}": d for d in others} if name == OWNER else ({VIA: OWNER} if others else {})
        scen = Scenario(f"{scenario.name}.{name}of{districts}", scenario.domain,
                        f"district {name} of {scenario.name} ({k // districts} feeder(s))", scenario.begin_s,
                        scenario.end_s, path=scenario.path, params=dict(scenario.params))
        out.append(DistrictScenario(name, scen, borders))
    return out


def merge_results(results: Mapping[str, DomainResult]) -> DomainResult:
    """The whole city's result from its districts' (each carrying its feeders' raw figures)."""
    if not results:
        raise UserError("merge_results needs the result of at least one district")
    raw: dict[str, dict[str, Any]] = {}
    for d, r in results.items():
        feeders = r.extra.get("feeders")
        if not isinstance(feeders, Mapping):
            raise UserError(f"district result {d} carries no feeders: not from a feeders twin")
        raw.update(feeders)
    return combine(raw, "city", sorted(results, key=_order))


def combine(raw: Mapping[str, Mapping[str, Any]], where: str, merged: list[str] | None = None) -> DomainResult:
    """One result over feeders' raw figures: energies and violations summed, delivered share weighted by
    requested energy, ``peak_kw`` the substation's (max over steps of the summed import), its overloads counted
    with the feeders' transformers'."""
    names = sorted(raw, key=_order)
    feeders = [raw[f] for f in names]
    rating = float(feeders[0]["rating_kva"])
    step_s = float(feeders[0]["step_s"])
    p: dict[float, float] = defaultdict(float)
    q: dict[float, float] = defaultdict(float)
    for fd in feeders:  # feeder order: the same floats in every split
        for t, pk, qk in fd["imports"]:
            p[float(t)] += float(pk)
            q[float(t)] += float(qk)
    times = sorted(p)
    s = {t: math.hypot(p[t], q[t]) for t in times}
    peak = max([0.0, *p.values()])
    over = sum(1 for t in times if s[t] > rating + 1e-6)
    delivered = sum(float(fd["delivered_kwh"]) for fd in feeders)
    demand = sum(float(fd["demand_kwh"]) for fd in feeders)
    charge = float(feeders[0]["demand_charge"])
    kpis = {k: sum(float(fd["kpis"][k]) for fd in feeders) for k in SUMMED}
    kpis.update({k: max(float(fd["kpis"][k]) for fd in feeders) for k in WORST})
    worst_sub = max([0.0, *(100.0 * v / rating for v in s.values())])
    kpis["transformer_overload_min"] += over * step_s / 60.0
    kpis["loading_violations"] += over
    kpis["loading_worst_pct"] = max(kpis["loading_worst_pct"], worst_sub)
    kpis.update(peak_kw=peak, demand_cost=peak * charge, bill=kpis["energy_cost"] + peak * charge,
                delivered_frac=delivered / demand if demand > 0 else 1.0)
    totals: dict[str, dict[str, list[float]]] = {}
    for f, fd in zip(names, feeders, strict=True):
        for dim, per in fd["groups"].items():
            for g, (got, want) in per.items():
                tot = totals.setdefault(dim, {}).setdefault(g, [0.0, 0.0])
                tot[0] += float(got)
                tot[1] += float(want)
        totals.setdefault("feeder", {})[f] = [float(fd["delivered_kwh"]), float(fd["demand_kwh"])]
    groups = {dim: {g: (v[0] / v[1] if v[1] > 0 else 1.0) for g, v in sorted(per.items())}
              for dim, per in totals.items()}
    series = {"substation_kw": [(t, round(p[t], 4)) for t in times],
              "substation_kva": [(t, round(s[t], 4)) for t in times]}
    running = 0.0
    series["peak_kw"] = [(t, round(running := max(running, p[t]), 4)) for t in times]
    for name, how in (("site_power_kw", sum), ("ev_power_kw", sum), ("battery_soc_kwh", sum),
                      ("voltage_min_pu", min), ("voltage_max_pu", max)):
        by: dict[float, list[float]] = defaultdict(list)
        for fd in feeders:
            for t, v in fd["series"].get(name, []):
                by[float(t)].append(float(v))
        series[name] = [(t, round(how(v), 4)) for t, v in sorted(by.items())]
    counts: dict[str, float] = defaultdict(float)
    for fd in feeders:
        for k, v in fd["counts"].items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                counts[k] += v
    counts["substation_overload_steps"] = over
    extra: dict[str, Any] = {
        "counts": dict(counts), "where": where, "districts_merged": merged or [],
        "substation": {"rating_kva": rating, "peak_kw": peak, "peak_kva": max([0.0, *s.values()]),
                       "overload_min": over * step_s / 60.0, "owner": OWNER},
        "feeders": {f: dict(fd) for f, fd in zip(names, feeders, strict=True)}}
    return DomainResult({k: float(v) for k, v in kpis.items()}, groups, series, extra)


def _order(name: str) -> tuple[int, str]:
    digits = name[1:]
    return (int(digits), name) if digits.isdigit() else (1 << 30, name)
