"""What only the PostgreSQL store has: migrations, triggers, a lock across processes, a server that can go away."""

from __future__ import annotations

import multiprocessing
import re
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.entity import Entity, Property, urn
from aicity.core.errors import UserError
from aicity.core.store import StoreUnavailable, database_errors, open_store
from aicity.core.store_pg import SCHEMA_VERSION, PostgresStore, glob_regex
from aicity.governance.ledger import Ledger, verify_store

T = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
KEY = bytes(range(32))


def _raw(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def test_migrations_are_recorded_once_and_a_newer_schema_is_refused(pg):
    url = pg.url()
    PostgresStore(url).close()
    again = PostgresStore(url)  # nothing left to apply
    assert again.schema_version == SCHEMA_VERSION
    again.close()
    with _raw(url) as c:
        assert [v for (v,) in c.execute("SELECT version FROM aicity_schema ORDER BY version")] == \
            list(range(1, SCHEMA_VERSION + 1))
        c.execute("INSERT INTO aicity_schema (version, description) VALUES (%s, 'from the future')",
                  (SCHEMA_VERSION + 1,))
    for readonly in (False, True):
        with pytest.raises(UserError, match=f"schema version {SCHEMA_VERSION + 1}, newer") as info:
            open_store(url, readonly=readonly)
        assert "\n" not in str(info.value)


def test_an_older_schema_is_migrated_and_read_only_refuses_to(pg):
    url = pg.url()
    with _raw(url) as c:  # a store from the time of migration 1
        c.execute("CREATE TABLE aicity_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                  "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        from aicity.core.store_pg import MIGRATIONS
        c.execute(MIGRATIONS[0][1].encode())
        c.execute("INSERT INTO aicity_schema (version, description) VALUES (1, 'v1')")
    with pytest.raises(UserError, match="older than this aicity's"):
        open_store(url, readonly=True)
    s = open_store(url)
    assert isinstance(s, PostgresStore) and s.schema_version == SCHEMA_VERSION
    with _raw(url) as c:
        assert c.execute("SELECT to_regclass('events_entity') IS NOT NULL").fetchone() == (True,)


def test_read_only_on_an_empty_database_reads_empty_and_creates_nothing(pg):
    url = pg.url()
    ro = open_store(url, readonly=True)
    assert ro.ledger_size() == 0 and ro.doc_query("stops") == [] and ro.events() == [] and ro.trace("x") == []
    assert ro.query(type="X") == [] and ro.history("x", "a") == [] and ro.ledger_meta("public_key") is None
    ro.close()
    with _raw(url) as c:
        assert c.execute("SELECT to_regclass('aicity_schema')").fetchone() == (None,)


def test_the_ledger_table_is_append_only_even_for_raw_sql(pg):
    url = pg.url()
    ledger = Ledger(open_store(url), key=Ed25519PrivateKey.from_private_bytes(KEY))
    for i in range(3):
        ledger.append({"id": f"r{i}", "kind": "k", "time": (T + timedelta(seconds=i)).isoformat()})
    with _raw(url) as c:
        for sql in ("UPDATE ledger SET record = '{}' WHERE seq = 0", "UPDATE ledger SET root = 'x'",
                    "DELETE FROM ledger", "TRUNCATE ledger"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                c.execute(sql)
        assert verify_store(open_store(url, readonly=True)).ok
        c.execute("UPDATE ledger SET record = NULL WHERE seq = 0")  # allowed: what retention pruning does …
    result = verify_store(open_store(url, readonly=True))  # … but done outside it, the verifier names it
    assert not result.ok and "outside the retention process" in result.problem


def _append_many(url: str, who: int, n: int) -> None:
    ledger = Ledger(open_store(url), key=Ed25519PrivateKey.from_private_bytes(KEY))
    for i in range(n):
        ledger.append({"id": f"p{who}-{i}", "kind": "k", "time": (T + timedelta(seconds=i)).isoformat()})


def _take(url: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    s = open_store(url)
    results.put(sum(s.doc_cas("approvals", str(k), {"status": "pending"}, {"status": "taken"})
                    for k in range(1, 21)))


def test_processes_append_to_one_ledger_and_take_each_approval_once(pg):
    url = pg.url()
    s = open_store(url)
    for _ in range(20):
        s.doc_add("approvals", {"status": "pending"})
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_append_many, args=(url, w, 20)) for w in range(2)]
    results = ctx.Queue()
    takers = [ctx.Process(target=_take, args=(url, results)) for _ in range(2)]
    for p in writers + takers:
        p.start()
    for p in writers + takers:
        p.join(60)
        assert p.exitcode == 0
    assert s.ledger_size() == 40 and verify_store(s).ok
    assert sum(results.get(timeout=5) for _ in takers) == 20
    assert [d["status"] for _, d in s.doc_query("approvals")] == ["taken"] * 20


def test_a_lost_connection_is_one_line_and_the_next_call_connects_again(pg):
    url = pg.url()
    s = open_store(url)
    assert isinstance(s, PostgresStore)
    thing = urn("Thing", "a")
    s.upsert(Entity(thing, "Thing", {"v": Property(1, T)}), now=T)
    with _raw(url) as c:
        c.execute("SELECT pg_terminate_backend(%s)", (s._conn.info.backend_pid,))
    with pytest.raises(StoreUnavailable, match="is unavailable") as info:  # a read cannot wait
        s.history(thing, "v")
    assert "\n" not in str(info.value) and "127.0.0.1" in str(info.value)
    assert [h.value for h in s.history(thing, "v")] == [1]  # … the next call connects again
    with _raw(url) as c:
        c.execute("SELECT pg_terminate_backend(%s)", (s._conn.info.backend_pid,))
    assert s.upsert(Entity(thing, "Thing", {"v": Property(2, T)}), now=T).changed == ["v"]  # a write waits
    assert s.waiting == 2 and s.outage.since is not None and not s.writable()  # history + series rows
    time.sleep(0.3)
    assert s.writable() and s.waiting == 0 and s.outage.episodes == 1
    assert [h.value for h in s.history(thing, "v")] == [1, 2]
    s.close()
    assert open_store(url, readonly=True).get(thing).get("v") == 2


def test_the_store_carries_on_after_the_server_restarts():
    from aicity.core.pgcluster import LocalPostgres

    with LocalPostgres("restart") as cluster:
        s = open_store(cluster.url)
        ledger = Ledger(s, key=Ed25519PrivateKey.from_private_bytes(KEY))
        ledger.append({"id": "before", "kind": "k", "time": T.isoformat()})
        s.doc_put("stops", "*", {"active": True})
        cluster.restart()
        with pytest.raises(StoreUnavailable):  # the first call finds the connection gone …
            s.doc_get("stops", "*")
        assert s.doc_get("stops", "*") == {"active": True}  # … the next one connects again
        ledger.append({"id": "after", "kind": "k", "time": T.isoformat()})
        assert s.ledger_size() == 2 and verify_store(s).ok
        s.close()


def test_driver_errors_become_one_line_user_errors():
    with pytest.raises(UserError, match=r"cannot be used: first line$"), database_errors("postgresql://h/db"):
        raise psycopg.OperationalError("first line\nsecond line")


def test_a_password_never_appears_in_messages():
    with pytest.raises(UserError) as info:
        open_store("postgresql://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(("pattern", "yes", "no"), [
    ("urn:a:*", ["urn:a:", "urn:a:x.y"], ["urn:b:x"]),
    ("lane?", ["lane1"], ["lane", "lane12"]),
    ("lane[12]", ["lane1", "lane2"], ["lane3"]),
    ("lane[^12]", ["lane3"], ["lane1"]),
    ("a.b(c)+", ["a.b(c)+"], ["aXb(c)+", "a.bcc"]),
])
def test_glob_patterns_mean_what_sqlite_glob_means(pattern, yes, no):
    rx = re.compile(glob_regex(pattern))
    assert all(rx.match(t) for t in yes) and not any(rx.match(t) for t in no)


def test_a_cluster_that_cannot_start_fails_with_the_reason(monkeypatch, tmp_path):
    from aicity.core import pgcluster

    monkeypatch.setattr(pgcluster, "server_bindir", lambda: tmp_path)  # no initdb there
    cluster = pgcluster.LocalPostgres()
    with pytest.raises((UserError, OSError)):
        cluster.start()
    cluster.stop()
    assert cluster.root is None


def test_state_commits_like_sqlite_normal_unless_the_url_says_otherwise(pg):
    url = pg.url()
    fast = open_store(url)
    assert isinstance(fast, PostgresStore)
    assert fast._conn.execute("SHOW synchronous_commit").fetchone() == ("off",)
    strict = open_store(url + "%20-csynchronous_commit%3Don")
    assert isinstance(strict, PostgresStore)
    assert strict._conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
