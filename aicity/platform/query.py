"""The NGSI-LD query language (``q``, clause 4.9) and geo-queries (clause 4.10), evaluated on entities."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aicity.core.entity import Entity, GeoProperty, Relationship
from aicity.platform.errors import TOO_DEEP, bad
from aicity.platform.patterns import compile_pattern

Predicate = Callable[[Entity], bool]
_OPS = ("!~=", "~=", "==", "!=", ">=", "<=", ">", "<")
_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_:/#\-@.]*")


class _Parser:
    """Recursive descent over ``q``: terms joined by ``;`` (and) and ``|`` (or), with parentheses."""

    def __init__(self, text: str, name: Callable[[str], str | None]) -> None:
        self.s = text
        self.i = 0
        self.name = name

    def fail(self, why: str) -> Exception:
        return bad(f"q {self.s!r}: {why} at character {self.i + 1}")

    def parse(self) -> Predicate:
        pred = self.expr()
        if self.i != len(self.s):
            raise self.fail("unexpected text")
        return pred

    def expr(self) -> Predicate:
        left = self.conj()
        while self.peek("|"):
            self.i += 1
            right = self.conj()
            left = (lambda a, b: lambda e: a(e) or b(e))(left, right)
        return left

    def conj(self) -> Predicate:
        left = self.atom()
        while self.peek(";"):
            self.i += 1
            right = self.atom()
            left = (lambda a, b: lambda e: a(e) and b(e))(left, right)
        return left

    def peek(self, c: str) -> bool:
        return self.s.startswith(c, self.i)

    def atom(self) -> Predicate:
        if self.peek("("):
            self.i += 1
            inner = self.expr()
            if not self.peek(")"):
                raise self.fail("missing ')'")
            self.i += 1
            return inner
        return self.term()

    def term(self) -> Predicate:
        m = re.compile(r"[^=!<>~;|()\[\]]+").match(self.s, self.i)
        if m is None:
            raise self.fail("expected an attribute name")
        path = m.group(0).strip()
        self.i = m.end()
        sub: list[str] = []
        if self.peek("["):
            end = self.s.find("]", self.i)
            if end < 0:
                raise self.fail("missing ']'")
            sub = [p for p in self.s[self.i + 1:end].split(".") if p]
            self.i = end + 1
        parts = path.split(".")
        stored = self.name(parts[0])
        meta = parts[1] if len(parts) > 1 else None
        get = _getter(stored, meta, sub)
        op = next((o for o in _OPS if self.peek(o)), None)
        if op is None:
            return lambda e: get(e) is not _MISSING
        self.i += len(op)
        m = re.compile(r'("(?:[^"\\]|\\.)*"|[^;|()])+').match(self.s, self.i)
        if m is None:
            raise self.fail("expected a value")
        raw = m.group(0)
        if raw.strip()[:1] in ("=", "<", ">", "!", "~", ""):
            raise self.fail(f"bad value {raw!r}")
        self.i = m.end()
        return _compare(get, op, raw, self)


_MISSING = object()


def _getter(name: str | None, meta: str | None, sub: Sequence[str]) -> Callable[[Entity], Any]:
    def get(e: Entity) -> Any:
        if name is None:
            return _MISSING
        attr = e.attrs.get(name)
        if attr is None:
            return _MISSING
        if meta is not None:
            if meta == "observedAt":
                return attr.observed_at if attr.observed_at is not None else _MISSING
            if meta == "unitCode":
                return getattr(attr, "unit_code", None) or _MISSING
            return _MISSING
        value: Any = attr.object if isinstance(attr, Relationship) else attr.value
        for key in sub:
            if isinstance(value, dict) and key in value:
                value = value[key]
            else:
                return _MISSING
        return value
    return get


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            raise bad(f"q value {text[:80]!r} is not one quoted string (escape a quote inside it as \\\")") from None
        return value
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
        if math.isfinite(value):
            return value
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text  # a URI or another unquoted token


def _split_list(raw: str) -> list[str]:
    out, cur, quoted = [], "", False
    for c in raw:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += c
    out.append(cur)
    return out


def _norm(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(b, datetime) and isinstance(a, str):
        try:
            return datetime.fromisoformat(a.replace("Z", "+00:00")), b
        except ValueError:
            return a, b.isoformat()
    return a, b


def _cmp(a: Any, op: str, b: Any) -> bool:
    a, b = _norm(a, b)
    if isinstance(a, list) and op in ("==", "!="):
        hit = b in a
        return hit if op == "==" else not hit
    try:
        if op == "==":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        if isinstance(a, bool) or isinstance(b, bool) or (isinstance(a, str) != isinstance(b, str)):
            return False
        if op == ">":
            return bool(a > b)
        if op == ">=":
            return bool(a >= b)
        if op == "<":
            return bool(a < b)
        return bool(a <= b)
    except TypeError:
        return False


def _compare(get: Callable[[Entity], Any], op: str, raw: str, p: _Parser) -> Predicate:
    if op in ("~=", "!~=") :
        rx = compile_pattern(str(_literal(raw)), "q pattern")
        want = op == "~="
        return lambda e: isinstance(v := get(e), str) and (rx.search(v) is not None) == want
    if op in ("==", "!=") and ".." in raw and not raw.strip().startswith('"'):
        lo_text, hi_text = raw.split("..", 1)
        lo, hi = _literal(lo_text), _literal(hi_text)
        inside = op == "=="

        def in_range(e: Entity) -> bool:
            v = get(e)
            return v is not _MISSING and (_cmp(v, ">=", lo) and _cmp(v, "<=", hi)) == inside
        return in_range
    if op in ("==", "!=") and "," in raw:
        values = [_literal(x) for x in _split_list(raw)]
        if op == "==":
            return lambda e: (v := get(e)) is not _MISSING and any(_cmp(v, "==", x) for x in values)
        return lambda e: (v := get(e)) is not _MISSING and all(_cmp(v, "!=", x) for x in values)
    value = _literal(raw)
    return lambda e: (v := get(e)) is not _MISSING and _cmp(v, op, value)


def parse_q(text: str, name: Callable[[str], str | None]) -> Predicate:
    """A ``q`` expression → a predicate over entities (attribute terms mapped to stored names by ``name``)."""
    if not text.strip():
        raise bad("q is empty")
    try:
        return _Parser(text, name).parse()
    except RecursionError:
        raise bad(f"q is {TOO_DEEP}") from None


# ---- geo ------------------------------------------------------------------------------------------
R_EARTH = 6_371_008.8


def _bad_positions(coords: Any) -> str | None:
    """Why ``coords`` (GeoJSON coordinates, nested arrays of positions) are not WGS 84 positions, else None."""
    if isinstance(coords, list) and coords and not isinstance(coords[0], list):
        if len(coords) not in (2, 3) or not all(
                isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in coords):
            return "a position is 2 or 3 finite numbers (longitude, latitude[, altitude])"
        if not (-180.0 <= coords[0] <= 180.0 and -90.0 <= coords[1] <= 90.0):
            return f"position {coords} is outside longitude -180..180 and latitude -90..90"
        return None
    if not isinstance(coords, list):
        return "coordinates are arrays of positions"
    for c in coords:
        why = _bad_positions(c)
        if why:
            return why
    return None


def _points(coords: Any) -> list[tuple[float, float]]:
    if isinstance(coords, list | tuple) and coords and isinstance(coords[0], int | float):
        return [(float(coords[0]), float(coords[1]))]
    out: list[tuple[float, float]] = []
    for c in coords if isinstance(coords, list | tuple) else []:
        out.extend(_points(c))
    return out


def _rings(geo: dict[str, Any]) -> list[list[tuple[float, float]]]:
    t, c = geo.get("type"), geo.get("coordinates")
    if t == "Polygon":
        return [_points(c[0])] if c else []
    if t == "MultiPolygon":
        return [_points(p[0]) for p in c or [] if p]
    return []


def _segments(geo: dict[str, Any]) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    t, c = geo.get("type"), geo.get("coordinates")
    lines: list[list[tuple[float, float]]] = []
    if t == "LineString":
        lines = [_points(c)]
    elif t == "MultiLineString":
        lines = [_points(x) for x in c or []]
    else:
        lines = _rings(geo)
    return [(ln[i], ln[i + 1]) for ln in lines for i in range(len(ln) - 1)]


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (lon, lat) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * R_EARTH * math.asin(min(1.0, math.sqrt(h)))


def _inside(p: tuple[float, float], ring: list[tuple[float, float]]) -> bool:
    x, y = p
    hit = False
    for i in range(len(ring)):
        (x1, y1), (x2, y2) = ring[i], ring[i - 1]
        if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
            hit = not hit
    return hit


def _cross(s: tuple[tuple[float, float], tuple[float, float]], t: tuple[tuple[float, float], tuple[float, float]]
           ) -> bool:
    def orient(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    d1, d2 = orient(t[0], t[1], s[0]), orient(t[0], t[1], s[1])
    d3, d4 = orient(s[0], s[1], t[0]), orient(s[0], s[1], t[1])
    return d1 * d2 <= 0 and d3 * d4 <= 0


def _within(a: dict[str, Any], b: dict[str, Any]) -> bool:
    rings = _rings(b)
    return bool(rings) and all(any(_inside(p, r) for r in rings) for p in _points(a.get("coordinates")))


def _intersects(a: dict[str, Any], b: dict[str, Any]) -> bool:
    pa, pb = _points(a.get("coordinates")), _points(b.get("coordinates"))
    if set(pa) & set(pb):
        return True
    if any(_inside(p, r) for r in _rings(b) for p in pa) or any(_inside(p, r) for r in _rings(a) for p in pb):
        return True
    return any(_cross(s, t) for s in _segments(a) for t in _segments(b))


def parse_geo(georel: str, geometry: str | None, coordinates: str | None, geoproperty: str | None,
              name: Callable[[str], str | None]) -> Predicate:
    """``georel``, ``geometry``, ``coordinates`` (and ``geoproperty``) → a predicate over entities."""
    if not geometry or coordinates is None:
        raise bad("a geo-query needs georel, geometry and coordinates")
    if geometry not in ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"):
        raise bad(f"geometry {geometry!r} is not a GeoJSON geometry type")
    try:
        coords = json.loads(coordinates)
    except ValueError:
        raise bad(f"coordinates {coordinates!r} are not a JSON array") from None
    except RecursionError:
        raise bad(f"coordinates are {TOO_DEEP}") from None
    query = {"type": geometry, "coordinates": coords}
    why = _bad_positions(coords)
    if why:
        raise bad(f"coordinates {coordinates[:80]!r}: {why}")
    if not _points(coords):
        raise bad(f"coordinates {coordinates[:80]!r} hold no position")
    stored = name(geoproperty or "location")
    rel, *mods = georel.split(";")

    def geo(e: Entity) -> dict[str, Any] | None:
        attr = e.attrs.get(stored) if stored else None
        return dict(attr.value) if isinstance(attr, GeoProperty) else None

    if rel == "near":
        limits: dict[str, float] = {}
        for m in mods:
            key, sep, val = m.partition("==")
            try:
                limits[key] = float(val)
            except ValueError:
                raise bad(f"georel {georel!r}: {m!r} is not maxDistance==<m> or minDistance==<m>") from None
            if not sep or key not in ("maxDistance", "minDistance"):
                raise bad(f"georel {georel!r}: {m!r} is not maxDistance==<m> or minDistance==<m>")
            if not 0.0 <= limits[key] < math.inf:
                raise bad(f"georel {georel!r}: {key} must be a finite distance of 0 m or more")
        if not limits or geometry != "Point":
            raise bad("georel near needs a Point and maxDistance==<m> or minDistance==<m>")
        centre = _points(coords)[0]

        def near(e: Entity) -> bool:
            g = geo(e)
            if g is None:
                return False
            d = min(distance_m(centre, p) for p in _points(g.get("coordinates")))
            return d <= limits.get("maxDistance", math.inf) and d >= limits.get("minDistance", 0.0)
        return near
    tests: dict[str, Callable[[dict[str, Any]], bool]] = {
        "within": lambda g: _within(g, query),
        "contains": lambda g: _within(query, g),
        "intersects": lambda g: _intersects(g, query),
        "disjoint": lambda g: not _intersects(g, query),
        "equals": lambda g: _points(g.get("coordinates")) == _points(coords),
        "overlaps": lambda g: _intersects(g, query) and not _within(g, query) and not _within(query, g),
    }
    if rel not in tests or mods:
        raise bad(f"georel {georel!r} is not one of near;maxDistance==<m>, {', '.join(tests)}")
    if rel in ("within", "contains") and not _rings(query if rel == "within" else {"type": "Polygon"}) and \
            rel == "within":
        raise bad("georel within needs a Polygon or MultiPolygon")
    check = tests[rel]
    return lambda e: (g := geo(e)) is not None and check(g)
