"""The state store on PostgreSQL: the whole :class:`~aicity.core.store.StateStore` protocol, with migrations.

Same semantics as :class:`~aicity.core.store.SqliteStore`: current state cached in memory and written behind,
history and events appended at once, the ledger appended under a cross-process lock (a transaction-scoped
advisory lock) and guarded append-only by triggers, documents compared-and-set under ``SELECT … FOR UPDATE``.
Ledger rows, governance documents and migrations commit with ``synchronous_commit=on``, so a crash never loses
them; current state, history, events and dead letters commit with ``synchronous_commit=off`` (as the SQLite
store's WAL with ``synchronous=NORMAL``: a server crash may lose the last fraction of a second of them), unless
the URL's ``options`` set ``synchronous_commit`` themselves.
JSON is kept as ``json`` (its text verbatim, so values read back exactly as written) and never processed by the
server, which refuses any JSON holding ``\u0000`` (a NUL from a sensor would otherwise break every query):
history rows carry their attribute names, and attribute filters run on a ``jsonb`` copy of current state with
NUL replaced by U+FFFD. Tables live in the first schema of the connection's ``search_path``
(``?options=-csearch_path%3Dname`` picks one).

Import this module only when a ``postgresql://`` URL is given (:func:`aicity.core.store.open_store` does):
psycopg is an optional dependency (``pip install 'aicity[postgres]'``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from aicity.core.entity import Entity
from aicity.core.errors import UserError
from aicity.core.event import Event
from aicity.core.store import (
    DISTINCT_ATTRS,
    OPS,
    SERIES_COLUMNS,
    Bucket,
    Cache,
    CachedReads,
    ChangeKind,
    DeadLetter,
    HistoryRow,
    LedgerRow,
    Point,
    StoreConflict,
    StoredEvent,
    StoreError,
    StoreUnavailable,
    UpdateResult,
    aggregates,
    causal_chain,
    history_row,
    matching_docs,
    point,
    series_sql,
    stored_event,
    synchronized,
)

MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("tables, indexes and the ledger's append-only guard", """
CREATE TABLE entities (
    id TEXT COLLATE "C" PRIMARY KEY, type TEXT NOT NULL, data JSON NOT NULL, search JSONB NOT NULL,
    modified_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX entities_type ON entities(type);
CREATE TABLE history (
    seq BIGINT GENERATED ALWAYS AS IDENTITY, entity_id TEXT COLLATE "C" NOT NULL,
    recorded_at DOUBLE PRECISION NOT NULL, context_id TEXT, names TEXT[] NOT NULL, attrs JSON NOT NULL
);
CREATE INDEX history_key ON history(entity_id, recorded_at, seq);
CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id TEXT NOT NULL, parent_id TEXT, actor TEXT NOT NULL,
    type TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, entity_type TEXT, entity_id TEXT, data JSON NOT NULL
);
CREATE INDEX events_id ON events(id);
CREATE INDEX events_type ON events(type, time);
CREATE TABLE dead_letters (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time DOUBLE PRECISION NOT NULL, source TEXT NOT NULL,
    error TEXT NOT NULL, reason TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE TABLE ledger (
    seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, time TEXT NOT NULL,
    record TEXT, leaf_hash TEXT NOT NULL, root TEXT NOT NULL, signature TEXT NOT NULL
);
CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE FUNCTION aicity_ledger_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.record IS NULL AND NEW.seq = OLD.seq AND NEW.id = OLD.id AND NEW.kind = OLD.kind
           AND NEW.time = OLD.time AND NEW.leaf_hash = OLD.leaf_hash AND NEW.root = OLD.root
           AND NEW.signature = OLD.signature THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'the ledger is append-only (only retention pruning may blank a record)';
    END IF;
    RAISE EXCEPTION 'the ledger is append-only';
END $$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger FOR EACH ROW EXECUTE FUNCTION aicity_ledger_guard();
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger FOR EACH ROW EXECUTE FUNCTION aicity_ledger_guard();
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger EXECUTE FUNCTION aicity_ledger_guard();
CREATE TABLE documents (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, collection TEXT NOT NULL, key TEXT NOT NULL,
    data JSON NOT NULL, UNIQUE (collection, key)
);
"""),
    ("events by entity", "CREATE INDEX events_entity ON events(entity_id, seq);"),
    ("entity creation times and attribute series", """
ALTER TABLE entities ADD COLUMN created_at DOUBLE PRECISION;
UPDATE entities SET created_at = COALESCE((SELECT MIN(recorded_at) FROM history h WHERE h.entity_id = entities.id),
                                          modified_at);
CREATE TABLE series (
    seq BIGINT GENERATED ALWAYS AS IDENTITY, entity_id TEXT COLLATE "C" NOT NULL, attr TEXT COLLATE "C" NOT NULL,
    t DOUBLE PRECISION NOT NULL, num DOUBLE PRECISION, val TEXT, unit TEXT
);
INSERT INTO series (entity_id, attr, t, num, val, unit)
SELECT h.entity_id, j.key, COALESCE((j.value ->> 1)::float8, h.recorded_at),
       CASE WHEN json_typeof(j.value -> 0) = 'number' THEN (j.value ->> 0)::float8 END,
       CASE WHEN json_typeof(j.value -> 0) <> 'number' OR (j.value ->> 0) !~ '[.eE]' THEN (j.value -> 0)::text END,
       j.value ->> 3
FROM history h, json_each(h.attrs) j ORDER BY h.seq;
CREATE INDEX series_key ON series(entity_id, attr, t) INCLUDE (num);
"""),
    ("write ids (a retried write is stored once)",
     "CREATE TABLE writes (id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL);"),
)
"""The schema, one step per version (version ``i + 1`` is ``MIGRATIONS[i]``); only ever append to it."""

SCHEMA_VERSION = len(MIGRATIONS)
log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS aicity_schema (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""
_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))"
_PAGE = 2000
_DURABLE = b"SET LOCAL synchronous_commit TO on"  # governance writes wait for the WAL whatever the server's default
_NUL = re.compile(r"((?<!\\)(?:\\\\)*)\\u0000")  # an escaped NUL in JSON text (not an escaped backslash + u0000)
_COPY_FROM = 16  # batches at least this long go through COPY, smaller ones through one pipelined INSERT


def where_of(url: str) -> str:
    """The server and database of a connection URL, without user or password (for messages)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://?"
    return f"postgresql://{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def in_schema(url: str, schema: str) -> str:
    """``url`` with its tables in ``schema`` (created when missing): one database, several stores side by side."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
        raise UserError(f"bad PostgreSQL schema name {schema!r}: lower-case letters, digits and _ only")
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    except psycopg.Error as exc:
        raise UserError(f"cannot connect to PostgreSQL at {where_of(url)}: {_line(exc)}") from exc
    from urllib.parse import quote

    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


def glob_regex(pattern: str) -> str:
    """A POSIX regular expression matching what SQLite's ``GLOB`` matches (``*``, ``?``, ``[…]``, ``[^…]``)."""
    out, i = ["^"], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("^", "") else i + 1)) > 0:
            body = pattern[i + 1:end]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + "$"


class StoreBufferFull(StoreUnavailable):
    """The server is away and the write buffer is full: this write was refused (dead letters still fit)."""


Part = tuple[str, str, Sequence[Sequence[Any]]]
"""One table's rows of a write: (table, columns, rows)."""


@dataclass
class Outage:
    """What the store lived through while its server was away: blind time, buffered and replayed writes."""

    since: float | None = None
    """``time.monotonic()`` of the first failed write of the current outage (None: the store is writable)."""
    episodes: int = 0
    blind_s: float = 0.0
    buffered_writes: int = 0
    buffered_rows: int = 0
    replayed_writes: int = 0
    already_stored: int = 0
    """Replayed writes the server had committed already (their acknowledgement was lost): skipped, not doubled."""
    refused_writes: int = 0
    last_recovery_s: float = 0.0
    """How long the last outage lasted, from its first failed write to the buffer written out."""
    log: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Counters as JSON-ready numbers."""
        blind = self.blind_s + (time.monotonic() - self.since if self.since is not None else 0.0)
        return {"blind": self.since is not None, "episodes": self.episodes, "blind_s": round(blind, 3),
                "buffered_writes": self.buffered_writes, "buffered_rows": self.buffered_rows,
                "replayed_writes": self.replayed_writes, "already_stored": self.already_stored,
                "refused_writes": self.refused_writes, "last_recovery_s": round(self.last_recovery_s, 3)}


@contextmanager
def _unavailable(where: str) -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"the store at {where} is unavailable: {_line(exc)}") from exc


def _available(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """A store method whose lost connection is one :class:`StoreUnavailable` (the next call connects again)."""
    def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with _unavailable(str(getattr(self, "path", "?"))):
            return method(self, *args, **kwargs)
    functools.update_wrapper(guarded, method)
    return guarded


def _restore(cache: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        cache.pop(key, None)
    else:
        cache[key] = value


class PostgresStore(CachedReads):
    """A :class:`~aicity.core.store.StateStore` on PostgreSQL (one connection shared by threads under one lock;
    current state cached in memory)."""

    def __init__(self, url: str, *, readonly: bool = False, connect_timeout: int = 5,
                 buffer_rows: int = 200_000) -> None:
        self.url = url
        self.path = where_of(url)
        self.readonly = readonly
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise UserError(f"bad PostgreSQL URL {self.path}: {_line(exc)}") from exc
        self.connect_timeout = connect_timeout
        self.lock = threading.RLock()
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            raise UserError(f"cannot connect to PostgreSQL at {self.path}: {_line(exc)}") from exc
        try:
            self.schema_version = self._migrate()
            self._cache = Cache({}, {}, {}, set())
            self._current = self._cache.current
            self._dirty = self._cache.dirty
            self._modified = self._cache.modified
            if self.schema_version:
                for data, created, modified in self._db.execute(
                        "SELECT data::text, created_at, modified_at FROM entities"):
                    entity = Entity.from_ngsi(json.loads(data))
                    self._current[entity.id] = entity
                    self._cache.created[entity.id] = float(modified if created is None else created)
                    self._modified[entity.id] = float(modified)
            self.dead_letter_count = (self._scalar("SELECT COUNT(*) FROM dead_letters")
                                      if self.schema_version else 0)
        except psycopg.Error as exc:
            self._conn.close()
            raise UserError(f"cannot open the store at {self.path}: {_line(exc)}") from exc
        except UserError:
            self._conn.close()
            raise
        self._ledger_locked: int | None = None
        self._uncertain: set[str] = set()  # ledger ids whose append lost its connection before the commit was seen
        self.flush_every = 50_000
        self.buffer_rows = buffer_rows
        """At most this many rows wait while the server is away (dead letters may use 1 % more)."""
        self.outage = Outage()
        self._outbox: deque[tuple[str, list[Part]]] = deque()
        self._waiting_rows = 0
        self._retry_at = 0.0
        self._writes = 0

    # ---- the connection ------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=self.connect_timeout)
        if self.readonly:
            conn.execute("SET default_transaction_read_only = on")
        if "synchronous_commit" not in str(conninfo_to_dict(self.url).get("options", "")):
            conn.execute("SET synchronous_commit = off")  # as SQLite's WAL with synchronous=NORMAL (see above)
        return conn

    @property
    def _db(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The connection, opened again when the last one broke (the server restarted, or dropped it)."""
        if self._conn.broken:
            log.log(logging.DEBUG if self.outage.since is not None else logging.WARNING,
                    "the connection to %s broke: connecting again", self.path)
            self._conn.close()
            self._conn = self._connect()
        return self._conn

    # ---- schema --------------------------------------------------------------------------------
    def _migrate(self) -> int:
        """Apply the migrations this store lacks (one transaction, one migrator at a time); the version after."""
        if self.readonly:
            known = self._scalar("SELECT to_regclass('aicity_schema') IS NOT NULL")
            version = self._scalar("SELECT COALESCE(MAX(version), 0) FROM aicity_schema") if known else 0
            if 0 < version < SCHEMA_VERSION:
                raise UserError(f"the store at {self.path} has schema version {version}, older than this aicity's "
                                f"{SCHEMA_VERSION}: open it once for writing to migrate it")
            self._refuse_newer(version)
            return version
        with self._db.transaction():
            self._db.execute(_DURABLE)
            self._db.execute(_LOCK, (".aicity.migrate",))
            self._db.execute(_VERSION_TABLE)
            version = self._scalar("SELECT COALESCE(MAX(version), 0) FROM aicity_schema")
            self._refuse_newer(version)
            for number, (description, ddl) in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.execute(ddl.encode())
                self._db.execute("INSERT INTO aicity_schema (version, description) VALUES (%s, %s)",
                                 (number, description))
        return SCHEMA_VERSION

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise UserError(f"the store at {self.path} has schema version {version}, newer than this aicity's "
                            f"{SCHEMA_VERSION}: upgrade aicity to use it")

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._db.execute(sql.encode(), params).fetchone()
        return None if row is None else row[0]

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"the store {self.path} is open read-only")

    @contextmanager
    def _locked(self, name: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """One write transaction holding the advisory lock ``name`` (one writer at a time across processes)."""
        self._writable()
        with self._db.transaction():
            self._db.execute(_DURABLE)
            self._db.execute(_LOCK, (name,))
            yield self._db

    def _insert(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """Append rows in one transaction: COPY for a batch, one pipelined round trip for a few."""
        if not rows:
            return
        insert = f"INSERT INTO {table} ({columns}) VALUES ({','.join(['%s'] * (columns.count(',') + 1))})".encode()
        if len(rows) == 1:
            self._db.execute(insert, rows[0])
            return
        if len(rows) < _COPY_FROM:
            with self._db.pipeline(), self._db.transaction(), self._db.cursor() as cur:
                cur.executemany(insert, rows)
            return
        with self._db.transaction(), self._db.cursor() as cur, \
                cur.copy(f"COPY {table} ({columns}) FROM STDIN".encode()) as copy:
            for row in rows:
                copy.write_row(row)

    # ---- writes -------------------------------------------------------------------------------
    def upsert(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> UpdateResult:
        """Write one entity (merging attributes into its current state)."""
        return self.upsert_many([entity], now=now, context_id=context_id)[0]

    @synchronized
    @_available
    def upsert_many(self, entities: Iterable[Entity], *, now: datetime,
                    context_id: str | None = None) -> list[UpdateResult]:
        """Write many entities in one transaction: history at once, current state behind (see :meth:`flush`)."""
        self._writable()
        batch = entities if isinstance(entities, list) else list(entities)
        saved = self._cache.snapshot(e.id for e in batch)
        series: list[tuple[Any, ...]] = []
        results, rows = self._cache.merge(batch, now.timestamp(), context_id, series)
        self._append(results, rows, series, saved)
        if len(self._dirty) >= self.flush_every and self.outage.since is None:
            try:
                self.flush()
            except StoreUnavailable as exc:  # current state is written behind: it stays dirty until the server is back
                self._went_blind(exc)
        return results

    def _append(self, results: Sequence[UpdateResult], rows: Sequence[tuple[Any, ...]],
                series: Sequence[tuple[Any, ...]], saved: Any) -> None:
        """History and series rows in one write (buffered while the server is away; refused: the cache forgets)."""
        touched = [r.kinds for r in results if r.changed or r.reported]  # one history row each, in order
        named = [(i, t, c, [k for k, v in kinds.items() if v is not ChangeKind.UNCHANGED], a)
                 for (i, t, c, a), kinds in zip(rows, touched, strict=True)]
        try:
            self._write([("history", "entity_id, recorded_at, context_id, names, attrs", named),
                         ("series", SERIES_COLUMNS, series)])
        except BaseException:
            self._cache.restore(saved)
            raise

    # ---- writes that wait out an outage ------------------------------------------------------------
    def _write(self, parts: Sequence[Part], *, dead_letter: bool = False) -> None:
        """Commit ``parts`` in one transaction under a fresh write id; while the server is away keep them in the
        bounded buffer (written in order once it is back), a :class:`StoreBufferFull` when that is full."""
        parts = [p for p in parts if p[2]]
        if not parts:
            return
        self._writable()
        wid = uuid.uuid4().hex
        if self._drain():
            try:
                self._commit(wid, parts)
                return
            except StoreUnavailable as exc:
                self._went_blind(exc)
        self._buffer(wid, parts, dead_letter)

    def _commit(self, wid: str, parts: Sequence[Part]) -> bool:
        """One transaction: the write id, then every part; False when the id is stored already (a retry of a
        write whose commit went through but whose answer was lost: nothing is written twice)."""
        with _unavailable(self.path), self._db.transaction():
            if not self._db.execute(b"INSERT INTO writes VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                                    (wid, time.time())).rowcount:
                return False
            for table, columns, rows in parts:
                self._insert(table, columns, rows)
        self._writes += 1
        if self._writes % 10_000 == 0:  # a write id only has to outlive the retries of its write
            with _unavailable(self.path):
                self._db.execute(b"DELETE FROM writes WHERE at < %s", (time.time() - 86_400,))
        return True

    def _buffer(self, wid: str, parts: Sequence[Part], dead_letter: bool) -> None:
        rows = sum(len(p[2]) for p in parts)
        room = self.buffer_rows + (max(100, self.buffer_rows // 100) if dead_letter else 0)
        if self._waiting_rows + rows > room:
            self.outage.refused_writes += 1
            raise StoreBufferFull(f"the store at {self.path} is unavailable and {self._waiting_rows} rows already "
                                  f"wait for it (at most {self.buffer_rows}): this write of {rows} was refused")
        self._outbox.append((wid, list(parts)))
        self._waiting_rows += rows
        self.outage.buffered_writes += 1
        self.outage.buffered_rows += rows

    def _went_blind(self, exc: StoreUnavailable) -> None:
        now = time.monotonic()
        if self.outage.since is None:
            self.outage.since = now
            self.outage.episodes += 1
            log.warning("%s: writes wait in a buffer of at most %d rows", exc, self.buffer_rows)
        self._retry_at = now + 0.25

    def _drain(self) -> bool:
        """Write the buffer out in order (at most every 0.25 s while the server is away); True once it is empty."""
        if self.outage.since is None and not self._outbox:
            return True
        if time.monotonic() < self._retry_at:
            return False
        if not self._outbox:  # blind with nothing waiting (a failed flush or read): is the server back?
            try:
                with _unavailable(self.path):
                    self._db.execute(b"SELECT 1")
            except StoreUnavailable as exc:
                self._went_blind(exc)
                return False
        while self._outbox:
            wid, parts = self._outbox[0]
            try:
                stored = self._commit(wid, parts)
            except StoreUnavailable as exc:
                self._went_blind(exc)
                return False
            self._outbox.popleft()
            self._waiting_rows -= sum(len(p[2]) for p in parts)
            self.outage.replayed_writes += 1
            self.outage.already_stored += not stored
        return self._recovered()

    def _recovered(self) -> bool:
        if self.outage.since is not None:
            lasted = time.monotonic() - self.outage.since
            self.outage.blind_s += lasted
            self.outage.last_recovery_s = lasted
            self.outage.since = None
            log.warning("the store at %s is back: %d buffered writes written", self.path, self.outage.replayed_writes)
        return True

    @synchronized
    def writable(self) -> bool:
        """True when the server takes writes and nothing waits for it (the buffer is written out first); False
        while it is away — the loop must then hold its actuators safe: what it did could not be recorded. With no
        outage known and nothing waiting it is True at once (the loop and the MQTT bridge ask every step and
        batch; a write failing later starts an outage, which the next call sees)."""
        if self.readonly:
            return False
        if self.outage.since is None and not self._outbox:
            return True
        if not self._drain():
            return False
        try:
            with _unavailable(self.path):
                self.flush()
        except StoreUnavailable as exc:
            self._went_blind(exc)
            return False
        return True

    @property
    def waiting(self) -> int:
        """Rows waiting in the buffer for the server to come back."""
        return self._waiting_rows

    @synchronized
    @_available
    def delete(self, entity_id: str) -> bool:
        """Remove an entity's current state (its history stays); False when there was none."""
        self._writable()
        cur = self._db.execute("DELETE FROM entities WHERE id = %s", (entity_id,))
        return self._cache.forget(entity_id) or cur.rowcount > 0

    @synchronized
    @_available
    def flush(self) -> None:
        """Write the current state of every entity updated since the last flush (one statement)."""
        if not self._dirty:
            return
        ids = sorted(self._dirty)
        entities = [self._current[i] for i in ids]
        texts = [json.dumps(e.to_ngsi()) for e in entities]
        self._db.execute(
            "INSERT INTO entities (id, type, data, search, modified_at, created_at) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::json[], %s::jsonb[], %s::float8[], %s::float8[]) "
            "ON CONFLICT (id) DO UPDATE SET type = excluded.type, data = excluded.data, search = excluded.search, "
            "modified_at = excluded.modified_at, created_at = excluded.created_at",
            (ids, [e.type for e in entities], texts, [_NUL.sub(r"\1\\ufffd", t) for t in texts],
             [self._modified[i] for i in ids], [self._cache.created.get(i, self._modified[i]) for i in ids]))
        self._dirty.clear()

    def append_event(self, event: Event) -> None:
        """Keep an event for causal tracing and audit."""
        self.append_events([event])

    @synchronized
    @_available
    def append_events(self, events: Iterable[Event]) -> None:
        """Keep many events in one transaction."""
        self._writable()
        rows = [(e.context.id, e.context.parent_id, str(e.context.actor), str(e.type), e.time.timestamp(),
                 e.entity_type, e.entity_id, json.dumps(dict(e.data), default=str)) for e in events]
        self._write([("events", "id, parent_id, actor, type, time, entity_type, entity_id, data", rows)])

    @synchronized
    @_available
    def dead_letter(self, source: str, error: Exception, payload: Any, *, now: datetime) -> None:
        """Keep rejected input with its reason, and count it."""
        row = (now.timestamp(), _no_nul(source), type(error).__name__, _no_nul(str(error)),
               json.dumps(payload, default=repr))
        self._write([("dead_letters", "time, source, error, reason, payload", [row])], dead_letter=True)
        self.dead_letter_count += 1

    # ---- reads --------------------------------------------------------------------------------
    @synchronized
    @_available
    def query(self, *, type: str | None = None, id_pattern: str | None = None,
              where: Sequence[tuple[str, str, Any]] = (), limit: int | None = None) -> list[Entity]:
        """Entities by type, id glob pattern (``*``, ``?``, ``[…]``) and attribute filters, sorted by id."""
        self.flush()
        clauses: list[str] = []
        params: list[Any] = []
        if type is not None:
            clauses.append("type = %s")
            params.append(type)
        if id_pattern is not None:
            glob = any(c in id_pattern for c in "*?[")
            clauses.append("id ~ %s" if glob else "id = %s")
            params.append(glob_regex(id_pattern) if glob else id_pattern)
        for attr, op, value in where:
            if op not in OPS:
                raise StoreError(f"unknown filter operator {op!r}; use one of {sorted(OPS)}")
            if not attr.replace("_", "").isalnum():
                raise StoreError(f"bad attribute name {attr!r} in filter")
            if value is None:  # as in SQL (and SQLite): a comparison with null is never true
                clauses.append("FALSE")
                continue
            clauses.append(f"search -> %s -> 'value' {OPS[op]} %s::jsonb")
            params += [attr, _NUL.sub(r"\1\\ufffd", json.dumps(value))]
        if not self.schema_version:
            return []
        sql = "SELECT data::text FROM entities"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        return [Entity.from_ngsi(json.loads(d)) for (d,) in self._db.execute(sql.encode(), params)]

    @synchronized
    def ids(self, pattern: str = "*") -> list[str]:
        """Ids of current entities matching a glob pattern."""
        rx = re.compile(glob_regex(pattern), re.DOTALL)
        return sorted(i for i in self._current if rx.match(i))

    @synchronized
    @_available
    def history(self, entity_id: str, attr: str, *, start: datetime | None = None,
                end: datetime | None = None, last: int | None = None) -> list[HistoryRow]:
        """Stored values of one attribute, oldest first, within ``[start, end]`` by record time."""
        if not attr.replace("_", "").isalnum():
            raise StoreError(f"bad attribute name {attr!r}")
        if not self.schema_version:
            return []
        sql = ("SELECT entity_id, attrs::text, recorded_at, context_id FROM history "
               "WHERE entity_id = %s AND %s = ANY(names)")
        params: list[Any] = [entity_id, attr]
        if start is not None:
            sql += " AND recorded_at >= %s"
            params.append(start.timestamp())
        if end is not None:
            sql += " AND recorded_at <= %s"
            params.append(end.timestamp())
        sql += " ORDER BY recorded_at DESC, seq DESC"
        if last is not None:
            sql += " LIMIT %s"
            params.append(int(last))
        out = [history_row(i, attr, json.loads(packed)[attr], rec, ctx)
               for i, packed, rec, ctx in self._db.execute(sql.encode(), params)]
        out.reverse()
        return out

    @synchronized
    @_available
    def series(self, entity_id: str, attr: str, *, start: float | None = None, end: float | None = None,
               last: int | None = None) -> list[Point]:
        """One attribute's values by time (observedAt, else record time) in ``[start, end)``, oldest first."""
        if not self.schema_version:
            return []
        sql, params = series_sql("%s", entity_id, attr, start, end)
        sql = f"SELECT t, num, val, unit {sql} ORDER BY t DESC, seq DESC"
        if last is not None:
            sql += " LIMIT %s"
            params.append(int(last))
        out = [point(*r) for r in self._db.execute(sql.encode(), params)]
        out.reverse()
        return out

    @synchronized
    @_available
    def aggregate(self, entity_id: str, attr: str, *, start: float, end: float | None, period_s: float,
                  distinct: bool = False) -> list[Bucket]:
        """One attribute's values in ``[start, end)`` aggregated per period from ``start`` (in SQL)."""
        if not self.schema_version:
            return []
        where, params = series_sql("%s", entity_id, attr, start, end)
        sql = f"SELECT floor((t - %s) / %s)::bigint AS b, {aggregates(distinct)} {where} GROUP BY b ORDER BY b"
        return [Bucket(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], int(r[6]))
                for r in self._db.execute(sql.encode(), [start, period_s, *params])]

    @synchronized
    @_available
    def history_attrs(self, entity_id: str) -> list[str]:
        """The attributes of an entity that have history, sorted (its current state may be gone)."""
        if not self.schema_version:
            return []
        return [str(r[0]) for r in self._db.execute(DISTINCT_ATTRS.encode(), {"e": entity_id})]

    _EVENT = "SELECT seq, id, parent_id, actor, type, time, entity_type, entity_id, data::text FROM events"

    @synchronized
    @_available
    def events(self, *, type: str | None = None, entity_id: str | None = None,
               limit: int | None = None) -> list[StoredEvent]:
        """Stored events in order, optionally by type or entity."""
        if not self.schema_version:
            return []
        sql, params = self._EVENT, []
        clauses = []
        if type is not None:
            clauses.append("type = %s")
            params.append(type)
        if entity_id is not None:
            clauses.append("entity_id = %s")
            params.append(entity_id)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(str(int(limit)))
        return [stored_event(r) for r in self._db.execute(sql.encode(), params)]

    @synchronized
    @_available
    def event(self, event_id: str) -> StoredEvent | None:
        """One stored event by its context id."""
        if not self.schema_version:
            return None
        row = self._db.execute((self._EVENT + " WHERE id = %s ORDER BY seq LIMIT 1").encode(), (event_id,)).fetchone()
        return None if row is None else stored_event(row)

    def trace(self, event_id: str) -> list[StoredEvent]:
        """The causal chain from an event back to its root, following parent ids."""
        return causal_chain(self.event, event_id)

    @synchronized
    @_available
    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Rejected inputs, oldest first."""
        if not self.schema_version:
            return []
        sql = "SELECT seq, time, source, error, reason, payload FROM dead_letters ORDER BY seq"
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        return [DeadLetter(r[0], _utc(r[1]), r[2], r[3], r[4], json.loads(r[5]))
                for r in self._db.execute(sql.encode(), params)]

    # ---- the append-only ledger -----------------------------------------------------------------
    @synchronized
    @_available
    def ledger_size(self) -> int:
        """Rows in the ledger (pruned ones included)."""
        if self._ledger_locked is not None:  # inside the append lock: nobody else can have appended
            return self._ledger_locked
        return int(self._scalar("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger")) if self.schema_version else 0

    @synchronized
    @_available
    def ledger_append(self, build: Callable[[int], LedgerRow]) -> LedgerRow:
        """Append one row atomically: ``build`` runs inside the advisory lock, so its size is final."""
        self._writable()
        db = self._db
        if db.info.transaction_status != TransactionStatus.IDLE:
            raise StoreError("ledger_append cannot run inside another transaction")
        try:  # two round trips: BEGIN + lock + size, then INSERT + COMMIT
            cur = db.execute(b"BEGIN; " + _DURABLE + b"; "
                             b"SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.aicity.ledger')); "
                             b"SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger")
            while cur.nextset():
                pass
            self._ledger_locked = int(cur.fetchone()[0])  # type: ignore[index]
            row = build(self._ledger_locked)
            try:
                db.execute(sql.SQL("INSERT INTO ledger VALUES ({}); COMMIT").format(
                    sql.SQL(", ").join(sql.Literal(v) for v in _ledger_values(row))))
            except psycopg.OperationalError:  # the connection went: the commit may or may not have gone through
                self._uncertain.add(row.id)
                raise
            self._uncertain.discard(row.id)
        except pg_errors.UniqueViolation as exc:
            db.execute("ROLLBACK")
            self._ledger_locked = None
            stored = self.ledger_find(row.id)
            if (row.id in self._uncertain and stored is not None and stored.record == row.record
                    and stored.kind == row.kind):
                self._uncertain.discard(row.id)
                return stored  # the retry of an append whose commit went through unseen: stored once
            raise StoreConflict(f"ledger record id {row.id!r} is already taken") from exc
        finally:
            self._ledger_locked = None
            if not db.broken and not db.closed and db.info.transaction_status != TransactionStatus.IDLE:
                db.execute("ROLLBACK")
        return row

    def _ledger_pages(self, sql: str, params: Sequence[Any], start: int, end: int | None) -> Iterator[tuple[Any, ...]]:
        """Rows of a ledger query by ``seq`` pages (``sql`` ends with a ``seq >= %s`` condition)."""
        if not self.schema_version:
            return
        while True:
            bound = "" if end is None else " AND seq < %s"
            args = [*params, start] + ([] if end is None else [end])
            with _unavailable(self.path), self.lock:
                page = self._db.execute(f"{sql}{bound} ORDER BY seq LIMIT {_PAGE}".encode(), args).fetchall()
            yield from page
            if len(page) < _PAGE:
                return
            start = int(page[-1][0]) + 1

    def ledger_rows(self, start: int = 0, end: int | None = None) -> Iterator[LedgerRow]:
        """Rows with ``start <= seq < end`` in order, read a page at a time."""
        sql = "SELECT seq, id, kind, time, record, leaf_hash, root, signature FROM ledger WHERE seq >= %s"
        return (LedgerRow(*r) for r in self._ledger_pages(sql, (), start, end))

    @synchronized
    @_available
    def ledger_leaf_hashes(self, start: int = 0, end: int | None = None) -> list[str]:
        """Hex leaf hashes of rows with ``start <= seq < end``, in order."""
        return [str(r[1]) for r in self._ledger_pages("SELECT seq, leaf_hash FROM ledger WHERE seq >= %s", (),
                                                      start, end)]

    @synchronized
    @_available
    def ledger_find(self, record_id: str) -> LedgerRow | None:
        """The row of a record id."""
        if not self.schema_version:
            return None
        r = self._db.execute("SELECT seq, id, kind, time, record, leaf_hash, root, signature FROM ledger "
                             "WHERE id = %s", (record_id,)).fetchone()
        return None if r is None else LedgerRow(*r)

    def ledger_records(self, kind: str | None = None) -> Iterator[str]:
        """The text of every unpruned record, in order, optionally of one kind."""
        sql = "SELECT seq, record FROM ledger WHERE record IS NOT NULL"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " AND kind = %s"
            params = (kind,)
        return (str(r[1]) for r in self._ledger_pages(sql + " AND seq >= %s", params, 0, None))

    @synchronized
    @_available
    def ledger_prune(self, cutoff: str) -> int:
        """Blank the content of the rows before the first one with ``time >= cutoff``; returns how many."""
        self._writable()
        cur = self._db.execute(
            "UPDATE ledger SET record = NULL WHERE record IS NOT NULL AND seq < "
            "(SELECT COALESCE(MIN(seq), (SELECT COUNT(*) FROM ledger)) FROM ledger WHERE time >= %s)", (cutoff,))
        return int(cur.rowcount)

    @synchronized
    @_available
    def ledger_pruned(self) -> int:
        """How many rows have their content blanked."""
        return int(self._scalar("SELECT COUNT(*) FROM ledger WHERE record IS NULL")) if self.schema_version else 0

    @synchronized
    @_available
    def ledger_meta(self, key: str) -> str | None:
        """A ledger metadata value (e.g. ``public_key``)."""
        if not self.schema_version:
            return None
        value = self._scalar("SELECT value FROM ledger_meta WHERE key = %s", (key,))
        return None if value is None else str(value)

    @synchronized
    @_available
    def ledger_set_meta(self, key: str, value: str, *, replace: bool = False) -> str:
        """Set a ledger metadata value (only when absent unless ``replace``); returns the stored value."""
        self._writable()
        action = "UPDATE SET value = excluded.value" if replace else "NOTHING"
        self._db.execute(f"INSERT INTO ledger_meta VALUES (%s, %s) ON CONFLICT (key) DO {action}".encode(),
                         (key, value))
        stored = self.ledger_meta(key)
        return value if stored is None else stored

    @synchronized
    @_available
    def ledger_import(self, rows: Sequence[LedgerRow], meta: Mapping[str, str]) -> None:
        """Load rows into an empty ledger in one transaction."""
        with self._locked(".aicity.ledger") as db, db.cursor() as cur:
            if self.ledger_size():
                raise StoreConflict("import needs an empty ledger")
            cur.executemany("INSERT INTO ledger_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE "
                            "SET value = excluded.value", list(meta.items()))
            cur.executemany("INSERT INTO ledger VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", [_ledger_values(r) for r in rows])

    # ---- governance documents -----------------------------------------------------------------
    @synchronized
    @_available
    def doc_put(self, collection: str, key: str, doc: Mapping[str, Any]) -> None:
        """Create or replace one document (a replaced document keeps its place in insertion order)."""
        self._writable()
        self._db.execute(sql.SQL("BEGIN; {}; INSERT INTO documents (collection, key, data) VALUES ({}, {}, {}) "
                                 "ON CONFLICT (collection, key) DO UPDATE SET data = excluded.data; COMMIT").format(
            sql.SQL(_DURABLE.decode()), sql.Literal(collection), sql.Literal(key), sql.Literal(_doc_text(doc))))

    @synchronized
    @_available
    def doc_add(self, collection: str, doc: Mapping[str, Any]) -> int:
        """Store a document under the next integer key of its collection (atomic); returns the key."""
        with self._locked(f".aicity.doc.{collection}") as db:
            n = int(self._scalar(
                "SELECT COALESCE(MAX(CASE WHEN key ~ '^-?[0-9]{1,18}$' THEN key::bigint END), 0) + 1 "
                "FROM documents WHERE collection = %s", (collection,)))
            db.execute("INSERT INTO documents (collection, key, data) VALUES (%s, %s, %s)",
                       (collection, str(n), _doc_text(doc)))
        return n

    @synchronized
    @_available
    def doc_get(self, collection: str, key: str) -> dict[str, Any] | None:
        """One document, or None."""
        if not self.schema_version:
            return None
        text = self._scalar("SELECT data::text FROM documents WHERE collection = %s AND key = %s", (collection, key))
        if text is None:
            return None
        out: dict[str, Any] = json.loads(text)
        return out

    @synchronized
    @_available
    def doc_query(self, collection: str, where: Mapping[str, Any] | None = None, *,
                  limit: int | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(key, document) pairs whose fields equal ``where``, in insertion order (the first ``limit``)."""
        if not self.schema_version:
            return []
        sql = "SELECT key, data::text FROM documents WHERE collection = %s ORDER BY seq"
        if limit is not None and not where:
            sql += f" LIMIT {int(limit)}"
        return matching_docs(self._db.execute(sql.encode(), (collection,)).fetchall(), where, limit)

    @synchronized
    @_available
    def doc_count(self, collection: str) -> int:
        """How many documents a collection holds."""
        if not self.schema_version:
            return 0
        return int(self._scalar("SELECT COUNT(*) FROM documents WHERE collection = %s", (collection,)))

    @synchronized
    @_available
    def doc_delete(self, collection: str, key: str) -> bool:
        """Remove one document; False when there was none."""
        self._writable()
        cur = self._db.execute("DELETE FROM documents WHERE collection = %s AND key = %s", (collection, key))
        return cur.rowcount > 0

    @synchronized
    @_available
    def doc_cas(self, collection: str, key: str, expect: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
        """Replace a document only if its fields still equal ``expect`` (atomic across processes: row lock)."""
        self._writable()
        with self._db.transaction():
            self._db.execute(_DURABLE)
            text = self._scalar("SELECT data::text FROM documents WHERE collection = %s AND key = %s FOR UPDATE",
                                (collection, key))
            current = None if text is None else json.loads(text)
            ok = current is not None and all(current.get(k) == v for k, v in expect.items())
            if ok:
                self._db.execute("UPDATE documents SET data = %s WHERE collection = %s AND key = %s",
                                 (_doc_text(doc), collection, key))
        return ok

    @synchronized
    def close(self) -> None:
        """Write out the buffer, flush and close the connection (a :class:`StoreUnavailable` naming what could not
        be written when the server is away; closed even so)."""
        try:
            if not self.readonly and (self._outbox or not self._conn.closed):
                self._retry_at = 0.0
                if not self._drain():
                    raise StoreUnavailable(f"the store at {self.path} is unavailable: {self._waiting_rows} buffered "
                                           "rows could not be written")
                self.flush()
        finally:
            self._conn.close()


def _no_nul(text: str) -> str:
    """Text PostgreSQL can keep (it refuses NUL, which bad input may well carry into an error message)."""
    return text.replace("\x00", "\ufffd")


def _ledger_values(row: LedgerRow) -> tuple[Any, ...]:
    return (row.seq, row.id, row.kind, row.time, row.record, row.leaf_hash, row.root, row.signature)


def _doc_text(doc: Mapping[str, Any]) -> str:
    return json.dumps(dict(doc), sort_keys=True)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _line(exc: BaseException) -> str:
    """The first line of a driver message (libpq's run over several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
