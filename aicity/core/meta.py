"""What a domain declares about itself: KPIs, scenario options, equity groups, policy defaults, test scenario.

The report, the CLI, the equity audit and the governance runtime read this metadata instead of knowing any
domain. Options are validated here, once and up front: wrong types, NaN, infinities, values out of range and
values the twin cannot honour exactly are refused with one line naming the option, its unit and its range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError


class Better(StrEnum):
    """Which direction of a KPI is an improvement."""

    LOWER = "lower"
    HIGHER = "higher"


@dataclass(frozen=True, slots=True)
class KPI:
    """One key performance indicator a domain reports at the end of a run."""

    name: str
    unit: str
    better: Better
    headline: bool = False
    description: str = ""

    def improved(self, base: float, new: float) -> bool | None:
        """True when ``new`` is better than ``base``, False when worse, None when equal."""
        if new == base:
            return None
        return (new < base) if self.better is Better.LOWER else (new > base)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"name": self.name, "unit": self.unit, "better": str(self.better), "headline": self.headline,
                "description": self.description}


def _finite_number(name: str, value: Any, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"option {name} must be a number{_in(unit)}, got {value!r}")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise UserError(f"option {name} must be a finite number{_in(unit)}, got {value!r}")
    return number


def _in(unit: str) -> str:
    return f" (in {unit})" if unit else ""


@dataclass(frozen=True, slots=True)
class Option:
    """One scenario option: its type, unit, valid range and help, so validation and ``--help`` are generic.

    ``kind`` is ``float``, ``int``, ``bool`` or ``str``; ``step`` asks for whole multiples (a value the twin
    cannot honour exactly is refused, not rounded); ``parse`` validates structured values (it raises
    :class:`UserError` and returns the value to use). ``flag`` adds ``--<name>`` to ``aicity run``.
    """

    name: str
    kind: type
    default: Any
    help: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None
    parse: Callable[[Any], Any] | None = None
    flag: bool = False

    def range_text(self) -> str:
        """The valid range in words, e.g. ``from 1 to 600 s``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        lo = "" if self.minimum is None else f"{'above' if self.exclusive_minimum else 'from'} {self.minimum:g}"
        hi = "" if self.maximum is None else f"{'to' if lo else 'at most'} {self.maximum:g}"
        text = " ".join(p for p in (lo, hi) if p)
        if self.step is not None:
            text += f"{', ' if text else ''}a multiple of {self.step:g}"
        return (text + unit) if text else (self.unit or "any")

    def check(self, value: Any) -> Any:
        """The validated value, or :class:`UserError` naming the option, its unit and its range."""
        if self.parse is not None:
            return self.parse(value)
        if self.choices is not None:
            if value not in self.choices:
                raise UserError(f"option {self.name} must be {self.range_text()}, got {value!r}")
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                raise UserError(f"option {self.name} must be true or false, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str):
                raise UserError(f"option {self.name} must be text, got {value!r}")
            return value
        number = _finite_number(self.name, value, self.unit)
        bad = ((self.minimum is not None and (number < self.minimum
                                              or (self.exclusive_minimum and number == self.minimum)))
               or (self.maximum is not None and number > self.maximum))
        if bad:
            raise UserError(f"option {self.name} must be {self.range_text()}, got {value!r}")
        if self.kind is int:
            if number != int(number):
                raise UserError(f"option {self.name} must be a whole number{_in(self.unit)}, got {value!r}")
            return int(number)
        if self.step is not None:
            ratio = number / self.step
            if abs(ratio - round(ratio)) > 1e-9:
                raise UserError(f"option {self.name} must be {self.range_text()} (the twin cannot honour "
                                f"{value!r} exactly), got {value!r}")
        return number

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"name": self.name, "type": self.kind.__name__, "default": self.default, "unit": self.unit,
                "range": self.range_text(), "help": self.help}


@dataclass(frozen=True, slots=True)
class EquityGroup:
    """A group dimension (e.g. district) over which the domain's ``kpi`` is audited for equity."""

    dimension: str
    kpi: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class DomainMeta:
    """Everything a domain declares about itself, in its own folder.

    ``policy`` is the TOML file with the autonomy rules, envelopes and accuracy guards of the domain's action
    types (the site policy overrides them rule by rule); ``action_types`` lists every action type its planners
    propose; ``test_scenario`` is a short scenario the contract checks run (``test_duration_s`` of it);
    ``default_scenario`` is what ``aicity run`` runs when no scenario is named; ``validate`` checks options
    that must fit together (each option alone is checked by its :class:`Option`).
    """

    kpis: tuple[KPI, ...]
    options: tuple[Option, ...] = ()
    equity: tuple[EquityGroup, ...] = ()
    action_types: tuple[str, ...] = ()
    policy: Path | None = None
    entity_types: tuple[str, ...] = ()
    plausibility: Mapping[str, Any] | None = None
    test_scenario: str = ""
    test_duration_s: float = 300.0
    default_scenario: str = ""
    validate: Callable[[Mapping[str, Any]], None] | None = None
    ranking: tuple[str, ...] = ()
    """KPI names, most important first, to rank candidate responses by (what-if); empty: the headline KPIs."""
    coordinator: bool = False
    """True for a domain that only couples and measures the others (it rides their twins and owns no actuator
    of its own): the contract checks that drive a twin alone do not apply to it."""
    priorities: Mapping[str, str] | None = None
    """Action type -> the priority class it serves (e.g. ``life_safety``, ``grid_stability``, ``mobility``,
    ``energy_cost``), ranked by the policy's ``priority`` list in the orchestration stage."""
    outage_costs: Callable[[], Any] | None = None
    """A factory of the domain's :class:`aicity.orchestrate.costs.OutageCostModel` (what an entity of this domain
    out of service costs its users over a short look-ahead), which the orchestration stage weighs needs by."""
    responders: Callable[[], Any] | None = None
    """A factory of the domain's :class:`aicity.orchestrate.respond.Responder`: candidate responses to the events
    it sees, each with its predicted outcome, among which the AI City's orchestration stage picks."""

    def priority_of(self, action_type: str) -> str:
        """The priority class of ``action_type`` (empty when undeclared: ranked last)."""
        return (self.priorities or {}).get(action_type, "")

    def kpi(self, name: str) -> KPI | None:
        """The declared KPI called ``name``, if any."""
        for k in self.kpis:
            if k.name == name:
                return k
        return None

    def option(self, name: str) -> Option | None:
        """The declared option called ``name``, if any."""
        for o in self.options:
            if o.name == name:
                return o
        return None

    def headline(self) -> list[KPI]:
        """The headline KPIs, in declared order."""
        return [k for k in self.kpis if k.headline]


def check_options(domain: str, options: Sequence[Option], params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate scenario options against the declared ones: unknown names and bad values are refused."""
    known = {o.name: o for o in options}
    unknown = sorted(set(params) - set(known))
    if unknown:
        names = ", ".join(sorted(known)) or "none"
        raise UserError(f"unknown {domain} option(s) {', '.join(unknown)}; known: {names}")
    return {name: known[name].check(value) for name, value in params.items()}


def check_domain_options(domain: str, meta: DomainMeta, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate options one by one, then together (``meta.validate``)."""
    checked = check_options(domain, meta.options, params)
    if meta.validate is not None:
        meta.validate(checked)
    return checked


def option_values(options: Sequence[Option], params: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared option's value: the given one, else its default."""
    return {o.name: params.get(o.name, o.default) for o in options}


DEFAULT_EPOCH = "2024-01-01T00:00:00+00:00"


def parse_epoch(value: Any) -> datetime:
    """An ISO 8601 date-time with a UTC offset (the instant a scenario's seconds count from); one-line errors."""
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value))
        except ValueError:
            raise UserError(f"epoch {value!r} is not an ISO 8601 date-time such as {DEFAULT_EPOCH}") from None
    if when.tzinfo is None:
        raise UserError(f"epoch {value!r} needs a UTC offset, e.g. {DEFAULT_EPOCH}")
    return when


def _check_epoch(value: Any) -> Any:
    parse_epoch(value)
    return value


def epoch_option() -> Option:
    """The ``epoch`` option: the calendar instant a scenario's seconds count from, so every part of a city stamps
    its observations on one clock."""
    return Option("epoch", str, DEFAULT_EPOCH, "the instant the scenario's seconds count from (ISO 8601 with UTC "
                  "offset); a city sets one for all its parts", parse=_check_epoch)
