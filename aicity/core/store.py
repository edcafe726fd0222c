"""The state store: current state, attribute history, events, dead letters, the ledger and governance documents.

SQLite by default (a file or ``:memory:``), behind the :class:`StateStore` protocol that another backend
(PostgreSQL) can implement. An update whose value equals the current one but carries a new ``observedAt`` is
*reported*; one whose value differs is *changed*; both are kept in history with their kind.

No module outside a store backend touches a database connection: the governance layer keeps its append-only
ledger (rows appended atomically across processes, read by range) and its small documents (approvals, stops,
consents, lawful bases: put / get / query by collection and key, compare-and-set) through the methods below.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, runtime_checkable

from aicity.core.entity import Attribute, Entity, GeoProperty, Property, Relationship
from aicity.core.errors import AicityError, UserError
from aicity.core.event import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, data TEXT NOT NULL, modified_at REAL NOT NULL, created_at REAL
);
CREATE INDEX IF NOT EXISTS entities_type ON entities(type);
CREATE TABLE IF NOT EXISTS history (
    entity_id TEXT NOT NULL, recorded_at REAL NOT NULL, context_id TEXT, attrs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_key ON history(entity_id, recorded_at);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, parent_id TEXT, actor TEXT NOT NULL,
    type TEXT NOT NULL, time REAL NOT NULL, entity_type TEXT, entity_id TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_id ON events(id);
CREATE INDEX IF NOT EXISTS events_type ON events(type, time);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, source TEXT NOT NULL,
    error TEXT NOT NULL, reason TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, time TEXT NOT NULL,
    record TEXT, leaf_hash TEXT NOT NULL, root TEXT NOT NULL, signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
WHEN NOT (NEW.record IS NULL AND NEW.seq = OLD.seq AND NEW.id = OLD.id AND NEW.kind = OLD.kind
          AND NEW.time = OLD.time AND NEW.leaf_hash = OLD.leaf_hash AND NEW.root = OLD.root
          AND NEW.signature = OLD.signature)
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only (only retention pruning may blank a record)'); END;
CREATE TABLE IF NOT EXISTS series (
    entity_id TEXT NOT NULL, attr TEXT NOT NULL, t REAL NOT NULL, num REAL, val TEXT, unit TEXT
);
CREATE INDEX IF NOT EXISTS series_key ON series(entity_id, attr, t, num);
CREATE TABLE IF NOT EXISTS history_recent (
    entity_id TEXT NOT NULL, recorded_at REAL NOT NULL, context_id TEXT, attrs TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS series_recent (
    entity_id TEXT NOT NULL, attr TEXT NOT NULL, t REAL NOT NULL, num REAL, val TEXT, unit TEXT
);
CREATE TABLE IF NOT EXISTS documents (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,
    UNIQUE (collection, key)
);
"""

OPS = {"==": "=", "=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class ChangeKind(StrEnum):
    """What an attribute update did to the stored state."""

    NEW = "new"
    CHANGED = "changed"
    REPORTED = "reported"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """The outcome of one entity update: the kind of change per attribute."""

    entity_id: str
    kinds: Mapping[str, ChangeKind]

    @property
    def changed(self) -> list[str]:
        """Attributes that are new or whose value changed."""
        return [k for k, v in self.kinds.items() if v in (ChangeKind.NEW, ChangeKind.CHANGED)]

    @property
    def reported(self) -> list[str]:
        """Attributes re-reported with the same value and a new observedAt."""
        return [k for k, v in self.kinds.items() if v is ChangeKind.REPORTED]


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One stored attribute value."""

    entity_id: str
    attr: str
    value: Any
    observed_at: datetime | None
    recorded_at: datetime
    kind: ChangeKind
    context_id: str | None
    unit_code: str | None = None


@dataclass(frozen=True, slots=True)
class Point:
    """One value of an attribute's time series: ``t`` is its observedAt, else its record time (epoch seconds)."""

    t: float
    value: Any
    unit_code: str | None = None


@dataclass(frozen=True, slots=True)
class Bucket:
    """One period of an aggregated series (``index`` counts periods from the start; numbers only in sums)."""

    index: int
    count: int
    sum: float | None
    sumsq: float | None
    min: float | None
    max: float | None
    distinct: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input kept with the reason it was rejected."""

    seq: int
    time: datetime
    source: str
    error: str
    reason: str
    payload: Any


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the store."""

    seq: int
    id: str
    parent_id: str | None
    actor: str
    type: str
    time: datetime
    entity_type: str | None
    entity_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One stored ledger row (``record`` is None when retention pruning blanked it)."""

    seq: int
    id: str
    kind: str
    time: str
    record: str | None
    leaf_hash: str
    root: str
    signature: str


class StoreError(AicityError):
    """A bad query or a store failure."""


class StoreUnavailable(StoreError):
    """The store's server cannot be reached (restarting, gone, the connection dropped); the next call connects
    again."""


@runtime_checkable
class Interruptible(Protocol):
    """A store whose server can be away (PostgreSQL): it buffers writes meanwhile and says when it takes them."""

    def writable(self) -> bool:
        """True when writes are taken (and nothing buffered waits); False while the server is away."""
        ...


class StoreConflict(StoreError):
    """A write that collides with stored data (e.g. a ledger record id that is already taken)."""


class StateStore(Protocol):
    """What every state-store backend provides; every method may be called from any thread."""

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """The re-entrant lock every method takes: hold it to make several calls one atomic step."""
        ...

    def upsert(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> UpdateResult:
        """Write one entity."""
        ...

    def upsert_many(self, entities: Iterable[Entity], *, now: datetime,
                    context_id: str | None = None) -> list[UpdateResult]:
        """Write many entities in one transaction."""
        ...

    def replace(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> UpdateResult:
        """Make ``entity`` the whole current state of its id (attributes it lacks are gone; history stays)."""
        ...

    def delete(self, entity_id: str) -> bool:
        """Remove an entity's current state (its history stays); False when there was none."""
        ...

    def get(self, entity_id: str) -> Entity | None:
        """The current state of one entity."""
        ...

    def entities(self) -> list[Entity]:
        """Every current entity (from memory, no database read)."""
        ...

    def created_at(self, entity_id: str) -> datetime | None:
        """When the current entity was created (None when there is none)."""
        ...

    def modified_at(self, entity_id: str) -> datetime | None:
        """When the current entity was last changed (None when there is none)."""
        ...

    def query(self, *, type: str | None = None, id_pattern: str | None = None,
              where: Sequence[tuple[str, str, Any]] = (), limit: int | None = None) -> list[Entity]:
        """Entities by type, id glob pattern and attribute filters ``(attr, op, value)``."""
        ...

    def history(self, entity_id: str, attr: str, *, start: datetime | None = None,
                end: datetime | None = None, last: int | None = None) -> list[HistoryRow]:
        """Stored values of one attribute, oldest first."""
        ...

    def series(self, entity_id: str, attr: str, *, start: float | None = None, end: float | None = None,
               last: int | None = None) -> list[Point]:
        """One attribute's values by time (observedAt, else record time) in ``[start, end)``, oldest first."""
        ...

    def aggregate(self, entity_id: str, attr: str, *, start: float, end: float | None, period_s: float,
                  distinct: bool = False) -> list[Bucket]:
        """One attribute's values in ``[start, end)`` aggregated per period from ``start`` (in the database);
        distinct values are counted only when asked (``Bucket.distinct`` is 0 otherwise)."""
        ...

    def history_attrs(self, entity_id: str) -> list[str]:
        """The attributes of an entity that have history, sorted (its current state may be gone)."""
        ...

    def append_event(self, event: Event) -> None:
        """Keep an event."""
        ...

    def append_events(self, events: Iterable[Event]) -> None:
        """Keep many events in one transaction."""
        ...

    def events(self, *, type: str | None = None, entity_id: str | None = None,
               limit: int | None = None) -> list[StoredEvent]:
        """Stored events in order, optionally by type or entity."""
        ...

    def trace(self, event_id: str) -> list[StoredEvent]:
        """The causal chain from an event back to its root."""
        ...

    def dead_letter(self, source: str, error: Exception, payload: Any, *, now: datetime) -> None:
        """Keep rejected input with its reason."""
        ...

    @property
    def dead_letter_count(self) -> int:
        """How many inputs were dead-lettered."""
        ...

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Rejected inputs, oldest first."""
        ...

    def flush(self) -> None:
        """Write buffered current state."""
        ...

    def close(self) -> None:
        """Flush and close."""
        ...

    # ---- the append-only ledger -----------------------------------------------------------------
    def ledger_size(self) -> int:
        """Rows in the ledger (pruned ones included)."""
        ...

    def ledger_append(self, build: Callable[[int], LedgerRow]) -> LedgerRow:
        """Append one row atomically, one writer at a time across processes.

        ``build(size)`` gets the ledger size inside the write lock and returns the row to store at ``seq=size``;
        a duplicate record id raises :class:`StoreConflict` and nothing is written.
        """
        ...

    def ledger_rows(self, start: int = 0, end: int | None = None) -> Iterator[LedgerRow]:
        """Rows with ``start <= seq < end`` in order (undecodable text is kept, not raised)."""
        ...

    def ledger_leaf_hashes(self, start: int = 0, end: int | None = None) -> list[str]:
        """Hex leaf hashes of rows with ``start <= seq < end``, in order."""
        ...

    def ledger_find(self, record_id: str) -> LedgerRow | None:
        """The row of a record id."""
        ...

    def ledger_records(self, kind: str | None = None) -> Iterator[str]:
        """The text of every unpruned record, in order, optionally of one kind."""
        ...

    def ledger_prune(self, cutoff: str) -> int:
        """Blank the content of the rows before the first one with ``time >= cutoff``; returns how many."""
        ...

    def ledger_pruned(self) -> int:
        """How many rows have their content blanked."""
        ...

    def ledger_meta(self, key: str) -> str | None:
        """A ledger metadata value (e.g. ``public_key``)."""
        ...

    def ledger_set_meta(self, key: str, value: str, *, replace: bool = False) -> str:
        """Set a ledger metadata value (only when absent unless ``replace``); returns the stored value."""
        ...

    def ledger_import(self, rows: Sequence[LedgerRow], meta: Mapping[str, str]) -> None:
        """Load rows into an empty ledger in one transaction."""
        ...

    # ---- governance documents -----------------------------------------------------------------
    def doc_put(self, collection: str, key: str, doc: Mapping[str, Any]) -> None:
        """Create or replace one document."""
        ...

    def doc_add(self, collection: str, doc: Mapping[str, Any]) -> int:
        """Store a document under the next integer key of its collection (atomic); returns the key."""
        ...

    def doc_get(self, collection: str, key: str) -> dict[str, Any] | None:
        """One document, or None."""
        ...

    def doc_query(self, collection: str, where: Mapping[str, Any] | None = None, *,
                  limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(key, document) pairs whose fields equal ``where``, in insertion order (the first ``limit``)."""
        ...

    def doc_count(self, collection: str) -> int:
        """How many documents a collection holds."""
        ...

    def doc_delete(self, collection: str, key: str) -> bool:
        """Remove one document; False when there was none."""
        ...

    def doc_cas(self, collection: str, key: str, expect: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
        """Replace a document only if its fields still equal ``expect`` (atomic); False when they do not."""
        ...


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _attr_value(attr: Attribute) -> Any:
    if isinstance(attr, Relationship):
        return {"object": attr.object}
    if isinstance(attr, GeoProperty):
        return dict(attr.value)
    if attr.unit_code is not None:
        return {"value": attr.value, "unitCode": attr.unit_code}
    return attr.value


def _encode(value: Any) -> str:
    """JSON text of a stored value, with a fast path for plain numbers."""
    kind = type(value)
    if kind is int or kind is float:
        return repr(value)
    return json.dumps(value)


def _same(a: Attribute, b: Attribute) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, Property) and isinstance(b, Property):
        return bool(a.value == b.value and a.unit_code == b.unit_code)
    if isinstance(a, Relationship) and isinstance(b, Relationship):
        return a.object == b.object
    return bool(_attr_value(a) == _attr_value(b))


_KIND_TEXT = {k: k.value for k in ChangeKind}


def diff_entity(old: Entity | None, entity: Entity, now_ts: float, context_id: str | None,
                rows: list[tuple[Any, ...]],
                series: list[tuple[Any, ...]] | None = None) -> tuple[UpdateResult, Entity]:
    """An update against the current state: its kinds and merged entity; its history row goes to ``rows`` and,
    when given, one time-series row per written attribute to ``series``."""
    kinds: dict[str, ChangeKind] = {}
    merged: dict[str, Attribute] = dict(old.attrs) if old is not None and old.type == entity.type else {}
    parts: list[str] = []
    for name, attr in entity.attrs.items():
        prev = merged.get(name)
        if prev is None:
            kind = ChangeKind.NEW
        elif not _same(prev, attr):
            kind = ChangeKind.CHANGED
        elif attr.observed_at is not None and attr.observed_at != prev.observed_at:
            kind = ChangeKind.REPORTED
        else:
            kinds[name] = ChangeKind.UNCHANGED
            continue
        kinds[name] = kind
        merged[name] = attr
        text = _KIND_TEXT[kind]
        observed = None if attr.observed_at is None else attr.observed_at.timestamp()
        obs = "null" if observed is None else repr(observed)
        unit_code = None
        if isinstance(attr, Property):
            value = attr.value
            unit_code = attr.unit_code
            unit = "" if unit_code is None else "," + json.dumps(unit_code)
        else:
            value = _attr_value(attr)
            unit = ""
        enc = _encode(value)
        parts.append(f'"{name}":[{enc},{obs},"{text}"{unit}]')
        if series is not None:
            kind_of = type(value)  # a float is its number; anything else keeps its JSON text (ints: both)
            series.append((entity.id, name, now_ts if observed is None else observed,
                           value if kind_of is float or kind_of is int else None,
                           None if kind_of is float else enc, unit_code))
    if parts:
        rows.append((entity.id, now_ts, context_id, "{" + ",".join(parts) + "}"))
    new = Entity.trusted(entity.id, entity.type, merged)
    return UpdateResult(entity.id, kinds), new


@dataclass(slots=True)
class Cache:
    """A backend's in-memory current state: entities, their created and modified times, what to write behind."""

    current: dict[str, Entity]
    created: dict[str, float]
    modified: dict[str, float]
    dirty: set[str]

    def snapshot(self, ids: Iterable[str]) -> list[tuple[str, Entity | None, float | None, float | None, bool]]:
        """What the cache holds for ``ids`` (to :meth:`restore` when a write fails)."""
        return [(i, self.current.get(i), self.created.get(i), self.modified.get(i), i in self.dirty) for i in ids]

    def restore(self, saved: Iterable[tuple[str, Entity | None, float | None, float | None, bool]]) -> None:
        """Put back what :meth:`snapshot` saw."""
        for ident, entity, created, modified, dirty in saved:
            self.forget(ident)
            if entity is not None:
                self.current[ident] = entity
            if created is not None:
                self.created[ident] = created
            if modified is not None:
                self.modified[ident] = modified
            if dirty:
                self.dirty.add(ident)

    def forget(self, entity_id: str) -> bool:
        """Drop an entity from the cache; True when it was there."""
        found = self.current.pop(entity_id, None) is not None
        self.created.pop(entity_id, None)
        self.modified.pop(entity_id, None)
        self.dirty.discard(entity_id)
        return found

    def time(self, times: dict[str, float], entity_id: str) -> datetime | None:
        """A created or modified time of a current entity."""
        if entity_id not in self.current:
            return None
        return _dt(times.get(entity_id))

    def merge(self, entities: Iterable[Entity], now_ts: float, context_id: str | None,
              series: list[tuple[Any, ...]]) -> tuple[list[UpdateResult], list[tuple[Any, ...]]]:
        """Merge updates in, marking what changed dirty; the results and the history rows (series rows appended)."""
        rows: list[tuple[Any, ...]] = []
        results: list[UpdateResult] = []
        current = self.current
        for entity in entities:
            old = current.get(entity.id)
            written = len(rows)
            result, merged = diff_entity(old, entity, now_ts, context_id, rows, series)
            results.append(result)
            if len(rows) > written:  # a history row is written exactly when some attribute is not unchanged
                if old is None or old.type != entity.type:
                    self.created[entity.id] = now_ts
                current[entity.id] = merged
                self.modified[entity.id] = now_ts
                self.dirty.add(entity.id)
        return results, rows

    def replace(self, entity: Entity, now_ts: float, context_id: str | None, rows: list[tuple[Any, ...]],
                series: list[tuple[Any, ...]]) -> UpdateResult:
        """Make ``entity`` the whole current state of its id; its history and series rows are appended."""
        old = self.current.get(entity.id)
        same = old is not None and old.type == entity.type
        base = Entity.trusted(entity.id, entity.type, {k: v for k, v in old.attrs.items() if k in entity.attrs}) \
            if old is not None and same else None
        result, merged = diff_entity(base, entity, now_ts, context_id, rows, series)
        removed = same and old is not None and bool(set(old.attrs) - set(entity.attrs))
        if not same:
            self.created[entity.id] = now_ts
        if not same or removed or result.changed or result.reported:
            self.current[entity.id] = merged
            self.modified[entity.id] = now_ts
            self.dirty.add(entity.id)
        return result


_S = TypeVar("_S", bound="_HasLock")
_P = ParamSpec("_P")
_R = TypeVar("_R")


class _HasLock(Protocol):
    @property
    def lock(self) -> AbstractContextManager[Any]: ...


def synchronized(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """A store method run under the store's re-entrant lock (threads share one store)."""
    def run(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.lock:
            return method(self, *args, **kwargs)
    functools.update_wrapper(run, method)
    return run


SERIES_COLUMNS = "entity_id, attr, t, num, val, unit"
BUCKET_QUERIES = 2000
"""Up to this many periods, SQLite reads each period of an aggregation as its own index range."""


def aggregates(distinct: bool) -> str:
    """Per bucket: count, sum, sum of squares, min, max (numbers only), distinct values (1 and 1.0 are one)."""
    counted = "COUNT(DISTINCT num) + COUNT(DISTINCT CASE WHEN num IS NULL THEN val END)" if distinct else "0"
    return f"COUNT(*), SUM(num), SUM(num * num), MIN(num), MAX(num), {counted}"
DISTINCT_ATTRS = ("WITH RECURSIVE a(name) AS (SELECT MIN(attr) FROM series WHERE entity_id = %(e)s UNION ALL "
                  "SELECT (SELECT MIN(attr) FROM series WHERE entity_id = %(e)s AND attr > a.name) FROM a "
                  "WHERE a.name IS NOT NULL) SELECT name FROM a WHERE name IS NOT NULL")
"""The distinct attributes of one entity's series, one index probe each (not a scan of its values)."""


def series_sql(mark: str, entity_id: str, attr: str, start: float | None,
               end: float | None) -> tuple[str, list[Any]]:
    """``FROM series WHERE …`` for one attribute in ``[start, end)``, with its parameters (``mark``: ? or %s)."""
    sql = f"FROM series WHERE entity_id = {mark} AND attr = {mark}"
    params: list[Any] = [entity_id, attr]
    if start is not None:
        sql += f" AND t >= {mark}"
        params.append(start)
    if end is not None:
        sql += f" AND t < {mark}"
        params.append(end)
    return sql, params


def matching_docs(rows: Iterable[tuple[Any, Any]], where: Mapping[str, Any] | None,
                  limit: int | None) -> list[tuple[str, dict[str, Any]]]:
    """(key, document) pairs of stored rows whose fields equal ``where`` (the first ``limit``)."""
    out: list[tuple[str, dict[str, Any]]] = []
    for key, data in rows:
        if limit is not None and len(out) >= limit:
            break
        doc: dict[str, Any] = json.loads(data)
        if all(doc.get(k) == v for k, v in (where or {}).items()):
            out.append((str(key), doc))
    return out


def point(t: float, num: float | None, val: str | None, unit: str | None) -> Point:
    """A series value from its stored columns (JSON text, else a float)."""
    return Point(float(t), json.loads(val) if val is not None else num, unit)


def causal_chain(event: Callable[[str], StoredEvent | None], event_id: str) -> list[StoredEvent]:
    """The chain from an event back to its root, following parent ids (``event`` looks one up by id)."""
    chain: list[StoredEvent] = []
    seen: set[str] = set()
    current: str | None = event_id
    while current is not None and current not in seen:
        seen.add(current)
        ev = event(current)
        if ev is None:
            break
        chain.append(ev)
        current = ev.parent_id
    return chain


def history_row(entity_id: str, attr: str, packed: str | list[Any], recorded_at: float,
                context_id: str | None) -> HistoryRow:
    """One history value from its stored form (``[value, observedAt, kind, unitCode?]``, as JSON text or parsed)."""
    value, observed, kind, *unit = json.loads(packed) if isinstance(packed, str) else packed
    return HistoryRow(entity_id, attr, value, _dt(observed), datetime.fromtimestamp(recorded_at, UTC),
                      ChangeKind(kind), context_id, unit[0] if unit else None)


def stored_event(r: Sequence[Any]) -> StoredEvent:
    """An event from its stored row ``(seq, id, parent_id, actor, type, time, entity_type, entity_id, data)``."""
    return StoredEvent(r[0], r[1], r[2], r[3], r[4], datetime.fromtimestamp(r[5], UTC), r[6], r[7],
                       json.loads(r[8]))


class CachedReads:
    """What both backends share: reads of the in-memory current state, and replacing an entity."""

    lock: threading.RLock
    _cache: Cache

    def _writable(self) -> None:
        raise NotImplementedError

    def _append(self, results: Sequence[UpdateResult], rows: Sequence[tuple[Any, ...]],
                series: Sequence[tuple[Any, ...]], saved: Any) -> None:
        raise NotImplementedError

    @synchronized
    def replace(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> UpdateResult:
        """Make ``entity`` the whole current state of its id (attributes it lacks are gone; history stays)."""
        self._writable()
        rows: list[tuple[Any, ...]] = []
        series: list[tuple[Any, ...]] = []
        saved = self._cache.snapshot([entity.id])
        result = self._cache.replace(entity, now.timestamp(), context_id, rows, series)
        self._append([result] if rows else [], rows, series, saved)
        return result

    @synchronized
    def get(self, entity_id: str) -> Entity | None:
        """The current state of one entity, or ``None``."""
        return self._cache.current.get(entity_id)

    def __len__(self) -> int:
        return len(self._cache.current)

    @synchronized
    def entities(self) -> list[Entity]:
        """Every current entity (from memory, no database read)."""
        return list(self._cache.current.values())

    @synchronized
    def created_at(self, entity_id: str) -> datetime | None:
        """When the current entity was created (None when there is none)."""
        return self._cache.time(self._cache.created, entity_id)

    @synchronized
    def modified_at(self, entity_id: str) -> datetime | None:
        """When the current entity was last changed (None when there is none)."""
        return self._cache.time(self._cache.modified, entity_id)


class SqliteStore(CachedReads):
    """The default :class:`StateStore`, on SQLite: current state cached in memory, one connection shared by
    threads under one re-entrant lock (measured: cheaper than a connection per thread, see the tests).

    History and series rows are first appended to unindexed ``*_recent`` tables (a batch then writes a few
    pages, not one index leaf per entity) and merged into the indexed tables in key order every
    :attr:`merge_rows` rows or :attr:`merge_s` seconds, before this store reads them, on :meth:`flush` and on
    :meth:`close`; a writer opening a file merges what a crashed one left, and a read-only store reads both.
    """

    def __init__(self, path: str | Path = ":memory:", *, readonly: bool = False, series: bool = True) -> None:
        self.path = str(path)
        self.readonly = readonly
        self.keep_series = series
        self.lock = threading.RLock()
        self.merge_rows = 200_000
        """Merge the recent history into the indexed tables once it holds this many rows …"""
        self.merge_s = 5.0
        """… or once its oldest row is this many seconds old (wall clock), whichever comes first (the soak's
        capacity over 120 s: 20,190 updates/s merging every 2 s, 22,138 every 5 s)."""
        self._recent = 0
        self._recent_since = 0.0
        try:
            if readonly:
                self._db = sqlite3.connect(f"{Path(self.path).resolve().as_uri()}?mode=ro", uri=True,
                                           check_same_thread=False)
            else:
                self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
                before = self._table_names()
                self._db.executescript(SCHEMA)
                self._recent = 1  # whatever a crashed writer left is merged now
                self._merge()
                self._upgrade(before)
                self._series_mode(series)
                if self.path != ":memory:":
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=NORMAL")
                    # a merge of the recent rows dirties thousands of index pages: checkpointing (and syncing)
                    # after every 1,000 pages, the default, cost a third of the ingest rate; the WAL may reach ~64 MB
                    self._db.execute("PRAGMA wal_autocheckpoint=16384")
            self._tables = self._table_names()
            self._cache = Cache({}, {}, {}, set())
            self._current = self._cache.current
            self._dirty = self._cache.dirty
            self._modified = self._cache.modified
            if "entities" in self._tables:
                has_created = "created_at" in self._columns("entities")
                sql = f"SELECT data, {'created_at' if has_created else 'NULL'}, modified_at FROM entities"
                for data, created, modified in self._db.execute(sql):
                    entity = Entity.from_ngsi(json.loads(data))
                    self._current[entity.id] = entity
                    self._cache.created[entity.id] = float(modified if created is None else created)
                    self._modified[entity.id] = float(modified)
            self.dead_letter_count = (int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
                                      if "dead_letters" in self._tables else 0)
        except sqlite3.Error as exc:
            raise UserError(f"cannot open the database {self.path}: {exc}") from exc
        self.flush_every = 50_000

    def _table_names(self) -> set[str]:
        return {str(n) for (n,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _columns(self, table: str) -> set[str]:
        return {str(r[1]) for r in self._db.execute(f"PRAGMA table_info({table})")}

    def _series_mode(self, keep: bool) -> None:
        """Record whether the time series is kept; a store written without it gets it rebuilt from history on its
        first opening with it (``series=False`` halves a run's write cost; the temporal API needs the series)."""
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = self._db.execute("SELECT value FROM store_meta WHERE key = 'series'").fetchone()
            if keep and row is not None and row[0] == "off":
                self._db.execute("DELETE FROM series")
                self._series_from_history()
            self._db.execute("INSERT OR REPLACE INTO store_meta VALUES ('series', ?)", ("on" if keep else "off",))

    def _upgrade(self, before: set[str]) -> None:
        """Bring a file written by an older aicity up to date: entity creation times and the attribute series."""
        with self._db:
            if "created_at" not in self._columns("entities"):
                self._db.execute("ALTER TABLE entities ADD COLUMN created_at REAL")
                self._db.execute("UPDATE entities SET created_at = COALESCE((SELECT MIN(recorded_at) FROM history "
                                 "WHERE history.entity_id = entities.id), modified_at)")
            if "series" not in before and "history" in before:
                self._series_from_history()

    def _series_from_history(self) -> None:
        """Fill the attribute series from the history rows (a file written without it)."""
        self._db.execute(
            f"INSERT INTO series ({SERIES_COLUMNS}) SELECT h.entity_id, j.key, "
            "COALESCE(j.value ->> '$[1]', h.recorded_at), "
            "CASE WHEN json_type(j.value, '$[0]') IN ('integer', 'real') THEN j.value ->> '$[0]' END, "
            "CASE WHEN json_type(j.value, '$[0]') != 'real' THEN j.value -> '$[0]' END, j.value ->> '$[3]' "
            "FROM history AS h, json_each(h.attrs) AS j ORDER BY h.rowid")

    @classmethod
    def open(cls, path: str | Path, *, readonly: bool = True) -> SqliteStore:
        """An existing store file (read-only by default); a missing or corrupt file is one :class:`UserError`."""
        p = Path(path)
        if not p.is_file():
            raise UserError(f"no database at {p}")
        return cls(p, readonly=readonly)

    @staticmethod
    def exists(path: str | Path) -> bool:
        """True when ``path`` is a file (a store may live there)."""
        return Path(path).is_file()

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"the database {self.path} is open read-only")

    # ---- writes -------------------------------------------------------------------------------
    def upsert(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> UpdateResult:
        """Write one entity (merging attributes into its current state)."""
        return self.upsert_many([entity], now=now, context_id=context_id)[0]

    @synchronized
    def upsert_many(self, entities: Iterable[Entity], *, now: datetime,
                    context_id: str | None = None) -> list[UpdateResult]:
        """Write many entities in one transaction; the fast path for sensor batches."""
        self._writable()
        series: list[tuple[Any, ...]] = []
        batch = entities if isinstance(entities, list) else list(entities)
        saved = self._cache.snapshot(e.id for e in batch)
        results, rows = self._cache.merge(batch, now.timestamp(), context_id, series)
        self._append(results, rows, series, saved)
        if len(self._dirty) >= self.flush_every:
            self.flush()
        return results

    def _append(self, results: Sequence[UpdateResult], rows: Sequence[tuple[Any, ...]],
                series: Sequence[tuple[Any, ...]], saved: Any) -> None:
        """History and series rows in one transaction; when not written the cache forgets them (a retry writes)."""
        try:
            if rows:
                with self._db:  # appended to the unindexed recent tables: a few pages per batch
                    self._db.executemany("INSERT INTO history_recent VALUES (?,?,?,?)", rows)
                    if self.keep_series:
                        self._db.executemany(f"INSERT INTO series_recent ({SERIES_COLUMNS}) VALUES (?,?,?,?,?,?)",
                                             series)
        except BaseException:
            self._cache.restore(saved)
            raise
        if rows:
            now = time.monotonic()
            if not self._recent:
                self._recent_since = now
            self._recent += len(rows)
            if self._recent >= self.merge_rows or now - self._recent_since >= self.merge_s:
                self._merge()

    def _merge(self) -> None:
        """Move the recent history and series rows into the indexed tables, in key order (each index leaf is
        visited once per merge, not once per batch); one entity's rows keep their order of arrival."""
        if not self._recent or self.readonly:
            return
        with self._db:
            self._db.execute("INSERT INTO history SELECT * FROM history_recent ORDER BY entity_id, rowid")
            self._db.execute(f"INSERT INTO series ({SERIES_COLUMNS}) SELECT {SERIES_COLUMNS} FROM series_recent "
                             "ORDER BY entity_id, attr, rowid")
            self._db.execute("DELETE FROM history_recent")
            self._db.execute("DELETE FROM series_recent")
        self._recent = 0

    @synchronized
    def delete(self, entity_id: str) -> bool:
        """Remove an entity's current state (its history stays); False when there was none."""
        self._writable()
        with self._db:
            cur = self._db.execute("DELETE FROM entities WHERE id = ?", (entity_id,))
        return self._cache.forget(entity_id) or cur.rowcount > 0

    @synchronized
    def flush(self) -> None:
        """Write the current state of every entity updated since the last flush (write-behind cache) and merge
        the recent history into the indexed tables."""
        self._flush_entities()
        self._merge()

    def _flush_entities(self) -> None:
        if not self._dirty:
            return
        created, modified = self._cache.created, self._modified
        rows = [(e.id, e.type, json.dumps(e.to_ngsi()), modified[e.id], created.get(e.id, modified[e.id]))
                for e in (self._current[i] for i in sorted(self._dirty))]
        with self._db:
            self._db.executemany(
                "INSERT INTO entities(id, type, data, modified_at, created_at) VALUES (?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET type=excluded.type, data=excluded.data, "
                "modified_at=excluded.modified_at, created_at=excluded.created_at", rows)
        self._dirty.clear()

    def append_event(self, event: Event) -> None:
        """Keep an event for causal tracing and audit."""
        self.append_events([event])

    @synchronized
    def append_events(self, events: Iterable[Event]) -> None:
        """Keep many events in one transaction."""
        rows = [(e.context.id, e.context.parent_id, str(e.context.actor), str(e.type), e.time.timestamp(),
                 e.entity_type, e.entity_id, json.dumps(dict(e.data), default=str)) for e in events]
        with self._db:
            self._db.executemany(
                "INSERT INTO events(id, parent_id, actor, type, time, entity_type, entity_id, data) "
                "VALUES (?,?,?,?,?,?,?,?)", rows)

    @synchronized
    def dead_letter(self, source: str, error: Exception, payload: Any, *, now: datetime) -> None:
        """Keep rejected input with its reason, and count it."""
        with self._db:
            self._db.execute(
                "INSERT INTO dead_letters(time, source, error, reason, payload) VALUES (?,?,?,?,?)",
                (now.timestamp(), source, type(error).__name__, str(error), json.dumps(payload, default=repr)))
        self.dead_letter_count += 1

    # ---- reads --------------------------------------------------------------------------------
    @synchronized
    def query(self, *, type: str | None = None, id_pattern: str | None = None,
              where: Sequence[tuple[str, str, Any]] = (), limit: int | None = None) -> list[Entity]:
        """Entities by type, id glob pattern (``*``, ``?``) and attribute filters, sorted by id."""
        self._flush_entities()
        sql = "SELECT data FROM entities"
        clauses: list[str] = []
        params: list[Any] = []
        if type is not None:
            clauses.append("type = ?")
            params.append(type)
        if id_pattern is not None:
            if any(c in id_pattern for c in "*?["):
                clauses.append("id GLOB ?")
            else:
                clauses.append("id = ?")
            params.append(id_pattern)
        for attr, op, value in where:
            if op not in OPS:
                raise StoreError(f"unknown filter operator {op!r}; use one of {sorted(OPS)}")
            if not attr.replace("_", "").isalnum():
                raise StoreError(f"bad attribute name {attr!r} in filter")
            clauses.append(f"json_extract(data, '$.{attr}.value') {OPS[op]} ?")
            params.append(value)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [Entity.from_ngsi(json.loads(d)) for (d,) in self._db.execute(sql, params)]

    @synchronized
    def ids(self, pattern: str = "*") -> list[str]:
        """Ids of current entities matching a glob pattern."""
        return sorted(i for i in self._current if fnmatch.fnmatchcase(i, pattern))

    @synchronized
    def history(self, entity_id: str, attr: str, *, start: datetime | None = None,
                end: datetime | None = None, last: int | None = None) -> list[HistoryRow]:
        """Stored values of one attribute, oldest first, within ``[start, end]`` by record time."""
        if not attr.replace("_", "").isalnum():
            raise StoreError(f"bad attribute name {attr!r}")
        self._merge()
        where = f"WHERE entity_id = ? AND json_type(attrs, '$.{attr}') IS NOT NULL"
        params: list[Any] = [entity_id]
        if start is not None:
            where += " AND recorded_at >= ?"
            params.append(start.timestamp())
        if end is not None:
            where += " AND recorded_at <= ?"
            params.append(end.timestamp())
        source, params = self._rows("history", "entity_id, attrs, recorded_at, context_id", where, params,
                                    self._staged())
        sql = f"SELECT entity_id, json_extract(attrs, '$.{attr}'), recorded_at, context_id FROM {source} " \
              "ORDER BY recorded_at DESC, src DESC, rid DESC"
        if last is not None:
            sql += " LIMIT ?"
            params.append(int(last))
        out = []
        for ident, packed, recorded, ctx in self._db.execute(sql, params):
            out.append(history_row(ident, attr, packed, recorded, ctx))
        out.reverse()
        return out

    @synchronized
    def series(self, entity_id: str, attr: str, *, start: float | None = None, end: float | None = None,
               last: int | None = None) -> list[Point]:
        """One attribute's values by time (observedAt, else record time) in ``[start, end)``, oldest first."""
        if not self._has("series"):
            return []
        self._merge()
        sql, params = series_sql("?", entity_id, attr, start, end)
        if self._staged():
            source, params = self._rows("series", "t, num, val, unit", sql.removeprefix("FROM series "), params, True)
            sql = f"SELECT t, num, val, unit FROM {source} ORDER BY t DESC, src DESC, rid DESC LIMIT ?"
        else:
            sql = f"SELECT t, num, val, unit {sql} ORDER BY t DESC, rowid DESC LIMIT ?"
        out = [point(*r) for r in self._db.execute(sql, [*params, -1 if last is None else int(last)])]
        out.reverse()
        return out

    @synchronized
    def aggregate(self, entity_id: str, attr: str, *, start: float, end: float | None, period_s: float,
                  distinct: bool = False) -> list[Bucket]:
        """One attribute's values in ``[start, end)`` aggregated per period from ``start`` (in SQL).

        SQLite sorts a ``GROUP BY`` on a computed bucket even though the index is in time order, so when the
        window spans at most :data:`BUCKET_QUERIES` periods each period is one index range read instead.
        """
        if not self._has("series"):
            return []
        self._merge()
        where, params = series_sql("?", entity_id, attr, start, end)
        staged = self._staged()
        if staged:
            source, params = self._rows("series", "t, num, val", where.removeprefix("FROM series "), params, True)
            where = f"FROM {source}"
        lo, hi = self._db.execute(f"SELECT MIN(t), MAX(t) {where}", params).fetchone()
        if lo is None:
            return []
        first, last = int((lo - start) // period_s), int((hi - start) // period_s)
        if last - first >= BUCKET_QUERIES or staged:
            sql = f"SELECT CAST((t - ?) / ? AS INTEGER) AS b, {aggregates(distinct)} {where} GROUP BY b ORDER BY b"
            return [Bucket(*r) for r in self._db.execute(sql, [start, period_s, *params])]
        one, _ = series_sql("?", entity_id, attr, 0.0, 0.0)
        sql = f"SELECT COUNT(*), {aggregates(distinct).split(', ', 1)[1]} {one}"
        out = []
        for b in range(first, last + 1):
            lo_t, hi_t = start + b * period_s, start + (b + 1) * period_s
            if end is not None:
                hi_t = min(hi_t, end)
            row = self._db.execute(sql, [entity_id, attr, lo_t, hi_t]).fetchone()
            if row[0]:
                out.append(Bucket(b, *row))
        return out

    @synchronized
    def history_attrs(self, entity_id: str) -> list[str]:
        """The attributes of an entity that have history, sorted (its current state may be gone)."""
        if not self._has("series"):
            return []
        self._merge()
        names = {str(r[0]) for r in self._db.execute(DISTINCT_ATTRS.replace("%(e)s", ":e"), {"e": entity_id})}
        if self._staged():
            names.update(str(r[0]) for r in self._db.execute(
                "SELECT DISTINCT attr FROM series_recent WHERE entity_id = ?", (entity_id,)))
        return sorted(names)

    def _staged(self) -> bool:
        """True when a read-only store sees rows its writer has not merged yet (a writer merges before reading)."""
        return self.readonly and self._has("series_recent") and self._db.execute(
            "SELECT EXISTS (SELECT 1 FROM series_recent) OR EXISTS (SELECT 1 FROM history_recent)").fetchone()[0] == 1

    @staticmethod
    def _rows(table: str, columns: str, where: str, params: list[Any], staged: bool) -> tuple[str, list[Any]]:
        """A subquery of ``table``'s rows matching ``where`` (and its recent rows when ``staged``), each with
        ``src`` and ``rid`` that order them by arrival."""
        sql = f"SELECT {columns}, 0 AS src, rowid AS rid FROM {table} {where}"
        if staged:
            return f"({sql} UNION ALL SELECT {columns}, 1, rowid FROM {table}_recent {where})", [*params, *params]
        return f"({sql})", params

    @synchronized
    def events(self, *, type: str | None = None, entity_id: str | None = None,
               limit: int | None = None) -> list[StoredEvent]:
        """Stored events in order, optionally by type or entity."""
        if not self._has("events"):
            return []
        sql = "SELECT seq, id, parent_id, actor, type, time, entity_type, entity_id, data FROM events"
        clauses, params = [], []
        if type is not None:
            clauses.append("type = ?")
            params.append(type)
        if entity_id is not None:
            clauses.append("entity_id = ?")
            params.append(entity_id)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(str(int(limit)))
        return [self._row_event(r) for r in self._db.execute(sql, params)]

    @synchronized
    def event(self, event_id: str) -> StoredEvent | None:
        """One stored event by its context id."""
        if not self._has("events"):
            return None
        row = self._db.execute(
            "SELECT seq, id, parent_id, actor, type, time, entity_type, entity_id, data FROM events "
            "WHERE id = ? ORDER BY seq LIMIT 1", (event_id,)).fetchone()
        return None if row is None else self._row_event(row)

    def trace(self, event_id: str) -> list[StoredEvent]:
        """The causal chain from an event back to its root, following parent ids."""
        return causal_chain(self.event, event_id)

    @staticmethod
    def _row_event(r: Sequence[Any]) -> StoredEvent:
        return stored_event(r)

    @synchronized
    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Rejected inputs, oldest first."""
        sql = "SELECT seq, time, source, error, reason, payload FROM dead_letters ORDER BY seq"
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [DeadLetter(r[0], datetime.fromtimestamp(r[1], UTC), r[2], r[3], r[4], json.loads(r[5]))
                for r in self._db.execute(sql, params)]

    # ---- the append-only ledger -----------------------------------------------------------------
    def _has(self, table: str) -> bool:
        return table in self._tables

    @synchronized
    def ledger_size(self) -> int:
        """Rows in the ledger (pruned ones included)."""
        if not self._has("ledger"):
            return 0
        return int(self._db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger").fetchone()[0])

    @contextmanager
    def _exclusive(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, one writer at a time across processes (``BEGIN IMMEDIATE``)."""
        self._writable()
        db = self._db
        own = not db.in_transaction
        if own:
            db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if own:
                db.rollback()
            raise
        if own:
            db.commit()

    @synchronized
    def ledger_append(self, build: Callable[[int], LedgerRow]) -> LedgerRow:
        """Append one row atomically: ``build`` runs inside the write lock, so its size is final."""
        with self._exclusive() as db:
            row = build(self.ledger_size())
            try:
                db.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?)",
                           (row.seq, row.id, row.kind, row.time, row.record, row.leaf_hash, row.root, row.signature))
            except sqlite3.IntegrityError as exc:
                raise StoreConflict(f"ledger record id {row.id!r} is already taken") from exc
        return row

    def ledger_rows(self, start: int = 0, end: int | None = None) -> Iterator[LedgerRow]:
        """Rows with ``start <= seq < end`` in order; text is read as bytes, so corruption is kept, not raised."""
        if not self._has("ledger"):
            return iter(())
        sql = ("SELECT seq, CAST(id AS BLOB), CAST(kind AS BLOB), CAST(time AS BLOB), CAST(record AS BLOB), "
               "CAST(leaf_hash AS BLOB), CAST(root AS BLOB), CAST(signature AS BLOB) FROM ledger WHERE seq >= ?")
        params: list[Any] = [start]
        if end is not None:
            sql += " AND seq < ?"
            params.append(end)
        rows = self._db.execute(sql + " ORDER BY seq", params)
        return (LedgerRow(r[0], *(_text(v) for v in r[1:])) for r in rows)

    @synchronized
    def ledger_leaf_hashes(self, start: int = 0, end: int | None = None) -> list[str]:
        """Hex leaf hashes of rows with ``start <= seq < end``, in order."""
        if not self._has("ledger"):
            return []
        sql = "SELECT leaf_hash FROM ledger WHERE seq >= ?"
        params: list[Any] = [start]
        if end is not None:
            sql += " AND seq < ?"
            params.append(end)
        return [str(h) for (h,) in self._db.execute(sql + " ORDER BY seq", params)]

    @synchronized
    def ledger_find(self, record_id: str) -> LedgerRow | None:
        """The row of a record id."""
        if not self._has("ledger"):
            return None
        r = self._db.execute("SELECT seq, id, kind, time, record, leaf_hash, root, signature FROM ledger "
                             "WHERE id = ?", (record_id,)).fetchone()
        return None if r is None else LedgerRow(*r)

    def ledger_records(self, kind: str | None = None) -> Iterator[str]:
        """The text of every unpruned record, in order, optionally of one kind."""
        if not self._has("ledger"):
            return iter(())
        sql = "SELECT record FROM ledger WHERE record IS NOT NULL"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " AND kind = ?"
            params = (kind,)
        return (str(t) for (t,) in self._db.execute(sql + " ORDER BY seq", params))

    @synchronized
    def ledger_prune(self, cutoff: str) -> int:
        """Blank the content of the rows before the first one with ``time >= cutoff``; returns how many."""
        self._writable()
        with self._db:
            cur = self._db.execute(
                "UPDATE ledger SET record = NULL WHERE record IS NOT NULL AND seq < "
                "(SELECT COALESCE(MIN(seq), (SELECT COUNT(*) FROM ledger)) FROM ledger WHERE time >= ?)",
                (cutoff,))
        return int(cur.rowcount)

    @synchronized
    def ledger_pruned(self) -> int:
        """How many rows have their content blanked."""
        if not self._has("ledger"):
            return 0
        return int(self._db.execute("SELECT COUNT(*) FROM ledger WHERE record IS NULL").fetchone()[0])

    @synchronized
    def ledger_meta(self, key: str) -> str | None:
        """A ledger metadata value (e.g. ``public_key``)."""
        if not self._has("ledger_meta"):
            return None
        row = self._db.execute("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @synchronized
    def ledger_set_meta(self, key: str, value: str, *, replace: bool = False) -> str:
        """Set a ledger metadata value (only when absent unless ``replace``); returns the stored value."""
        self._writable()
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._db:
            self._db.execute(f"{verb} INTO ledger_meta VALUES (?, ?)", (key, value))
        stored = self.ledger_meta(key)
        return value if stored is None else stored

    @synchronized
    def ledger_import(self, rows: Sequence[LedgerRow], meta: Mapping[str, str]) -> None:
        """Load rows into an empty ledger in one transaction."""
        self._writable()
        if self.ledger_size():
            raise StoreConflict("import needs an empty ledger")
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO ledger_meta VALUES (?, ?)", list(meta.items()))
            self._db.executemany("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?)",
                                 [(r.seq, r.id, r.kind, r.time, r.record, r.leaf_hash, r.root, r.signature)
                                  for r in rows])

    # ---- governance documents -----------------------------------------------------------------
    @synchronized
    def doc_put(self, collection: str, key: str, doc: Mapping[str, Any]) -> None:
        """Create or replace one document (a replaced document keeps its place in insertion order)."""
        self._writable()
        with self._db:
            self._db.execute("INSERT INTO documents(collection, key, data) VALUES (?,?,?) "
                             "ON CONFLICT(collection, key) DO UPDATE SET data = excluded.data",
                             (collection, key, json.dumps(dict(doc), sort_keys=True)))

    @synchronized
    def doc_add(self, collection: str, doc: Mapping[str, Any]) -> int:
        """Store a document under the next integer key of its collection (atomic); returns the key."""
        with self._exclusive() as db:
            n = int(db.execute("SELECT COALESCE(MAX(CAST(key AS INTEGER)), 0) + 1 FROM documents "
                               "WHERE collection = ?", (collection,)).fetchone()[0])
            db.execute("INSERT INTO documents(collection, key, data) VALUES (?,?,?)",
                       (collection, str(n), json.dumps(dict(doc), sort_keys=True)))
        return n

    @synchronized
    def doc_get(self, collection: str, key: str) -> dict[str, Any] | None:
        """One document, or None."""
        if not self._has("documents"):
            return None
        row = self._db.execute("SELECT data FROM documents WHERE collection = ? AND key = ?",
                               (collection, key)).fetchone()
        if row is None:
            return None
        out: dict[str, Any] = json.loads(row[0])
        return out

    @synchronized
    def doc_query(self, collection: str, where: Mapping[str, Any] | None = None, *,
                  limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(key, document) pairs whose fields equal ``where``, in insertion order (the first ``limit``)."""
        if not self._has("documents"):
            return []
        sql = "SELECT key, data FROM documents WHERE collection = ? ORDER BY seq"
        if limit is not None and not where:
            sql += f" LIMIT {int(limit)}"
        rows = self._db.execute(sql, (collection,)).fetchall()
        return matching_docs(rows, where, limit)

    @synchronized
    def doc_count(self, collection: str) -> int:
        """How many documents a collection holds."""
        if not self._has("documents"):
            return 0
        return int(self._db.execute("SELECT COUNT(*) FROM documents WHERE collection = ?",
                                    (collection,)).fetchone()[0])

    @synchronized
    def doc_delete(self, collection: str, key: str) -> bool:
        """Remove one document; False when there was none."""
        self._writable()
        with self._db:
            cur = self._db.execute("DELETE FROM documents WHERE collection = ? AND key = ?", (collection, key))
        return cur.rowcount > 0

    @synchronized
    def doc_cas(self, collection: str, key: str, expect: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
        """Replace a document only if its fields still equal ``expect`` (atomic across processes)."""
        with self._exclusive() as db:
            current = self.doc_get(collection, key)
            ok = current is not None and all(current.get(k) == v for k, v in expect.items())
            if ok:
                db.execute("UPDATE documents SET data = ? WHERE collection = ? AND key = ?",
                           (json.dumps(dict(doc), sort_keys=True), collection, key))
        return ok

    @synchronized
    def close(self) -> None:
        """Flush, commit and close the database."""
        if not self.readonly:
            self.flush()
            self._db.commit()
        self._db.close()


@contextmanager
def database_errors(path: str | Path) -> Iterator[None]:
    """Turn a database failure (corrupt or truncated file, full disk, lock timeout, a server gone) into one
    :class:`UserError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise UserError(f"database {path} cannot be used: {exc}") from exc
    except Exception as exc:
        psycopg = sys.modules.get("psycopg")  # only loaded when a PostgreSQL store was opened
        if psycopg is None or not isinstance(exc, psycopg.Error):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"database {path} cannot be used: {first}") from exc


SQLITE_SCHEMES = ("sqlite://",)
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(target: str | Path, *, readonly: bool = False) -> StateStore:
    """The store at ``target``: ``postgresql://…`` → PostgreSQL; a path, ``sqlite:///path`` or ``:memory:`` → SQLite.

    Read-only opening needs an existing SQLite file (PostgreSQL: an existing server; an empty database reads
    as empty). Every failure (bad URL, unknown scheme, unreachable server, missing driver, unreadable file,
    a schema newer than this code) is one :class:`UserError`.
    """
    text = str(target)
    if text.startswith(POSTGRES_SCHEMES):
        try:
            from aicity.core.store_pg import PostgresStore
        except ImportError as exc:
            raise UserError("a PostgreSQL store needs psycopg: pip install 'aicity[postgres]'") from exc
        return PostgresStore(text, readonly=readonly)
    if text.startswith("sqlite:"):
        rest = text[len("sqlite://"):] if text.startswith(SQLITE_SCHEMES) else "?"
        if rest not in ("", "/", "/:memory:") and not rest.startswith("/"):
            raise UserError(f"bad SQLite URL {text!r}: use sqlite:///relative/path, sqlite:////absolute/path "
                            "or sqlite:///:memory:")
        text = ":memory:" if rest in ("", "/", "/:memory:") else rest[1:]
    elif "://" in text:
        raise UserError(f"unknown store URL {text.split('://', 1)[0]}://…: use postgresql://…, sqlite:///path, "
                        "a file path or :memory:")
    if text == ":memory:":
        return SqliteStore(text)
    return SqliteStore.open(text, readonly=True) if readonly else SqliteStore(text)


def _text(value: Any) -> Any:
    return value.decode("utf-8", errors="surrogateescape") if isinstance(value, bytes) else value
