"""The temporal API (``/temporal/entities``) from the store's attribute history, aggregated in SQL."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from aicity.core.entity import Entity
from aicity.core.store import StateStore
from aicity.platform.errors import bad
from aicity.platform.ngsi import Codec

AGGR = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


MAX_PERIOD_S = 100 * 366 * 86400
"""The longest aggregation period (a century; a longer one overflowed the time arithmetic)."""
MAX_LAST_N = 1_000_000
"""The most values ``lastN`` asks for (a larger number overflowed the store's query)."""


def parse_duration(text: str) -> float:
    """An ISO 8601 duration (days, hours, minutes, seconds) in seconds."""
    m = _DURATION.match(text)
    if not m or text in ("P", "PT"):
        raise bad(f"aggrPeriodDuration {text!r} is not an ISO 8601 duration like PT1H or P1D")
    d, h, mi, s = m.groups()
    total = int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)
    if total <= 0:
        raise bad(f"aggrPeriodDuration {text!r} must be positive")
    if not total <= MAX_PERIOD_S:
        raise bad(f"aggrPeriodDuration {text[:40]!r} is longer than {MAX_PERIOD_S // 86400:,.0f} days")
    return total


def _when(text: str | None, what: str) -> float | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"{what} {text!r} is not an ISO 8601 date-time") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def window(timerel: str | None, time_at: str | None, end_time_at: str | None) -> tuple[float | None, float | None]:
    """``timerel`` with ``timeAt``/``endTimeAt`` → [start, end) in epoch seconds."""
    if timerel is None:
        if time_at is not None:
            raise bad("timeAt needs timerel")
        return None, None
    at = _when(time_at, "timeAt")
    if at is None:
        raise bad(f"timerel={timerel} needs timeAt")
    if timerel == "before":
        return None, at
    if timerel == "after":
        return at, None
    if timerel == "between":
        end = _when(end_time_at, "endTimeAt")
        if end is None:
            raise bad("timerel=between needs endTimeAt")
        if end <= at:
            raise bad("endTimeAt must be after timeAt")
        return at, end
    raise bad(f"timerel {timerel!r} is not before, after or between")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def temporal_entity(store: StateStore, codec: Codec, entity_id: str, etype: str, *, attrs: Collection[str] | None,
                    start: float | None, end: float | None, last: int | None, fmt: str,
                    aggr: Sequence[str] | None = None, period_s: float | None = None) -> dict[str, Any]:
    """One entity's temporal representation (normalized, temporalValues or aggregated)."""
    out: dict[str, Any] = {"id": entity_id, "type": codec.term(etype)}
    names = [n for n in store.history_attrs(entity_id) if attrs is None or n in attrs]
    for name in names:
        if aggr:
            out[codec.term(name)] = _aggregate(store, entity_id, name, start, end, aggr, period_s)
            continue
        series = store.series(entity_id, name, start=start, end=end, last=last)
        if not series:
            continue
        if fmt == "temporalValues":
            out[codec.term(name)] = {"type": "Property", "values": [[p.value, _iso(p.t)] for p in series]}
        else:
            inst = []
            for p in series:
                t, v, unit = p.t, p.value, p.unit_code
                item: dict[str, Any] = ({"type": "Relationship", "object": v["object"]}
                                        if isinstance(v, dict) and set(v) == {"object"} else
                                        {"type": "GeoProperty", "value": v}
                                        if isinstance(v, dict) and "coordinates" in v else
                                        {"type": "Property", "value": v})
                if unit:
                    item["unitCode"] = unit
                item["observedAt"] = _iso(t)
                inst.append(item)
            out[codec.term(name)] = inst if len(inst) > 1 else inst[0]
    return out


def _aggregate(store: StateStore, entity_id: str, name: str, start: float | None, end: float | None,
               methods: Sequence[str], period_s: float | None) -> dict[str, Any]:
    if start is None:
        first = store.series(entity_id, name, end=end)  # no timeAt: the series' first time starts the buckets
        start = first[0].t if first else 0.0
    period = period_s or ((end or datetime.now(UTC).timestamp()) - start) or 1.0
    out: dict[str, Any] = {"type": "Property"}
    rows = store.aggregate(entity_id, name, start=start, end=end, period_s=period, distinct="distinctCount" in methods)
    for m in methods:
        values = []
        for b, count, total, sumsq, lo, hi, distinct in ((r.index, r.count, r.sum, r.sumsq, r.min, r.max, r.distinct)
                                                          for r in rows):
            t0 = start + b * period
            v: Any
            if m == "totalCount":
                v = count
            elif m == "distinctCount":
                v = distinct
            elif m == "sum":
                v = total
            elif m == "sumsq":
                v = sumsq
            elif m == "min":
                v = lo
            elif m == "max":
                v = hi
            elif m == "avg":
                v = None if total is None or not count else total / count
            else:  # stddev (population)
                v = None if total is None or sumsq is None or not count else \
                    math.sqrt(max(0.0, sumsq / count - (total / count) ** 2))
            values.append([v, _iso(t0), _iso(t0 + period)])
        out[m] = values
    return out


def check_aggr(methods: str | None, period: str | None) -> tuple[list[str] | None, float | None]:
    """``aggrMethods`` and ``aggrPeriodDuration`` checked."""
    if methods is None:
        if period is not None:
            raise bad("aggrPeriodDuration needs aggrMethods")
        return None, None
    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in AGGR]
    if unknown or not names:
        raise bad(f"aggrMethods {methods!r}: use {', '.join(AGGR)}")
    return names, parse_duration(period) if period else None


def deleted_or(entity: Entity | None, etype: str | None) -> str | None:
    """The type to show for an id with history (its current type, else the one remembered)."""
    return entity.type if entity is not None else etype
