"""A city as districts: every part's scenario split by its domain (:class:`Partitionable`), the same names."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from aicity.core.capabilities import DistrictScenario, Partitionable
from aicity.core.city import City, Part
from aicity.core.errors import UserError

MAX_DISTRICTS = 256
"""The most districts one city is split into (a typo like ``--districts 100000`` must not start that many)."""


@dataclass(frozen=True, slots=True)
class District:
    """One district of a city: its own city (a part per domain) and, per domain, border id → neighbour."""

    name: str
    city: City
    borders: Mapping[str, Mapping[str, str]]

    def neighbour(self, domain: str, via: str) -> str | None:
        """The district behind border ``via`` of ``domain``, or None when ``via`` is no border of this one."""
        return self.borders.get(domain, {}).get(via)


def partition(city: City, districts: int) -> list[District]:
    """``city`` split into ``districts`` districts by every part's domain; refused with one line when a domain
    cannot split its scenario or the domains disagree on the districts."""
    if not 1 <= districts <= MAX_DISTRICTS:
        raise UserError(f"districts must be a whole number from 1 to {MAX_DISTRICTS}, got {districts}")
    per_part = []
    for part in city:
        dom = part.domain
        if not isinstance(dom, Partitionable):
            raise UserError(f"domain {dom.name!r} cannot run as districts (its scenarios do not partition); "
                            "run the city in one process")
        split = {}
        for d in dom.partition(part.scenario, districts):  # each district keeps the city's window and options
            scen = dataclasses.replace(d.scenario, begin_s=part.scenario.begin_s, end_s=part.scenario.end_s,
                                       params={**part.scenario.params, **d.scenario.params})
            split[d.district] = DistrictScenario(d.district, scen, d.borders)
        per_part.append((part, split))
    names = list(per_part[0][1])
    for part, split in per_part[1:]:
        if sorted(split) != sorted(names):
            raise UserError(f"domain {part.name!r} splits {part.scenario.name!r} into districts "
                            f"{', '.join(sorted(split))}, the others into {', '.join(sorted(names))}")
    out = []
    for name in names:
        parts = tuple(Part(part.domain, split[name].scenario) for part, split in per_part)
        borders = {part.name: dict(split[name].borders) for part, split in per_part}
        for dname, table in borders.items():
            for via, other in table.items():
                if other not in names or other == name:
                    raise UserError(f"domain {dname!r}: border {via!r} of district {name!r} leads to {other!r}, "
                                    "which is no other district of the city")
        out.append(District(name, City(f"{city.name}/{name}", f"{city.description} — district {name}", parts),
                            borders))
    return out
