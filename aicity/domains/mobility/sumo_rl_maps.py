"""The sumo-rl wheel's own (non-RESCO) maps as scenarios, read where the wheel installed them.

Their ``.sumocfg`` files run for 20,000–260,000 s of repeating flows, name routes that are not shipped
(``2way-single-intersection``) or are missing (``2x2grid``, ``double``), so each map is registered with the
routes sumo-rl's own experiments use and a one-hour window (0–3600 s, like the RESCO maps). The SUMO
configuration is generated (it only names the wheel's files by absolute path: nothing is copied; several of
them are GPL or non-commercial) into a per-user folder under the system temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

WINDOW_S = 3600.0


@dataclass(frozen=True, slots=True)
class MapSpec:
    """One map of the wheel: its folder under ``sumo_rl/nets``, net, routes, additional files, description."""

    folder: str
    net: str
    routes: tuple[str, ...]
    additional: tuple[str, ...]
    note: str


SUMO_RL_MAPS: dict[str, MapSpec] = {
    "single-intersection": MapSpec("single-intersection", "single-intersection.net.xml",
                                   ("single-intersection.rou.xml",), (),
                                   "one signal, two one-way approaches, 2 phases, random flows"),
    "2way-single-intersection": MapSpec("2way-single-intersection", "single-intersection.net.xml",
                                        ("single-intersection-vhvh.rou.xml",), (),
                                        "one signal, four two-way approaches with turns, 4 phases"),
    "2x2grid": MapSpec("2x2grid", "2x2.net.xml", ("2x2.rou.xml",), (), "2x2 grid, 4 signals"),
    "3x3grid": MapSpec("3x3grid", "3x3Grid2lanes.net.xml", ("routes14000.rou.xml",), (),
                       "3x3 grid of two-lane roads, 9 signals, routed trips"),
    "4x4-Lucas": MapSpec("4x4-Lucas", "4x4.net.xml", ("4x4c2.rou.xml",), (), "4x4 grid, 16 signals"),
    "4x4loop": MapSpec("4x4loop", "4x4loop.net.xml", ("4x4loop.rou.xml",), ("circle.add.xml",),
                       "4x4 grid, 16 signals, 200 vehicles rerouted round a loop"),
    "Nguyen": MapSpec("Nguyen", "nguyentl.net.xml", ("nguyencontext.rou.xml",), (),
                      "Nguyen-Dupuis network, 8 signals, 4,600 trips in 2,000 s"),
    "OW": MapSpec("OW", "OW.net.xml", ("OW-nowait.rou.xml",), (), "Ortuzar-Willumsen network, no signals"),
    "double": MapSpec("double", "network.net.xml", ("flow.rou.xml",), (),
                      "two adjacent signals, mixed vehicle classes"),
    "simple": MapSpec("simple", "simple.net.xml", ("simple.rou.xml",), (), "four nodes, no signals, 1 vehicle"),
}


def canonical(name: str) -> str | None:
    """The registered name matching ``name`` case-insensitively, or None."""
    low = name.lower()
    return next((k for k in SUMO_RL_MAPS if k.lower() == low), None)


def config_text(nets_dir: Path, spec: MapSpec) -> str:
    """A SUMO configuration naming the wheel's files of ``spec`` by absolute path, with the one-hour window."""
    folder = (nets_dir / spec.folder).resolve()

    def files(names: tuple[str, ...]) -> str:
        return ",".join(_xml(str(folder / n)) for n in names)

    extra = f'        <additional-files value="{files(spec.additional)}"/>\n' if spec.additional else ""
    return ("<configuration>\n    <input>\n"
            f'        <net-file value="{_xml(str(folder / spec.net))}"/>\n'
            f'        <route-files value="{files(spec.routes)}"/>\n{extra}'
            "    </input>\n    <time>\n"
            f'        <begin value="0"/>\n        <end value="{WINDOW_S:g}"/>\n'
            "    </time>\n</configuration>\n")


def config_path(nets_dir: Path, name: str) -> Path:
    """Write (if changed, atomically) and return the generated configuration of map ``name``."""
    text = config_text(nets_dir, SUMO_RL_MAPS[name])
    uid = os.getuid() if hasattr(os, "getuid") else 0
    folder = Path(tempfile.gettempdir()) / f"aicity-sumo-rl-{uid}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.sumocfg"
    if not path.is_file() or path.read_text() != text:
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
