"""Travel times for the oracles: free flow, free flow scaled by a measured drive-time factor, or SUMO's own edge
times recorded per minute on the same day.

The recorded table is simulator ground truth: only a clearly named oracle may read it (see :mod:`.oracle`), never
a planner. Times are time-dependent: entering an edge at elapsed second ``t`` costs that edge's recorded time in
``t``'s bucket, and a time-dependent Dijkstra (label setting on arrival times) gives the earliest arrival at every
edge from a source left at ``t``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from aicity.domains.safety.geo import SafetyMap


class TravelTimes(Protocol):
    """Seconds from the end of ``source`` to the end of every reachable edge, leaving at elapsed ``at_s``."""

    name: str

    def times_from(self, source: str, at_s: float) -> Mapping[str, float]:
        """Seconds to every reachable edge when leaving ``source`` at ``at_s``."""
        ...


class FreeFlow:
    """Every edge at its speed limit, whatever the time (the optimistic yardstick)."""

    name = "free-flow"

    def __init__(self, smap: SafetyMap) -> None:
        self._smap = smap
        self._cache: dict[str, dict[str, float]] = {}

    def times_from(self, source: str, at_s: float) -> Mapping[str, float]:
        """Free-flow seconds from ``source`` (the same at any time)."""
        if source not in self._cache:
            self._cache[source] = self._smap.times_from(source)
        return self._cache[source]


class Scaled:
    """Every edge at its free-flow time × ``factor``, whatever the time: a yardstick whose drives take as long as
    the ambulances' own drives were measured to take (turns, starts from standstill, platoons), against free flow
    that is never reached and recorded edge means that miss them. A calibration, not a bound."""

    def __init__(self, smap: SafetyMap, factor: float) -> None:
        if not math.isfinite(factor) or factor < 1.0:
            raise ValueError(f"the drive-time factor must be a finite number >= 1, got {factor}")
        self.factor = float(factor)
        self.name = f"free-flow x{self.factor:g}"
        self._smap = smap
        self._cache: dict[str, dict[str, float]] = {}

    def times_from(self, source: str, at_s: float) -> Mapping[str, float]:
        """Free-flow seconds from ``source`` × the factor (the same at any time)."""
        if source not in self._cache:
            self._cache[source] = {e: t * self.factor for e, t in self._smap.times_from(source).items()}
        return self._cache[source]


class Recorded:
    """Time-dependent edge times recorded from a simulation: ``table[edge][k]`` seconds in bucket ``k``
    (``[k·bucket_s, (k+1)·bucket_s)`` after the window's begin); the last bucket holds beyond the table, an edge
    not in the table drives at free flow."""

    name = "traffic"

    def __init__(self, smap: SafetyMap, bucket_s: float, table: Mapping[str, Sequence[float]]) -> None:
        if bucket_s <= 0:
            raise ValueError(f"bucket_s must be positive, got {bucket_s}")
        self._smap = smap
        self.bucket_s = float(bucket_s)
        self._table = table
        self._ff = smap.free_flow_costs()
        self._cache: dict[tuple[str, float], dict[str, float]] = {}

    def cost(self, edge: str, at_s: float) -> float:
        """Seconds to drive ``edge`` when entering it at ``at_s`` (never below free flow)."""
        row = self._table.get(edge)
        ff = self._ff.get(edge, math.inf)
        if not row:
            return ff
        k = min(max(int(at_s // self.bucket_s), 0), len(row) - 1)
        return max(float(row[k]), ff)

    def times_from(self, source: str, at_s: float) -> Mapping[str, float]:
        """Earliest arrival (seconds after ``at_s``) at every reachable edge when leaving ``source`` at ``at_s``."""
        key = (source, round(at_s, 3))
        if key not in self._cache:
            self._cache[key] = self._dijkstra(source, at_s)
        return self._cache[key]

    def _dijkstra(self, source: str, t0: float) -> dict[str, float]:
        best = {source: 0.0}
        heap = [(0.0, source)]
        succ = self._smap.succ
        while heap:
            t, e = heapq.heappop(heap)
            if t > best.get(e, math.inf):
                continue
            for nxt in succ.get(e, ()):
                nt = t + self.cost(nxt, t0 + t)
                if nt < best.get(nxt, math.inf):
                    best[nxt] = nt
                    heapq.heappush(heap, (nt, nxt))
        return best
