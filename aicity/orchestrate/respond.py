"""Responses to an event: a domain's candidate responses, each with its predicted outcome, and the choice.

A domain may declare a :class:`Responder` (``DomainMeta.responders``, a factory; it learns every step beside the
outage cost models, :mod:`.costs`): from each step's snapshot (sensor view only) it names the events it sees that
call for a decision (an :class:`Occasion`) and the candidate responses to each (doing nothing among them), each
with its predicted outcome over a short look-ahead on the KPIs the domain ranks by, most important first. The AI
City's stage picks, per occasion, the option whose predicted outcome ranks first (lexicographically; on a tie the
earlier option, so doing nothing, listed first, wins ties) and sends its actions on to governance like any
proposal. The ablation's stage (:class:`aicity.orchestrate.stage.Precedence`) asks no responder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aicity.core.domain import ProposedAction, Snapshot


@dataclass(frozen=True, slots=True)
class ResponseOption:
    """One candidate response: actions per domain (none: do nothing) and its predicted outcome per KPI."""

    name: str
    actions: tuple[tuple[str, ProposedAction], ...]
    outcome: Mapping[str, float]
    why: str = ""


@dataclass(frozen=True, slots=True)
class Occasion:
    """An event that calls for a decision, its candidate responses and the KPIs they are ranked by
    (``(name, lower_is_better)``, most important first)."""

    event: str
    options: tuple[ResponseOption, ...]
    ranking: tuple[tuple[str, bool], ...]


@runtime_checkable
class Responder(Protocol):
    """A domain's model that offers candidate responses to the events it sees (it learns in ``update``)."""

    def update(self, snapshot: Snapshot) -> None:
        """Learn from one step's snapshot."""
        ...

    def occasions(self, snapshot: Snapshot) -> list[Occasion]:
        """The events that call for a decision now, each with its candidate responses."""
        ...


def _key(option: ResponseOption, ranking: Sequence[tuple[str, bool]]) -> tuple[float, ...]:
    out = []
    for name, lower in ranking:
        v = option.outcome.get(name)
        ok = isinstance(v, int | float) and math.isfinite(v)
        out.append((float(v) if lower else -float(v)) if ok else math.inf)  # type: ignore[arg-type]
    return tuple(out)


def choose(occasion: Occasion) -> ResponseOption | None:
    """The option whose predicted outcome ranks first (the earlier option on a tie); None without options."""
    best: tuple[tuple[float, ...], ResponseOption] | None = None
    for option in occasion.options:
        k = _key(option, occasion.ranking)
        if best is None or k < best[0]:
            best = (k, option)
    return None if best is None else best[1]


def explain(occasion: Occasion, chosen: ResponseOption) -> str:
    """What was weighed, in plain words: every option's predicted outcome and why the chosen one ranks first."""
    def show(o: ResponseOption) -> str:
        vals = ", ".join(f"{k} {o.outcome[k]:.4g}" for k, _ in occasion.ranking if k in o.outcome)
        return f"{o.name!r} ({vals})" + (f": {o.why}" if o.why else "")

    others = [o for o in occasion.options if o is not chosen]
    deciding = ""
    for other in others:
        for k, _ in occasion.ranking:
            a, b = chosen.outcome.get(k), other.outcome.get(k)
            if a is not None and b is not None and abs(a - b) > 1e-9:
                deciding += f"; it beats {other.name!r} on {k}"
                break
    return (f"{occasion.event}: took {show(chosen)} over " + "; ".join(show(o) for o in others) +
            f" (ranked by {' > '.join(k for k, _ in occasion.ranking)}{deciding})")


__all__ = ["Occasion", "Responder", "ResponseOption", "choose", "explain"]
