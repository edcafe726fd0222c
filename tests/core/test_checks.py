"""Every discovered domain × every contract check (river-style): a domain that breaks its contract fails here."""

from __future__ import annotations

import dataclasses

import pytest

from aicity.core.checks import CHECKS, STATIC_CHECKS, check_close_reports_declared_kpis, check_metadata, yield_checks
from aicity.core.domain import Domain, discover
from aicity.core.meta import KPI, Better

DOMAINS = discover()
CASES = [(name, check) for name, dom in sorted(DOMAINS.items()) for check in yield_checks(dom)]


@pytest.mark.parametrize(("name", "check"), CASES, ids=[f"{n}-{c.__name__}" for n, c in CASES])
def test_domain_contract(name: str, check) -> None:
    check(DOMAINS[name])


def test_every_check_runs_for_every_domain() -> None:
    want = sum(len(STATIC_CHECKS if d.meta.coordinator else CHECKS) for d in DOMAINS.values())
    assert len(CASES) == want and DOMAINS
    assert sum(1 for d in DOMAINS.values() if not d.meta.coordinator) >= 3  # every domain with a twin of its own


class _Renamed:
    """A domain whose metadata declares a KPI its twin never reports."""

    def __init__(self, inner: Domain) -> None:
        self._inner = inner
        self.name = inner.name
        self.description = inner.description
        self.meta = dataclasses.replace(inner.meta, kpis=(*inner.meta.kpis, KPI("ghost", "s", Better.LOWER)))

    def __getattr__(self, item: str):
        return getattr(self._inner, item)


def test_checks_can_fail() -> None:
    dom = DOMAINS["mobility"]
    with pytest.raises(AssertionError, match="missing \\['ghost'\\]"):
        check_close_reports_declared_kpis(_Renamed(dom))  # type: ignore[arg-type]
    bad = _Renamed(dom)
    bad.meta = dataclasses.replace(dom.meta, test_scenario="no-such-map")
    with pytest.raises(AssertionError, match="does not resolve"):
        check_metadata(bad)  # type: ignore[arg-type]
