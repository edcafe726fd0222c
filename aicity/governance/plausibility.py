"""Input plausibility: stale, out-of-range, frozen or missing sensor inputs make a decision degraded.

Rules are data given by the domain (entity type, attribute, min, max, max age, max time constant, required
sensors); nothing here knows a domain. A degraded decision falls back to the safe plan and is never actuated.
"""

from __future__ import annotations

import fnmatch
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aicity.core.domain import Snapshot
from aicity.core.entity import Entity, Relationship
from aicity.core.errors import UserError


@dataclass(frozen=True, slots=True)
class Rule:
    """A plausibility rule for one entity type (and optionally one attribute)."""

    entity_type: str
    attribute: str | None = None
    min: float | None = None
    max: float | None = None
    max_age_s: float | None = None
    max_constant_s: float | None = None
    nullable: bool = True  # a null value means "no reading this period" (e.g. no vehicle to measure)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """A rule from a mapping; raises :class:`UserError` naming a bad field."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise UserError(f"plausibility rule has unknown fields {sorted(unknown)}")
        if not isinstance(data.get("entity_type"), str):
            raise UserError("plausibility rule needs an 'entity_type' string")
        for name in ("min", "max", "max_age_s", "max_constant_s"):
            v = data.get(name)
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
                raise UserError(f"plausibility rule for {data['entity_type']}: {name} must be a number, got {v!r}")
        return cls(**dict(data))


@dataclass(frozen=True, slots=True)
class Issue:
    """One implausible input."""

    kind: str  # stale | out_of_range | not_numeric | missing | frozen
    entity_id: str
    attribute: str | None
    detail: str

    def __str__(self) -> str:
        where = self.entity_id + (f".{self.attribute}" if self.attribute else "")
        return f"{self.kind}: {where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class PlausibilityReport:
    """The issues found in one snapshot."""

    time: datetime
    issues: Sequence[Issue] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is implausible."""
        return not self.issues

    def for_entities(self, entity_ids: Iterable[str]) -> list[Issue]:
        """Issues about these entities, plus every missing-sensor issue."""
        ids = set(entity_ids)
        return [i for i in self.issues if i.entity_id in ids or i.kind == "missing"]


@dataclass
class PlausibilityChecker:
    """Checks snapshots against rules and required sensors, and counts every case for the report."""

    rules: Sequence[Rule] = ()
    required: Sequence[str] = ()
    counts: Counter[str] = field(default_factory=Counter)
    _last: dict[tuple[str, str], tuple[Any, datetime]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlausibilityChecker:
        """From ``{"rules": [...], "required": [...]}`` (e.g. a domain's JSON or TOML)."""
        rules = data.get("rules", [])
        required = data.get("required", [])
        if not isinstance(rules, list) or not isinstance(required, list):
            raise UserError("plausibility config needs lists 'rules' and 'required'")
        return cls([Rule.from_dict(r) for r in rules], [str(r) for r in required])

    def check(self, snapshot: Snapshot, now: datetime | None = None) -> PlausibilityReport:
        """Check one snapshot (at ``now``, default the snapshot's time) and count what was found."""
        when = now or snapshot.time
        issues: list[Issue] = []
        for pattern in self.required:
            if not any(fnmatch.fnmatchcase(eid, pattern) for eid in snapshot.entities):
                issues.append(Issue("missing", pattern, None, "required sensor reports nothing"))
        by_type: dict[str, list[Rule]] = {}
        for rule in self.rules:
            by_type.setdefault(rule.entity_type, []).append(rule)
        for _, entity in sorted(snapshot.entities.items()):
            for rule in by_type.get(entity.type, ()):
                issues.extend(self._check_rule(entity, rule, when))
        self.counts["snapshots"] += 1
        if issues:
            self.counts["degraded_snapshots"] += 1
        for issue in issues:
            self.counts[issue.kind] += 1
        return PlausibilityReport(when, tuple(issues))

    def _check_rule(self, entity: Entity, rule: Rule, now: datetime) -> list[Issue]:
        attrs = [rule.attribute] if rule.attribute else list(entity.attrs)
        out: list[Issue] = []
        for name in attrs:
            attr = entity.attrs.get(name)
            if attr is None:
                out.append(Issue("missing", entity.id, name, "attribute not reported"))
                continue
            if rule.max_age_s is not None and attr.observed_at is not None:
                age = (now - attr.observed_at).total_seconds()
                if age > rule.max_age_s:
                    out.append(Issue("stale", entity.id, name, f"observed {age:.0f} s ago (max {rule.max_age_s:g} s)"))
            if rule.min is None and rule.max is None and rule.max_constant_s is None:
                continue
            value = None if isinstance(attr, Relationship) else attr.value
            if value is None and rule.nullable:
                continue
            if rule.min is not None or rule.max is not None:
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                    out.append(Issue("not_numeric", entity.id, name, f"value {value!r} is not a finite number"))
                    continue
                if (rule.min is not None and value < rule.min) or (rule.max is not None and value > rule.max):
                    out.append(Issue("out_of_range", entity.id, name,
                                     f"value {value:g} outside [{_fmt(rule.min)}, {_fmt(rule.max)}]"))
            if rule.max_constant_s is not None:
                out.extend(self._frozen(entity.id, name, value, now, rule.max_constant_s))
        return out

    def _frozen(self, eid: str, name: str, value: Any, now: datetime, limit: float) -> list[Issue]:
        key = (eid, name)
        last = self._last.get(key)
        if last is None or last[0] != value:
            self._last[key] = (value, now)
            return []
        constant = (now - last[1]).total_seconds()
        if constant > limit:
            return [Issue("frozen", eid, name, f"value {value!r} unchanged for {constant:.0f} s (max {limit:g} s)")]
        return []


def _fmt(v: float | None) -> str:
    return "-inf" if v is None else f"{v:g}"
