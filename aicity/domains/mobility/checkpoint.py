"""What a mobility twin's checkpoint holds besides SUMO's own state file (see :meth:`SumoTwin.save_state`).

SUMO's state file (``simulation.saveState``, with ``--save-state.rng`` and ``--save-state.precision 9``) holds
the vehicles on the road with their routes, parameters and trip-info devices, the signals' programs, phases and
time in phase, the insertion backlog and every random number generator. It does not hold what SUMO has already
written to its outputs (the trips that ended, the detectors' closed intervals: on another machine those files
are gone, and SUMO flushes them only when it stops), nor the detectors' open intervals and current readings, nor
vehicles that have not departed yet (SUMO loads those again from the route files; vehicles added by a twin are
added again by it). So at a checkpoint the twin stops SUMO (its outputs written whole), keeps their records
(:func:`records`, :func:`kept_at_restart`) and starts SUMO again from the state file, exactly as a new worker
does: the run that was checkpointed and the run restored from it go on the same way.
"""

from __future__ import annotations

import pickle
import re
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError

OUTPUTS = ("tripinfo.xml", "e2.xml")
"""The SUMO outputs the KPIs read at close, by file name in the twin's output folder."""
BEFORE = "before-"
"""Prefix of an output's records written before the checkpoint a twin went on from."""


def records(path: Path) -> list[str]:
    """The complete elements directly under the root of a SUMO output (closed or not), as XML text each."""
    if not path.is_file():
        return []
    parser: Any = ET.XMLPullParser(events=("start", "end"))
    parser.feed(path.read_bytes())
    out: list[str] = []
    depth = 0
    for event, el in parser.read_events():
        if event == "start":
            depth += 1
            continue
        depth -= 1
        if depth == 1 and isinstance(el, ET.Element):
            el.tail = None
            out.append(ET.tostring(el, encoding="unicode"))
    return out


def kept_at_restart(record: str) -> bool:
    """False for what SUMO writes when it stops mid-run and a checkpoint goes on from: a trip still on the road
    (``arrival`` -1: it goes on in the next run) and a detector interval of no length."""
    el = ET.fromstring(record)
    if el.tag == "tripinfo":
        return float(el.get("arrival", "-1") or -1) >= 0
    if el.tag == "interval":
        return float(el.get("end", "0")) > float(el.get("begin", "0"))
    return True


def write_records(path: Path, items: list[str]) -> None:
    """Write ``items`` (from :func:`records`) as one XML file the KPI readers parse like SUMO's own."""
    path.write_text("<records>\n" + "".join(f"    {r}\n" for r in items) + "</records>\n")


def output_files(folder: Path, name: str) -> list[Path]:
    """The files holding output ``name``: the records from before a checkpoint, if any, then the run's own."""
    return [p for p in (folder / f"{BEFORE}{name}", folder / name) if p.is_file()]


def state_vehicles(path: Path) -> set[str]:
    """The vehicles a SUMO state file holds (on the road, and those loaded that have not departed yet)."""
    return set(re.findall(r'<vehicle id="([^"]+)"', path.read_text()))


def load_state_args(args: list[str], at_s: float, path: Path) -> list[str]:
    """SUMO's command line ``args`` started again at ``at_s`` from the state file ``path`` (``--load-state``)."""
    begin = args.index("--begin")  # SUMO starts at the state's time (and so do detector intervals)
    return [*args[:begin + 1], f"{at_s:g}", *args[begin + 2:], "--load-state", str(path)]


def pack(blob: dict[str, Any]) -> bytes:
    """A twin's checkpoint as bytes (pickled, compressed)."""
    return zlib.compress(pickle.dumps(blob, protocol=pickle.HIGHEST_PROTOCOL), 1)


def unpack(state: bytes, what: str, of: tuple[str, int, str]) -> dict[str, Any]:
    """The checkpoint :func:`pack` made (the deployment's own bytes, as Ray's messages are) of the twin ``of``
    (scenario, seed, mode: the blob's ``scenario``, ``seed`` and ``mode``); else a UserError."""
    try:
        blob = pickle.loads(zlib.decompress(state))
    except (zlib.error, pickle.UnpicklingError, EOFError, TypeError) as exc:
        raise UserError(f"not a {what} checkpoint: {exc}") from exc
    if not isinstance(blob, dict):
        raise UserError(f"not a {what} checkpoint: {type(blob).__name__}")
    scenario, seed, mode = of
    if (blob.get("scenario"), blob.get("seed"), blob.get("mode")) != of:
        raise UserError(f"the checkpoint is of {blob.get('scenario')!r} seed {blob.get('seed')!r} mode "
                        f"{blob.get('mode')!r}, not of {scenario!r} seed {seed} mode {mode}")
    return blob
