"""The dispatcher's ingress: incident reports and vehicle-location reports are checked before anyone acts on them.

A report with an unknown place, a time in the future, a duplicate id, or an ambulance reporting a position off
the map or a jump no vehicle can make is refused with its reason (dead-lettered by the twin, never acted on).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

MAX_SPEED_MPS = 50.0
"""No ambulance moves faster than this between two reports (180 km/h)."""


def check_incident_report(report: Mapping[str, Any], *, edges: Collection[str], now_s: float,
                          seen: Collection[str]) -> str | None:
    """Why an incident report is refused, or None when it may be acted on."""
    rid = report.get("id")
    if not isinstance(rid, str) or not rid:
        return "no incident id"
    if rid in seen:
        return f"duplicate report of incident {rid}"
    if report.get("edge") not in edges:
        return f"unknown place {report.get('edge')!r}: not a road segment an ambulance can reach and leave"
    t = report.get("call_s")
    if not isinstance(t, int | float) or not math.isfinite(t):
        return f"call time {t!r} is not a number"
    if t > now_s + 1e-6:
        return f"call time {t:g} s is in the future (now {now_s:g} s)"
    if report.get("priority") not in (1, 2):
        return f"unknown priority {report.get('priority')!r}"
    return None


def check_position(report: Mapping[str, Any], *, edges: Collection[str], bounds: tuple[float, float, float, float],
                   last: tuple[float, float, float] | None) -> str | None:
    """Why an ambulance's position report is refused (off the map, unknown segment, impossible jump), or None.

    ``bounds`` is (x0, y0, x1, y1) of the network; ``last`` the previous accepted (t, x, y).
    """
    x, y, t = report.get("x"), report.get("y"), report.get("t")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (x, y, t)):
        return "position or time is not a finite number"
    assert isinstance(x, int | float) and isinstance(y, int | float) and isinstance(t, int | float)
    x0, y0, x1, y1 = bounds
    margin = 500.0
    if not (x0 - margin <= x <= x1 + margin and y0 - margin <= y <= y1 + margin):
        return f"position ({x:.0f}, {y:.0f}) is off the map"
    if report.get("edge") not in edges:
        return f"road segment {report.get('edge')!r} is not on the map"
    if last is not None:
        dt = max(t - last[0], 1.0)
        dist = math.dist((x, y), (last[1], last[2]))
        if dist / dt > MAX_SPEED_MPS:
            return f"impossible jump of {dist:.0f} m in {dt:.0f} s"
    return None
