"""NGSI-LD-shaped entities: URN ids, a type, Properties, Relationships and GeoProperties."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aicity.core.errors import EntityValidationError

URN_RE = re.compile(r"^urn:ngsi-ld:(?P<type>[A-Za-z][A-Za-z0-9_]*):(?P<local>[^\s\x00-\x1f\x7f\ud800-\udfff]+)$")
"""An entity's id: no white space, control characters or lone surrogates in its local part."""
SURROGATE_RE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: a JSON escape such as ``\\ud800`` parses to one, but it is not Unicode text (no UTF-8 encodes
it), so a store or a response could not write it."""
ATTR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ID_BYTES = 1024
"""The longest id (UTF-8 bytes): stores index ids, and PostgreSQL refuses an index entry over 2,704 bytes (a longer
id made every write of the store fail, so the loop went blind)."""
MAX_NAME = 256
"""The longest type or attribute name (characters), for the same reason."""
RESERVED = {"id", "type", "@context", "createdAt", "modifiedAt", "observedAt"}
GEO_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"}

Scalar = str | int | float | bool | None


def urn(entity_type: str, local_id: str) -> str:
    """Build ``urn:ngsi-ld:<Type>:<id>``."""
    return f"urn:ngsi-ld:{entity_type}:{local_id}"


def id_too_long(text: str) -> bool:
    """Whether an id (of an entity, a relationship's object, a subscription) is over :data:`MAX_ID_BYTES` in UTF-8."""
    return len(text) > MAX_ID_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES


def _check_text(entity_id: str, name: str, text: str, what: str) -> None:
    if not text.isascii() and SURROGATE_RE.search(text):
        raise EntityValidationError(entity_id, name, f"{what} holds a lone surrogate: it is not Unicode text")


def _check_value(entity_id: str, name: str, value: Any) -> None:
    if isinstance(value, str):
        _check_text(entity_id, name, value, "a string")
        return
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EntityValidationError(entity_id, name, f"value {value!r} is not a finite number")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_value(entity_id, name, item)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EntityValidationError(entity_id, name, f"object key {key!r} is not a string")
            _check_text(entity_id, name, key, "an object key")
            _check_value(entity_id, name, item)
        return
    raise EntityValidationError(entity_id, name, f"value of type {type(value).__name__} is not JSON")


@dataclass(frozen=True, slots=True)
class Property:
    """An NGSI-LD Property: a value with an optional UN/CEFACT unit code and observation time."""

    value: Any
    observed_at: datetime | None = None
    unit_code: str | None = None

    def to_ngsi(self) -> dict[str, Any]:
        """Normalized NGSI-LD form."""
        out: dict[str, Any] = {"type": "Property", "value": self.value}
        if self.observed_at is not None:
            out["observedAt"] = self.observed_at.isoformat()
        if self.unit_code is not None:
            out["unitCode"] = self.unit_code
        return out


@dataclass(frozen=True, slots=True)
class Relationship:
    """An NGSI-LD Relationship pointing at another entity's URN."""

    object: str
    observed_at: datetime | None = None

    def to_ngsi(self) -> dict[str, Any]:
        """Normalized NGSI-LD form."""
        out: dict[str, Any] = {"type": "Relationship", "object": self.object}
        if self.observed_at is not None:
            out["observedAt"] = self.observed_at.isoformat()
        return out


@dataclass(frozen=True, slots=True)
class GeoProperty:
    """An NGSI-LD GeoProperty holding a GeoJSON geometry."""

    value: Mapping[str, Any]
    observed_at: datetime | None = None

    def to_ngsi(self) -> dict[str, Any]:
        """Normalized NGSI-LD form."""
        out: dict[str, Any] = {"type": "GeoProperty", "value": dict(self.value)}
        if self.observed_at is not None:
            out["observedAt"] = self.observed_at.isoformat()
        return out


Attribute = Property | Relationship | GeoProperty


@dataclass(frozen=True, slots=True)
class Entity:
    """A validated NGSI-LD entity. Construct it and it validates itself."""

    id: str
    type: str
    attrs: Mapping[str, Attribute] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def trusted(cls, entity_id: str, entity_type: str, attrs: Mapping[str, Attribute]) -> Entity:
        """Build an entity from parts that were already validated (skips validation)."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "id", entity_id)
        object.__setattr__(obj, "type", entity_type)
        object.__setattr__(obj, "attrs", attrs)
        return obj

    def get(self, name: str, default: Any = None) -> Any:
        """The value of Property ``name`` (or the object of a Relationship), else ``default``."""
        attr = self.attrs.get(name)
        if attr is None:
            return default
        if isinstance(attr, Relationship):
            return attr.object
        return attr.value

    @property
    def local_id(self) -> str:
        """The part of the URN after the type."""
        m = URN_RE.match(self.id)
        return m.group("local") if m else self.id

    def to_ngsi(self) -> dict[str, Any]:
        """Normalized NGSI-LD JSON."""
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        for name, attr in self.attrs.items():
            out[name] = attr.to_ngsi()
        return out

    @classmethod
    def from_ngsi(cls, data: Mapping[str, Any]) -> Entity:
        """Parse normalized NGSI-LD JSON; raises :class:`EntityValidationError` naming what is wrong."""
        if not isinstance(data, Mapping):
            raise EntityValidationError(None, None, f"entity must be a JSON object, got {type(data).__name__}")
        ident = data.get("id")
        etype = data.get("type")
        if not isinstance(ident, str):
            raise EntityValidationError(None, "id", "missing or not a string")
        if not isinstance(etype, str):
            raise EntityValidationError(ident, "type", "missing or not a string")
        attrs: dict[str, Attribute] = {}
        for name, raw in data.items():
            if name in ("id", "type", "@context"):
                continue
            attrs[name] = _parse_attr(ident, name, raw)
        return cls(id=ident, type=etype, attrs=attrs)


def _parse_time(entity_id: str, name: str, raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise EntityValidationError(entity_id, name, "observedAt must be an ISO 8601 string")
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EntityValidationError(entity_id, name, f"observedAt {raw!r} is not ISO 8601") from exc
    return when


def _parse_attr(entity_id: str, name: str, raw: Any) -> Attribute:
    if not isinstance(raw, Mapping):
        raise EntityValidationError(entity_id, name, "attribute must be an object with a 'type'")
    kind = raw.get("type")
    observed = _parse_time(entity_id, name, raw.get("observedAt"))
    if kind == "Property":
        if "value" not in raw:
            raise EntityValidationError(entity_id, name, "Property has no 'value'")
        unit = raw.get("unitCode")
        if unit is not None and not isinstance(unit, str):
            raise EntityValidationError(entity_id, name, "unitCode must be a string")
        return Property(raw["value"], observed, unit)
    if kind == "Relationship":
        obj = raw.get("object")
        if not isinstance(obj, str):
            raise EntityValidationError(entity_id, name, "Relationship has no string 'object'")
        return Relationship(obj, observed)
    if kind == "GeoProperty":
        value = raw.get("value")
        if not isinstance(value, Mapping):
            raise EntityValidationError(entity_id, name, "GeoProperty value must be a GeoJSON object")
        return GeoProperty(value, observed)
    raise EntityValidationError(entity_id, name, f"unknown attribute type {kind!r}")


def _check_geo(entity_id: str, name: str, geo: Mapping[str, Any]) -> None:
    gtype = geo.get("type")
    if gtype not in GEO_TYPES:
        raise EntityValidationError(entity_id, name, f"GeoJSON type {gtype!r} is not one of {sorted(GEO_TYPES)}")
    coords = geo.get("coordinates")
    if not isinstance(coords, list | tuple) or not coords:
        raise EntityValidationError(entity_id, name, "GeoJSON needs non-empty coordinates")
    if gtype == "Point" and (len(coords) not in (2, 3) or not all(
        isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c) for c in coords
    )):
        raise EntityValidationError(entity_id, name, "a Point needs 2 or 3 finite numbers")


def validate(entity: Entity) -> None:
    """Check an entity; raises :class:`EntityValidationError` naming the entity, attribute and problem."""
    if isinstance(entity.id, str) and id_too_long(entity.id):
        raise EntityValidationError(entity.id[:80] + "…", "id", f"id is longer than {MAX_ID_BYTES} bytes")
    m = URN_RE.match(entity.id) if isinstance(entity.id, str) else None
    if m is None:
        raise EntityValidationError(
            str(entity.id), "id", "id must be a URN of the form urn:ngsi-ld:<Type>:<id> (its <id> without white "
            "space, control characters or lone surrogates)")
    if not isinstance(entity.type, str) or not ATTR_RE.match(entity.type) or len(entity.type) > MAX_NAME:
        raise EntityValidationError(entity.id, "type", f"type {str(entity.type)[:80]!r} is not a valid name "
                                    f"(a letter or '_', then letters, digits or '_', at most {MAX_NAME})")
    if m.group("type") != entity.type:
        raise EntityValidationError(
            entity.id, "type", f"type {entity.type!r} does not match the URN's type {m.group('type')!r}")
    for name, attr in entity.attrs.items():
        if not isinstance(name, str) or not ATTR_RE.match(name) or name in RESERVED or len(name) > MAX_NAME:
            raise EntityValidationError(entity.id, str(name)[:80], "invalid or reserved attribute name (a letter "
                                        f"or '_', then letters, digits or '_', at most {MAX_NAME})")
        if isinstance(attr, Property):
            _check_value(entity.id, name, attr.value)
            if attr.unit_code is not None:
                if not isinstance(attr.unit_code, str):
                    raise EntityValidationError(entity.id, name, f"unitCode {attr.unit_code!r} is not a string")
                _check_text(entity.id, name, attr.unit_code, "unitCode")
        elif isinstance(attr, Relationship):
            if not URN_RE.match(attr.object) or id_too_long(attr.object):
                raise EntityValidationError(entity.id, name, f"relationship object {attr.object[:80]!r} is not a URN "
                                            f"(of at most {MAX_ID_BYTES} bytes)")
        elif isinstance(attr, GeoProperty):
            _check_value(entity.id, name, attr.value)
            _check_geo(entity.id, name, attr.value)
        else:
            raise EntityValidationError(entity.id, name, f"not an attribute: {type(attr).__name__}")
        observed = attr.observed_at
        if observed is not None and observed.tzinfo is None:
            raise EntityValidationError(entity.id, name, "observedAt must carry a timezone")
