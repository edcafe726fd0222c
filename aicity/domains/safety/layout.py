"""EMS on a generated ``gridcity-<K>`` laid out block by block, the same whether the city runs in one process or
as districts.

Each of the K blocks (3x3 signals) has its own zones (``zones_per_side``² cells over the block, named
``b<k>.z<row><col>``), its own hospital(s), ``ambulances / K`` ambulances placed by MEXCLP over the block's own
candidate stations and call history, and its own incidents (the block's seeded stream: seed × 1000 + k). A
district of K/D blocks holds exactly those blocks' zones, stations, ambulances and calls, under the same ids as the
whole city's; ambulance ``A<n>`` is numbered across the blocks west to east. Scenarios ``gridcity-<K>-ems`` run
the EMS alone on the generated net and its background traffic (see :mod:`.border` for what crosses).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from aicity.core.domain import Scenario
from aicity.core.errors import UserError
from aicity.domains.safety.geo import SafetyMap, load_map
from aicity.domains.safety.incidents import Incident

NAME = re.compile(r"gridcity-(\d+)-ems")
LOAD_MULTIPLIER = 500.0
"""The family's incident rate over Cologne's density: about 4 calls per block per hour at midnight, so one
ambulance per block is busy roughly half the time and neighbours are asked for help."""
SERVICE_SCALE = 0.25
TARGETS_S = (150.0, 210.0)
"""Network-scaled travel targets of the family: the median free-flow trip between two points of a block with its
signals' waits is about 120 s, so the default 90 s / 120 s would make every call late and the KPI blind."""


@dataclass(frozen=True, slots=True)
class GridPlace:
    """Where a scenario's net sits in a generated grid city: K, its blocks (0-based), its district and borders."""

    k: int
    blocks: tuple[int, ...]
    district: str | None
    out: Mapping[str, str]
    """Outgoing border edge → the district behind it (empty for the whole city)."""
    entries: Mapping[str, str]
    """Incoming border edge → the district it comes from."""


def grid_place(path: str | None) -> GridPlace | None:
    """The grid-city place of a ``.sumocfg`` (a whole ``gridcity-K`` or one of its districts), else None."""
    from aicity.domains.mobility import gridcity

    if not path:
        return None
    p = Path(path)
    if p.parent.name.startswith(gridcity.PREFIX) and p.name == f"{p.parent.name}.sumocfg":
        k = gridcity.districts_of(p.parent.name)
        return None if k is None else GridPlace(k, tuple(range(k)), None, {}, {})
    split, city = p.parent.parent, p.parent.parent.parent
    if not split.name.startswith("districts-") or not split.name[len("districts-"):].isdigit():
        return None
    k = gridcity.districts_of(city.name) if city.name.startswith(gridcity.PREFIX) else None
    d = int(split.name[len("districts-"):])
    name = p.parent.name
    if k is None or d < 1 or k % d or not name[1:].isdigit():
        return None
    i, per = int(name[1:]) - 1, k // d
    borders = json.loads((split / "borders.json").read_text())[name]
    return GridPlace(k, tuple(range(i * per, (i + 1) * per)), name, dict(borders["out"]), dict(borders["in"]))


def on_this_machine(scenario: Scenario) -> Scenario:
    """``scenario`` with files on this machine: a grid city's district folder named by a path not found here (a
    worker on another machine of a cluster) is generated into this machine's cache, deterministically."""
    from aicity.domains.mobility import gridcity
    from aicity.domains.mobility.districts import partition

    p = Path(scenario.path or "")
    if not scenario.path or p.is_file() or not p.parent.parent.name.startswith("districts-"):
        return scenario
    k = NAME.fullmatch(scenario.name.rsplit(".", 1)[0])
    d = p.parent.parent.name[len("districts-"):]
    if k is None or not d.isdigit():
        return scenario
    for part in partition(gridcity.scenario(int(k.group(1))), int(d)):
        if part.district == p.parent.name:
            return dataclasses.replace(scenario, path=part.scenario.path)
    return scenario


@lru_cache(maxsize=4)
def _block_nets(k: int) -> tuple[str, ...]:
    """The net of each block alone (the city cut into K districts; generated once, cached)."""
    from aicity.domains.mobility import gridcity
    from aicity.domains.mobility.districts import partition
    from aicity.domains.mobility.scenarios import read_sumocfg

    return tuple(read_sumocfg(str(d.scenario.path)).net for d in partition(gridcity.scenario(k), k))


def block_map(k: int, block: int, zones_per_side: int, hospitals: int) -> SafetyMap:
    """Block ``block`` (0-based) of ``gridcity-k`` as its own map: its zones, candidate stations, hospitals."""
    return load_map(_block_nets(k)[block], zones_per_side, hospitals)


def city_map(k: int, zones_per_side: int, hospitals: int) -> SafetyMap:
    """The whole ``gridcity-k`` road map (what every district's dispatch centre knows of the roads)."""
    from aicity.domains.mobility import gridcity
    from aicity.domains.mobility.scenarios import read_sumocfg

    return load_map(read_sumocfg(str(gridcity.scenario(k).path)).net, zones_per_side, hospitals)


def _prefix(block: int, zone: str) -> str:
    return f"b{block + 1}.{zone}"


@lru_cache(maxsize=8)
def ems_map(path: str, net: str, zones_per_side: int, hospitals: int) -> SafetyMap:
    """The map of scenario ``path`` as the dispatcher knows it: ``load_map`` of its net, laid out by blocks on a
    generated grid city (zones, stations and hospitals of its blocks; positions of every block's edges)."""
    place = grid_place(path)
    base = load_map(net, zones_per_side, hospitals)
    if place is None:
        return base
    blocks = {b: block_map(place.k, b, zones_per_side, hospitals) for b in range(place.k)}
    mine = [blocks[b] for b in place.blocks]
    zones = {_prefix(b, z): es for b, m in zip(place.blocks, mine, strict=True) for z, es in m.zones.items()}
    xy = {e: p for m in blocks.values() for e, p in m.xy.items()}
    xy.update(base.xy)
    return dataclasses.replace(
        base, zones=zones, zone_of={e: z for z, es in zones.items() for e in es},
        zone_xy={_prefix(b, z): p for b, m in zip(place.blocks, mine, strict=True) for z, p in m.zone_xy.items()},
        sites={_prefix(b, z): s for b, m in zip(place.blocks, mine, strict=True) for z, s in m.sites.items()},
        hospitals=tuple(h for m in mine for h in m.hospitals), area_km2=sum(m.area_km2 for m in mine), xy=xy)


def block_stations(place: GridPlace, zones_per_side: int, hospitals: int, ambulances: int, load_multiplier: float,
                   radius_s: float, busy_q: float) -> tuple[dict[str, str], dict[str, float]]:
    """Ambulance id → home station of the place's blocks (MEXCLP within each block), and the demand per zone."""
    from aicity.domains.safety.planning import historical_demand, home_stations

    if ambulances % place.k:
        raise UserError(f"a gridcity-{place.k} EMS needs a number of ambulances divisible by its {place.k} "
                        f"blocks, got {ambulances}")
    per = ambulances // place.k
    units: dict[str, str] = {}
    demand: dict[str, float] = {}
    for b in place.blocks:
        bm = block_map(place.k, b, zones_per_side, hospitals)
        dem = historical_demand(bm, load_multiplier)
        for j, site in enumerate(home_stations(bm, dem, per, radius_s, busy_q)):
            units[f"A{b * per + j + 1}"] = site
        demand.update({_prefix(b, z): v for z, v in dem.items()})
    return units, demand


def block_incidents(place: GridPlace, zones_per_side: int, hospitals: int, *, begin_s: float, duration_s: float,
                    seed: int, load_multiplier: float, service_scale: float, drill_calls: int,
                    call_processing_s: float) -> list[Incident]:
    """The window's incidents of the place's blocks: each block's own seeded stream, ids ``b<k>-I<n>``."""
    from aicity.domains.safety.incidents import generate

    out: list[Incident] = []
    for b in place.blocks:
        bm = block_map(place.k, b, zones_per_side, hospitals)
        for inc in generate(bm, begin_s=begin_s, duration_s=duration_s, seed=seed * 1000 + b + 1,
                            load_multiplier=load_multiplier, service_scale=service_scale, drill_calls=drill_calls,
                            call_processing_s=call_processing_s):
            out.append(dataclasses.replace(inc, id=f"b{b + 1}-{inc.id}", zone=_prefix(b, inc.zone)))
    return sorted(out, key=lambda i: (i.call_s, i.id))


def grid_scenario(name: str) -> Scenario | None:
    """``gridcity-<K>-ems``: the EMS alone on the generated city, one ambulance and hospital per block; else None."""
    from aicity.domains.mobility import gridcity
    from aicity.domains.safety.const import DOMAIN

    m = NAME.fullmatch(name.strip().removeprefix(f"{DOMAIN}/"))
    if m is None:
        return None
    k = gridcity.districts_of(f"{gridcity.PREFIX}{m.group(1)}")
    assert k is not None
    base = gridcity.scenario(k)
    params: dict[str, Any] = {"ambulances": k, "zones_per_side": 2, "hospitals": 1,
                              "load_multiplier": LOAD_MULTIPLIER, "service_scale": SERVICE_SCALE,
                              "target_p1_s": TARGETS_S[0], "target_p2_s": TARGETS_S[1]}
    return Scenario(name=m.group(0), domain=DOMAIN, description=f"EMS on the generated gridcity-{k}: per block "
                    "one ambulance, one hospital, 4 zones; background traffic of the generated city",
                    begin_s=base.begin_s, end_s=base.end_s, path=base.path, params=params)
