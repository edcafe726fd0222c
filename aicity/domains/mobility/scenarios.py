"""Mobility scenarios: every map shipped in the ``sumo-rl`` wheel, our built-in grids, or any ``.sumocfg``.

The wheel's files are read where it installed them (never copied: their licences are not ours). Its RESCO maps
run their own ``.sumocfg``; its other maps are described in :mod:`aicity.domains.mobility.sumo_rl_maps`.
The generated ``gridcity-<K>`` rows of districts are in :mod:`aicity.domains.mobility.gridcity`.
"""

from __future__ import annotations

import importlib.util
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from aicity.core.domain import Scenario
from aicity.core.errors import UserError
from aicity.domains.mobility.sumo_rl_maps import SUMO_RL_MAPS, WINDOW_S, canonical, config_path

DOMAIN = "mobility"
DATA = Path(__file__).resolve().parent / "data"
BUILTIN = {"grid3x3": DATA / "grid3x3.sumocfg"}
RESCO_MAPS = ("cologne1", "cologne3", "cologne8", "ingolstadt1", "ingolstadt7", "ingolstadt21",
              "grid4x4", "arterial4x4")
RESCO_NOTES = {
    "cologne8": "TAPASCologne, 8 signals, 07:00-08:00",
    "ingolstadt7": "InTAS, 7 signals, 16:00-17:00 (sumo-rl's copy: one 25 s phase commented out)",
    "grid4x4": "synthetic 4x4 grid, 16 signals",
    "arterial4x4": "synthetic arterial grid, 16 signals",
    "cologne1": "TAPASCologne, 1 signal", "cologne3": "TAPASCologne, 3 signals",
    "ingolstadt1": "InTAS, 1 signal", "ingolstadt21": "InTAS, 21 signals",
}


@dataclass(frozen=True, slots=True)
class SumoConfig:
    """The parts of a ``.sumocfg`` the twin needs, with absolute paths."""

    path: str
    net: str
    routes: tuple[str, ...]
    additional: tuple[str, ...]
    begin_s: float
    end_s: float


def ensure_sumo_home() -> str:
    """Set ``SUMO_HOME`` from the installed eclipse-sumo wheel if unset (called at first use, not at import)."""
    home = os.environ.get("SUMO_HOME")
    if home and (Path(home) / "bin").is_dir():  # libsumo's import may set it to a data-only folder
        return home
    try:
        import sumo  # the eclipse-sumo wheel
    except ImportError as exc:
        raise UserError("SUMO is not installed: pip install 'aicity[mobility]'") from exc
    os.environ["SUMO_HOME"] = str(sumo.SUMO_HOME)
    return str(sumo.SUMO_HOME)


def sumo_binary() -> str:
    """Path of the ``sumo`` executable (from the eclipse-sumo wheel, else from PATH)."""
    import shutil

    home = Path(ensure_sumo_home())
    for cand in (home / "bin" / "sumo", home / "bin" / "sumo.exe"):
        if cand.is_file():
            return str(cand)
    found = shutil.which("sumo")
    if found is None:
        raise UserError("the sumo executable was not found: pip install 'aicity[mobility]'")
    return found


def nets_dir() -> Path | None:
    """Folder of the maps inside the installed sumo-rl wheel (``sumo_rl/nets``), or None."""
    try:
        spec = importlib.util.find_spec("sumo_rl")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "nets"
    return folder if folder.is_dir() else None


def resco_dir() -> Path | None:
    """Folder of the RESCO maps inside the installed sumo-rl wheel, or None."""
    nets = nets_dir()
    folder = nets / "RESCO" if nets is not None else None
    return folder if folder is not None and folder.is_dir() else None


def _sumo_rl_scenario(name: str, nets: Path) -> Scenario | None:
    spec = SUMO_RL_MAPS[name]
    if not all((nets / spec.folder / f).is_file() for f in (spec.net, *spec.routes, *spec.additional)):
        return None
    return _scenario(name, config_path(nets, name),
                     f"sumo-rl {name}: {spec.note}, first {WINDOW_S / 3600:g} h (from the sumo-rl wheel)")


def read_sumocfg(path: str | Path) -> SumoConfig:
    """Parse a ``.sumocfg``; raises :class:`UserError` naming the file and the problem."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"scenario file {str(p)!r} does not exist")
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise UserError(f"scenario file {str(p)!r} does not parse as a SUMO configuration: {exc}") from exc

    def opt(*names: str) -> str | None:
        for name in names:
            for el in root.iter(name):
                if el.get("value") is not None:
                    return el.get("value")
        return None

    def files(value: str | None) -> tuple[str, ...]:
        if not value:
            return ()
        parts = [s.strip() for s in value.replace(";", ",").split(",") if s.strip()]
        return tuple(str((p.parent / s).resolve()) for s in parts)

    net = files(opt("net-file", "n"))
    if not net:
        raise UserError(f"scenario file {str(p)!r} names no net-file")
    for f in net + files(opt("route-files", "r")) + files(opt("additional-files", "a")):
        if not Path(f).is_file():
            raise UserError(f"scenario file {str(p)!r} refers to {f!r}, which does not exist")
    try:
        begin = float(opt("begin", "b") or 0.0)
        end = float(opt("end", "e") or (begin + 3600.0))
    except ValueError as exc:
        raise UserError(f"scenario file {str(p)!r} has a begin or end that is not a number of seconds") from exc
    if end <= begin:
        raise UserError(f"scenario file {str(p)!r}: end {end:g} is not after begin {begin:g}")
    return SumoConfig(str(p.resolve()), net[0], files(opt("route-files", "r")),
                      files(opt("additional-files", "a")), begin, end)


def _scenario(name: str, cfg_path: Path, description: str) -> Scenario:
    cfg = read_sumocfg(cfg_path)
    return Scenario(name=name, domain=DOMAIN, description=description, begin_s=cfg.begin_s, end_s=cfg.end_s,
                    path=cfg.path)


def builtin_scenarios() -> list[Scenario]:
    """Every scenario known by name: the built-in grid, then the RESCO and other maps the sumo-rl wheel provides."""
    from aicity.domains.mobility import gridcity

    out = [_scenario("grid3x3", BUILTIN["grid3x3"],
                     "built-in 3x3 signalised grid, 1 h, east-west heavy demand, 4 districts")]
    out.extend(gridcity.scenario(k) for k in gridcity.LISTED)
    folder = resco_dir()
    if folder is not None:
        for m in RESCO_MAPS:
            cfg = folder / m / f"{m}.sumocfg"
            if cfg.is_file():
                out.append(_scenario(m, cfg, f"RESCO {m}: {RESCO_NOTES.get(m, '')} (from the sumo-rl wheel)"))
    nets = nets_dir()
    if nets is not None:
        out.extend(s for s in (_sumo_rl_scenario(m, nets) for m in SUMO_RL_MAPS) if s is not None)
    return out


def resolve(name_or_path: str) -> Scenario | None:
    """A scenario by name or ``.sumocfg`` path; None when it is neither a known name nor a sumocfg path.

    A path that looks like a SUMO configuration but is missing or broken raises :class:`UserError`.
    """
    key = name_or_path.strip()
    if key.startswith("mobility/"):
        key = key.split("/", 1)[1]
    if key in BUILTIN:
        return _scenario(key, BUILTIN[key], "built-in 3x3 signalised grid, 1 h, 4 districts")
    from aicity.domains.mobility import gridcity

    k = gridcity.districts_of(key)
    if k is not None:
        return gridcity.scenario(k)
    if key in RESCO_MAPS:
        folder = resco_dir()
        if folder is None:
            raise UserError(f"scenario {key!r} needs the sumo-rl wheel (pip install sumo-rl --no-deps)")
        return _scenario(key, folder / key / f"{key}.sumocfg", f"RESCO {key}: {RESCO_NOTES.get(key, '')}")
    rl_name = canonical(key)
    if rl_name is not None:
        nets = nets_dir()
        scen = _sumo_rl_scenario(rl_name, nets) if nets is not None else None
        if scen is None:
            raise UserError(f"scenario {key!r} needs the sumo-rl wheel (pip install sumo-rl --no-deps)")
        return scen
    if key.endswith(".sumocfg") or (Path(key).suffix in (".cfg", ".xml") and Path(key).is_file()):
        cfg = read_sumocfg(key)
        return Scenario(name=Path(cfg.path).stem, domain=DOMAIN, description=f"user scenario {cfg.path}",
                        begin_s=cfg.begin_s, end_s=cfg.end_s, path=cfg.path)
    return None


def require(name_or_path: str) -> Scenario:
    """Like :func:`resolve` but raises :class:`UserError` for an unknown name."""
    scen = resolve(name_or_path)
    if scen is None:
        names = ", ".join(s.name for s in builtin_scenarios())
        raise UserError(f"unknown mobility scenario {name_or_path!r}; known: {names} (or a path to a .sumocfg)")
    return scen
