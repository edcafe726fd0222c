"""Contract checks every domain plug-in must pass, in the way river checks every estimator.

:func:`yield_checks` yields small named checks; the test suite runs every discovered domain × check. A check
takes the domain and raises :class:`AssertionError` naming what is wrong. Checks that run the twin use the
domain's declared ``meta.test_scenario`` for ``meta.test_duration_s`` seconds.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any

from aicity.core.domain import Domain, RunServices, Scenario, Snapshot, Twin
from aicity.core.entity import Entity
from aicity.core.errors import UserError
from aicity.core.meta import Better

Check = Callable[[Domain], None]
STATUSES = ("applied", "clamped", "refused")


def _test_scenario(domain: Domain) -> Scenario:
    scen = domain.resolve(domain.meta.test_scenario)
    assert scen is not None, f"{domain.name}: meta.test_scenario {domain.meta.test_scenario!r} does not resolve"
    end = min(scen.end_s, scen.begin_s + domain.meta.test_duration_s)
    return dataclasses.replace(scen, end_s=end)


def _observe(twin: Twin) -> list[Entity]:
    out = []
    for item in twin.observe():
        out.append(item if isinstance(item, Entity) else Entity.from_ngsi(item))
    return out


def _snapshot(twin: Twin) -> Snapshot:
    from datetime import UTC, datetime, timedelta

    now = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=twin.elapsed_s())
    return Snapshot(now, twin.elapsed_s(), {e.id: e for e in _observe(twin)})


def _warm(domain: Domain, mode: str = "ai", steps: int = 6) -> tuple[Twin, Scenario, Snapshot, dict[str, Any]]:
    """A started twin of the test scenario, a few decision intervals in, with the mode's forecasts learned."""
    scen = _test_scenario(domain)
    twin = domain.open_twin(scen, seed=1, mode=mode, services=RunServices())
    twin.start()
    providers = domain.forecasters(scen, mode)
    forecasts: dict[str, Any] = {}
    snap = _snapshot(twin)
    for _ in range(steps):
        if twin.done():
            break
        twin.advance(twin.decision_interval_s)
        snap = _snapshot(twin)
        for p in providers:
            p.learn(snap)
            forecasts.update(p.forecast(snap))
    return twin, scen, snap, forecasts


def check_metadata(domain: Domain) -> None:
    """KPIs, options and equity groups are declared consistently; the test scenario resolves."""
    meta = domain.meta
    names = [k.name for k in meta.kpis]
    assert names, f"{domain.name}: declares no KPI"
    assert len(set(names)) == len(names), f"{domain.name}: duplicate KPI names"
    assert any(k.headline for k in meta.kpis), f"{domain.name}: no headline KPI"
    for k in meta.kpis:
        assert k.unit, f"{domain.name}: KPI {k.name} has no unit"
        assert isinstance(k.better, Better), f"{domain.name}: KPI {k.name} has no direction"
    for g in meta.equity:
        assert meta.kpi(g.kpi) is not None, f"{domain.name}: equity group {g.dimension} names unknown KPI {g.kpi}"
    opts = [o.name for o in meta.options]
    assert len(set(opts)) == len(opts), f"{domain.name}: duplicate option names"
    assert meta.action_types or meta.coordinator, f"{domain.name}: declares no action type"
    assert meta.policy is None or meta.policy.is_file(), f"{domain.name}: policy file {meta.policy} missing"
    _test_scenario(domain)


def check_options_refuse_bad_values(domain: Domain) -> None:
    """Every option takes its default; numeric options refuse NaN, infinities and wrong types."""
    for o in domain.meta.options:
        if o.default is not None:
            o.check(o.default)
        if o.kind in (int, float) and o.parse is None:
            for bad in (math.nan, math.inf, -math.inf, "ten", True):
                try:
                    o.check(bad)
                except UserError:
                    continue
                raise AssertionError(f"{domain.name}: option {o.name} accepted {bad!r}")


def check_scenario_round_trip(domain: Domain) -> None:
    """Every built-in scenario resolves by its name to itself; an unknown name resolves to None."""
    for scen in domain.scenarios():
        again = domain.resolve(scen.name)
        assert again is not None, f"{domain.name}: scenario {scen.name} does not resolve"
        assert (again.name, again.domain, again.begin_s, again.end_s) == (
            scen.name, scen.domain, scen.begin_s, scen.end_s), f"{domain.name}: {scen.name} round trip differs"
        assert scen.domain == domain.name, f"{domain.name}: scenario {scen.name} names domain {scen.domain}"
        assert scen.end_s > scen.begin_s, f"{domain.name}: scenario {scen.name} has an empty window"
    assert domain.resolve("no-such-scenario-xyz") is None, f"{domain.name}: resolves an unknown name"


def check_observe_valid_entities(domain: Domain) -> None:
    """``observe()`` returns valid NGSI-LD entities of the declared types."""
    twin, _, snap, _ = _warm(domain, steps=2)
    try:
        assert snap.entities, f"{domain.name}: observe() returned nothing"
        declared = set(domain.meta.entity_types)
        for ent in snap.entities.values():
            Entity.from_ngsi(ent.to_ngsi())  # validates
            assert not declared or ent.type in declared, f"{domain.name}: undeclared entity type {ent.type}"
    finally:
        twin.close()


def check_actuate_answers_with_limits(domain: Domain) -> None:
    """``actuate()`` answers applied, clamped or refused; a clamp or refusal names the limits that bound it."""
    twin, scen, snap, forecasts = _warm(domain)
    try:
        proposals = [p for planner in domain.planners(scen, "ai") for p in planner(snap, forecasts)]
        assert proposals, f"{domain.name}: the AI planners proposed nothing on the test scenario"
        for proposal in proposals:
            outcome = twin.actuate(proposal)
            assert outcome.status in STATUSES, f"{domain.name}: actuate() answered {outcome.status!r}"
            if outcome.status != "applied":
                assert outcome.bound_by, f"{domain.name}: {outcome.status} without the limits that bound it"
        bogus = dataclasses.replace(proposals[0], target="urn:ngsi-ld:Nothing:no-such-target")
        outcome = twin.actuate(bogus)
        assert outcome.status == "refused" and outcome.bound_by, f"{domain.name}: actuated an unknown target"
    finally:
        twin.close()


def check_safe_state_idempotent(domain: Domain) -> None:
    """``safe_state()`` twice leaves the twin as once does."""
    twin, _, _, _ = _warm(domain, steps=2)
    try:
        twin.safe_state()
        once = {e.id: e.to_ngsi() for e in _observe(twin)}
        twin.safe_state()
        twice = {e.id: e.to_ngsi() for e in _observe(twin)}
        assert once == twice, f"{domain.name}: a second safe_state() changed what the sensors report"
    finally:
        twin.close()


def check_planners_pure(domain: Domain) -> None:
    """Planners are deterministic for one snapshot and never mutate it."""
    twin, scen, snap, forecasts = _warm(domain)
    try:
        before = {k: e.to_ngsi() for k, e in snap.entities.items()}
        fc_before = copy.deepcopy(forecasts)
        for planner in domain.planners(scen, "ai"):
            first = planner(snap, forecasts)
            second = planner(snap, forecasts)
            assert first == second, f"{domain.name}: planner {getattr(planner, '__name__', planner)} is not " \
                                    "deterministic"
        assert {k: e.to_ngsi() for k, e in snap.entities.items()} == before, f"{domain.name}: a planner mutated " \
                                                                             "the snapshot"
        assert forecasts == fc_before, f"{domain.name}: a planner mutated the forecasts"
    finally:
        twin.close()


def check_close_reports_declared_kpis(domain: Domain) -> None:
    """``close()`` returns a result whose KPIs are exactly the declared ones, each a finite number or NaN (nothing
    to measure in the run, e.g. no call: undefined, not zero), never an infinity."""
    for mode in ("smart", "ai"):
        twin, _, _, _ = _warm(domain, mode=mode, steps=3)
        result = twin.close()
        declared = {k.name for k in domain.meta.kpis}
        assert set(result.kpis) == declared, (f"{domain.name} ({mode}): KPIs differ from the declared ones: "
                                              f"extra {sorted(set(result.kpis) - declared)}, "
                                              f"missing {sorted(declared - set(result.kpis))}")
        for k, v in result.kpis.items():
            assert isinstance(v, int | float) and not isinstance(v, bool) and not math.isinf(v), (
                f"{domain.name}: KPI {k} = {v!r}")


CHECKS: tuple[Check, ...] = (
    check_metadata, check_options_refuse_bad_values, check_scenario_round_trip, check_observe_valid_entities,
    check_actuate_answers_with_limits, check_safe_state_idempotent, check_planners_pure,
    check_close_reports_declared_kpis,
)


STATIC_CHECKS: tuple[Check, ...] = (check_metadata, check_options_refuse_bad_values, check_scenario_round_trip)


def yield_checks(domain: Domain) -> Iterator[Check]:
    """The checks that apply to ``domain``: all of them, or the static ones for a coordinator (its twin only
    runs on top of the other domains' twins, which the city tests drive)."""
    yield from (STATIC_CHECKS if domain.meta.coordinator else CHECKS)
