"""What-if: candidate responses to an event, each run on a copy of the city from the current state, ranked.

A copy of the city at time ``at_s`` is made by replaying it: the same city, options, seed and mode through the
same loop up to ``at_s`` — every twin is deterministic given its seed and the actions the loop applied, so the
copy is the live state at ``at_s``. Each copy runs in its own process (libsumo holds one simulation per
process), so a what-if never touches the live twin. At ``at_s`` the copy applies the response's actions through
the twins' actuator edges (which keep their hard limits), then runs ``horizon_s`` more under the mode's
controllers. Responses come back ranked by the KPIs a domain declares for ranking (``DomainMeta.ranking``,
highest priority first), else by the headline KPIs of the first part, with every part's KPIs.

Limit: replay reproduces a run with no outside inputs (approvals, MQTT devices); a live control room with those
would copy the state with SUMO's ``saveState`` instead — not built.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aicity.core.domain import ProposedAction
from aicity.core.errors import UserError


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    """A named candidate response: actions per domain, applied at the what-if time."""

    name: str
    actions: tuple[tuple[str, ProposedAction], ...] = ()

    @classmethod
    def parse(cls, name: str, data: Any) -> Response:
        """A response from a JSON list of ``{"domain", "target", "action", "params"}`` (one-line errors)."""
        if not isinstance(data, list):
            raise UserError(f"response {name!r}: a list of actions is expected")
        actions: list[tuple[str, ProposedAction]] = []
        for i, item in enumerate(data):
            if not isinstance(item, Mapping) or not all(isinstance(item.get(k), str) for k in ("domain", "target",
                                                                                             "action")):
                raise UserError(f"response {name!r} action {i}: needs string domain, target and action")
            params = item.get("params", {})
            if not isinstance(params, Mapping):
                raise UserError(f"response {name!r} action {i}: params must be an object")
            actions.append((str(item["domain"]), ProposedAction(str(item["target"]), str(item["action"]),
                                                                dict(params), planner=f"whatif:{name}",
                                                                action_type=str(item.get("action_type", "default")))))
        return cls(name, tuple(actions))


@dataclasses.dataclass(frozen=True, slots=True)
class WhatIf:
    """The question: which city (name and options), seed and mode, from when, how far ahead."""

    city: str
    options: Mapping[str, Any]
    seed: int
    mode: str
    at_s: float
    horizon_s: float


def run_response(q: WhatIf, response: Response) -> dict[str, Any]:
    """One candidate on its own copy of the city (call it in a fresh process: it opens the simulators)."""
    from aicity.runner import bench_run, load_city

    t0 = time.perf_counter()
    city = load_city(q.city, dict(q.options), q.at_s + q.horizon_s)
    outcomes: list[dict[str, Any]] = []

    def apply(loop: Any) -> None:
        twins = {p.name: p.twin for p in loop.parts}
        for domain, action in response.actions:
            twin = twins.get(domain)
            if twin is None:
                outcomes.append({"domain": domain, "target": action.target, "status": "refused",
                                 "reason": f"no part {domain!r} in this city"})
                continue
            out = twin.actuate(action)
            outcomes.append({"domain": domain, "target": action.target, "status": out.status,
                             "reason": out.reason, "bound_by": list(out.bound_by)})

    ep = bench_run(city, mode=q.mode, seed=q.seed, at_s=q.at_s, hook=apply)
    kpis = {f"{d}.{k}": v for d, res in ep.results.items() for k, v in res.kpis.items()}
    return {"response": response.name, "actions": outcomes, "kpis": kpis, "wall_s": round(time.perf_counter() - t0, 2)}


def ranking_keys(city: Any) -> list[tuple[str, bool]]:
    """``(domain.kpi, lower_is_better)`` to rank responses by: a part's declared ranking, else the first part's
    headline KPIs."""
    from aicity.core.meta import Better

    for part in city.parts:
        meta = part.domain.meta
        if meta.ranking:
            out = []
            for k in meta.ranking:
                kpi = meta.kpi(k)
                out.append((f"{part.name}.{k}", kpi is None or kpi.better is Better.LOWER))
            return out
    first = city.parts[0]
    return [(f"{first.name}.{k.name}", k.better is Better.LOWER) for k in first.domain.meta.headline()]


def rank(rows: Sequence[dict[str, Any]], keys: Sequence[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Rows sorted lexicographically on ``keys`` (missing or non-finite values last), with their rank."""
    def key(row: dict[str, Any]) -> tuple[float, ...]:
        out = []
        for name, lower in keys:
            v = row["kpis"].get(name)
            ok = isinstance(v, int | float) and math.isfinite(v)
            out.append((float(v) if lower else -float(v)) if ok else math.inf)
        return tuple(out)

    ranked = sorted(rows, key=key)
    return [{"rank": i + 1, **r} for i, r in enumerate(ranked)]


def what_if(q: WhatIf, responses: Sequence[Response], *, jobs: int = 2) -> dict[str, Any]:
    """Every response on its own copy (worker processes), ranked; the live run is never touched."""
    from aicity.runner import load_city
    from aicity.workers import run_episodes

    if not responses:
        raise UserError("what-if needs at least one response")
    names = [r.name for r in responses]
    if len(set(names)) != len(names):
        raise UserError(f"response names must differ: {', '.join(names)}")
    for label, v in (("--at", q.at_s), ("--horizon", q.horizon_s)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
            raise UserError(f"{label} must be a finite number of seconds ≥ 0, got {v!r}")
    city = load_city(q.city, dict(q.options), None)  # fail fast on a bad city or options
    if q.at_s + q.horizon_s > city.end_s - city.begin_s + 1e-9:
        raise UserError(f"--at {q.at_s:g} s plus --horizon {q.horizon_s:g} s runs past the end of {city.name}'s "
                        f"window ({city.end_s - city.begin_s:g} s)")
    rows = run_episodes(_response, [(q, r) for r in responses], jobs=jobs)
    keys = ranking_keys(city)
    return {"city": city.name, "seed": q.seed, "mode": q.mode, "at_s": q.at_s, "horizon_s": q.horizon_s,
            "ranked_by": [k for k, _ in keys], "responses": rank(rows, keys)}


def _response(task: tuple[WhatIf, Response]) -> dict[str, Any]:
    return run_response(*task)
