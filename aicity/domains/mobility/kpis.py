"""KPIs of a finished traffic run: RESCO delay, trips, equity per signal, district and time of day, emergency trips.

Districts: the map's TAZ (``<taz>`` elements) where it defines them; otherwise four spatial quadrants around the
median x and median y of the signals (:func:`quadrant_districts`), each trip counted in the district of the signal
nearest the junction its departure edge leads to (:func:`edge_districts`). Time of day: 15-minute clock bins of
the departure (planned departure for vehicles never inserted), labelled like ``07:00–07:15``.
"""

from __future__ import annotations

import math
import statistics
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicity.core.domain import DomainResult
from aicity.domains.mobility.checkpoint import output_files
from aicity.domains.mobility.const import EV_PREFIX
from aicity.domains.mobility.meta import COUNTS
from aicity.governance.equity import jain_index

if TYPE_CHECKING:
    from aicity.domains.mobility.network import Network
    from aicity.domains.mobility.twin import SumoTwin

SERIES_BIN_S = 300.0
TIME_OF_DAY_BIN_S = 900.0
QUADRANT_RULE = ("quadrants NW/NE/SW/SE around the median x and median y of the signal coordinates (x ≥ median: E, "
                 "y ≥ median: N; a signal's coordinates are those of the junction its incoming lanes lead to); "
                 "a trip belongs to the quadrant of the signal nearest the junction its departure "
                 "edge leads to (ties: smallest signal id)")
TAZ_RULE = "the map's TAZ districts (<taz> elements), by the trip's departure edge"


@dataclass(frozen=True, slots=True)
class Trip:
    """One tripinfo entry (finished or not)."""

    id: str
    vtype: str
    depart: float
    duration: float
    time_loss: float
    depart_delay: float
    waiting: float
    finished: bool
    depart_edge: str

    @property
    def delay(self) -> float:
        """RESCO delay of this trip: time loss plus departure delay."""
        return self.time_loss + self.depart_delay


def read_tripinfo(path: str | Path) -> list[Trip]:
    """Parse a SUMO tripinfo file (written with ``--tripinfo-output.write-unfinished``)."""
    trips = []
    for _, el in ET.iterparse(str(path)):
        if el.tag != "tripinfo":
            continue
        g = el.get
        arrival = float(g("arrival", "-1") or -1)
        lane = g("departLane", "") or ""
        trips.append(Trip(g("id", ""), g("vType", ""), float(g("depart", "0")), float(g("duration", "0")),
                          float(g("timeLoss", "0")), float(g("departDelay", "0")),
                          float(g("waitingTime", "0")), arrival >= 0, lane.rsplit("_", 1)[0]))
        el.clear()
    return trips


@dataclass(frozen=True, slots=True)
class Occupancy:
    """Persons per vehicle as the route files set them: per vehicle or flow (``personNumber``), per vType
    (``<param key="personNumber"|"occupancy">``); 1 where none is set."""

    vehicles: Mapping[str, float]
    flows: Mapping[str, float]
    vtypes: Mapping[str, float]

    def of(self, vid: str, vtype: str = "") -> float:
        """Persons in vehicle ``vid`` of type ``vtype``."""
        n = self.vehicles.get(vid)
        if n is None and "." in vid:
            n = self.flows.get(vid.rsplit(".", 1)[0])
        if n is None:
            n = self.vtypes.get(vtype)
        return 1.0 if n is None else n


def _persons(text: str | None) -> float | None:
    try:
        n = float(text) if text else None
    except ValueError:
        return None
    return n if n is not None and math.isfinite(n) and n >= 0 else None


def read_occupancy(files: Iterable[str]) -> Occupancy:
    """Persons per vehicle from route files (unreadable files and values are skipped)."""
    vehicles: dict[str, float] = {}
    flows: dict[str, float] = {}
    vtypes: dict[str, float] = {}
    for f in files:
        try:
            for _, el in ET.iterparse(f):
                if el.tag in ("vehicle", "trip", "flow"):
                    n = _persons(el.get("personNumber"))
                    if n is not None:
                        (flows if el.tag == "flow" else vehicles)[el.get("id", "")] = n
                elif el.tag == "vType":
                    for par in el.iter("param"):
                        n = _persons(par.get("value"))
                        if par.get("key") in ("personNumber", "occupancy") and n is not None:
                            vtypes[el.get("id", "")] = n
                if el.tag in ("vehicle", "trip", "flow", "vType"):
                    el.clear()
        except (ET.ParseError, OSError):
            continue
    return Occupancy(vehicles, flows, vtypes)


def person_delay(trips: Sequence[Trip], never: Sequence[tuple[str, float]], occ: Occupancy) -> float:
    """RESCO delay per person: each trip's delay (never-inserted: end − planned depart) weighted by its persons."""
    w = [(occ.of(t.id, t.vtype), t.delay) for t in trips] + [(occ.of(v), d) for v, d in never]
    total = sum(n for n, _ in w)
    return sum(n * d for n, d in w) / total if total > 0 else 0.0


def resco_delay(trips: Sequence[Trip], never_inserted: Sequence[float]) -> float:
    """RESCO delay: mean of (timeLoss + departDelay) over trips and (end − planned depart) over never-inserted."""
    n = len(trips) + len(never_inserted)
    if n == 0:
        return 0.0
    return (sum(t.delay for t in trips) + sum(never_inserted)) / n


def jain(values: Iterable[float]) -> float:
    """Jain's fairness index over the finite values (1 = all equal; 1 when there are none)."""
    xs = [v for v in values if math.isfinite(v)]
    return jain_index(xs) if xs else 1.0


def min_max_ratio(values: Iterable[float]) -> float:
    """Smallest over largest value (1 = all equal)."""
    xs = [v for v in values if math.isfinite(v)]
    return min(xs) / max(xs) if xs and max(xs) > 0 else 1.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100]."""
    xs = sorted(values)
    if not xs:
        return 0.0
    k = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def read_e2_signal_delay(paths: str | Path | Sequence[Path], piece_signal: dict[str, str],
                         stopline: set[str]) -> dict[str, float]:
    """Per-signal delay from the lane-area detectors' interval output (one file, or its parts before and after
    a checkpoint): time lost within the detection range per vehicle crossing the stop line (s/veh)."""
    loss: dict[str, float] = defaultdict(float)
    served: dict[str, float] = defaultdict(float)
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    files = [p for p in files if p.is_file()]
    if not files:
        return {}
    for _, el in (item for p in files for item in ET.iterparse(str(p))):
        if el.tag != "interval":
            continue
        did = el.get("id", "")
        sig = piece_signal.get(did)
        if sig is not None:
            seen = float(el.get("nVehSeen", "0") or 0)
            loss[sig] += float(el.get("meanTimeLoss", "0") or 0) * seen
            if did in stopline:
                served[sig] += float(el.get("nVehEntered", "0") or 0)
        el.clear()
    return {s: (loss[s] / served[s] if served[s] > 0 else 0.0) for s in sorted(loss)}


def read_taz(files: Iterable[str]) -> dict[str, str]:
    """Edge → district from ``<taz>`` elements in the given files."""
    out: dict[str, str] = {}
    for f in files:
        try:
            root = ET.parse(f).getroot()
        except (ET.ParseError, OSError):
            continue
        for taz in root.iter("taz"):
            for e in (taz.get("edges") or "").split():
                out.setdefault(e, taz.get("id", ""))
            for src in taz.iter("tazSource"):
                out.setdefault(src.get("id", ""), taz.get("id", ""))
    return out


def quadrant_districts(signal_xy: Mapping[str, tuple[float, float]]) -> dict[str, str]:
    """Signal → ``NW``/``NE``/``SW``/``SE``: quadrant around the signals' median x and y (ties go E and N)."""
    if not signal_xy:
        return {}
    mx = statistics.median(x for x, _ in signal_xy.values())
    my = statistics.median(y for _, y in signal_xy.values())
    return {s: ("N" if y >= my else "S") + ("E" if x >= mx else "W") for s, (x, y) in sorted(signal_xy.items())}


def signal_positions(net: Network) -> dict[str, tuple[float, float]]:
    """Signal → coordinates: mean of the junctions its controlled incoming lanes lead to (a ``tlLogic`` id need
    not be a junction id, e.g. ingolstadt7's ``gneJ143``), else the signal's own coordinates."""
    out: dict[str, tuple[float, float]] = {}
    for sid, sig in sorted(net.signals.items()):
        pts = [net.junction_xy[j] for j in sorted({net.edge_to.get(net.lanes[ln].edge, "") for ln in sig.in_lanes
                                                    if ln in net.lanes}) if j in net.junction_xy]
        out[sid] = ((sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)) if pts
                    else (sig.x, sig.y))
    return out


def nearest_signal(point: tuple[float, float], signal_xy: Mapping[str, tuple[float, float]]) -> str:
    """The signal closest to ``point`` (Euclidean; ties: smallest id)."""
    px, py = point
    return min(sorted(signal_xy), key=lambda s: (signal_xy[s][0] - px) ** 2 + (signal_xy[s][1] - py) ** 2)


def edge_districts(net: Network, districts: Mapping[str, str]) -> dict[str, str]:
    """Edge → district of the signal nearest the junction the edge leads to (edges without coordinates left out)."""
    sig_xy = {s: xy for s, xy in signal_positions(net).items() if s in districts}
    if not sig_xy:
        return {}
    out: dict[str, str] = {}
    for edge, to in sorted(net.edge_to.items()):
        xy = net.junction_xy.get(to)
        if xy is not None:
            out[edge] = districts[nearest_signal(xy, sig_xy)]
    return out


def clock_label(start_s: float, width_s: float = TIME_OF_DAY_BIN_S) -> str:
    """``HH:MM–HH:MM`` for a bin starting ``start_s`` seconds after midnight (wrapping at 24 h)."""
    def hm(t: float) -> str:
        m = round(t / 60.0) % (24 * 60)
        return f"{m // 60:02d}:{m % 60:02d}"
    return f"{hm(start_s)}–{hm(start_s + width_s)}"


def time_of_day_delay(samples: Iterable[tuple[float, float]], bin_s: float = TIME_OF_DAY_BIN_S, *,
                      counts: dict[str, int] | None = None) -> dict[str, float]:
    """Mean delay per clock bin of ``(departure s since midnight, delay s)`` samples, bins in time order
    (``counts``, when given, receives the number of samples per bin)."""
    bins: dict[int, list[float]] = defaultdict(list)
    for depart, delay in samples:
        bins[int(depart // bin_s)].append(delay)
    out = {clock_label(b * bin_s, bin_s): sum(v) / len(v) for b, v in sorted(bins.items())}
    if counts is not None:
        counts.update({clock_label(b * bin_s, bin_s): len(v) for b, v in sorted(bins.items())})
    return out


def district_delay(trips: Iterable[Trip], district_of: Mapping[str, str], *,
                   counts: dict[str, int] | None = None) -> dict[str, float]:
    """Mean RESCO delay of the trips per district of their departure edge (trips on unknown edges left out;
    ``counts``, when given, receives the number of trips per district)."""
    by: dict[str, list[float]] = defaultdict(list)
    for t in trips:
        d = district_of.get(t.depart_edge)
        if d is not None:
            by[d].append(t.delay)
    if counts is not None:
        counts.update({d: len(v) for d, v in sorted(by.items())})
    return {d: sum(v) / len(v) for d, v in sorted(by.items())}


def summarise(trips: Sequence[Trip], never: Sequence[tuple[str, float]], ev_prefix: str,
              left: frozenset[tuple[str, float]] = frozenset()) -> dict[str, float]:
    """Headline KPIs; ``delay_s`` and the trip figures count normal vehicles only, emergency trips apart.

    ``left`` names the trips (vehicle, depart) that ended at a district's border: segments of a trip that goes
    on elsewhere, counted in the means but neither as finished nor as unfinished.
    """
    normal = [t for t in trips if not t.id.startswith(ev_prefix)]
    ended = [t for t in normal if (t.id, t.depart) not in left]
    evs = [t for t in trips if t.id.startswith(ev_prefix)]
    never_n = [d for v, d in never if not v.startswith(ev_prefix)]
    never_ev = [d for v, d in never if v.startswith(ev_prefix)]
    ev_done = [t.duration + t.depart_delay for t in evs if t.finished]
    ev_free = [max(t.duration - t.time_loss, 0.0) for t in evs if t.finished]  # at the allowed speed throughout
    ev_wait = [t.waiting for t in evs if t.finished]
    k = {
        "delay_s": resco_delay(normal, never_n),
        "delay_all_s": resco_delay(trips, [d for _, d in never]),
        "trip_time_s": sum(t.duration for t in normal) / len(normal) if normal else 0.0,
        "wait_s": sum(t.waiting for t in normal) / len(normal) if normal else 0.0,
        "finished": float(sum(t.finished for t in ended)),
        "unfinished": float(sum(not t.finished for t in ended)),
        "never_inserted": float(len(never_n)),
        "vehicles": float(len(normal) + len(never_n)),
        "ev_trips": float(len(evs) + len(never_ev)),
        "ev_finished": float(len(ev_done)),
        # no emergency trip finished: its times are undefined (NaN, "–" in the report), not zero
        "ev_travel_s_mean": sum(ev_done) / len(ev_done) if ev_done else math.nan,
        "ev_travel_s_p90": percentile(ev_done, 90.0) if ev_done else math.nan,
        "ev_delay_s": resco_delay(evs, never_ev) if evs or never_ev else math.nan,
        "ev_free_flow_s_mean": sum(ev_free) / len(ev_free) if ev_free else math.nan,
        "ev_wait_s_mean": sum(ev_wait) / len(ev_wait) if ev_wait else math.nan,
    }
    k["never_inserted_pct"] = 100.0 * k["never_inserted"] / k["vehicles"] if k["vehicles"] else 0.0
    return k


def delay_series(trips: Sequence[Trip], begin_s: float, ev_prefix: str) -> list[tuple[float, float]]:
    """Mean RESCO delay of normal trips by departure time (bins of 5 min, x = bin start since begin)."""
    bins: dict[int, list[float]] = defaultdict(list)
    for t in trips:
        if not t.id.startswith(ev_prefix):
            bins[int((t.depart - begin_s) // SERIES_BIN_S)].append(t.delay)
    return [(b * SERIES_BIN_S, sum(v) / len(v)) for b, v in sorted(bins.items()) if b >= 0]


def edge_shapes(net_path: str, limit: int = 5000) -> list[list[list[float]]]:
    """Centre-line shapes of the network's normal edges (first lane), for drawing the map behind KPIs."""
    import xml.etree.ElementTree as ET

    shapes: list[list[list[float]]] = []
    for edge in ET.parse(net_path).getroot().iter("edge"):
        if edge.get("function") == "internal":
            continue
        lane = edge.find("lane")
        shape = lane.get("shape") if lane is not None else None
        if shape:
            shapes.append([[round(float(v), 1) for v in pt.split(",")[:2]] for pt in shape.split()])
        if len(shapes) >= limit:
            break
    return shapes


def trip_kpis(trips: Sequence[Trip], never: Sequence[tuple[str, float]], occ: Occupancy,
              district_of: Mapping[str, str], begin_s: float, end_s: float,
              left: frozenset[tuple[str, float]] = frozenset()) -> tuple[dict[str, float], dict[str, dict[str, float]],
                                                                         dict[str, dict[str, int]],
                                                                         list[tuple[float, float]]]:
    """KPIs, groups (district, time of day), group counts and the delay series of a run's trips."""
    kpis = summarise(trips, never, EV_PREFIX, left)
    normal = [t for t in trips if not t.id.startswith(EV_PREFIX)]
    never_n = [(v, d) for v, d in never if not v.startswith(EV_PREFIX)]
    kpis["person_delay_s"] = person_delay(normal, never_n, occ)
    groups: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {"district": {}, "time_of_day": {}}
    if district_of:
        groups["district"] = district_delay(normal, district_of, counts=counts["district"])
    kpis["district_delay_min_max"] = min_max_ratio(groups.get("district", {}).values())
    kpis["district_delay_jain"] = jain(groups.get("district", {}).values())
    samples = [(t.depart, t.delay) for t in normal] + [(end_s - d, d) for _, d in never_n]
    groups["time_of_day"] = time_of_day_delay(samples, counts=counts["time_of_day"])
    return kpis, groups, counts, delay_series(trips, begin_s, EV_PREFIX)


def signal_kpis(kpis: dict[str, float], per_signal: Mapping[str, float]) -> None:
    """Add the evenness of delay over signals to ``kpis``."""
    kpis["signal_delay_min_max"] = min_max_ratio(per_signal.values())
    kpis["signal_delay_jain"] = jain(per_signal.values())


def pop_counts(kpis: dict[str, float]) -> dict[str, float]:
    """Move the figures that are neither better nor worse (:data:`COUNTS`) out of ``kpis``."""
    return {k: kpis.pop(k) for k in COUNTS}


def segments(trips: Sequence[Trip], never: Sequence[tuple[str, float]], left: frozenset[tuple[str, float]],
             district_of: Mapping[str, str], end_s: float) -> list[dict[str, Any]]:
    """Every passage of a vehicle through a district (``status``: ``arrived`` at its destination, ``left``
    through a border, ``driving`` at the end, ``pending``: never entered it), for
    :func:`aicity.domains.mobility.merge.merge_results`."""
    out: list[dict[str, Any]] = [
        {"id": t.id, "depart": t.depart, "duration": t.duration, "time_loss": t.time_loss,
         "depart_delay": t.depart_delay, "waiting": t.waiting, "block": district_of.get(t.depart_edge),
         "status": "left" if (t.id, t.depart) in left else ("arrived" if t.finished else "driving")} for t in trips]
    out.extend({"id": v, "depart": end_s - d, "duration": 0.0, "time_loss": 0.0, "depart_delay": d, "waiting": 0.0,
                "block": None, "status": "pending"} for v, d in never)
    return out


def compute_result(twin: SumoTwin, never: Sequence[tuple[str, float]]) -> DomainResult:
    """The :class:`DomainResult` of a closed twin (of one district: its passages, with ``extra["segments"]``)."""

    assert twin.net is not None
    net = twin.net
    trips = [t for path in output_files(twin.output_dir, twin.tripinfo_path.name) for t in read_tripinfo(path)]
    border = twin.border
    left = frozenset([*border.left, *border.pending_ends()]) if border is not None else frozenset()
    taz = read_taz([*twin.cfg.additional, twin.cfg.net])
    sig_xy = signal_positions(net)
    signal_district = quadrant_districts(sig_xy) if not taz else {}
    district_of = taz or edge_districts(net, signal_district)
    end_s = twin.begin_s + twin.elapsed_s()
    kpis, groups, counts, delays = trip_kpis(trips, never, read_occupancy(twin.cfg.routes), district_of,
                                             twin.begin_s, end_s, left)
    kpis["dark_signal_s"] = twin.power.dark_s
    kpis["battery_signal_s"] = twin.power.battery_s
    piece_signal: dict[str, str] = {}
    stopline: set[str] = set()
    for lane, pieces in net.in_groups.items():
        sig = net.lane_signal[lane]
        for i, p in enumerate(pieces):
            piece_signal.setdefault(p.id, sig)
            if i == 0:
                stopline.add(p.id)
    per_signal = read_e2_signal_delay(output_files(twin.output_dir, "e2.xml"), piece_signal, stopline)
    groups = {"signal": per_signal, **groups}
    signal_kpis(kpis, per_signal)
    statuses = Counter(o.status for o in twin.outcomes)
    for s in ("applied", "clamped", "refused"):
        kpis[f"actions_{s}"] = float(statuses.get(s, 0))
    kpis["preemptions"] = float(sum(e.preemptions for e in twin.edges.values()))
    kpis["max_hold_timeouts"] = float(sum(e.max_hold_timeouts for e in twin.edges.values()))
    ev_trips = [{"id": t.id, "depart_s": t.depart - twin.begin_s, "travel_s": t.duration + t.depart_delay,
                 "finished": t.finished} for t in trips if t.id.startswith(EV_PREFIX)]
    extra: dict[str, Any] = {
        "counts": pop_counts(kpis), "sim_s": twin.elapsed_s(),
        "scenario": twin.scenario.name, "mode": twin.mode, "seed": twin.seed,
        "signal_xy": {s: [x, y] for s, (x, y) in sig_xy.items()},
        "positions": {"signal": {s: [x, y] for s, (x, y) in sig_xy.items()}},
        "group_metric": "delay s",
        "districts": {"rule": TAZ_RULE if taz else QUADRANT_RULE, "signals": signal_district},
        "time_of_day_bin_s": TIME_OF_DAY_BIN_S, "group_counts": counts,
        "edges_xy": edge_shapes(twin.cfg.net),
        "ev_plan": twin.ev_plan, "ev_trips": ev_trips,
    }
    if border is not None:
        extra["border"] = border.extra()
        extra["segments"] = segments(trips, never, left, district_of, end_s)
        extra["begin_s"] = twin.begin_s
    series = {"delay_s": delays, "queue_veh": twin.queue_series}
    return DomainResult(kpis=kpis, groups=groups, series=series, extra=extra)
