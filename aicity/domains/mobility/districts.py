"""A ``gridcity-<K>`` cut into D districts (D divides K): one net, route file and ``.sumocfg`` per district.

District ``dN`` (west to east) holds K/D adjacent blocks. Its net is the whole net cut by ``netconvert`` to the
edges that start or end in it: a border edge (from-node and to-node in different districts) is kept in both
districts' nets — a dead end in the sending one, an entry in the receiving one — with the whole net's length,
and the junctions of the neighbour left at its ends are plain dead ends (so every signal is in exactly one
district, under its whole-net id and program). Its routes are the vehicles that depart in it, each cut after
the first border edge it takes; the whole route stays in the vehicle's ``aicity.route`` parameter for the
twin to hand over (:mod:`aicity.domains.mobility.border`).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from aicity.core.capabilities import DistrictScenario
from aicity.core.domain import Scenario
from aicity.core.errors import UserError
from aicity.domains.mobility import gridcity

BORDERS = "borders.json"


def district_name(i: int) -> str:
    """The name of the ``i``-th district from the west (0-based): ``d1``, ``d2``, ..."""
    return f"d{i + 1}"


def partition(scenario: Scenario, districts: int) -> list[DistrictScenario]:
    """``scenario`` (a gridcity) as ``districts`` districts ``d1``..``dD`` west to east, or a :class:`UserError`."""
    k = gridcity.districts_of(scenario.name)
    if k is None or scenario.path is None:
        raise UserError(f"scenario {scenario.name!r} cannot be partitioned: only gridcity-<K> scenarios can")
    if isinstance(districts, bool) or not isinstance(districts, int) or districts < 1 or k % districts:
        raise UserError(f"{scenario.name} splits into a number of districts that divides {k}, not {districts!r}")
    city = Path(scenario.path).parent
    folder = gridcity.cached(city / f"districts-{districts}", lambda tmp: _build(city, k, districts, tmp))
    borders: dict[str, dict[str, dict[str, str]]] = json.loads((folder / BORDERS).read_text())
    out = []
    for i in range(districts):
        name = district_name(i)
        b = borders[name]
        params: dict[str, Any] = {**scenario.params,
                                  "borders": {"district": name, "out": dict(b["out"]), "in": dict(b["in"])}}
        scen = Scenario(name=f"{scenario.name}.{name}", domain=scenario.domain,
                        description=f"district {name} of {scenario.name} ({k // districts} block(s))",
                        begin_s=scenario.begin_s, end_s=scenario.end_s, path=str(folder / name / f"{name}.sumocfg"),
                        params=params)
        out.append(DistrictScenario(district=name, scenario=scen, borders=dict(b["out"])))
    return out


def _build(city: Path, k: int, d: int, out: Path) -> None:
    """Write each district's folder and ``borders.json`` into ``out``."""
    per = k // d
    layout = gridcity.read_layout(city)
    owner = {e: (fb // per, tb // per) for e, (fb, tb) in layout["edges"].items()}
    name = f"{gridcity.PREFIX}{k}"
    net = city / f"{name}.net.xml"
    root = ET.parse(net).getroot()
    ends: dict[str, tuple[str, str]] = {}
    length: dict[str, float] = {}
    for e in root.iter("edge"):
        if e.get("function") != "internal":
            ends[e.get("id", "")] = (e.get("from", ""), e.get("to", ""))
            lane = e.find("lane")
            length[e.get("id", "")] = float(lane.get("length", "0")) if lane is not None else 0.0
    vehicles = [(v.get("id", ""), float(v.get("depart", "0")), (r.get("edges") or "").split())
                for v in ET.parse(city / f"{name}.rou.xml").getroot().iter("vehicle")
                if (r := v.find("route")) is not None]
    borders: dict[str, dict[str, dict[str, str]]] = {}
    for i in range(d):
        dn = district_name(i)
        folder = out / dn
        folder.mkdir()
        keep = sorted(e for e, (a, b) in owner.items() if i in (a, b))
        border = [e for e in keep if owner[e][0] != owner[e][1]]
        foreign = sorted({ends[e][j] for e in border for j in (0, 1) if owner[e][j] != i})
        (folder / "keep.txt").write_text("\n".join(keep) + "\n")
        (folder / "lengths.edg.xml").write_text(  # cut dead ends would otherwise lengthen the border edges
            "<edges>\n" + "".join(f'    <edge id="{e}" length="{length[e]:.2f}"/>\n' for e in border) + "</edges>\n")
        args = [gridcity.sumo_tool("netconvert"), "-s", str(net), "-e", str(folder / "lengths.edg.xml"),
                "--keep-edges.input-file", str(folder / "keep.txt"), "--no-warnings", "true",
                "-o", str(folder / f"{dn}.net.xml")]
        gridcity.run_tool(args + (["--tls.unset", ",".join(foreign)] if foreign else []))
        (folder / "keep.txt").unlink()
        (folder / "lengths.edg.xml").unlink()
        mine = [(vid, t, cut_route(edges, owner, i)) for vid, t, edges in vehicles if owner[edges[0]][0] == i]
        (folder / f"{dn}.rou.xml").write_text(gridcity.routes_xml(mine, {vid: e for vid, _, e in vehicles}))
        (folder / f"{dn}.taz.xml").write_text(gridcity.taz_xml(
            {e: f"b{fb + 1}" for e, (fb, _) in layout["edges"].items() if e in set(keep)}))
        (folder / f"{dn}.sumocfg").write_text(gridcity.sumocfg_xml(
            f"{dn}.net.xml", f"{dn}.rou.xml", f"{dn}.taz.xml", 0.0, gridcity.WINDOW_S))
        borders[dn] = {"out": {e: district_name(owner[e][1]) for e in border if owner[e][0] == i},
                       "in": {e: district_name(owner[e][0]) for e in border if owner[e][1] == i}}
    (out / BORDERS).write_text(json.dumps(borders, sort_keys=True, indent=1))


def cut_route(edges: list[str], owner: dict[str, tuple[int, int]], district: int) -> list[str]:
    """``edges`` up to and including the first edge leaving ``district`` (all of them if none does)."""
    out = []
    for e in edges:
        out.append(e)
        if owner[e][1] != district:
            break
    return out


def on_this_machine(scenario: Scenario) -> Scenario:
    """``scenario`` with files on this machine: a district's files are generated here (deterministically, into
    this machine's cache) when its path is not found — a worker on another machine of a cluster."""
    if scenario.path is None or Path(scenario.path).is_file() or "." not in scenario.name:
        return scenario
    city, _, name = scenario.name.rpartition(".")
    folder = Path(scenario.path).parent.parent.name  # districts-<D>
    k = gridcity.districts_of(city)
    if k is None or not folder.startswith("districts-") or not folder[len("districts-"):].isdigit():
        return scenario
    for d in partition(gridcity.scenario(k), int(folder[len("districts-"):])):
        if d.district == name:
            return Scenario(scenario.name, scenario.domain, scenario.description, scenario.begin_s, scenario.end_s,
                            d.scenario.path, scenario.params)
    return scenario
