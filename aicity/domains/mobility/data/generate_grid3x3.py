"""Regenerate the built-in ``grid3x3`` scenario (our own, Apache-2.0): a 3x3 signalised grid, 1 h of demand.

Run from this folder: ``python generate_grid3x3.py`` (needs eclipse-sumo). Seeded: the output is reproducible.
Demand is unbalanced on purpose (east-west heavier, peaking mid-hour) so that the network's equal-split
fixed-time programs are visibly outdated, as in many real cities.
"""

from __future__ import annotations

import math
import random
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIDES = {
    "west": [f"left{i}" for i in range(3)],
    "east": [f"right{i}" for i in range(3)],
    "south": [f"bottom{i}" for i in range(3)],
    "north": [f"top{i}" for i in range(3)],
}
ATTACH = {"left": "A", "right": "C", "bottom": "{}0", "top": "{}2"}
COLS = "ABC"


def _fringe_edges() -> dict[str, tuple[list[str], list[str]]]:
    """District → (edges entering the grid, edges leaving it)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for district, nodes in SIDES.items():
        ins, outs = [], []
        for node in nodes:
            i = int(node[-1])
            side = node[:-1]
            j = f"{ATTACH[side]}{i}" if side in ("left", "right") else ATTACH[side].format(COLS[i])
            ins.append(f"{node}{j}")
            outs.append(f"{j}{node}")
        out[district] = (ins, outs)
    return out


def main(seed: int = 42) -> None:
    """Write grid3x3.net.xml, grid3x3.rou.xml, grid3x3.taz.xml and grid3x3.sumocfg."""
    subprocess.run(
        ["netgenerate", "--grid", "--grid.number", "3", "--grid.length", "200", "--grid.attach-length", "150",
         "--default.lanenumber", "2", "--default.speed", "13.89", "-j", "traffic_light",
         "--tls.default-type", "static", "--tls.layout", "opposites", "--no-turnarounds", "true",
         "-o", str(HERE / "grid3x3.net.xml")], check=True)
    fringe = _fringe_edges()
    rng = random.Random(seed)
    weights = {"west": 3.0, "east": 3.0, "south": 1.0, "north": 1.0}
    trips = []
    t, n = 0.0, 0
    while True:
        rate = (900 + 700 * math.sin(math.pi * t / 3600.0)) / 3600.0  # veh/s: 900/h rising to 1600/h
        t += rng.expovariate(rate)
        if t >= 3600:
            break
        src = rng.choices(list(weights), weights=list(weights.values()))[0]
        dst_choices = [d for d in weights if d != src]
        dst = rng.choices(dst_choices, weights=[weights[d] for d in dst_choices])[0]
        trips.append((n, t, rng.choice(fringe[src][0]), rng.choice(fringe[dst][1])))
        n += 1
    trip_file = HERE / "grid3x3.trips.xml"
    with trip_file.open("w") as fh:
        fh.write("<routes>\n")
        for i, dep, a, b in trips:
            fh.write(f'    <trip id="v{i}" depart="{dep:.1f}" from="{a}" to="{b}" departLane="best"/>\n')
        fh.write("</routes>\n")
    subprocess.run(["duarouter", "-n", str(HERE / "grid3x3.net.xml"), "--route-files", str(trip_file),
                    "-o", str(HERE / "grid3x3.rou.xml"), "--no-step-log", "--no-warnings",
                    "--seed", str(seed), "--write-license", "false"], check=True)
    trip_file.unlink()
    alt = HERE / "grid3x3.rou.alt.xml"
    if alt.exists():
        alt.unlink()
    with (HERE / "grid3x3.taz.xml").open("w") as fh:
        fh.write("<additional>\n")
        for district, (ins, outs) in fringe.items():
            fh.write(f'    <taz id="{district}" edges="{" ".join(ins + outs)}"/>\n')
        fh.write("</additional>\n")
    (HERE / "grid3x3.sumocfg").write_text(
        "<configuration>\n  <input>\n    <net-file value=\"grid3x3.net.xml\"/>\n"
        "    <route-files value=\"grid3x3.rou.xml\"/>\n    <additional-files value=\"grid3x3.taz.xml\"/>\n"
        "  </input>\n  <time>\n    <begin value=\"0\"/>\n    <end value=\"3600\"/>\n  </time>\n"
        "</configuration>\n")


if __name__ == "__main__":
    main()
