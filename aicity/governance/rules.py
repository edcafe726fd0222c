"""Policy files: autonomy rules, envelopes and accuracy guards, from the site policy and each domain's defaults.

The site policy (``aicity/governance/policy/default.toml`` or ``$AICITY_POLICY``) is versioned and hashed; every
domain ships the rules, envelopes and accuracy guards of its own action types in its folder (``meta.policy``).
:meth:`Policy.with_domains` composes them, the site overriding a domain **rule by rule**: a site rule for the
same (domain, action type) replaces the domain's, limits and guards are replaced by name. The most specific
matching rule wins (exact domain beats ``*``, then exact action type). An action type with no rule anywhere
gets the site ``[default]``; the governor ledgers that as an explicit ``policy_notice`` and counts it, so no
action type ends up advise-only or acting by accident. Every rule carries its source (site policy or domain
defaults, file, version and SHA-256), which each decision record names.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError, unreadable

SITE = "site policy"
DOMAIN = "domain defaults"
SITE_DEFAULT = "site [default]"


class AutonomyLevel(StrEnum):
    """How far the AI may act on its own."""

    OFF = "off"
    ADVISE = "advise"
    APPROVE = "approve-then-act"
    NOTIFY = "act-then-notify"
    AUTONOMOUS = "autonomous-within-envelope"



@dataclass(frozen=True, slots=True)
class PolicySource:
    """Where a rule comes from: the site policy, a domain's defaults, or the site ``[default]``."""

    kind: str
    file: str
    version: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        """What a decision record cites."""
        return {"source": self.kind, "file": self.file, "version": self.version, "sha256": self.sha256}

    def __str__(self) -> str:
        return f"{self.kind} {self.file} {self.version} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Autonomy and accountability for one (domain, action type)."""

    domain: str
    action_type: str
    autonomy: AutonomyLevel
    owner_role: str
    contact: str = ""
    appeal: str = ""
    source: PolicySource | None = None

    def ref(self) -> dict[str, str]:
        """The rule and its source, as a decision record cites it."""
        src = self.source.to_dict() if self.source is not None else {}
        return {"domain": self.domain, "action_type": self.action_type, "autonomy": self.autonomy.value, **src}


@dataclass(frozen=True, slots=True)
class EnvelopeLimit:
    """One explicit limit: allowed actions, a parameter range, or a rate per target."""

    name: str
    domain: str = "*"
    action_type: str = "*"
    actions: Sequence[str] | None = None
    param: str | None = None
    min: float | None = None
    max: float | None = None
    max_per_hour: int | None = None

    def matches(self, domain: str, action_type: str) -> bool:
        """True when this limit applies."""
        return fnmatch.fnmatchcase(domain, self.domain) and fnmatch.fnmatchcase(action_type, self.action_type)


@dataclass(frozen=True, slots=True)
class AccuracyGuard:
    """Declared forecast accuracy a (domain, action type) relies on, and what happens below it.

    When the model's rolling one-step error relative to persistence (``ratio`` of
    :class:`aicity.forecast.accuracy.AccuracyTracker`) exceeds ``max_error_ratio`` over at least ``min_samples``
    scored pairs, the action type is demoted to ``demote_to`` (default ``advise``): a ledgered autonomy change,
    the domain's actuators go to their safe state, and whatever the planners still propose is recorded as advice,
    not acted on, until a person restores the level with a reason.
    """

    name: str
    domain: str
    model: str
    max_error_ratio: float
    action_type: str = "*"
    min_samples: int = 100
    demote_to: AutonomyLevel = AutonomyLevel.ADVISE

    def matches(self, domain: str, model: str) -> bool:
        """True when this guard watches ``model`` in ``domain``."""
        return fnmatch.fnmatchcase(domain, self.domain) and fnmatch.fnmatchcase(model, self.model)


def _guard(data: Mapping[str, Any], where: str) -> AccuracyGuard:
    _table(data, where)
    unknown = set(data) - set(AccuracyGuard.__dataclass_fields__)
    if unknown:
        raise UserError(f"{where}: unknown accuracy guard fields {sorted(unknown)}")
    for key in ("name", "domain", "model"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise UserError(f"{where}: every accuracy guard needs a {key}")
    ratio = data.get("max_error_ratio")
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio <= 0:
        raise UserError(f"{where}: max_error_ratio must be a positive number, got {ratio!r}")
    try:
        level = AutonomyLevel(str(data.get("demote_to", "advise")))
    except ValueError:
        raise UserError(f"{where}: demote_to {data.get('demote_to')!r} is not an autonomy level") from None
    if level not in (AutonomyLevel.OFF, AutonomyLevel.ADVISE, AutonomyLevel.APPROVE):
        raise UserError(f"{where}: demote_to must be off, advise or approve-then-act, got {level.value!r}")
    n = data.get("min_samples", 100)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"{where}: min_samples must be a positive integer, got {n!r}")
    return AccuracyGuard(str(data["name"]), str(data["domain"]), str(data["model"]), float(ratio),
                         str(data.get("action_type", "*")), n, level)


def _table(data: Any, where: str) -> None:
    if not isinstance(data, Mapping):
        raise UserError(f"{where} must be a table, got {data!r}")


def _rule(data: Mapping[str, Any], where: str, default: Mapping[str, Any] | None = None) -> PolicyRule:
    _table(data, where)
    merged = {**(default or {}), **data}
    unknown = set(merged) - {"domain", "action_type", "autonomy", "owner_role", "contact", "appeal"}
    if unknown:
        raise UserError(f"{where}: unknown rule fields {sorted(unknown)}")
    try:
        level = AutonomyLevel(str(merged.get("autonomy")))
    except ValueError:
        raise UserError(f"{where}: autonomy {merged.get('autonomy')!r} is not one of "
                        f"{', '.join(a.value for a in AutonomyLevel)}") from None
    owner = merged.get("owner_role")
    if not isinstance(owner, str) or not owner:
        raise UserError(f"{where}: every rule needs an owner_role (accountability map)")
    for name in ("domain", "action_type", "contact", "appeal"):
        if name in merged and not isinstance(merged[name], str):
            raise UserError(f"{where}: {name} must be text, got {merged[name]!r}")
    return PolicyRule(str(merged.get("domain", "*")), str(merged.get("action_type", "*")), level, owner,
                      str(merged.get("contact", "")), str(merged.get("appeal", "")))


def _number(where: str, name: str, value: Any, *, integer: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or (integer and not isinstance(value, int)):
        kind = "a whole number" if integer else "a finite number"
        raise UserError(f"{where}: {name} must be {kind}, got {value!r}")


def _limit(data: Mapping[str, Any], where: str) -> EnvelopeLimit:
    _table(data, where)
    unknown = set(data) - set(EnvelopeLimit.__dataclass_fields__)
    if unknown:
        raise UserError(f"{where}: unknown envelope fields {sorted(unknown)}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise UserError(f"{where}: every envelope limit needs a name")
    where = f"{where} ({data['name']})"
    for name in ("domain", "action_type", "param"):
        if name in data and not isinstance(data[name], str):
            raise UserError(f"{where}: {name} must be text, got {data[name]!r}")
    actions = data.get("actions")
    if actions is not None and (not isinstance(actions, list) or not all(isinstance(a, str) for a in actions)):
        raise UserError(f"{where}: actions must be a list of action names, got {actions!r}")
    _number(where, "min", data.get("min"))
    _number(where, "max", data.get("max"))
    _number(where, "max_per_hour", data.get("max_per_hour"), integer=True)
    lim = EnvelopeLimit(**dict(data))
    if lim.actions is None and lim.param is None and lim.max_per_hour is None:
        raise UserError(f"{where}: give actions, param with min/max, or max_per_hour")
    if lim.min is not None and lim.max is not None and lim.min > lim.max:
        raise UserError(f"{where}: min {lim.min} is above max {lim.max}")
    return lim


def _read(data: bytes, source: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
        raw: dict[str, Any] = json.loads(text) if text.lstrip().startswith("{") else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"policy {source} is not valid TOML/JSON: {unreadable(exc)}") from exc
    version = raw.get("version")
    if not isinstance(version, str) or not version:
        raise UserError(f"policy {source} needs a 'version' string")
    for name in ("rules", "envelope", "accuracy"):
        if not isinstance(raw.get(name, []), list):
            raise UserError(f"policy {source}: {name} must be an array of tables")
    if not isinstance(raw.get("default", {}), dict):
        raise UserError(f"policy {source}: [default] must be a table")
    return raw


def _read_file(path: str | Path, what: str) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {what} {p}: {exc.strerror or exc}") from exc


@dataclass(frozen=True, slots=True)
class DomainPolicy:
    """The policy defaults one domain ships for its own action types (its ``meta.policy`` file)."""

    domain: str
    source: PolicySource
    rules: Sequence[PolicyRule] = ()
    limits: Sequence[EnvelopeLimit] = ()
    accuracy: Sequence[AccuracyGuard] = ()

    @classmethod
    def load(cls, domain: str, path: str | Path) -> DomainPolicy:
        """Load a domain's policy file."""
        return cls.parse(domain, _read_file(path, f"the {domain} policy file"), str(path))

    @classmethod
    def parse(cls, domain: str, data: bytes, source: str) -> DomainPolicy:
        """Parse a domain's policy: same format as the site policy; ``domain`` may be left out and may only be
        the domain's own name (``[default]`` only gives its rules' shared fields, never a fallback)."""
        raw = _read(data, source)
        src = PolicySource(DOMAIN, source, str(raw["version"]), hashlib.sha256(data).hexdigest())

        def own(entry: Any, where: str) -> dict[str, Any]:
            if not isinstance(entry, dict):
                raise UserError(f"{where} must be a table")
            named = entry.get("domain", domain)
            if named != domain:
                raise UserError(f"{where}: the {domain} domain's policy may only set its own rules, not "
                                f"domain {named!r}")
            return {**entry, "domain": domain}

        dflt = {k: v for k, v in raw.get("default", {}).items() if k != "domain"}
        rules = [replace(_rule(own(r, f"{source} rules[{i}]"), f"{source} rules[{i}]", dflt), source=src)
                 for i, r in enumerate(raw.get("rules", []))]
        limits = [_limit(own(e, f"{source} envelope[{i}]"), f"{source} envelope[{i}]")
                  for i, e in enumerate(raw.get("envelope", []))]
        guards = [_guard(own(g, f"{source} accuracy[{i}]"), f"{source} accuracy[{i}]")
                  for i, g in enumerate(raw.get("accuracy", []))]
        return cls(domain, src, rules, limits, guards)


@dataclass(frozen=True, slots=True)
class Policy:
    """A versioned oversight policy; its version and SHA-256 are referenced from every decision record."""

    version: str
    sha256: str
    source: str
    default: PolicyRule
    rules: Sequence[PolicyRule] = ()
    limits: Sequence[EnvelopeLimit] = ()
    priority: Sequence[str] = ()
    accuracy: Sequence[AccuracyGuard] = ()
    domains: Mapping[str, PolicySource] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Policy:
        """Load a site policy file (TOML or JSON); the shipped default when ``path`` is None."""
        if path is None:
            data = resources.files("aicity.governance.policy").joinpath("default.toml").read_bytes()
            return cls.parse(data, "aicity/governance/policy/default.toml")
        return cls.parse(_read_file(path, "policy file"), str(path))

    @classmethod
    def parse(cls, data: bytes, source: str) -> Policy:
        """Parse site policy bytes (JSON when they start with ``{``, else TOML)."""
        raw = _read(data, source)
        version, sha = str(raw["version"]), hashlib.sha256(data).hexdigest()
        site = PolicySource(SITE, source, version, sha)
        dflt = raw.get("default", {})
        default = replace(_rule({"domain": "*", "action_type": "*", **dflt}, f"{source} [default]"),
                          source=PolicySource(SITE_DEFAULT, source, version, sha))
        rules = [replace(_rule(r, f"{source} rules[{i}]", dflt), source=site)
                 for i, r in enumerate(raw.get("rules", []))]
        limits = [_limit(e, f"{source} envelope[{i}]") for i, e in enumerate(raw.get("envelope", []))]
        guards = [_guard(g, f"{source} accuracy[{i}]") for i, g in enumerate(raw.get("accuracy", []))]
        priority = raw.get("priority", [])
        if not isinstance(priority, list) or not all(isinstance(p, str) for p in priority):
            raise UserError(f"policy {source}: priority must be a list of names")
        return cls(version, sha, source, default, rules, limits, priority, guards)

    def with_domains(self, defaults: Sequence[DomainPolicy]) -> Policy:
        """This site policy over the domains' shipped defaults, rule by rule (see the module docstring)."""
        rules, limits, guards = list(self.rules), list(self.limits), list(self.accuracy)
        keys = {(r.domain, r.action_type) for r in rules}
        names = {(x.domain, x.name) for x in limits}
        guard_names = {(g.domain, g.name) for g in guards}
        for dp in defaults:
            rules += [r for r in dp.rules if (r.domain, r.action_type) not in keys]
            limits += [x for x in dp.limits if (x.domain, x.name) not in names]
            guards += [g for g in dp.accuracy if (g.domain, g.name) not in guard_names]
        return replace(self, rules=rules, limits=limits, accuracy=guards,
                       domains={**self.domains, **{dp.domain: dp.source for dp in defaults}})

    def ref(self) -> dict[str, Any]:
        """What a decision record cites: the site policy (and the domain defaults composed into it)."""
        out: dict[str, Any] = {"version": self.version, "sha256": self.sha256, "source": self.source}
        if self.domains:
            out["domains"] = {d: s.to_dict() for d, s in sorted(self.domains.items())}
        return out

    def rule_for(self, domain: str, action_type: str) -> PolicyRule:
        """The most specific matching rule (exact beats ``*``; domain beats action type), else the default."""
        best: tuple[int, PolicyRule] = (-1, self.default)
        for rule in self.rules:
            if not (fnmatch.fnmatchcase(domain, rule.domain) and fnmatch.fnmatchcase(action_type, rule.action_type)):
                continue
            rank = 2 * (rule.domain == domain) + (rule.action_type == action_type)
            if rank > best[0]:
                best = (rank, rule)
        return best[1]

    def is_fallback(self, rule: PolicyRule) -> bool:
        """True when ``rule`` is the site ``[default]`` (no rule anywhere for the action type)."""
        return rule is self.default

    def limits_for(self, domain: str, action_type: str) -> list[EnvelopeLimit]:
        """Every envelope limit that applies."""
        return [lim for lim in self.limits if lim.matches(domain, action_type)]
