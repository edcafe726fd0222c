"""The platform's store: a thread-safe :class:`SqliteStore` with the few writes the NGSI-LD API needs on top.

The kernel store serves one thread and only merges attributes in; the API also deletes entities and replaces
them, and serves HTTP threads beside the loop's thread. Every public method runs under one re-entrant lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aicity.core.entity import ATTR_RE, Entity
from aicity.core.store import SCHEMA, SqliteStore

_LOCKED = ("upsert_many", "get", "query", "ids", "history", "append_events", "events", "event", "trace",
           "dead_letter", "dead_letters", "flush", "ledger_size", "ledger_append", "ledger_rows",
           "ledger_leaf_hashes", "ledger_find", "ledger_records", "ledger_prune", "ledger_pruned", "ledger_meta",
           "ledger_set_meta", "ledger_import", "doc_put", "doc_add", "doc_get", "doc_query", "doc_cas", "close")


class PlatformStore(SqliteStore):
    """A :class:`SqliteStore` shared by threads (one lock) that can also delete and replace entities."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        super().__init__(path)
        self.lock = threading.RLock()
        self._db.close()  # reopen the connection so the server's threads may share it (under the lock)
        self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
        self._db.executescript(SCHEMA)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")

    def entities(self) -> list[Entity]:
        """Every current entity (from the in-memory state, no database read)."""
        with self.lock:
            return list(self._current.values())

    def modified_at(self, entity_id: str) -> datetime | None:
        """When the entity was last written (None when not since this store was opened)."""
        with self.lock:
            ts = self._modified.get(entity_id)
            if ts is None:
                row = self._db.execute("SELECT modified_at FROM entities WHERE id = ?", (entity_id,)).fetchone()
                ts = None if row is None else float(row[0])
        return None if ts is None else datetime.fromtimestamp(ts, UTC)

    def created_at(self, entity_id: str) -> datetime | None:
        """When the entity's first value was recorded (its oldest history row)."""
        with self.lock:
            row = self._db.execute("SELECT MIN(recorded_at) FROM history WHERE entity_id = ?",
                                   (entity_id,)).fetchone()
        return None if row is None or row[0] is None else datetime.fromtimestamp(float(row[0]), UTC)

    def delete(self, entity_id: str) -> bool:
        """Remove an entity's current state (its history stays); False when there was none."""
        with self.lock:
            found = self._current.pop(entity_id, None) is not None
            self._dirty.discard(entity_id)
            self._modified.pop(entity_id, None)
            with self._db:
                cur = self._db.execute("DELETE FROM entities WHERE id = ?", (entity_id,))
            return found or cur.rowcount > 0

    def replace(self, entity: Entity, *, now: datetime, context_id: str | None = None) -> None:
        """Make ``entity`` the whole current state of its id (attributes not in it are gone)."""
        with self.lock:
            self.delete(entity.id)
            self.upsert_many([entity], now=now, context_id=context_id)
            if not entity.attrs:  # an entity without attributes is still an entity
                self._current[entity.id] = entity
                self._modified[entity.id] = now.timestamp()
                self._dirty.add(entity.id)

    def history_many(self, entity_id: str, *, start: datetime | None = None,
                     end: datetime | None = None) -> list[tuple[float, str | None, str]]:
        """Raw history rows of one entity ``(recorded_at, context_id, packed attrs)``, oldest first."""
        sql = "SELECT recorded_at, context_id, attrs FROM history WHERE entity_id = ?"
        params: list[Any] = [entity_id]
        if start is not None:
            sql += " AND recorded_at >= ?"
            params.append(start.timestamp())
        if end is not None:
            sql += " AND recorded_at < ?"
            params.append(end.timestamp())
        with self.lock:
            return [(float(r[0]), r[1], str(r[2])) for r in self._db.execute(sql + " ORDER BY recorded_at, rowid",
                                                                             params)]


    def attr_series(self, entity_id: str, attr: str, *, start: float | None = None, end: float | None = None,
                    last: int | None = None) -> list[tuple[float, Any, str | None]]:
        """``(time, value, unitCode)`` of one attribute, oldest first; time is observedAt, else record time."""
        _check_name(attr)
        t = f"COALESCE(json_extract(attrs, '$.{attr}[1]'), recorded_at)"
        sql = (f"SELECT {t}, json_extract(attrs, '$.{attr}[0]'), json_extract(attrs, '$.{attr}[3]'), "
               f"json_type(attrs, '$.{attr}[0]') FROM history WHERE entity_id = ? "
               f"AND json_type(attrs, '$.{attr}') IS NOT NULL")
        params: list[Any] = [entity_id]
        if start is not None:
            sql += f" AND {t} >= ?"
            params.append(start)
        if end is not None:
            sql += f" AND {t} < ?"
            params.append(end)
        sql += f" ORDER BY {t} DESC LIMIT ?"
        params.append(-1 if last is None else int(last))
        with self.lock:
            rows = self._db.execute(sql, params).fetchall()
        out = [(float(r[0]), json.loads(r[1]) if r[3] in ("object", "array") else r[1], r[2]) for r in rows]
        out.reverse()
        return out

    def attr_aggregate(self, entity_id: str, attr: str, *, start: float, end: float | None,
                       period_s: float) -> list[tuple[int, int, float | None, float | None, float | None, float | None,
                                                      int]]:
        """Per period bucket from ``start``: (bucket, count, sum, sumsq, min, max, distinct count), in SQL."""
        _check_name(attr)
        t = f"COALESCE(json_extract(attrs, '$.{attr}[1]'), recorded_at)"
        v = f"json_extract(attrs, '$.{attr}[0]')"
        num = f"CASE WHEN json_type(attrs, '$.{attr}[0]') IN ('integer', 'real') THEN {v} END"
        sql = (f"SELECT CAST(({t} - ?) / ? AS INTEGER) AS b, COUNT(*), SUM({num}), SUM({num} * {num}), "
               f"MIN({num}), MAX({num}), COUNT(DISTINCT {v}) FROM history WHERE entity_id = ? "
               f"AND json_type(attrs, '$.{attr}') IS NOT NULL AND {t} >= ?")
        params: list[Any] = [start, period_s, entity_id, start]
        if end is not None:
            sql += f" AND {t} < ?"
            params.append(end)
        with self.lock:
            return list(self._db.execute(sql + " GROUP BY b ORDER BY b", params))

    def attr_names(self, entity_id: str) -> list[str]:
        """Every attribute name that has history for an entity."""
        with self.lock:
            rows = self._db.execute("SELECT DISTINCT j.key FROM history, json_each(history.attrs) AS j "
                                    "WHERE entity_id = ?", (entity_id,)).fetchall()
        return sorted(str(r[0]) for r in rows)

    def history_ids(self) -> list[tuple[str, str | None]]:
        """Ids with history, with the type of their current state (None when deleted)."""
        with self.lock:
            ids = [str(r[0]) for r in self._db.execute("SELECT DISTINCT entity_id FROM history")]
            return [(i, e.type if (e := self._current.get(i)) is not None else None) for i in sorted(ids)]

    def doc_delete(self, collection: str, key: str) -> bool:
        """Remove one document; False when there was none."""
        with self.lock, self._db:
            cur = self._db.execute("DELETE FROM documents WHERE collection = ? AND key = ?", (collection, key))
        return cur.rowcount > 0

    def doc_first(self, collection: str, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """The oldest ``limit`` documents of a collection (one indexed read, not a scan in Python)."""
        with self.lock:
            rows = self._db.execute("SELECT key, data FROM documents WHERE collection = ? ORDER BY seq LIMIT ?",
                                    (collection, limit)).fetchall()
        return [(str(k), json.loads(d)) for k, d in rows]

    def doc_count(self, collection: str) -> int:
        """How many documents a collection holds."""
        with self.lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents WHERE collection = ?",
                                        (collection,)).fetchone()[0])


def _check_name(attr: str) -> None:
    if not ATTR_RE.match(attr):
        raise ValueError(f"bad attribute name {attr!r}")


def _locked(name: str) -> Callable[..., Any]:
    method = getattr(SqliteStore, name)

    def run(self: PlatformStore, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    run.__name__ = name
    run.__doc__ = method.__doc__
    return run


for _name in _LOCKED:
    setattr(PlatformStore, _name, _locked(_name))
