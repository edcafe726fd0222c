"""The state store: current state of every entity, history of every attribute, events and dead letters.

SQLite by default (a file or ``:memory:``), behind the :class:`StateStore` protocol that another backend
(PostgreSQL) can implement. An update whose value equals the current one but carries a new ``observedAt`` is
*reported*; one whose value differs is *changed*; both are kept in history with their kind.
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from aicity.core.entity import Attribute, Entity, GeoProperty, Property, Relationship
from aicity.core.errors import AicityError
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


class StoreError(AicityError):
    """A bad query or a store failure."""


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

    def dead_letter(self, source: str, error: Exception, payload: Any, *, now: datetime) -> None:
        """Keep rejected input with its reason."""
        ...

    def close(self) -> None:
        """Flush and close."""
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


class SqliteStore:
    """The default :class:`StateStore`, on SQLite. Single writer; keeps current state cached in memory."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path)
        self._db.executescript(SCHEMA)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._current: dict[str, Entity] = {}
        self._dirty: set[str] = set()
        self._modified: dict[str, float] = {}
        self.flush_every = 50_000
        for (data,) in self._db.execute("SELECT data FROM entities"):
            entity = Entity.from_ngsi(json.loads(data))
            self._current[entity.id] = entity
        self.dead_letter_count = int(self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    # ---- writes -------------------------------------------------------------------------------
    def _diff(self, entity: Entity, now_ts: float, context_id: str | None,
              rows: list[tuple[Any, ...]]) -> tuple[UpdateResult, Entity]:
        old = self._current.get(entity.id)
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

    def upsert(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> UpdateResult:
        """Write one entity (merging attributes into its current state)."""
        return self.upsert_many([entity], now=now, context_id=context_id)[0]

    def upsert_many(self, entities: Iterable[Entity], *, now: datetime,
                    context_id: str | None = None) -> list[UpdateResult]:
        """Write many entities in one transaction; the fast path for sensor batches."""
        now_ts = now.timestamp()
        rows: list[tuple[Any, ...]] = []
        results: list[UpdateResult] = []
        for entity in entities:
            result, merged = self._diff(entity, now_ts, context_id, rows)
            results.append(result)
            if result.changed or result.reported:
                self._current[entity.id] = merged
                self._modified[entity.id] = now_ts
                self._dirty.add(entity.id)
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
            value, observed, kind, *unit = json.loads(packed)
            out.append(HistoryRow(ident, attr, value, _dt(observed), datetime.fromtimestamp(recorded, UTC),
                                  ChangeKind(kind), ctx, unit[0] if unit else None))
        out.reverse()
        return out

    def events(self, *, type: str | None = None, entity_id: str | None = None,
               limit: int | None = None) -> list[StoredEvent]:
        """Stored events in order, optionally by type or entity."""
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
        row = self._db.execute(
            "SELECT seq, id, parent_id, actor, type, time, entity_type, entity_id, data FROM events "
            "WHERE id = ? ORDER BY seq LIMIT 1", (event_id,)).fetchone()
        return None if row is None else self._row_event(row)

    def trace(self, event_id: str) -> list[StoredEvent]:
        """The causal chain from an event back to its root, following parent ids."""
        chain: list[StoredEvent] = []
        seen: set[str] = set()
        current: str | None = event_id
        while current is not None and current not in seen:
            seen.add(current)
            ev = self.event(current)
            if ev is None:
                break
            chain.append(ev)
            current = ev.parent_id
        return chain

    @staticmethod
    def _row_event(r: Sequence[Any]) -> StoredEvent:
        return StoredEvent(r[0], r[1], r[2], r[3], r[4], datetime.fromtimestamp(r[5], UTC), r[6], r[7],
                           json.loads(r[8]))

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Rejected inputs, oldest first."""
        sql = "SELECT seq, time, source, error, reason, payload FROM dead_letters ORDER BY seq"
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [DeadLetter(r[0], datetime.fromtimestamp(r[1], UTC), r[2], r[3], r[4], json.loads(r[5]))
                for r in self._db.execute(sql, params)]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Run a read-only SQL query (for reports and audits)."""
        self.flush()
        return iter(self._db.execute(sql, params).fetchall())

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for components that keep their own tables (e.g. the ledger)."""
        return self._db

    def close(self) -> None:
        """Flush, commit and close the database."""
        self.flush()
        self._db.commit()
        self._db.close()
