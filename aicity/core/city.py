"""A city to run: one or more parts (a domain and one of its scenarios) over one clock, store, ledger and loop.

A single-domain scenario is a city of one part. A city scenario composes parts of several domains, either
shipped by a domain (:class:`aicity.core.domain.CityScenarios`) or written by a user as a TOML file::

    name = "my-city"
    description = "traffic and street lighting on the grid"
    parts = ["mobility/grid3x3", "lighting/grid3x3-lamps"]
    [options.mobility]
    decision_interval_s = 10
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicity.core.domain import CityScenario, CityScenarios, Domain, Scenario, find_scenario
from aicity.core.errors import UserError, unreadable
from aicity.core.meta import check_domain_options


@dataclass(frozen=True, slots=True)
class Part:
    """One domain's scenario inside a city."""

    domain: Domain
    scenario: Scenario

    @property
    def name(self) -> str:
        """The domain's name."""
        return self.domain.name


@dataclass(frozen=True, slots=True)
class City:
    """What a run runs: named parts sharing one window (the first part's, cut to what every part covers)."""

    name: str
    description: str
    parts: tuple[Part, ...]

    def __iter__(self) -> Iterator[Part]:
        return iter(self.parts)

    @property
    def begin_s(self) -> float:
        """The window's begin, in scenario seconds."""
        return max(p.scenario.begin_s for p in self.parts)

    @property
    def end_s(self) -> float:
        """The window's end, in scenario seconds."""
        return min(p.scenario.end_s for p in self.parts)

    @property
    def duration_s(self) -> float:
        """Simulated length of the window."""
        return max(0.0, self.end_s - self.begin_s)

    @property
    def domains(self) -> list[Domain]:
        """The domains taking part, in part order."""
        return [p.domain for p in self.parts]

    def part(self, domain: str) -> Part:
        """The part of ``domain``."""
        for p in self.parts:
            if p.domain.name == domain:
                return p
        raise KeyError(domain)

    def window(self, duration_s: float | None) -> City:
        """The first ``duration_s`` seconds of the city (all of it when None)."""
        if duration_s is None:
            return self
        if not duration_s > 0 or duration_s != duration_s or duration_s == float("inf"):
            raise UserError(f"--duration must be a positive number of seconds, got {duration_s!r}")
        if duration_s > self.duration_s:
            raise UserError(f"--duration {duration_s:g} s is longer than the scenario "
                            f"({self.duration_s:g} s from {self.begin_s:g} s)")
        end = self.begin_s + duration_s
        return dataclasses.replace(self, parts=tuple(
            Part(p.domain, dataclasses.replace(p.scenario, end_s=min(p.scenario.end_s, end))) for p in self.parts))

    def with_options(self, options: Mapping[str, Any]) -> City:
        """The city with options applied, each validated by the domain that declares it.

        ``key`` goes to every part whose domain declares ``key``; ``domain.key`` to that domain only. An option
        no part declares is refused, naming the known ones.
        """
        per: dict[str, dict[str, Any]] = {p.domain.name: {} for p in self.parts}
        for key, value in options.items():
            dname, dot, name = key.partition(".")
            if dot and dname in per:
                per[dname][name] = value
                continue
            takers = [p.domain.name for p in self.parts if p.domain.meta.option(key) is not None]
            if not takers:
                known = sorted({o.name for p in self.parts for o in p.domain.meta.options})
                raise UserError(f"unknown option {key!r} for {self.name}; known: {', '.join(known) or 'none'}")
            for t in takers:
                per[t][key] = value
        parts = []
        for p in self.parts:
            params = check_domain_options(p.domain.name, p.domain.meta, {**p.scenario.params, **per[p.domain.name]})
            parts.append(Part(p.domain, dataclasses.replace(p.scenario, params=params)))
        return dataclasses.replace(self, parts=tuple(parts))


def single(domain: Domain, scenario: Scenario) -> City:
    """A city of one part."""
    return City(scenario.name, scenario.description, (Part(domain, scenario),))


def compose(domains: Mapping[str, Domain], spec: CityScenario) -> City:
    """Resolve a city scenario's ``domain/scenario`` parts; every part's domain must be installed once."""
    parts: list[Part] = []
    for ref in spec.parts:
        dname, _, sname = ref.partition("/")
        if dname not in domains:
            raise UserError(f"city {spec.name!r} needs domain {dname!r}, which is not installed "
                            f"(installed: {', '.join(sorted(domains)) or 'none'})")
        if any(p.domain.name == dname for p in parts):
            raise UserError(f"city {spec.name!r} names domain {dname!r} twice")
        scen = domains[dname].resolve(sname)
        if scen is None:
            raise UserError(f"city {spec.name!r}: domain {dname!r} has no scenario {sname!r}")
        parts.append(Part(domains[dname], scen))
    if not parts:
        raise UserError(f"city {spec.name!r} has no parts")
    city = City(spec.name, spec.description, tuple(parts))
    options = {f"{d}.{k}": v for d, opts in spec.params.items() for k, v in opts.items()}
    return city.with_options(options) if options else city


def city_scenarios(domains: Mapping[str, Domain]) -> list[CityScenario]:
    """Every city scenario the installed domains ship (a city is listed when all its domains are installed)."""
    found: dict[str, CityScenario] = {}
    for d in domains.values():
        if isinstance(d, CityScenarios):
            for c in d.cities():
                if all(ref.partition("/")[0] in domains for ref in c.parts):
                    found.setdefault(c.name, c)
    return [found[k] for k in sorted(found)]


def load_city_file(path: Path) -> CityScenario:
    """A city scenario written as TOML (``name``, ``description``, ``parts``, ``[options.<domain>]``)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # not UTF-8, not TOML, nested too deeply
        raise UserError(f"cannot read city file {str(path)!r}: {unreadable(exc)}") from exc
    parts = data.get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, str) and "/" in p for p in parts):
        raise UserError(f"city file {str(path)!r}: parts must be a list of \"domain/scenario\" strings")
    opts = data.get("options", {})
    if not isinstance(opts, dict) or not all(isinstance(v, dict) for v in opts.values()):
        raise UserError(f"city file {str(path)!r}: [options.<domain>] tables only")
    return CityScenario(str(data.get("name", path.stem)), str(data.get("description", "")), tuple(parts), opts)


def resolve_city(domains: Mapping[str, Domain], name_or_path: str | None) -> City:
    """A city by name, city file, ``domain/scenario`` or scenario name or file (the default when None)."""
    if not domains:
        raise UserError("no domain is installed (reinstall aicity)")
    if name_or_path is None:
        name_or_path = default_scenario(domains)
    for spec in city_scenarios(domains):
        if spec.name == name_or_path:
            return compose(domains, spec)
    if name_or_path.endswith(".toml") and Path(name_or_path).is_file():
        return compose(domains, load_city_file(Path(name_or_path)))
    domain, scen = find_scenario(domains, name_or_path)
    if domain.meta.coordinator:  # it only couples other parts: run one of the cities it belongs to
        homes = [c.name for c in city_scenarios(domains) if f"{domain.name}/{scen.name}" in c.parts]
        raise UserError(f"{domain.name}/{scen.name} couples the parts of a city and does not run alone; run "
                        f"{' or '.join(homes) or 'a city that includes it'}")
    return single(domain, scen)


def default_scenario(domains: Mapping[str, Domain]) -> str:
    """The scenario ``aicity run`` runs when none is named: a declared default that is a city of the installed
    domains first, else the first domain's declared default."""
    cities = {c.name for c in city_scenarios(domains)}
    declared = [d.meta.default_scenario for d in domains.values() if d.meta.default_scenario]
    for name in declared:
        if name in cities:
            return name
    for name in declared:
        return name
    first = next(iter(domains.values()))
    return first.scenarios()[0].name
