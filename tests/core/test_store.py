from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicity.core.entity import Entity, Property, Relationship, urn
from aicity.core.errors import EntityValidationError, UserError
from aicity.core.store import ChangeKind, LedgerRow, SqliteStore, StoreConflict, StoreError, open_store

T = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def lane(i, q, dt=0, **extra):
    attrs = {"queue": Property(q, T + timedelta(seconds=dt)), **extra}
    return Entity(urn("TrafficFlowObserved", f"lane{i}"), "TrafficFlowObserved", attrs)


def test_reported_versus_changed(backend):
    s = backend.new()
    assert s.upsert(lane(1, 3, 0), now=T).kinds == {"queue": ChangeKind.NEW}
    assert s.upsert(lane(1, 3, 10), now=T).kinds == {"queue": ChangeKind.REPORTED}
    assert s.upsert(lane(1, 3, 10), now=T).kinds == {"queue": ChangeKind.UNCHANGED}
    assert s.upsert(lane(1, 4, 20), now=T).kinds == {"queue": ChangeKind.CHANGED}
    hist = s.history(urn("TrafficFlowObserved", "lane1"), "queue")
    assert [(h.value, h.kind) for h in hist] == [(3, ChangeKind.NEW), (3, ChangeKind.REPORTED), (4, ChangeKind.CHANGED)]
    assert hist[-1].observed_at == T + timedelta(seconds=20)


def test_attributes_merge_into_current_state(backend):
    s = backend.new()
    s.upsert(lane(1, 3, speed=Property(9.5, T)), now=T)
    s.upsert(lane(1, 5), now=T)
    cur = s.get(urn("TrafficFlowObserved", "lane1"))
    assert cur.get("queue") == 5 and cur.get("speed") == 9.5


def test_history_time_range_and_latest_n(backend):
    s = backend.new()
    for k in range(10):
        s.upsert(lane(1, k, k), now=T + timedelta(minutes=k))
    ident = urn("TrafficFlowObserved", "lane1")
    assert [h.value for h in s.history(ident, "queue", last=3)] == [7, 8, 9]
    window = s.history(ident, "queue", start=T + timedelta(minutes=2), end=T + timedelta(minutes=4))
    assert [h.value for h in window] == [2, 3, 4]
    assert s.history(ident, "nothing") == []
    with pytest.raises(StoreError):
        s.history(ident, "queue') --")


def test_queries_by_type_id_pattern_and_filters(backend):
    s = backend.new()
    s.upsert_many([lane(i, i) for i in range(6)], now=T)
    s.upsert(Entity(urn("TrafficSignal", "j1"), "TrafficSignal", {"phase": Property(2, T)}), now=T)
    assert len(s.query(type="TrafficFlowObserved")) == 6
    assert [e.local_id for e in s.query(id_pattern="urn:ngsi-ld:TrafficFlowObserved:lane[12]")] == ["lane1", "lane2"]
    assert [e.get("queue") for e in s.query(type="TrafficFlowObserved", where=[("queue", ">=", 4)])] == [4, 5]
    assert len(s.query(type="TrafficFlowObserved", limit=2)) == 2
    assert s.query(id_pattern=urn("TrafficSignal", "j1"))[0].get("phase") == 2
    with pytest.raises(StoreError, match="operator"):
        s.query(where=[("queue", "LIKE", 1)])


def test_file_store_persists_current_state_and_history(backend):
    path = backend.url()
    s = open_store(path)
    s.upsert(lane(1, 3, rel=Relationship(urn("TrafficSignal", "j1"))), now=T)
    s.close()
    again = open_store(path)
    assert again.get(urn("TrafficFlowObserved", "lane1")).get("rel") == urn("TrafficSignal", "j1")
    assert again.upsert(lane(1, 3, 5), now=T).kinds["queue"] is ChangeKind.REPORTED


def test_dead_letters_keep_reason_and_count(backend):
    s = backend.new()
    bad = {"id": "lane-7", "type": "TrafficFlowObserved"}
    try:
        Entity.from_ngsi(bad)
    except EntityValidationError as exc:
        s.dead_letter("test", exc, bad, now=T)
    assert s.dead_letter_count == 1
    (dl,) = s.dead_letters()
    assert dl.error == "EntityValidationError" and "URN" in dl.reason and dl.payload == bad
    assert s.get("lane-7") is None


values = st.one_of(st.integers(-2**53, 2**53), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=20), st.booleans(), st.none(),
                   st.lists(st.integers(-1000, 1000), max_size=4),
                   st.dictionaries(st.text("abcxyz", min_size=1, max_size=5), st.integers(), max_size=3))


updates = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["a", "b_c", "speed"]), values,
                             st.integers(0, 10_000)), min_size=1, max_size=25)
EXAMPLES = {"sqlite": 150, "postgres": 40}  # a round trip to the server per call: fewer examples, the same checks


def test_store_round_trip_property(backend):
    """Whatever sequence of updates, current state equals the last value written and history keeps them all."""
    s = backend.new()  # one store; each example writes its own things
    runs = iter(range(1_000_000))

    @settings(max_examples=EXAMPLES[backend.name], deadline=None)
    @given(updates)
    def check(updates):
        run = next(runs)
        last: dict[tuple[str, str], object] = {}
        writes: dict[tuple[str, str], int] = {}
        for k, name, value, dt in updates:
            i = f"{run}-{k}"
            e = Entity(urn("Thing", i), "Thing", {name: Property(value, T + timedelta(seconds=dt))})
            result = s.upsert(e, now=T)
            if result.kinds[name] is not ChangeKind.UNCHANGED:
                writes[(i, name)] = writes.get((i, name), 0) + 1
            last[(i, name)] = value
        for (i, name), value in last.items():
            assert s.get(urn("Thing", i)).get(name) == value
            fresh = s.query(id_pattern=urn("Thing", i))[0]
            assert fresh.get(name) == value and type(fresh.get(name)) is type(s.get(urn("Thing", i)).get(name))
            hist = s.history(urn("Thing", i), name)
            assert len(hist) == writes[(i, name)]
            assert hist[-1].value == value

    check()


def test_a_nul_character_is_stored_and_never_breaks_queries(backend):
    s = backend.new()
    s.upsert(Entity(urn("Thing", "nul"), "Thing", {"name": Property("a\x00b", T), "n": Property(1, T)}), now=T)
    s.upsert(Entity(urn("Thing", "ok"), "Thing", {"name": Property("ok", T), "n": Property(2, T)}), now=T)
    assert [e.local_id for e in s.query(type="Thing", where=[("n", ">=", 1)])] == ["nul", "ok"]
    assert s.query(id_pattern=urn("Thing", "nul"))[0].get("name") == "a\x00b"
    assert s.history(urn("Thing", "nul"), "name")[0].value == "a\x00b"
    s.dead_letter("test", ValueError("bad\x00"), {"raw": "\x00"}, now=T)
    assert s.dead_letters()[0].payload == {"raw": "\x00"} and s.dead_letters()[0].reason.startswith("bad")


def test_history_keeps_unit_codes_and_relationships(backend):
    s = backend.new()
    e = Entity(urn("Meter", "m1"), "Meter", {"power": Property(3.5, T, "KWT"),
                                              "refSite": Relationship(urn("Site", "s1"))})
    s.upsert(e, now=T)
    (row,) = s.history(urn("Meter", "m1"), "power")
    assert row.value == 3.5 and row.unit_code == "KWT"
    assert s.history(urn("Meter", "m1"), "refSite")[0].value == {"object": urn("Site", "s1")}


# ---- what the platform needs: delete, replace, times, series, threads ------------------------------------------


def test_delete_and_replace_keep_history_and_times(backend):
    url = backend.url()
    s = open_store(url)
    ident = urn("Meter", "m1")
    s.upsert(Entity(ident, "Meter", {"a": Property(1, T), "b": Property(2, T)}), now=T)
    later = T + timedelta(minutes=5)
    r = s.replace(Entity(ident, "Meter", {"a": Property(1, T), "c": Property(3)}), now=later)
    assert r.kinds == {"a": ChangeKind.UNCHANGED, "c": ChangeKind.NEW}
    assert set(s.get(ident).attrs) == {"a", "c"}
    assert s.created_at(ident) == T and s.modified_at(ident) == later
    s.replace(Entity(ident, "Meter", {}), now=later)  # an entity without attributes is still one
    assert s.get(ident).attrs == {} and [e.id for e in s.entities()] == [ident]
    s.close()
    s = open_store(url)  # times and the replaced state survive reopening
    assert s.get(ident).attrs == {} and s.created_at(ident) == T and s.modified_at(ident) == later
    assert s.delete(ident) and not s.delete(ident) and s.get(ident) is None and s.created_at(ident) is None
    assert [h.value for h in s.history(ident, "a")] == [1] and s.history_attrs(ident) == ["a", "b", "c"]
    s.upsert(Entity(ident, "Meter", {"a": Property(5)}), now=later + timedelta(1))
    assert s.created_at(ident) == later + timedelta(1)  # created again
    s.close()
    assert open_store(url).get(ident).get("a") == 5


def test_series_by_observed_time_and_aggregates_in_the_database(backend):
    s = backend.new()
    ident = urn("Meter", "m1")
    values = [1, 2.5, "x", {"k": [1]}, True, 2, 10 ** 18]
    for k, v in enumerate(values):
        s.upsert(Entity(ident, "Meter", {"p": Property(v, T + timedelta(seconds=10 * k), "KWT"),
                                         "q": Property(k)}), now=T + timedelta(hours=1))
    pts = s.series(ident, "p")
    assert [p.value for p in pts] == values and type(pts[0].value) is int and pts[0].unit_code == "KWT"
    assert pts[1].t == (T + timedelta(seconds=10)).timestamp()
    assert [p.value for p in s.series(ident, "p", start=pts[1].t, end=pts[3].t)] == [2.5, "x"]
    assert [p.value for p in s.series(ident, "p", last=2)] == [2, 10 ** 18]
    assert s.series(ident, "q")[0].t == (T + timedelta(hours=1)).timestamp()  # no observedAt: record time
    b0, b1 = s.aggregate(ident, "p", start=T.timestamp(), end=None, period_s=40, distinct=True)
    assert (b0.index, b0.count, b0.sum, b0.sumsq, b0.min, b0.max, b0.distinct) == (0, 4, 3.5, 7.25, 1, 2.5, 4)
    assert (b1.index, b1.count, b1.min, b1.distinct) == (1, 3, 2, 3) and b1.sum == pytest.approx(2 + 10 ** 18)
    assert s.aggregate(ident, "p", start=T.timestamp(), end=T.timestamp() + 15, period_s=40)[0].count == 2
    many = s.aggregate(ident, "p", start=T.timestamp(), end=None, period_s=0.001)  # one GROUP BY, not 60,000 reads
    assert [(b.index, b.count, b.distinct) for b in many] == [(10_000 * k, 1, 0) for k in range(7)]
    assert s.history_attrs(ident) == ["p", "q"] and s.history_attrs("urn:none:x") == []


def test_documents_delete_count_and_first(backend):
    s = backend.new()
    for k in range(5):
        s.doc_put("outbox", str(k), {"n": k, "even": k % 2 == 0})
    assert s.doc_count("outbox") == 5 and s.doc_count("none") == 0
    assert [k for k, _ in s.doc_query("outbox", limit=2)] == ["0", "1"]
    assert [k for k, _ in s.doc_query("outbox", {"even": True}, limit=2)] == ["0", "2"]
    assert s.doc_delete("outbox", "0") and not s.doc_delete("outbox", "0")
    assert s.doc_count("outbox") == 4 and s.doc_get("outbox", "0") is None


def test_threads_share_one_store(backend):
    import threading

    s = backend.new()
    errors = []

    def writer(w):
        try:
            for k in range(40):
                s.upsert_many([Entity(urn("Meter", f"w{w}m{i}"), "Meter", {"p": Property(k)}) for i in range(5)],
                              now=T + timedelta(seconds=k))
                s.doc_put("status", f"w{w}", {"k": k})
                s.series(urn("Meter", f"w{w}m0"), "p", last=1)
                with s.lock:  # several calls as one step
                    old = s.get(urn("Meter", f"w{w}m1"))
                    s.replace(Entity(old.id, old.type, dict(old.attrs)), now=T + timedelta(seconds=k))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(s.entities()) == 20 and all(len(s.history(urn("Meter", f"w{w}m0"), "p")) == 40 for w in range(4))
    assert [d["k"] for _, d in s.doc_query("status")] == [39] * 4


def test_an_older_sqlite_file_gains_times_and_series(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    s = SqliteStore(path)
    s.upsert(Entity(urn("Meter", "m1"), "Meter", {"p": Property(4, T), "r": Property(2.5)}), now=T)
    s.close()
    with sqlite3.connect(path) as db:  # as an older aicity left it
        db.execute("DROP TABLE series")
        db.execute("ALTER TABLE entities DROP COLUMN created_at")
    s = SqliteStore(path)
    assert s.created_at(urn("Meter", "m1")) == T
    assert [(p.t, p.value) for p in s.series(urn("Meter", "m1"), "p")] == [(T.timestamp(), 4)]
    assert s.series(urn("Meter", "m1"), "r")[0].value == 2.5


# ---- governance's tables, through the store ---------------------------------------------------------------


def _row(seq, ident="r"):
    return LedgerRow(seq, f"{ident}{seq}", "k", "2026-01-01T00:00:00+00:00", '{"x":1}', "00", "11", "22")


def test_documents_put_get_query_add_and_compare_and_set(backend):
    url = backend.url()
    s = open_store(url)
    s.doc_put("stops", "*", {"active": True, "by": "op"})
    s.doc_put("stops", "water", {"active": False})
    s.doc_put("stops", "*", {"active": False, "by": "op"})  # replaced in place
    assert s.doc_get("stops", "*") == {"active": False, "by": "op"} and s.doc_get("stops", "nope") is None
    assert [k for k, _ in s.doc_query("stops")] == ["*", "water"]
    assert s.doc_query("stops", {"active": True}) == []
    assert [s.doc_add("approvals", {"status": "pending"}) for _ in range(3)] == [1, 2, 3]
    other = open_store(url)  # another process on the same store
    assert other.doc_cas("approvals", "2", {"status": "pending"}, {"status": "approved"})
    assert not s.doc_cas("approvals", "2", {"status": "pending"}, {"status": "rejected"})  # taken once
    assert s.doc_get("approvals", "2") == {"status": "approved"}
    assert not s.doc_cas("approvals", "9", {}, {"status": "x"})


def test_ledger_rows_append_atomically_and_refuse_a_taken_id(backend):
    url = backend.url()
    s = open_store(url)
    other = open_store(url)
    seen = []
    for store in (s, other, s):
        store.ledger_append(lambda size: seen.append(size) or _row(size))
    assert seen == [0, 1, 2] and s.ledger_size() == other.ledger_size() == 3
    with pytest.raises(StoreConflict, match="already taken"):
        s.ledger_append(lambda size: LedgerRow(size, "r0", "k", "t", None, "00", "11", "22"))
    assert s.ledger_size() == 3

    def broken(size):
        raise ValueError("build failed")

    with pytest.raises(ValueError, match="build failed"):
        s.ledger_append(broken)
    other.ledger_append(_row)  # the lock was let go, and the failed append left nothing behind
    s.ledger_append(_row)
    assert s.ledger_size() == 5
    assert [r.seq for r in s.ledger_rows(1, 3)] == [1, 2] and s.ledger_leaf_hashes(0, 2) == ["00", "00"]
    assert s.ledger_find("r1").seq == 1 and s.ledger_find("x") is None
    assert s.ledger_set_meta("public_key", "abc") == "abc" and s.ledger_set_meta("public_key", "def") == "abc"
    assert s.ledger_prune("2030-01-01") == 5 and s.ledger_pruned() == 5 and list(s.ledger_records()) == []


def test_open_an_existing_store_read_only(backend):
    url = backend.url()
    s = open_store(url)
    s.upsert(lane(1, 3), now=T)
    s.doc_put("stops", "*", {"active": True})
    s.close()
    ro = open_store(url, readonly=True)
    assert ro.get(urn("TrafficFlowObserved", "lane1")).get("queue") == 3 and ro.doc_get("stops", "*")
    with pytest.raises(StoreError, match="read-only"):
        ro.doc_put("stops", "*", {})
    with pytest.raises(StoreError, match="read-only"):
        ro.ledger_append(_row)
    ro.close()


def test_sqlite_missing_corrupt_and_empty_files(tmp_path):
    path = tmp_path / "city.db"
    with pytest.raises(UserError, match="no database"):
        SqliteStore.open(path)
    with pytest.raises(UserError, match="no database"):
        open_store(path, readonly=True)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not sqlite" * 500)
    with pytest.raises(UserError, match="cannot open"):
        SqliteStore.open(bad)
    empty = tmp_path / "empty.db"
    empty.touch()
    ro = SqliteStore.open(empty)  # an empty file has no tables: reads are empty, never a crash
    assert ro.ledger_size() == 0 and ro.doc_query("stops") == [] and ro.events() == [] and ro.trace("x") == []


@pytest.mark.parametrize(("target", "kind"), [
    (":memory:", SqliteStore), ("sqlite://", SqliteStore), ("sqlite:///:memory:", SqliteStore)])
def test_open_store_chooses_sqlite_by_url(target, kind):
    assert isinstance(open_store(target), kind)


def test_open_store_sqlite_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///rel.db").close()
    open_store(f"sqlite:///{tmp_path}/abs.db").close()
    assert (tmp_path / "rel.db").is_file() and (tmp_path / "abs.db").is_file()


@pytest.mark.parametrize(("target", "message"), [
    ("mysql://u@h/db", "unknown store URL mysql://"),
    ("sqlite:relative.db", "unknown store URL|bad SQLite URL"),
    ("sqlite://host/x.db", "bad SQLite URL"),
    ("postgresql://u@127.0.0.1:1/db?bogus_option=1", "bad PostgreSQL URL"),
    ("postgresql://u@127.0.0.1:1/db", "cannot connect to PostgreSQL at postgresql://127.0.0.1:1/db"),
])
def test_open_store_errors_are_one_line(target, message):
    with pytest.raises(UserError, match=message) as info:
        open_store(target)
    assert "\n" not in str(info.value)


def test_a_store_written_without_series_gets_it_from_history(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from aicity.core.entity import Entity, Property
    from aicity.core.store import SqliteStore

    path = tmp_path / "run.db"
    store = SqliteStore(path, series=False)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(3):
        store.upsert(Entity("urn:ngsi-ld:Meter:m", "Meter", {"kw": Property(float(i))}),
                     now=t0.replace(minute=i))
    assert store.series("urn:ngsi-ld:Meter:m", "kw") == []  # not written during the run
    store.close()
    again = SqliteStore(path)  # the platform opens it: the series comes back from history
    assert [p.value for p in again.series("urn:ngsi-ld:Meter:m", "kw")] == [0.0, 1.0, 2.0]
    again.close()


def _meter_rows(store, n, *, tie=False):  # type: ignore[no-untyped-def]
    """n readings of two meters; with ``tie`` every reading of a meter carries the same observedAt."""
    for k in range(n):
        for m in ("a", "b"):
            when = T if tie else T + timedelta(seconds=k)
            store.upsert(Entity(urn("Meter", m), "Meter", {"kw": Property(float(k), when)}),
                         now=T + timedelta(seconds=k))


def test_recent_rows_are_merged_in_arrival_order_before_the_writer_reads(tmp_path):
    s = SqliteStore(tmp_path / "w.db")
    s.merge_rows, s.merge_s = 10**9, 1e9
    _meter_rows(s, 20, tie=True)
    (staged,) = s._db.execute("SELECT COUNT(*) FROM series_recent").fetchone()
    assert staged == 40  # not merged yet: appended to the unindexed table
    assert [p.value for p in s.series(urn("Meter", "a"), "kw")] == [float(k) for k in range(20)]  # ties: arrival
    assert s._db.execute("SELECT COUNT(*) FROM series_recent").fetchone()[0] == 0
    assert [h.value for h in s.history(urn("Meter", "b"), "kw", last=2)] == [18.0, 19.0]
    s.close()


def test_rows_merge_by_count_and_by_age(tmp_path):
    s = SqliteStore(tmp_path / "w.db")
    s.merge_rows, s.merge_s = 10, 1e9
    _meter_rows(s, 4)  # 8 rows: still recent
    assert s._db.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 0
    _meter_rows(s, 1)  # the 10th row merges
    assert s._db.execute("SELECT COUNT(*) FROM history_recent").fetchone()[0] == 0
    assert s._db.execute("SELECT COUNT(*) FROM history").fetchone()[0] == 10
    s.merge_rows, s.merge_s = 10**9, 0.0  # every append is old enough
    _meter_rows(s, 1)
    assert s._db.execute("SELECT COUNT(*) FROM history_recent").fetchone()[0] == 0
    s.close()


def test_a_read_only_store_sees_rows_its_writer_has_not_merged(tmp_path):
    path = tmp_path / "w.db"
    w = SqliteStore(path)
    ident = urn("Meter", "a")

    def put(value, second):  # type: ignore[no-untyped-def]
        w.upsert(Entity(ident, "Meter", {"kw": Property(value, T + timedelta(seconds=second))}), now=T)

    w.merge_rows, w.merge_s = 3, 1e9
    for k in range(3):
        put(float(k), k)  # the third row merges all three
    w.merge_rows = 10**9
    for v in (10.0, 11.0, 12.0):
        put(v, 1)  # recent rows, at the time of a merged one
    assert w._db.execute("SELECT COUNT(*) FROM series").fetchone()[0] == 3
    assert w._db.execute("SELECT COUNT(*) FROM series_recent").fetchone()[0] == 3
    r = SqliteStore.open(path)
    assert [p.value for p in r.series(ident, "kw")] == [0.0, 1.0, 10.0, 11.0, 12.0, 2.0]  # ties by arrival
    assert [p.value for p in r.series(ident, "kw", last=2)] == [12.0, 2.0]
    assert [h.value for h in r.history(ident, "kw")] == [0.0, 1.0, 2.0, 10.0, 11.0, 12.0]
    assert [h.value for h in r.history(ident, "kw", last=1)] == [12.0]
    (bucket,) = r.aggregate(ident, "kw", start=T.timestamp(), end=None, period_s=3600)
    assert (bucket.count, bucket.sum, bucket.max) == (6, 36.0, 12.0)
    assert r.history_attrs(ident) == ["kw"] and r.history_attrs(urn("Meter", "none")) == []
    assert r._db.execute("SELECT COUNT(*) FROM series_recent").fetchone()[0] == 3  # a reader never merges
    assert [p.value for p in w.series(ident, "kw")] == [0.0, 1.0, 10.0, 11.0, 12.0, 2.0]  # the writer merges
    assert [p.value for p in r.series(ident, "kw")] == [0.0, 1.0, 10.0, 11.0, 12.0, 2.0]  # and the reader agrees
    r.close()
    w.close()


def test_a_writer_merges_what_a_crashed_writer_left(tmp_path):
    path = tmp_path / "w.db"
    w = SqliteStore(path)
    w.merge_rows, w.merge_s = 10**9, 1e9
    _meter_rows(w, 5)
    w._db.close()  # gone without close(): its rows sit in the recent tables
    again = SqliteStore(path)
    assert again._db.execute("SELECT COUNT(*) FROM history_recent").fetchone()[0] == 0
    assert [p.value for p in again.series(urn("Meter", "b"), "kw")] == [float(k) for k in range(5)]
    again.close()
