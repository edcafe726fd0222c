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
import json
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from aicity.core.entity import Attribute, Entity, GeoProperty, Property, Relationship
from aicity.core.errors import AicityError, UserError
from aicity.core.event import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, data TEXT NOT NULL, modified_at REAL NOT NULL
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


class StoreConflict(StoreError):
    """A write that collides with stored data (e.g. a ledger record id that is already taken)."""


class StateStore(Protocol):
    """What every state-store backend provides."""

    def upsert(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> UpdateResult:
        """Write one entity."""
        ...

    def upsert_many(self, entities: Iterable[Entity], *, now: datetime,
                    context_id: str | None = None) -> list[UpdateResult]:
        """Write many entities in one transaction."""
        ...

    def get(self, entity_id: str) -> Entity | None:
        """The current state of one entity."""
        ...

    def query(self, *, type: str | None = None, id_pattern: str | None = None,
              where: Sequence[tuple[str, str, Any]] = (), limit: int | None = None) -> list[Entity]:
        """Entities by type, id glob pattern and attribute filters ``(attr, op, value)``."""
        ...

    def history(self, entity_id: str, attr: str, *, start: datetime | None = None,
                end: datetime | None = None, last: int | None = None) -> list[HistoryRow]:
        """Stored values of one attribute, oldest first."""
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

    def doc_query(self, collection: str, where: Mapping[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(key, document) pairs whose fields equal ``where``, in insertion order."""
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
                rows: list[tuple[Any, ...]]) -> tuple[UpdateResult, Entity]:
    """An update against the current state: its kinds and merged entity; its history row goes to ``rows``."""
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
        obs = "null" if attr.observed_at is None else repr(attr.observed_at.timestamp())
        if isinstance(attr, Property):
            unit = "" if attr.unit_code is None else "," + json.dumps(attr.unit_code)
            parts.append(f'"{name}":[{_encode(attr.value)},{obs},"{text}"{unit}]')
        else:
            parts.append(f'"{name}":[{_encode(_attr_value(attr))},{obs},"{text}"]')
    if parts:
        rows.append((entity.id, now_ts, context_id, "{" + ",".join(parts) + "}"))
    new = Entity.trusted(entity.id, entity.type, merged)
    return UpdateResult(entity.id, kinds), new


def merge_updates(current: dict[str, Entity], modified: dict[str, float], dirty: set[str],
                  entities: Iterable[Entity], now_ts: float,
                  context_id: str | None) -> tuple[list[UpdateResult], list[tuple[Any, ...]]]:
    """Merge updates into a cached current state, marking what changed dirty; the results and the history rows."""
    rows: list[tuple[Any, ...]] = []
    results: list[UpdateResult] = []
    for entity in entities:
        result, merged = diff_entity(current.get(entity.id), entity, now_ts, context_id, rows)
        results.append(result)
        if result.changed or result.reported:
            current[entity.id] = merged
            modified[entity.id] = now_ts
            dirty.add(entity.id)
    return results, rows


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


class SqliteStore:
    """The default :class:`StateStore`, on SQLite. Single writer; keeps current state cached in memory."""

    def __init__(self, path: str | Path = ":memory:", *, readonly: bool = False) -> None:
        self.path = str(path)
        self.readonly = readonly
        try:
            if readonly:
                self._db = sqlite3.connect(f"{Path(self.path).resolve().as_uri()}?mode=ro", uri=True)
            else:
                self._db = sqlite3.connect(self.path, timeout=30.0)
                self._db.executescript(SCHEMA)
                if self.path != ":memory:":
                    self._db.execute("PRAGMA journal_mode=WAL")
                    self._db.execute("PRAGMA synchronous=NORMAL")
            self._tables = {str(n) for (n,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            self._current: dict[str, Entity] = {}
            if "entities" in self._tables:
                for (data,) in self._db.execute("SELECT data FROM entities"):
                    entity = Entity.from_ngsi(json.loads(data))
                    self._current[entity.id] = entity
            self.dead_letter_count = (int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
                                      if "dead_letters" in self._tables else 0)
        except sqlite3.Error as exc:
            raise UserError(f"cannot open the database {self.path}: {exc}") from exc
        self._dirty: set[str] = set()
        self._modified: dict[str, float] = {}
        self.flush_every = 50_000

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
    def _diff(self, entity: Entity, now_ts: float, context_id: str | None,
              rows: list[tuple[Any, ...]]) -> tuple[UpdateResult, Entity]:
        return diff_entity(self._current.get(entity.id), entity, now_ts, context_id, rows)

    def upsert(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> UpdateResult:
        """Write one entity (merging attributes into its current state)."""
        return self.upsert_many([entity], now=now, context_id=context_id)[0]

    def upsert_many(self, entities: Iterable[Entity], *, now: datetime,
                    context_id: str | None = None) -> list[UpdateResult]:
        """Write many entities in one transaction; the fast path for sensor batches."""
        now_ts = now.timestamp()
        results, rows = merge_updates(self._current, self._modified, self._dirty, entities, now_ts, context_id)
        if rows:
            with self._db:
                self._db.executemany("INSERT INTO history VALUES (?,?,?,?)", rows)
        if len(self._dirty) >= self.flush_every:
            self.flush()
        return results

    def flush(self) -> None:
        """Write the current state of every entity updated since the last flush (write-behind cache)."""
        if not self._dirty:
            return
        rows = [(e.id, e.type, json.dumps(e.to_ngsi()), self._modified[e.id])
                for e in (self._current[i] for i in sorted(self._dirty))]
        with self._db:
            self._db.executemany(
                "INSERT INTO entities(id, type, data, modified_at) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET type=excluded.type, data=excluded.data, "
                "modified_at=excluded.modified_at", rows)
        self._dirty.clear()

    def append_event(self, event: Event) -> None:
        """Keep an event for causal tracing and audit."""
        self.append_events([event])

    def append_events(self, events: Iterable[Event]) -> None:
        """Keep many events in one transaction."""
        rows = [(e.context.id, e.context.parent_id, str(e.context.actor), str(e.type), e.time.timestamp(),
                 e.entity_type, e.entity_id, json.dumps(dict(e.data), default=str)) for e in events]
        with self._db:
            self._db.executemany(
                "INSERT INTO events(id, parent_id, actor, type, time, entity_type, entity_id, data) "
                "VALUES (?,?,?,?,?,?,?,?)", rows)

    def dead_letter(self, source: str, error: Exception, payload: Any, *, now: datetime) -> None:
        """Keep rejected input with its reason, and count it."""
        with self._db:
            self._db.execute(
                "INSERT INTO dead_letters(time, source, error, reason, payload) VALUES (?,?,?,?,?)",
                (now.timestamp(), source, type(error).__name__, str(error), json.dumps(payload, default=repr)))
        self.dead_letter_count += 1

    # ---- reads --------------------------------------------------------------------------------
    def get(self, entity_id: str) -> Entity | None:
        """The current state of one entity, or ``None``."""
        return self._current.get(entity_id)

    def __len__(self) -> int:
        return len(self._current)

    def query(self, *, type: str | None = None, id_pattern: str | None = None,
              where: Sequence[tuple[str, str, Any]] = (), limit: int | None = None) -> list[Entity]:
        """Entities by type, id glob pattern (``*``, ``?``) and attribute filters, sorted by id."""
        self.flush()
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

    def ids(self, pattern: str = "*") -> list[str]:
        """Ids of current entities matching a glob pattern."""
        return sorted(i for i in self._current if fnmatch.fnmatchcase(i, pattern))

    def history(self, entity_id: str, attr: str, *, start: datetime | None = None,
                end: datetime | None = None, last: int | None = None) -> list[HistoryRow]:
        """Stored values of one attribute, oldest first, within ``[start, end]`` by record time."""
        if not attr.replace("_", "").isalnum():
            raise StoreError(f"bad attribute name {attr!r}")
        sql = f"SELECT entity_id, json_extract(attrs, '$.{attr}'), recorded_at, context_id FROM history " \
              f"WHERE entity_id = ? AND json_type(attrs, '$.{attr}') IS NOT NULL"
        params: list[Any] = [entity_id]
        if start is not None:
            sql += " AND recorded_at >= ?"
            params.append(start.timestamp())
        if end is not None:
            sql += " AND recorded_at <= ?"
            params.append(end.timestamp())
        sql += " ORDER BY recorded_at DESC, rowid DESC"
        if last is not None:
            sql += " LIMIT ?"
            params.append(int(last))
        out = []
        for ident, packed, recorded, ctx in self._db.execute(sql, params):
            out.append(history_row(ident, attr, packed, recorded, ctx))
        out.reverse()
        return out

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

    def ledger_prune(self, cutoff: str) -> int:
        """Blank the content of the rows before the first one with ``time >= cutoff``; returns how many."""
        self._writable()
        with self._db:
            cur = self._db.execute(
                "UPDATE ledger SET record = NULL WHERE record IS NOT NULL AND seq < "
                "(SELECT COALESCE(MIN(seq), (SELECT COUNT(*) FROM ledger)) FROM ledger WHERE time >= ?)",
                (cutoff,))
        return int(cur.rowcount)

    def ledger_pruned(self) -> int:
        """How many rows have their content blanked."""
        if not self._has("ledger"):
            return 0
        return int(self._db.execute("SELECT COUNT(*) FROM ledger WHERE record IS NULL").fetchone()[0])

    def ledger_meta(self, key: str) -> str | None:
        """A ledger metadata value (e.g. ``public_key``)."""
        if not self._has("ledger_meta"):
            return None
        row = self._db.execute("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def ledger_set_meta(self, key: str, value: str, *, replace: bool = False) -> str:
        """Set a ledger metadata value (only when absent unless ``replace``); returns the stored value."""
        self._writable()
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        with self._db:
            self._db.execute(f"{verb} INTO ledger_meta VALUES (?, ?)", (key, value))
        stored = self.ledger_meta(key)
        return value if stored is None else stored

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
    def doc_put(self, collection: str, key: str, doc: Mapping[str, Any]) -> None:
        """Create or replace one document (a replaced document keeps its place in insertion order)."""
        self._writable()
        with self._db:
            self._db.execute("INSERT INTO documents(collection, key, data) VALUES (?,?,?) "
                             "ON CONFLICT(collection, key) DO UPDATE SET data = excluded.data",
                             (collection, key, json.dumps(dict(doc), sort_keys=True)))

    def doc_add(self, collection: str, doc: Mapping[str, Any]) -> int:
        """Store a document under the next integer key of its collection (atomic); returns the key."""
        with self._exclusive() as db:
            n = int(db.execute("SELECT COALESCE(MAX(CAST(key AS INTEGER)), 0) + 1 FROM documents "
                               "WHERE collection = ?", (collection,)).fetchone()[0])
            db.execute("INSERT INTO documents(collection, key, data) VALUES (?,?,?)",
                       (collection, str(n), json.dumps(dict(doc), sort_keys=True)))
        return n

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

    def doc_query(self, collection: str, where: Mapping[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(key, document) pairs whose fields equal ``where``, in insertion order."""
        if not self._has("documents"):
            return []
        out = []
        for key, data in self._db.execute("SELECT key, data FROM documents WHERE collection = ? ORDER BY seq",
                                          (collection,)):
            doc: dict[str, Any] = json.loads(data)
            if all(doc.get(k) == v for k, v in (where or {}).items()):
                out.append((str(key), doc))
        return out

    def doc_cas(self, collection: str, key: str, expect: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
        """Replace a document only if its fields still equal ``expect`` (atomic across processes)."""
        with self._exclusive() as db:
            current = self.doc_get(collection, key)
            ok = current is not None and all(current.get(k) == v for k, v in expect.items())
            if ok:
                db.execute("UPDATE documents SET data = ? WHERE collection = ? AND key = ?",
                           (json.dumps(dict(doc), sort_keys=True), collection, key))
        return ok

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
