"""NGSI-LD payloads ↔ kernel entities: input in normalized or concise form, output normalized, concise,
keyValues, with or without system attributes, compacted with the request's context."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aicity.core.entity import GEO_TYPES, Attribute, Entity, GeoProperty, Property, Relationship
from aicity.core.errors import ValidationError
from aicity.platform.errors import NgsiError, bad
from aicity.platform.jsonld import Context
from aicity.platform.terms import TermRegistry

NULL = "urn:ngsi-ld:null"
SYSTEM = ("createdAt", "modifiedAt", "deletedAt")
UNSUPPORTED = ("LanguageProperty", "ListProperty", "JsonProperty", "VocabProperty", "ListRelationship")
_SUBKEYS = frozenset({"type", "value", "object", "observedAt", "unitCode", "createdAt", "modifiedAt", "@context"})
_PLAIN = frozenset({"type", "value", "observedAt", "unitCode"})
"""The keys of a plain Property (no sub-attributes): parsed on a short path."""
_NOT_ATTRS = frozenset({"id", "@id", "type", "@type", "@context", "scope", *SYSTEM})


def _time(entity_id: str, name: str, raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise bad(f"{entity_id}.{name}: observedAt must be an ISO 8601 date-time string")
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"{entity_id}.{name}: observedAt {raw!r} is not an ISO 8601 date-time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _is_geo(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("type") in GEO_TYPES and "coordinates" in value


def parse_attr(entity_id: str, name: str, raw: Any) -> Attribute | None:
    """One attribute in normalized or concise form (None: the NGSI-LD null, i.e. delete it)."""
    if raw is None or raw == NULL:
        return None
    if not isinstance(raw, Mapping):
        return Property(raw)
    if type(raw) is dict and raw.get("type") == "Property" and "value" in raw and raw.keys() <= _PLAIN:
        return _property(entity_id, name, raw)  # the sensors' usual form, on a short path
    if _is_geo(raw):
        return GeoProperty(raw)
    kind = raw.get("type")
    if isinstance(kind, str) and kind in UNSUPPORTED:
        raise NgsiError("OperationNotSupported", f"{entity_id}.{name}: {kind} is not supported by this broker "
                        "(Property, Relationship and GeoProperty are)")
    if "datasetId" in raw:
        raise NgsiError("OperationNotSupported", f"{entity_id}.{name}: multi-attributes (datasetId) are not "
                        "supported by this broker")
    extra = [] if raw.keys() <= _SUBKEYS else sorted(k for k in raw if k not in _SUBKEYS)
    if kind in ("Property", "Relationship", "GeoProperty") or "value" in raw or "object" in raw:
        if extra:
            raise NgsiError("OperationNotSupported", f"{entity_id}.{name}: sub-attributes ({', '.join(extra)}) "
                            "are not stored by this broker (observedAt and unitCode are)")
        observed = _time(entity_id, name, raw.get("observedAt"))
        if kind == "Relationship" or (kind is None and "object" in raw and "value" not in raw):
            obj = raw.get("object")
            if obj is None or obj == NULL:
                return None
            if not isinstance(obj, str):
                raise bad(f"{entity_id}.{name}: a Relationship needs one string 'object'")
            return Relationship(obj, observed)
        if "value" not in raw:
            raise bad(f"{entity_id}.{name}: a {kind or 'Property'} needs a 'value'")
        value = raw["value"]
        if value is None or value == NULL:
            return None
        if kind == "GeoProperty" or (kind is None and _is_geo(value)):
            if not isinstance(value, Mapping):
                raise bad(f"{entity_id}.{name}: a GeoProperty value must be a GeoJSON geometry")
            return GeoProperty(value, observed)
        return _property(entity_id, name, raw, observed)
    if kind is not None:
        raise bad(f"{entity_id}.{name}: unknown attribute type {kind!r}")
    return Property(dict(raw))  # concise: a JSON object value


def _property(entity_id: str, name: str, raw: Mapping[str, Any], observed: datetime | None = None
              ) -> Property | None:
    """A Property with a 'value' (None when the value is the NGSI-LD null)."""
    value = raw["value"]
    if value is None or value == NULL:
        return None
    unit = raw.get("unitCode")
    if unit is not None and not isinstance(unit, str):
        raise bad(f"{entity_id}.{name}: unitCode must be a string")
    return Property(value, observed or _time(entity_id, name, raw.get("observedAt")), unit)


class Codec:
    """Reads and writes entities of one tenant with one request's context."""

    def __init__(self, terms: TermRegistry, ctx: Context) -> None:
        self.terms = terms
        self.ctx = ctx
        self._names: dict[str, str] = {}  # term → stored name, once known (a batch repeats the same few)

    # ---- input ------------------------------------------------------------------------------------
    def attr_name(self, term: str, *, create: bool = True) -> str | None:
        """A request's attribute (or type) term → the stored short name."""
        known = self._names.get(term) if isinstance(term, str) else None
        if known is not None:
            return known
        if not isinstance(term, str) or not term:
            raise bad(f"attribute name {term!r} is not a non-empty string")
        name = self.terms.name(self.ctx.expand(term), create=create)
        if name is not None:
            self._names[term] = name
        return name

    def entity(self, body: Any, *, need_type: bool = True, entity_id: str | None = None
               ) -> tuple[Entity, set[str]]:
        """A request body → (the entity with the attributes it sets, the names it sets to null)."""
        if not isinstance(body, Mapping):
            raise bad(f"an entity must be a JSON object, got {type(body).__name__}")
        ident = body.get("id", body.get("@id", entity_id))
        if entity_id is not None and ident != entity_id:
            raise bad(f"the body's id {ident!r} differs from the URL's {entity_id!r}")
        if not isinstance(ident, str) or ":" not in ident:
            raise bad(f"entity id {ident!r} is missing or not a URI")
        raw_type = body.get("type", body.get("@type"))
        if isinstance(raw_type, list) and len(raw_type) == 1:
            raw_type = raw_type[0]
        if raw_type is None and need_type:
            raise bad(f"{ident}: entity type is missing")
        if raw_type is not None and not isinstance(raw_type, str):
            raise NgsiError("OperationNotSupported", f"{ident}: one entity type (a string) is supported")
        etype = self.attr_name(raw_type) if isinstance(raw_type, str) else _type_of(ident)
        attrs: dict[str, Attribute] = {}
        nulls: set[str] = set()
        for term, raw in body.items():
            if term in _NOT_ATTRS:
                continue
            name = self.attr_name(term)
            assert name is not None
            attr = parse_attr(ident, name, raw)
            if attr is None:
                nulls.add(name)
                continue
            attrs[name] = attr
        try:
            return Entity(ident, str(etype), attrs), nulls
        except ValidationError as exc:
            raise bad(str(exc)) from None

    # ---- output -----------------------------------------------------------------------------------
    def term(self, name: str) -> str:
        """A stored name → the response's term."""
        return self.ctx.compact(self.terms.iri(name))

    def render(self, entity: Entity, *, fmt: str = "normalized", attrs: Iterable[str] | None = None,
               sys_times: tuple[datetime | None, datetime | None] | None = None,
               geometry: Callable[[Entity], Any] | None = None) -> dict[str, Any]:
        """One entity as NGSI-LD JSON in ``fmt`` (normalized, concise or keyValues), compacted."""
        out: dict[str, Any] = {"id": entity.id, "type": self.term(entity.type)}
        keep = None if attrs is None else set(attrs)
        for name, attr in entity.attrs.items():
            if keep is not None and name not in keep:
                continue
            out[self.term(name)] = render_attr(attr, fmt)
        if sys_times is not None and fmt != "keyValues":
            created, modified = sys_times
            if created is not None:
                out["createdAt"] = _iso(created)
            if modified is not None:
                out["modifiedAt"] = _iso(modified)
        return out


def _type_of(ident: str) -> str:
    parts = ident.split(":")
    return parts[2] if len(parts) > 3 and parts[:2] == ["urn", "ngsi-ld"] else ""


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def render_attr(attr: Attribute, fmt: str) -> Any:
    """One attribute in normalized, concise or keyValues form."""
    if fmt == "keyValues":
        if isinstance(attr, Relationship):
            return attr.object
        return dict(attr.value) if isinstance(attr, GeoProperty) else attr.value
    out = attr.to_ngsi()
    if attr.observed_at is not None:
        out["observedAt"] = _iso(attr.observed_at)
    if fmt == "concise":
        out.pop("type")
        if isinstance(attr, GeoProperty) and len(out) == 1:
            return out["value"]
        if isinstance(attr, Property) and len(out) == 1 and not isinstance(attr.value, Mapping):
            return attr.value
    return out


def merge(old: Entity, new: Entity, nulls: set[str]) -> Entity:
    """``old`` with ``new``'s attributes merged in and ``nulls`` removed."""
    attrs = {k: v for k, v in old.attrs.items() if k not in nulls}
    attrs.update(new.attrs)
    return Entity.trusted(old.id, old.type, attrs)
