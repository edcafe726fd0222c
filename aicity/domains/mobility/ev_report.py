"""What an emergency vehicle reports about the signals ahead of it: the one shape preemption reads.

Any twin whose vehicles drive on a SUMO network with signals (mobility's own emergency vehicles, safety's
ambulances) builds the ``nextSignals`` of its ``EmergencyVehicle`` entities here, so mobility's preemption planner
reads them all the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from aicity.domains.mobility.const import SIGNAL_PREFIX
from aicity.domains.mobility.network import GREEN_CHARS, Network

LaneLinks = Mapping[tuple[str, int], tuple[int, ...]]


def lane_links(net: Network) -> dict[tuple[str, int], tuple[int, ...]]:
    """(signal, link index) → every link index leaving the same incoming lane."""
    out: dict[tuple[str, int], tuple[int, ...]] = {}
    for sid, sig in net.signals.items():
        by_lane: dict[str, list[int]] = {}
        for lk in sig.links:
            by_lane.setdefault(lk.in_lane, []).append(lk.index)
        for lk in sig.links:
            out[(sid, lk.index)] = tuple(sorted(set(by_lane[lk.in_lane])))
    return out


def signals_ahead(next_tls: Iterable[Sequence[Any]], greens_of: Callable[[str], Sequence[str]],
                  links: LaneLinks) -> list[dict[str, Any]]:
    """The ``nextSignals`` report from SUMO's ``vehicle.getNextTLS``: per signal ahead its link, distance and
    state, the green phases serving that link, those giving it priority, and those clearing its whole lane."""
    ahead: list[dict[str, Any]] = []
    for tls, link, dist, state in next_tls:
        greens = greens_of(tls)
        serving = [g for g, s in enumerate(greens) if link < len(s) and s[link] in GREEN_CHARS]
        same_lane = links.get((tls, int(link)), (int(link),))
        ahead.append({"signal": f"{SIGNAL_PREFIX}{tls}", "linkIndex": int(link), "distance": round(float(dist), 1),
                      "state": state, "servingPhases": serving,
                      "protectedPhases": [g for g in serving if greens[g][link] == "G"],
                      "clearingPhases": [g for g in serving
                                         if all(i < len(greens[g]) and greens[g][i] in GREEN_CHARS
                                                for i in same_lane)]})
    return ahead
