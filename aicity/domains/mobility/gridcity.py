"""The generated ``gridcity-<K>`` scenarios: a row of K districts, each a block of 3x3 signalised junctions.

The net comes from SUMO's ``netgenerate`` (200 m blocks, one lane each way, 13.89 m/s, fringe edges on the
city's edge), the demand from our own seeded generator (:data:`MAP_SEED`), routed by ``duarouter``. Files are
cached under ``$XDG_CACHE_HOME/aicity/gridcity`` (else ``~/.cache``), keyed by K, :data:`GEN_VERSION` and the
SUMO version, and written atomically (a temporary folder renamed into place), so concurrent processes are safe.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aicity.core.domain import Scenario
from aicity.core.errors import UserError

PREFIX = "gridcity-"
MAX_DISTRICTS = 16
LISTED = (1, 2, 4, 8)
GEN_VERSION = 1
"""Bump whenever the generated files change (it is part of the cache key)."""
MAP_SEED = 16
"""The demand's fixed seed (the run's seed stays SUMO's own)."""
BLOCK = 3
"""Junctions per block side."""
BLOCK_M = 200.0
WINDOW_S = 3600.0
VEH_PER_HOUR_PER_DISTRICT = 360.0
LOCAL_SHARE = 0.5
"""Share of trips that start and end in the same district (the rest cross one or more borders)."""
VTYPE = "gridcar"
PARAMS = {"ev_per_hour": 0.0}
"""Scenario options of every gridcity: no emergency vehicles (each twin plans its own over its own net, which
would differ between a whole-city and a partitioned run)."""
LAYOUT = "layout.json"


def districts_of(name: str) -> int | None:
    """K of a ``gridcity-<K>`` name (None for another name; a K out of 1..16 is a :class:`UserError`)."""
    m = re.fullmatch(rf"{PREFIX}(\d+)", name.strip().removeprefix("mobility/"))
    if m is None:
        return None
    k = int(m.group(1))
    if not 1 <= k <= MAX_DISTRICTS:
        raise UserError(f"scenario {name!r}: a gridcity has 1 to {MAX_DISTRICTS} districts, not {k}")
    return k


def cache_root() -> Path:
    """The folder generated scenarios are cached in."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aicity" / "gridcity"


def sumo_tool(name: str) -> str:
    """Path of a SUMO tool (``netgenerate``, ``netconvert``, ``duarouter``) next to the ``sumo`` binary."""
    from aicity.domains.mobility.scenarios import sumo_binary

    sumo = Path(sumo_binary())
    tool = sumo.with_name(name + sumo.suffix)
    if not tool.is_file():
        raise UserError(f"the SUMO tool {name!r} was not found next to {str(sumo)!r}")
    return str(tool)


def sumo_version() -> str:
    """The SUMO version string (``1.28.0``) of the ``sumo`` binary in use."""
    from aicity.domains.mobility.scenarios import sumo_binary

    out = subprocess.run([sumo_binary(), "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"sumo Version ([^\s]+)|sumo ([0-9][^\s]*)", out)
    return next((g for g in (m.groups() if m else ()) if g), "unknown")


def run_tool(args: list[str]) -> None:
    """Run a SUMO tool; a failure is a :class:`UserError` with its last line of output."""
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        raise UserError(f"{Path(args[0]).name} failed: {last}")


def cached(folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder``, built by ``build(tmp)`` into a temporary sibling and renamed into place unless already there."""
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        build(tmp)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished first: its files are the same
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def city_dir(k: int) -> Path:
    """The (generated, cached) folder of ``gridcity-<k>``."""
    key = f"v{GEN_VERSION}-sumo{sumo_version()}"
    return cached(cache_root() / key / f"{PREFIX}{k}", lambda tmp: _build(k, tmp))


def scenario(k: int) -> Scenario:
    """The ``gridcity-<k>`` scenario (generated on first use)."""
    from aicity.domains.mobility.scenarios import DOMAIN, read_sumocfg

    cfg = read_sumocfg(city_dir(k) / f"{PREFIX}{k}.sumocfg")
    return Scenario(name=f"{PREFIX}{k}", domain=DOMAIN, description=(
        f"generated row of {k} district(s) of 3x3 signals, 200 m blocks, 1 h, "
        f"{VEH_PER_HOUR_PER_DISTRICT * k:g} veh/h, {100 * (1 - LOCAL_SHARE):g}% crossing districts"),
        begin_s=cfg.begin_s, end_s=cfg.end_s, path=cfg.path, params=dict(PARAMS))


def read_layout(folder: Path) -> dict[str, Any]:
    """The generated city's layout: ``k``, per edge ``[from block, to block]`` and per edge its route order."""
    data: dict[str, Any] = json.loads((folder / LAYOUT).read_text())
    return data


def sumocfg_xml(net: str, routes: str, additional: str, begin_s: float, end_s: float) -> str:
    """A ``.sumocfg`` naming its files relative to its folder."""
    return (f'<configuration>\n  <input>\n    <net-file value="{net}"/>\n    <route-files value="{routes}"/>\n'
            f'    <additional-files value="{additional}"/>\n  </input>\n  <time>\n'
            f'    <begin value="{begin_s:g}"/>\n    <end value="{end_s:g}"/>\n  </time>\n</configuration>\n')


def taz_xml(blocks: dict[str, str]) -> str:
    """One ``<taz>`` per block (``b1``..``bK``) naming the edges that start in it."""
    by: dict[str, list[str]] = {}
    for edge, b in sorted(blocks.items()):
        by.setdefault(b, []).append(edge)
    lines = [f'    <taz id="{b}" edges="{" ".join(edges)}"/>' for b, edges in sorted(by.items(), key=_block_key)]
    return "<additional>\n" + "\n".join(lines) + "\n</additional>\n"


def _block_key(item: tuple[str, Any]) -> int:
    return int(item[0][1:])


def _build(k: int, out: Path) -> None:
    name = f"{PREFIX}{k}"
    net = out / f"{name}.net.xml"
    run_tool([sumo_tool("netgenerate"), "--grid", "--grid.x-number", str(BLOCK * k), "--grid.y-number", str(BLOCK),
              "--grid.length", f"{BLOCK_M:g}", "--grid.attach-length", f"{BLOCK_M:g}",
              "--default.lanenumber", "1", "--default.speed", "13.89", "-j", "traffic_light",
              "--tls.default-type", "static", "--tls.layout", "opposites", "--no-turnarounds", "true",
              "--no-warnings", "true", "--seed", str(MAP_SEED), "-o", str(net)])
    edges = _edge_blocks(net, k)
    trips = _trips(edges, k, random.Random(MAP_SEED))
    trip_file = out / "trips.xml"
    trip_file.write_text("<routes>\n" + "".join(
        f'    <trip id="v{i}" depart="{t:.1f}" from="{a}" to="{b}"/>\n' for i, (t, a, b) in enumerate(trips))
        + "</routes>\n")
    routed = out / "routed.xml"
    run_tool([sumo_tool("duarouter"), "-n", str(net), "--route-files", str(trip_file), "-o", str(routed),
              "--no-step-log", "true", "--no-warnings", "true", "--seed", str(MAP_SEED),
              "--write-license", "false", "--alternatives-output", "NUL" if os.name == "nt" else "/dev/null"])
    vehicles = [(el.get("id", ""), float(el.get("depart", "0")), (route.get("edges") or "").split())
                for el in ET.parse(routed).getroot().iter("vehicle") if (route := el.find("route")) is not None]
    (out / f"{name}.rou.xml").write_text(routes_xml(vehicles))
    for f in (trip_file, routed):
        f.unlink()
    (out / f"{name}.taz.xml").write_text(taz_xml({e: f"b{fb + 1}" for e, (fb, _, _, _) in edges.items()}))
    (out / f"{name}.sumocfg").write_text(sumocfg_xml(net.name, f"{name}.rou.xml", f"{name}.taz.xml", 0.0,
                                                     WINDOW_S))
    (out / LAYOUT).write_text(json.dumps({"k": k, "edges": {e: [fb, tb] for e, (fb, tb, _, _) in edges.items()}},
                                         sort_keys=True))


ROUTE_PARAM = "aicity.route"
"""Vehicle parameter holding a district vehicle's whole remaining route (its district route is a cut of it)."""


def routes_xml(vehicles: list[tuple[str, float, list[str]]], full: dict[str, list[str]] | None = None) -> str:
    """A route file of one deterministic car type; ``full``, when given, keeps each vehicle's whole route as
    its ``aicity.route`` parameter (a district's vehicles drive a cut of it).

    The type has ``sigma="0"`` and ``speedDev="0"``: every car drives the same deterministic way, without the
    random dawdling and speed draws that would differ between a whole-city run and a partitioned one (whose
    processes draw from different random streams), so the two can be compared vehicle by vehicle.
    """
    lines = ["<routes>",
             f'    <vType id="{VTYPE}" sigma="0" speedDev="0"/>']
    for vid, depart, edges in vehicles:
        lines.append(f'    <vehicle id="{vid}" type="{VTYPE}" depart="{depart:.1f}" departLane="best" '
                     'departSpeed="max">')
        lines.append(f'        <route edges="{" ".join(edges)}"/>')
        if full is not None:
            lines.append(f'        <param key="{ROUTE_PARAM}" value="{" ".join(full[vid])}"/>')
        lines.append("    </vehicle>")
    return "\n".join(lines) + "\n</routes>\n"



def _edge_blocks(net: Path, k: int) -> dict[str, tuple[int, int, bool, bool]]:
    """Edge → (block of its from-node, block of its to-node, enters the city, leaves the city)."""
    root = ET.parse(net).getroot()
    xs: dict[str, float] = {}
    fringe: set[str] = set()
    for j in root.iter("junction"):
        if j.get("type") == "internal":
            continue
        xs[j.get("id", "")] = float(j.get("x", "0"))
        if j.get("type") == "dead_end":
            fringe.add(j.get("id", ""))
    x0 = min(x for j, x in xs.items() if j not in fringe)

    def block(node: str) -> int:
        col = round((xs[node] - x0) / BLOCK_M)
        return min(max(col // BLOCK, 0), k - 1)

    out: dict[str, tuple[int, int, bool, bool]] = {}
    for e in root.iter("edge"):
        if e.get("function") == "internal":
            continue
        a, b = e.get("from", ""), e.get("to", "")
        out[e.get("id", "")] = (block(a), block(b), a in fringe, b in fringe)
    return out


def _trips(edges: dict[str, tuple[int, int, bool, bool]], k: int,
           rng: random.Random) -> list[tuple[float, str, str]]:
    """Seeded Poisson arrivals over the window: fringe to fringe, :data:`LOCAL_SHARE` inside one district."""
    sources = {b: sorted(e for e, (fb, _, enters, _) in edges.items() if enters and fb == b) for b in range(k)}
    sinks = {b: sorted(e for e, (_, tb, _, leaves) in edges.items() if leaves and tb == b) for b in range(k)}
    rate = VEH_PER_HOUR_PER_DISTRICT * k / 3600.0
    out: list[tuple[float, str, str]] = []
    t = 0.0
    while True:
        t += rng.expovariate(rate)
        if t >= WINDOW_S - 300.0:  # the last five minutes let the last trips finish
            return out
        home = rng.randrange(k)
        src = rng.choice(sources[home])
        dest = home if k == 1 or rng.random() < LOCAL_SHARE else rng.choice([b for b in range(k) if b != home])
        choices = [s for s in sinks[dest] if not _reverse(src, s)]
        out.append((round(t, 1), src, rng.choice(choices)))


def _reverse(src: str, sink: str) -> bool:
    """True when ``sink`` leads back to the fringe node ``src`` came from (a U-turn trip)."""
    m = re.fullmatch(r"([a-z]+\d+)([A-Z]+\d+)", src)
    return m is not None and sink == m.group(2) + m.group(1)

