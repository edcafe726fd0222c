"""The NGSI-LD operations of one tenant over its store: entities, batches, queries, types and attributes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aicity.core.entity import Entity, GeoProperty, Property, Relationship
from aicity.core.store import StateStore
from aicity.platform.errors import NgsiError, bad, not_found
from aicity.platform.jsonld import Context
from aicity.platform.ngsi import Codec, merge
from aicity.platform.patterns import compile_pattern
from aicity.platform.query import Predicate, parse_geo, parse_q
from aicity.platform.subscriptions import Subscriptions
from aicity.platform.terms import TermRegistry

MAX_LIMIT = 1000


@dataclass(frozen=True)
class Query:
    """An entity query (GET /entities or POST /entityOperations/query), in request terms."""

    type: str | None = None
    id: str | None = None
    id_pattern: str | None = None
    q: str | None = None
    attrs: str | None = None
    georel: str | None = None
    geometry: str | None = None
    coordinates: str | None = None
    geoproperty: str | None = None


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


class Broker:
    """Entity operations of one tenant; every change is matched against its subscriptions."""

    def __init__(self, tenant: str, store: StateStore, subs_wake: Callable[[], None], bus: Any = None) -> None:
        self.tenant = tenant
        self.store = store
        self.terms = TermRegistry(store)
        self.subs = Subscriptions(tenant, store, self.terms, subs_wake, bus)

    def codec(self, ctx: Context) -> Codec:
        """A codec for one request's context."""
        return Codec(self.terms, ctx)

    # ---- writes ---------------------------------------------------------------------------------
    def _write(self, old: Entity | None, new: Entity, *, replace: bool, reason: str) -> None:
        now = datetime.now(UTC)
        with self.store.lock:
            if replace:
                self.store.replace(new, now=now)
                changed = set(new.attrs) | (set(old.attrs) - set(new.attrs) if old else set())
            else:
                result = self.store.upsert(new, now=now)
                changed = set(result.changed) | set(result.reported)
                if old is None and not new.attrs:  # an entity with no attributes yet
                    self.store.replace(new, now=now)
                    changed = set()
            current = self.store.get(new.id) or new
            self.subs.changed(old, current, changed or ({"*"} if old is None else set()), reason)

    def create(self, codec: Codec, body: Any) -> str:
        """Create an entity (AlreadyExists when its id is taken)."""
        entity, _ = codec.entity(body)
        with self.store.lock:
            if self.store.get(entity.id) is not None:
                raise NgsiError("AlreadyExists", f"entity {entity.id} already exists")
            self._write(None, entity, replace=True, reason="newlyMatching")
        return entity.id

    def retrieve(self, entity_id: str) -> Entity:
        """One entity (ResourceNotFound when absent)."""
        _check_id(entity_id)
        found = self.store.get(entity_id)
        if found is None:
            raise not_found(f"entity {entity_id} not found")
        return found

    def replace(self, codec: Codec, entity_id: str, body: Any) -> None:
        """PUT: the entity becomes exactly the body."""
        old = self.retrieve(entity_id)
        entity, _ = codec.entity({"type": codec.term(old.type), **body} if isinstance(body, Mapping) else body,
                                 entity_id=entity_id)
        if entity.type != old.type:
            raise bad(f"entity {entity_id} is of type {codec.term(old.type)}; PUT cannot change it")
        self._write(old, entity, replace=True, reason="updated")

    def merge(self, codec: Codec, entity_id: str, body: Any) -> None:
        """PATCH /entities/{id}: merge the body in (null removes an attribute)."""
        old = self.retrieve(entity_id)
        entity, nulls = codec.entity({"type": codec.term(old.type), **body} if isinstance(body, Mapping) else body,
                                     entity_id=entity_id, need_type=False)
        if entity.type != old.type:
            raise bad(f"entity {entity_id} is of type {codec.term(old.type)}; a merge cannot change it")
        if nulls:
            self._write(old, merge(old, entity, nulls), replace=True, reason="updated")
        else:
            self._write(old, entity, replace=False, reason="updated")

    def append_attrs(self, codec: Codec, entity_id: str, body: Any, *, overwrite: bool = True) -> list[str]:
        """POST /entities/{id}/attrs: add attributes (and overwrite unless noOverwrite); the names not updated."""
        _attrs_body(body)
        old = self.retrieve(entity_id)
        entity, _ = codec.entity({"id": entity_id, "type": codec.term(old.type), **body}, entity_id=entity_id)
        skipped = [n for n in entity.attrs if not overwrite and n in old.attrs]
        keep = {k: v for k, v in entity.attrs.items() if k not in skipped}
        if keep:
            self._write(old, Entity.trusted(entity_id, old.type, keep), replace=False, reason="updated")
        return [codec.term(n) for n in skipped]

    def update_attrs(self, codec: Codec, entity_id: str, body: Any) -> list[str]:
        """PATCH /entities/{id}/attrs: update existing attributes only; returns the names not updated."""
        _attrs_body(body)
        old = self.retrieve(entity_id)
        entity, _ = codec.entity({"id": entity_id, "type": codec.term(old.type), **body}, entity_id=entity_id)
        missing = [n for n in entity.attrs if n not in old.attrs]
        keep = {k: v for k, v in entity.attrs.items() if k in old.attrs}
        if keep:
            self._write(old, Entity.trusted(entity_id, old.type, keep), replace=False, reason="updated")
        return [codec.term(n) for n in missing]

    def update_attr(self, codec: Codec, entity_id: str, term: str, body: Any) -> None:
        """PATCH /entities/{id}/attrs/{attr}: partial update of one existing attribute."""
        old = self.retrieve(entity_id)
        name = codec.attr_name(term, create=False)
        if name is None or name not in old.attrs:
            raise not_found(f"entity {entity_id} has no attribute {term}")
        if not isinstance(body, Mapping):
            raise bad("an attribute update must be a JSON object")
        prev = old.attrs[name]
        base = prev.to_ngsi()
        if prev.observed_at is not None:
            base["observedAt"] = prev.observed_at.isoformat()
        entity, _ = codec.entity({"id": entity_id, "type": codec.term(old.type), term: {**base, **body}},
                                 entity_id=entity_id)
        self._write(old, entity, replace=False, reason="updated")

    def delete(self, entity_id: str) -> None:
        """DELETE /entities/{id}."""
        _check_id(entity_id)
        with self.store.lock:
            if not self.store.delete(entity_id):
                raise not_found(f"entity {entity_id} not found")

    def delete_attr(self, codec: Codec, entity_id: str, term: str) -> None:
        """DELETE /entities/{id}/attrs/{attr}."""
        old = self.retrieve(entity_id)
        name = codec.attr_name(term, create=False)
        if name is None or name not in old.attrs:
            raise not_found(f"entity {entity_id} has no attribute {term}")
        self._write(old, Entity.trusted(entity_id, old.type, {k: v for k, v in old.attrs.items() if k != name}),
                    replace=True, reason="updated")

    # ---- batches --------------------------------------------------------------------------------
    def batch(self, op: str, codec: Codec, body: Any, *, update_only: bool = False,
              no_overwrite: bool = False) -> tuple[list[str], list[dict[str, Any]]]:
        """entityOperations/create|upsert|update|delete: (ids that succeeded, errors per id)."""
        if not isinstance(body, list):
            raise bad(f"entityOperations/{op} needs a JSON array")
        if not body:
            raise bad(f"entityOperations/{op} got an empty array")
        ok: list[str] = []
        errors: list[dict[str, Any]] = []
        for item in body:
            ident = item if op == "delete" else (item.get("id") if isinstance(item, Mapping) else None)
            try:
                if op == "delete":
                    if not isinstance(item, str):
                        raise bad("entityOperations/delete needs an array of entity ids")
                    self.delete(item)
                elif op == "create":
                    self.create(codec, item)
                elif op == "upsert":
                    _, _, failed = self.upsert_batch([(codec, item)], update_only=update_only)
                    if failed:
                        errors += failed
                        continue
                elif op == "update":
                    if not isinstance(ident, str):
                        raise bad("an entity needs an id")
                    old = self.retrieve(ident)
                    entity, nulls = codec.entity(item, need_type=False)
                    attrs = {k: v for k, v in entity.attrs.items() if not (no_overwrite and k in old.attrs)}
                    if nulls:
                        self._write(old, merge(old, Entity.trusted(old.id, old.type, attrs), nulls),
                                    replace=True, reason="updated")
                    elif attrs:
                        self._write(old, Entity.trusted(old.id, old.type, attrs), replace=False, reason="updated")
                else:
                    raise NgsiError("OperationNotSupported", f"entityOperations/{op} is not supported")
                ok.append(str(ident))
            except NgsiError as exc:
                errors.append({"entityId": ident if isinstance(ident, str) else None,
                               "error": exc.problem()})
        return ok, errors

    def upsert_batch(self, items: Sequence[tuple[Codec, Any]], *, update_only: bool
                     ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """entityOperations/upsert: every item validated, then written in as few store transactions as the
        semantics allow (merges and new entities together; a replacement flushes them first); (ids done, ids
        created, errors per id)."""
        ok: list[str] = []
        created: list[str] = []
        errors: list[dict[str, Any]] = []
        parsed: list[tuple[Codec, Entity, set[str]]] = []
        for codec, item in items:
            try:
                entity, nulls = codec.entity(item)
            except NgsiError as exc:
                ident = item.get("id") if isinstance(item, Mapping) else None
                errors.append({"entityId": ident if isinstance(ident, str) else None, "error": exc.problem()})
                continue
            parsed.append((codec, entity, nulls))
        now = datetime.now(UTC)
        pending: dict[str, tuple[Entity | None, Entity]] = {}

        def flush() -> None:
            if pending:
                self._merge_many(list(pending.values()), now)
                pending.clear()
        with self.store.lock:
            for codec, entity, nulls in parsed:
                if entity.id in pending:  # the same entity twice in a batch: in order
                    flush()
                old = self.store.get(entity.id)
                if old is not None and old.type != entity.type:
                    errors.append({"entityId": entity.id, "error": bad(
                        f"entity {entity.id} is of type {codec.term(old.type)}, not {codec.term(entity.type)}"
                    ).problem()})
                    continue
                if (old is None and entity.attrs) or (old is not None and update_only and not nulls):
                    pending[entity.id] = (old, entity)
                else:
                    flush()
                    new = entity if old is None or not update_only else merge(old, entity, nulls)
                    self._write(old, new, replace=True, reason="newlyMatching" if old is None else "updated")
                ok.append(entity.id)
                if old is None:
                    created.append(entity.id)
            flush()
        return ok, created, errors

    def _merge_many(self, changes: Sequence[tuple[Entity | None, Entity]], now: datetime) -> None:
        """Merge entities in one store transaction and match the changes against the subscriptions."""
        results = self.store.upsert_many([e for _, e in changes], now=now)
        if not self.subs.active:
            return
        for (old, e), r in zip(changes, results, strict=True):
            changed = set(r.changed) | set(r.reported)
            if changed:
                self.subs.changed(old, self.store.get(e.id) or e, changed,
                                  "newlyMatching" if old is None else "updated")

    def upsert_fast(self, entities: Sequence[Entity], *, now: datetime | None = None) -> None:
        """Merge already-validated entities in one transaction (MQTT ingest), matching subscriptions."""
        with self.store.lock:
            self._merge_many([(self.store.get(e.id), e) for e in entities], now or datetime.now(UTC))

    # ---- queries --------------------------------------------------------------------------------
    def query(self, codec: Codec, query: Query, *, need_filter: bool = True) -> list[Entity]:
        """Entities matching a query, sorted by id."""
        types = _split(query.type)
        if need_filter and not (types or query.id or query.id_pattern or query.q or query.attrs or query.georel):
            raise bad("a query needs at least one of type, id, idPattern, q, attrs or a geo-query")
        stored_types = {codec.attr_name(t, create=False) for t in types} if types else None
        ids = set(_split(query.id)) or None
        pattern = None
        if query.id_pattern:
            pattern = compile_pattern(query.id_pattern, "idPattern")
        preds: list[Predicate] = []

        def name(term: str) -> str | None:
            return codec.attr_name(term, create=False)
        if query.q:
            preds.append(parse_q(query.q, name))
        if query.georel or query.geometry or query.coordinates:
            preds.append(parse_geo(query.georel or "", query.geometry, query.coordinates, query.geoproperty, name))
        attrs = {name(a) for a in _split(query.attrs)} if query.attrs else None
        out = []
        for e in self.store.entities():
            if stored_types is not None and e.type not in stored_types:
                continue
            if ids is not None and e.id not in ids:
                continue
            if pattern is not None and not pattern.fullmatch(e.id):
                continue
            if attrs is not None and not (attrs & set(e.attrs)):
                continue
            if all(p(e) for p in preds):
                out.append(e)
        out.sort(key=lambda e: e.id)
        return out

    def types(self) -> dict[str, set[str]]:
        """Stored type → attribute names seen on its entities."""
        out: dict[str, set[str]] = {}
        for e in self.store.entities():
            out.setdefault(e.type, set()).update(e.attrs)
        return out

    def attributes(self) -> dict[str, tuple[set[str], set[str], int]]:
        """Stored attribute name → (types of entities holding it, attribute kinds, count)."""
        out: dict[str, tuple[set[str], set[str], int]] = {}
        for e in self.store.entities():
            for n, a in e.attrs.items():
                types, kinds, count = out.get(n, (set(), set(), 0))
                types.add(e.type)
                kinds.add(_kind(a))
                out[n] = (types, kinds, count + 1)
        return out


def _kind(attr: Property | Relationship | GeoProperty) -> str:
    return {Property: "Property", Relationship: "Relationship", GeoProperty: "GeoProperty"}[type(attr)]


def _attrs_body(body: Any) -> None:
    if not isinstance(body, Mapping):
        raise bad("the body must be a JSON object of attributes")


def _check_id(entity_id: str) -> None:
    if ":" not in entity_id:
        raise bad(f"entity id {entity_id!r} is not a URI")


def paginate(items: list[Any], limit: int | None, offset: int | None) -> list[Any]:
    """One page of a result list (limit at most :data:`MAX_LIMIT`)."""
    lim = 20 if limit is None else limit
    off = offset or 0
    if lim < 0 or off < 0:
        raise bad("limit and offset must not be negative")
    if lim > MAX_LIMIT:
        raise NgsiError("TooManyResults", f"limit {lim} is above the maximum {MAX_LIMIT}")
    return items[off:off + lim]


def as_list(value: Iterable[str]) -> list[str]:
    """A sorted list of names."""
    return sorted(value)
