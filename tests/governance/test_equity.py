"""Equity audits with the real fairlearn MetricFrame."""

from __future__ import annotations

import numpy as np
import pytest

from aicity.core.context import IdGenerator
from aicity.core.errors import UserError
from aicity.core.event import EventType
from aicity.governance.equity import EquityAudit, audit_groups, audit_samples, jain_index

from .conftest import T0


def test_per_sample_groups_against_numpy() -> None:
    rng = np.random.default_rng(7)
    north = rng.gamma(2.0, 10.0, 200)
    south = rng.gamma(2.0, 20.0, 300)
    values = [*north, *south]
    groups = ["north"] * 200 + ["south"] * 300
    r = audit_samples(values, groups, kpi="delay_s", now=T0, domain="mobility", mode="ai", ids=IdGenerator(1))
    assert r.by_group["north"] == pytest.approx(north.mean()) and r.by_group["south"] == pytest.approx(south.mean())
    assert r.ratio == pytest.approx(north.mean() / south.mean())
    assert r.difference == pytest.approx(south.mean() - north.mean())
    assert r.worst_group == "south" and r.flagged
    assert r.alert is not None and r.alert.type == EventType.ALERT and r.alert.data["worst_group"] == "south"
    assert r.alert.context.id == IdGenerator(1)()


def test_balanced_groups_pass_and_jain() -> None:
    r = audit_groups({"d1": 40.0, "d2": 44.0, "d3": 38.0}, kpi="delay_s", now=T0)
    assert not r.flagged and r.alert is None and r.ratio == pytest.approx(38 / 44)
    assert r.worst_group == "d2"
    assert jain_index([1, 1, 1, 1]) == 1.0 and jain_index([1, 0, 0, 0]) == 0.25
    served = audit_groups({"a": 0.9, "b": 0.5}, kpi="served_share", higher_is_better=True, now=T0)
    assert served.worst_group == "b" and served.flagged


def test_run_audit_over_domain_groups() -> None:
    groups = {"north": {"delay_s": 30.0, "stops": 1.0}, "east": {"delay_s": 60.0, "stops": 1.1},
              "west": {"delay_s": 33.0}}
    results = EquityAudit().run(groups, now=T0, domain="mobility", mode="smart")
    assert [r.kpi for r in results] == ["delay_s", "stops"]
    assert results[0].flagged and results[0].worst_group == "east" and not results[1].flagged
    zero = audit_groups({"a": 0.0, "b": 0.0}, kpi="x", now=T0)
    assert zero.ratio == 1.0 and not zero.flagged


def test_bad_input_is_named() -> None:
    with pytest.raises(UserError, match="2 values but 1"):
        audit_samples([1.0, 2.0], ["a"], kpi="k", now=T0)
    with pytest.raises(UserError, match="non-finite"):
        audit_samples([1.0, float("nan")], ["a", "b"], kpi="k", now=T0)


def test_jain_index_is_defined_on_empty_input_and_refuses_non_finite_values() -> None:
    assert jain_index([]) == 1.0 and jain_index([0, 0]) == 1.0  # nothing shared unevenly
    assert jain_index(iter([2.0, 2.0])) == 1.0
    with pytest.raises(UserError, match="finite"):
        jain_index([1.0, float("nan")])
