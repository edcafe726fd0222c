"""Plausibility rules given as data: stale, out of range, not numeric, missing, frozen; counted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.governance.plausibility import PlausibilityChecker, Rule

from .conftest import T0


def snap(values: dict[str, object], when=T0, observed=T0) -> Snapshot:  # type: ignore[no-untyped-def]
    ents = {f"urn:ngsi-ld:Detector:{k}": Entity(f"urn:ngsi-ld:Detector:{k}", "Detector",
                                                {"count": Property(v, observed_at=observed)})
            for k, v in values.items()}
    return Snapshot(when, 0.0, ents)


CONFIG = {"rules": [{"entity_type": "Detector", "attribute": "count", "min": 0, "max": 60, "max_age_s": 90,
                     "max_constant_s": 300}],
          "required": ["urn:ngsi-ld:Detector:a", "urn:ngsi-ld:Detector:b"]}


def test_clean_snapshot_passes() -> None:
    c = PlausibilityChecker.from_dict(CONFIG)
    assert c.check(snap({"a": 3, "b": 4})).ok
    assert c.counts["snapshots"] == 1 and c.counts["degraded_snapshots"] == 0


def test_each_case_is_found_and_counted() -> None:
    c = PlausibilityChecker.from_dict(CONFIG)
    r = c.check(snap({"a": 400, "c": "many"}, when=T0 + timedelta(seconds=200)))
    kinds = sorted(i.kind for i in r.issues)
    assert kinds == ["missing", "not_numeric", "out_of_range", "stale", "stale"]
    assert c.counts["out_of_range"] == 1 and c.counts["missing"] == 1 and c.counts["stale"] == 2
    assert "urn:ngsi-ld:Detector:b" in str(next(i for i in r.issues if i.kind == "missing"))


def test_non_numeric_and_null_values() -> None:
    c = PlausibilityChecker([Rule("Detector", "count", 0, 60)])
    r = c.check(snap({"a": "many"}))
    assert [i.kind for i in r.issues] == ["not_numeric"]
    assert c.check(snap({"a": None})).ok  # no reading this period
    strict = PlausibilityChecker([Rule("Detector", "count", 0, 60, nullable=False)])
    assert [i.kind for i in strict.check(snap({"a": None})).issues] == ["not_numeric"]


def test_frozen_value_with_fresh_timestamps() -> None:
    c = PlausibilityChecker.from_dict(CONFIG)
    for minute in range(8):
        t = T0 + timedelta(minutes=minute)
        r = c.check(snap({"a": 7, "b": minute}, when=t, observed=t))
    assert [i.kind for i in r.issues] == ["frozen"] and r.issues[0].entity_id.endswith(":a")
    assert r.for_entities(["urn:ngsi-ld:Detector:b"]) == []


def test_bad_rules_are_named() -> None:
    with pytest.raises(UserError, match="unknown fields"):
        Rule.from_dict({"entity_type": "X", "maximum": 3})
    with pytest.raises(UserError, match="max must be a number"):
        Rule.from_dict({"entity_type": "X", "max": "3"})
    with pytest.raises(UserError, match="entity_type"):
        Rule.from_dict({"attribute": "x"})
