"""Walkable copies of a scenario: sidewalks, pedestrian crossings and walking areas added by ``netconvert``.

Real networks converted from OpenStreetMap carry sidewalks, signalised crossings and walking areas (internal
pedestrian lanes that signals control too). :func:`make_walkable` turns any scenario's network into one
(``netconvert --sidewalks.guess --crossings.guess``), keeps its vehicle demand and window, and adds seeded
pedestrian flows between fringe sidewalks, so the twin and every controller can be tested on such a network::

    python -m aicity.domains.mobility.walkable grid3x3 /tmp/grid3x3-walk
"""

from __future__ import annotations

import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from aicity.core.errors import UserError
from aicity.domains.mobility.scenarios import ensure_sumo_home, read_sumocfg, require


def sumo_tool(name: str) -> str:
    """Path of a SUMO executable (``netconvert``, ``duarouter``, …) from the eclipse-sumo wheel."""
    home = Path(ensure_sumo_home())
    for cand in (home / "bin" / name, home / "bin" / f"{name}.exe"):
        if cand.is_file():
            return str(cand)
    raise UserError(f"the SUMO tool {name!r} was not found under {home}")


def add_sidewalks(net_in: str | Path, net_out: str | Path) -> None:
    """Write ``net_out``: ``net_in`` with guessed sidewalks, crossings and walking areas."""
    cmd = [sumo_tool("netconvert"), "-s", str(net_in), "--sidewalks.guess", "--crossings.guess",
           "--no-warnings", "-o", str(net_out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise UserError(f"netconvert failed on {net_in}: {done.stderr.strip()[-500:]}")


def fringe_sidewalk_edges(net_file: str | Path) -> tuple[list[str], list[str]]:
    """Edges with a sidewalk that leave a dead end (sources) and that enter one (sinks), sorted."""
    root = ET.parse(net_file).getroot()
    dead = {j.get("id") for j in root.iter("junction") if j.get("type") == "dead_end"}
    sources, sinks = [], []
    for edge in root.iter("edge"):
        if edge.get("function", "normal") != "normal":
            continue
        if not any("pedestrian" in (ln.get("allow") or "").split() for ln in edge.iter("lane")):
            continue
        if edge.get("from") in dead:
            sources.append(edge.get("id", ""))
        if edge.get("to") in dead:
            sinks.append(edge.get("id", ""))
    return sorted(sources), sorted(sinks)


def pedestrian_routes(net_file: str | Path, begin_s: float, end_s: float, *, flows: int, period_s: float,
                      seed: int) -> str:
    """A routes file of ``flows`` seeded pedestrian flows (one walker every ``period_s``) between fringes."""
    sources, sinks = fringe_sidewalk_edges(net_file)
    lines = ["<routes>"]
    rng = random.Random(seed)
    for k in range(flows if sources and sinks else 0):
        a = rng.choice(sources)
        b = rng.choice([s for s in sinks if s != a] or sinks)
        lines.append(f'    <personFlow id="aicity_ped_{k}" begin="{begin_s:g}" end="{end_s:g}" '
                     f'period="{period_s:g}">\n        <walk from="{a}" to="{b}"/>\n    </personFlow>')
    lines.append("</routes>")
    return "\n".join(lines) + "\n"


def make_walkable(source: str, out_dir: str | Path, *, flows: int = 8, period_s: float = 60.0,
                  seed: int = 1) -> Path:
    """Write a walkable copy of scenario ``source`` (a name or ``.sumocfg``) into ``out_dir``; its sumocfg path."""
    scen = require(source)
    assert scen.path is not None
    cfg = read_sumocfg(scen.path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = out / f"{scen.name}-walk.net.xml"
    add_sidewalks(cfg.net, net)
    peds = out / f"{scen.name}-walk.ped.rou.xml"
    peds.write_text(pedestrian_routes(net, scen.begin_s, scen.end_s, flows=flows, period_s=period_s, seed=seed))
    extra = (f'        <additional-files value="{",".join(cfg.additional)}"/>\n' if cfg.additional else "")
    path = out / f"{scen.name}-walk.sumocfg"
    path.write_text("<configuration>\n    <input>\n"
                    f'        <net-file value="{net}"/>\n'
                    f'        <route-files value="{",".join([*cfg.routes, str(peds)])}"/>\n{extra}'
                    "    </input>\n    <time>\n"
                    f'        <begin value="{scen.begin_s:g}"/>\n        <end value="{scen.end_s:g}"/>\n'
                    "    </time>\n</configuration>\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m aicity.domains.mobility.walkable SCENARIO OUT_DIR``: print the walkable sumocfg's path."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m aicity.domains.mobility.walkable SCENARIO OUT_DIR", file=sys.stderr)
        return 2
    print(make_walkable(args[0], args[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
