"""Static network structure read once from a SUMO ``.net.xml``: lanes, links, signals and their detector areas.

Pure Python (ElementTree); no SUMO process is needed, so the structure is known before the simulation starts
(lane-area detectors must be declared before loading).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aicity.core.errors import UserError

DETECTION_RANGE_M = 200.0
GREEN_CHARS = frozenset("Gg")


@dataclass(frozen=True, slots=True)
class Lane:
    """A normal lane that vehicles may use (internal, crossing, walking-area and pedestrian-only lanes are not
    lanes here: no detector may sit on them)."""

    id: str
    edge: str
    length: float
    speed: float


@dataclass(frozen=True, slots=True)
class Link:
    """One signal-controlled connection: ``in_lane`` → ``out_lane`` with the signal's link index."""

    index: int
    in_lane: str
    out_lane: str


@dataclass(frozen=True, slots=True)
class DetectorPiece:
    """A lane-area detector segment: the last ``length`` metres of ``lane`` (ending at ``end_pos``)."""

    id: str
    lane: str
    start_pos: float
    end_pos: float

    @property
    def length(self) -> float:
        """Covered length in metres."""
        return self.end_pos - self.start_pos


@dataclass(slots=True)
class Signal:
    """A signalised junction: its fixed-time program, green phases and the lanes each green serves."""

    id: str
    x: float
    y: float
    program_id: str
    program: list[tuple[str, float]]
    links: list[Link]
    green_program_index: list[int] = field(default_factory=list)
    all_red_s: float = 0.0

    @property
    def greens(self) -> list[str]:
        """The state strings of the program's green phases, in program order."""
        return [self.program[i][0] for i in self.green_program_index]

    @property
    def in_lanes(self) -> list[str]:
        """Incoming lanes controlled by this signal, sorted."""
        return sorted({lk.in_lane for lk in self.links})

    @property
    def out_lanes(self) -> list[str]:
        """Outgoing lanes of this signal's links, sorted."""
        return sorted({lk.out_lane for lk in self.links})

    def served(self, green: int) -> dict[str, list[str]]:
        """Incoming lane → outgoing lanes given green (``G`` or ``g``) by green phase ``green``."""
        state = self.greens[green]
        chars = GREEN_CHARS
        out: dict[str, list[str]] = {}
        for lk in self.links:
            if lk.index < len(state) and state[lk.index] in chars:
                lst = out.setdefault(lk.in_lane, [])
                if lk.out_lane not in lst:
                    lst.append(lk.out_lane)
        return {k: sorted(v) for k, v in sorted(out.items())}


@dataclass(slots=True)
class Network:
    """Everything static the twin and the planners need about one network."""

    path: str
    lanes: dict[str, Lane]
    successors: dict[str, list[str]]
    predecessors: dict[str, list[str]]
    signals: dict[str, Signal]
    junction_xy: dict[str, tuple[float, float]]
    edge_lanes: dict[str, list[str]]
    edge_from: dict[str, str]
    edge_to: dict[str, str]
    lane_signal: dict[str, str] = field(default_factory=dict)
    # detector groups: (signal, lane, "in"|"out") -> pieces
    in_groups: dict[str, list[DetectorPiece]] = field(default_factory=dict)
    out_groups: dict[str, list[DetectorPiece]] = field(default_factory=dict)

    def detectors(self) -> list[DetectorPiece]:
        """Every detector piece, each once, sorted by id."""
        seen: dict[str, DetectorPiece] = {}
        for groups in (self.in_groups, self.out_groups):
            for pieces in groups.values():
                for p in pieces:
                    seen[p.id] = p
        return [seen[k] for k in sorted(seen)]


def _is_green(state: str) -> bool:
    return any(c in GREEN_CHARS for c in state) and "y" not in state.lower()


def _is_all_red(state: str) -> bool:
    return all(c in "rs" for c in state)


def allows_vehicles(allow: str | None, disallow: str | None) -> bool:
    """Whether a lane with SUMO's ``allow`` / ``disallow`` attributes admits any vehicle (not only pedestrians)."""
    if allow is not None:
        return bool(set(allow.split()) - {"pedestrian"})
    return disallow is None or "all" not in disallow.split()


def load_network(path: str | Path, detection_range_m: float = DETECTION_RANGE_M) -> Network:
    """Parse ``path`` (a SUMO net file); raises :class:`UserError` when it is missing or unparsable."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"network file {str(p)!r} does not exist")
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise UserError(f"network file {str(p)!r} is not valid XML: {exc}") from exc
    lanes: dict[str, Lane] = {}
    edge_lanes: dict[str, list[str]] = {}
    edge_from: dict[str, str] = {}
    edge_to: dict[str, str] = {}
    for edge in root.iter("edge"):
        if edge.get("function", "normal") != "normal":  # internal, crossing, walkingarea, connector
            continue
        eid = edge.get("id", "")
        vehicle_lanes = [ln for ln in edge.iter("lane") if allows_vehicles(ln.get("allow"), ln.get("disallow"))]
        if not vehicle_lanes:  # footpaths
            continue
        edge_from[eid] = edge.get("from", "")
        edge_to[eid] = edge.get("to", "")
        for lane in vehicle_lanes:
            lid = lane.get("id", "")
            lanes[lid] = Lane(lid, eid, float(lane.get("length", "0")), float(lane.get("speed", "13.89")))
            edge_lanes.setdefault(eid, []).append(lid)
    successors: dict[str, list[str]] = {lid: [] for lid in lanes}
    predecessors: dict[str, list[str]] = {lid: [] for lid in lanes}
    tl_links: dict[str, dict[int, Link]] = {}
    for con in root.iter("connection"):
        fe, te = con.get("from", ""), con.get("to", "")
        if fe not in edge_lanes or te not in edge_lanes:
            continue
        a, b = f"{fe}_{con.get('fromLane')}", f"{te}_{con.get('toLane')}"
        if a not in lanes or b not in lanes:
            continue
        if b not in successors[a] and con.get("dir") != "t":  # turnarounds do not feed a queue upstream
            successors[a].append(b)
            predecessors[b].append(a)
        tl = con.get("tl")
        if tl is not None and con.get("linkIndex") is not None:
            idx = int(con.get("linkIndex", "0"))
            tl_links.setdefault(tl, {})[idx] = Link(idx, a, b)
    junction_xy = {
        j.get("id", ""): (float(j.get("x", "0")), float(j.get("y", "0")))
        for j in root.iter("junction")
        if not j.get("id", "").startswith(":")
    }
    signals: dict[str, Signal] = {}
    for logic in root.iter("tlLogic"):
        tid = logic.get("id", "")
        if tid in signals or tid not in tl_links:
            continue
        program = [(ph.get("state", ""), float(ph.get("duration", "0"))) for ph in logic.iter("phase")]
        greens = [i for i, (s, _) in enumerate(program) if _is_green(s)]
        if not greens:
            continue
        all_red = max((d for s, d in program if _is_all_red(s)), default=0.0)
        links = [tl_links[tid][i] for i in sorted(tl_links[tid])]
        x, y = junction_xy.get(tid) or _signal_xy(tid, links, lanes, edge_to, junction_xy)
        signals[tid] = Signal(tid, x, y, logic.get("programID", "0"), program, links, greens, all_red)
    net = Network(str(p), lanes, successors, predecessors, signals, junction_xy, edge_lanes, edge_from, edge_to)
    _build_detectors(net, detection_range_m)
    return net


def _signal_xy(tid: str, links: list[Link], lanes: dict[str, Lane], edge_to: dict[str, str],
               junction_xy: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """Coordinates of a signal whose id is no junction id: the junctions its incoming lanes lead to (a tlLogic
    id need not name a junction, e.g. ingolstadt7's ``gneJ143``), else the mean of a joined id's parts."""
    ends = sorted({edge_to.get(lanes[lk.in_lane].edge, "") for lk in links if lk.in_lane in lanes})
    pts = [junction_xy[j] for j in ends if j in junction_xy]
    if pts:
        return (sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts))
    return _mean_xy(tid, junction_xy)


def _mean_xy(tid: str, junction_xy: dict[str, tuple[float, float]]) -> tuple[float, float]:
    # joined signals ("cluster_a_b") have no junction of their own id: use the mean of their parts
    parts = [junction_xy[j] for j in tid.split("_") if j in junction_xy]
    if not parts:
        return (0.0, 0.0)
    return (sum(x for x, _ in parts) / len(parts), sum(y for _, y in parts) / len(parts))


def _det_id(lane: str, kind: str) -> str:
    return f"e2{kind}_{lane}"


def _build_detectors(net: Network, rng_m: float) -> None:
    """Detector areas: each incoming lane plus its upstream lanes within ``rng_m`` of the stop line (not
    crossing another signal), and each outgoing lane plus its unique-successor chain within ``rng_m``."""
    signal_in: dict[str, str] = {}
    for sig in net.signals.values():
        for lane in sig.in_lanes:
            signal_in.setdefault(lane, sig.id)
    net.lane_signal = dict(signal_in)
    for lane in sorted(signal_in):
        pieces: list[DetectorPiece] = []
        _upstream(net, lane, rng_m, signal_in, pieces, set(), first=True)
        net.in_groups[lane] = pieces
    for lane in sorted({lk.out_lane for s in net.signals.values() for lk in s.links}):
        pieces = []
        cur, budget, seen = lane, rng_m, set()
        while cur not in seen and budget > 0.0:
            seen.add(cur)
            ln = net.lanes[cur]
            cover = min(ln.length, budget)
            pieces.append(DetectorPiece(_det_id(cur, "o"), cur, 0.0, max(cover, 0.1)))
            budget -= ln.length
            succ = net.successors.get(cur, [])
            if len(succ) != 1 or succ[0] in signal_in:
                break
            cur = succ[0]
        net.out_groups[lane] = pieces


def _upstream(net: Network, lane: str, budget: float, signal_in: dict[str, str],
              out: list[DetectorPiece], seen: set[str], first: bool) -> None:
    if lane in seen or budget <= 0.0:
        return
    if not first and (lane in signal_in):
        return
    seen.add(lane)
    ln = net.lanes[lane]
    cover = min(ln.length, budget)
    out.append(DetectorPiece(_det_id(lane, "i"), lane, max(ln.length - cover, 0.0), ln.length))
    for pred in sorted(net.predecessors.get(lane, [])):
        _upstream(net, pred, budget - ln.length, signal_in, out, seen, first=False)


def additional_xml(pieces: Iterable[DetectorPiece], output: str, period_s: float) -> str:
    """An additional file declaring every detector piece as a lane-area (E2) detector."""
    lines = ["<additional>"]
    for p in pieces:
        start = max(0.0, p.start_pos)
        end = max(p.end_pos, start + 0.1)
        lines.append(
            f'    <laneAreaDetector id="{_xml(p.id)}" lane="{_xml(p.lane)}" pos="{start:.2f}" '
            f'endPos="{end:.2f}" period="{period_s:g}" file="{_xml(output)}" '
            'timeThreshold="0" speedThreshold="0.1" jamThreshold="1" friendlyPos="true"/>'
        )
    lines.append("</additional>")
    return "\n".join(lines) + "\n"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
