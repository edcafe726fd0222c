"""Station placement and relocation by expected coverage: MEXCLP (Daskin 1983) and DMEXCLP (Jagtenberg et al. 2015).

A zone ``z`` with ``k`` available ambulances within the coverage radius is covered with probability
``1 - q**k`` (each ambulance busy with probability ``q``); MEXCLP places ambulances to maximise the
demand-weighted expected coverage. DMEXCLP, whenever an ambulance frees up, sends it to the station that adds
the most expected coverage given where the other available ambulances are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np


def coverage_matrix(times: Mapping[str, Mapping[str, float]], sites: Sequence[str], zones: Mapping[str, str],
                    radius_s: float) -> dict[str, set[str]]:
    """Zones each site covers: free-flow time from the site to the zone's centre edge within ``radius_s``."""
    return {s: {z for z, centre in zones.items() if times[s].get(centre, np.inf) <= radius_s} for s in sites}


def demand_covered(sites: Iterable[str], covers: Mapping[str, set[str]], demand: Mapping[str, float]) -> float:
    """Share of ``demand`` in zones some station in ``sites`` covers (the edge's coverage-floor measure)."""
    covered: set[str] = set()
    for site in sites:
        covered |= covers.get(site, set())
    total = sum(demand.values()) or 1.0
    return sum(d for z, d in demand.items() if z in covered) / total


def strips_floor(before: float, after: float, floor: float) -> bool:
    """Would a move taking coverage from ``before`` to ``after`` breach ``floor`` (below it, and lower than now)?"""
    return after < floor - 1e-12 and after < before - 1e-12


def expected_coverage(counts: Mapping[str, int], demand: Mapping[str, float], q: float) -> float:
    """Demand-weighted expected coverage: sum over zones of ``d_z (1 - q**k_z)``."""
    return float(sum(d * (1.0 - q ** counts.get(z, 0)) for z, d in demand.items()))


def zone_counts(positions: Sequence[str], covers: Mapping[str, set[str]]) -> dict[str, int]:
    """How many of the ambulances at ``positions`` (sites) cover each zone."""
    out: dict[str, int] = {}
    for s in positions:
        for z in covers.get(s, ()):
            out[z] = out.get(z, 0) + 1
    return out


def place(sites: Sequence[str], covers: Mapping[str, set[str]], demand: Mapping[str, float], n: int,
          q: float) -> list[str]:
    """MEXCLP placement of ``n`` ambulances, exact for these sizes: a MIP solved by HiGHS (scipy.optimize.milp)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    zones = sorted(demand)
    ns, nz = len(sites), len(zones)
    # variables: x_s (ambulances at site s, integer), y_zk (zone z covered by at least k ambulances, binary)
    nv = ns + nz * n
    c = np.zeros(nv)
    for zi, z in enumerate(zones):
        for k in range(n):
            c[ns + zi * n + k] = -demand[z] * (1 - q) * q**k
    rows, lo, hi = [], [], []
    for zi, z in enumerate(zones):  # sum_k y_zk <= sum_{s covers z} x_s
        row = np.zeros(nv)
        row[ns + zi * n: ns + zi * n + n] = 1.0
        for si, s in enumerate(sites):
            if z in covers[s]:
                row[si] -= 1.0
        rows.append(row)
        lo.append(-np.inf)
        hi.append(0.0)
    row = np.zeros(nv)
    row[:ns] = 1.0
    rows.append(row)
    lo.append(n)
    hi.append(n)
    tie = np.arange(ns) * 1e-9  # deterministic ties: prefer earlier sites
    c[:ns] += tie
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=np.ones(nv),
               bounds=Bounds(np.zeros(nv), np.concatenate([np.full(ns, n), np.ones(nz * n)])))
    if res.x is None:  # cannot happen with these constraints; fall back to greedy
        return greedy(sites, covers, demand, n, q)
    out: list[str] = []
    for si, s in enumerate(sites):
        out.extend([s] * round(res.x[si]))
    return out


def greedy(sites: Sequence[str], covers: Mapping[str, set[str]], demand: Mapping[str, float], n: int,
           q: float) -> list[str]:
    """Greedy MEXCLP (add the ambulance with the largest marginal coverage, ties to the first site)."""
    chosen: list[str] = []
    for _ in range(n):
        best = max(sites, key=lambda s: (expected_coverage(zone_counts([*chosen, s], covers), demand, q),
                                         -sites.index(s)))
        chosen.append(best)
    return chosen


def dmexclp_choice(others: Sequence[str], sites: Sequence[str], covers: Mapping[str, set[str]],
                   demand: Mapping[str, float], q: float) -> list[tuple[str, float]]:
    """Every site with the expected coverage reached by adding one ambulance there, best first (ties by name)."""
    scored = [(s, expected_coverage(zone_counts([*others, s], covers), demand, q)) for s in sites]
    return sorted(scored, key=lambda p: (-p[1], p[0]))


def expected_response(positions: Sequence[str], times: Mapping[str, Mapping[str, float]],
                      centres: Mapping[str, str], demand: Mapping[str, float], q: float) -> float:
    """Demand-weighted expected travel seconds with ambulances at ``positions`` (sites), each busy with probability
    ``q``: the ``k``-th closest answers with probability ``(1 - q) q**(k-1)``; when all are busy, the farthest
    (a call then waits for a unit, wherever it frees). The mean-response analogue of :func:`expected_coverage`."""
    if not positions:
        return float("inf")
    total = 0.0
    for z, d in demand.items():
        ts = sorted(times[p].get(centres[z], np.inf) for p in positions)
        total += d * (sum((1.0 - q) * q**k * t for k, t in enumerate(ts)) + q ** len(ts) * ts[-1])
    return float(total / (sum(demand.values()) or 1.0))


def response_choice(others: Sequence[str], sites: Sequence[str], times: Mapping[str, Mapping[str, float]],
                    centres: Mapping[str, str], demand: Mapping[str, float], q: float) -> list[tuple[str, float]]:
    """Every site with the expected travel reached by adding one ambulance there, best (lowest) first."""
    scored = [(s, expected_response([*others, s], times, centres, demand, q)) for s in sites]
    return sorted(scored, key=lambda p: (p[1], p[0]))
