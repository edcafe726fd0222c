"""The ledger: append-only storage, signed heads, proofs, tamper detection in the db and in exports."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.governance.ledger import (
    Ledger,
    LedgerError,
    deployment_key,
    import_jsonl,
    load_key,
    verify_jsonl,
    verify_store,
)
from aicity.governance.merkle import verify_consistency, verify_inclusion

from .conftest import T0


def _fill(ledger: Ledger, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rid = f"rec-{i:03d}"
        ledger.append({"id": rid, "kind": "decision", "time": (T0 + timedelta(minutes=i)).isoformat(),
                       "value": i * 1.5, "note": f"queue ≥ {i}"})
        ids.append(rid)
    return ids


def _flip(text: str, pos: int) -> str:
    data = bytearray(text.encode())
    data[pos] ^= 0x01
    return data.decode("utf-8", errors="surrogateescape")


def test_append_sign_and_verify(ledger: Ledger, key: Ed25519PrivateKey) -> None:
    _fill(ledger, 9)
    assert ledger.size == 9
    head = ledger.tree_head()
    assert head.verify() and head.root == ledger.root_at(9)
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    assert not head.verify(other.public_key().public_bytes_raw().hex())
    assert ledger.verify().ok and ledger.verify().checked == 9
    assert ledger.get("rec-004")["value"] == 6.0  # type: ignore[index]


def test_bad_records_are_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="'kind'"):
        ledger.append({"id": "x", "time": T0.isoformat()})
    with pytest.raises(LedgerError, match="canonical JSON"):
        ledger.append({"id": "x", "kind": "k", "time": T0.isoformat(), "v": float("inf")})
    ledger.append({"id": "x", "kind": "k", "time": T0.isoformat()})
    with pytest.raises(LedgerError, match="already"):
        ledger.append({"id": "x", "kind": "k", "time": T0.isoformat()})
    assert ledger.size == 1 and ledger.verify().ok


def test_rows_cannot_be_updated_or_deleted(ledger: Ledger, conn: sqlite3.Connection) -> None:
    _fill(ledger, 2)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE ledger SET record = '{}' WHERE seq = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM ledger")


def test_proofs_from_the_ledger_verify(ledger: Ledger) -> None:
    ids = _fill(ledger, 13)
    head = ledger.tree_head()
    for rid in ids:
        index, leaf, proof = ledger.inclusion_proof(rid)
        assert verify_inclusion(leaf, index, 13, proof, head.root)
    old = ledger.tree_head(5)
    assert old.verify()
    assert verify_consistency(5, 13, old.root, head.root, ledger.consistency_proof(5))
    assert not verify_consistency(5, 13, ledger.tree_head(6).root, head.root, ledger.consistency_proof(5))


def _tamper_db(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("DROP TRIGGER ledger_no_delete")


def test_flipping_any_stored_byte_names_the_record(ledger: Ledger, store: SqliteStore,
                                                    conn: sqlite3.Connection) -> None:
    ids = _fill(ledger, 6)
    _tamper_db(conn)
    rng = random.Random(5)
    cols = ["record", "leaf_hash", "root", "signature", "id"]
    for seq, rid in enumerate(ids):
        for col in cols:
            original = conn.execute(f"SELECT {col} FROM ledger WHERE seq = ?", (seq,)).fetchone()[0]
            n = len(original.encode())
            positions = {0, n - 1, *rng.sample(range(n), min(6, n))}
            for pos in positions:
                try:
                    conn.execute(f"UPDATE ledger SET {col} = ? WHERE seq = ?", (_flip(original, pos), seq))
                except sqlite3.IntegrityError:  # the flipped id equals another record's id
                    continue
                result = verify_store(store)
                assert not result.ok, (col, seq, pos)
                assert result.failed_seq == seq, (col, seq, pos, result)
                assert result.failed_id == rid
                conn.execute(f"UPDATE ledger SET {col} = ? WHERE seq = ?", (original, seq))
    assert verify_store(store).ok


def test_consistent_rewrite_is_caught_by_the_signature(ledger: Ledger, store: SqliteStore,
                                                        conn: sqlite3.Connection) -> None:
    """An attacker who edits a record and recomputes every hash still cannot forge the signed heads."""
    _fill(ledger, 5)
    _tamper_db(conn)
    from aicity.governance.merkle import Frontier, canonical_json, leaf_hash

    rows = conn.execute("SELECT seq, record FROM ledger ORDER BY seq").fetchall()
    f = Frontier()
    for seq, text in rows:
        if seq == 2:
            text = text.replace('"value":3.0', '"value":2.0')
        data = canonical_json(__import__("json").loads(text))
        f.append(leaf_hash(data))
        conn.execute("UPDATE ledger SET record=?, leaf_hash=?, root=? WHERE seq=?",
                     (data.decode(), leaf_hash(data).hex(), f.root().hex(), seq))
    result = verify_store(store)
    assert not result.ok and result.failed_id == "rec-002" and "signed tree head" in result.problem


def test_deleting_a_row_is_named(ledger: Ledger, store: SqliteStore, conn: sqlite3.Connection) -> None:
    _fill(ledger, 4)
    _tamper_db(conn)
    conn.execute("DELETE FROM ledger WHERE seq = 1")
    result = verify_store(store)
    assert not result.ok and result.failed_id == "rec-002" and "missing" in result.problem


def test_export_every_byte_flip_is_named(ledger: Ledger, tmp_path: Path) -> None:
    ids = _fill(ledger, 3)
    path = tmp_path / "ledger.jsonl"
    assert ledger.export_jsonl(path) == 3
    assert verify_jsonl(path).ok
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    pk = ledger.public_key
    for pos in range(len(raw)):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        path.write_bytes(bytes(bad))
        result = verify_jsonl(path, public_key=pk)
        assert not result.ok, pos
        line_no = max(i for i, s in enumerate(starts) if s <= pos)  # 0 = header
        if line_no == 0:
            assert result.failed_id == "header", (pos, result)
        elif pos == starts[line_no] - 1 or raw[pos:pos + 1] == b"\n":
            assert result.failed_seq in (line_no - 1, line_no), (pos, result)
        else:
            assert result.failed_id in (ids[line_no - 1], None), (pos, result)
            assert result.failed_seq == line_no - 1, (pos, result)


def test_an_export_with_a_line_nested_too_deeply_fails_verification_at_that_line(ledger: Ledger,
                                                                                  tmp_path: Path) -> None:
    _fill(ledger, 2)
    path = tmp_path / "ledger.jsonl"
    ledger.export_jsonl(path)
    lines = path.read_bytes().split(b"\n")
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000  # Python's parser raises RecursionError, not ValueError
    path.write_bytes(b"\n".join([lines[0], lines[1], deep]) + b"\n")
    result = verify_jsonl(path)
    assert not result.ok and result.failed_seq == 1 and "line 3 is not valid JSON" in result.problem
    path.write_bytes(deep + b"\n")
    result = verify_jsonl(path)
    assert not result.ok and result.failed_id == "header" and "not JSON" in result.problem


def test_export_import_roundtrip(ledger: Ledger, tmp_path: Path) -> None:
    _fill(ledger, 7)
    path = tmp_path / "l.jsonl"
    ledger.export_jsonl(path)
    other = SqliteStore()
    assert import_jsonl(path, other) == 7
    assert verify_store(other).ok
    assert Ledger(other).root() == ledger.root()


def test_prune_keeps_verifiability(ledger: Ledger, tmp_path: Path) -> None:
    ids = _fill(ledger, 10)
    now = T0 + ledger.retention + timedelta(minutes=4, seconds=30)
    assert ledger.prune(now) == 5
    assert ledger.get(ids[0]) is None and ledger.get(ids[5]) is not None
    assert ledger.verify().ok
    note = next(ledger.records("prune"))
    assert note["pruned_records"] == 5 and ledger.size == 11
    index, leaf, proof = ledger.inclusion_proof(ids[7])
    assert verify_inclusion(leaf, index, 11, proof, ledger.root())
    path = tmp_path / "p.jsonl"
    ledger.export_jsonl(path)
    assert verify_jsonl(path).ok


def test_read_only_ledger_cannot_append(ledger: Ledger, store: SqliteStore) -> None:
    _fill(ledger, 1)
    ro = Ledger(store)
    assert ro.verify().ok
    with pytest.raises(LedgerError, match="read-only"):
        ro.append({"id": "y", "kind": "k", "time": T0.isoformat()})


def test_wrong_key_is_refused(ledger: Ledger, store: SqliteStore) -> None:
    _fill(ledger, 1)
    with pytest.raises(UserError, match="signed with key"):
        Ledger(store, key=Ed25519PrivateKey.from_private_bytes(bytes(32)))


def test_key_file_created_once_in_the_deployment_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AICITY_LEDGER_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    k1 = deployment_key()
    path = tmp_path / ".aicity" / "ledger-ed25519.pem"
    assert k1.created and k1.path == path and path.stat().st_mode & 0o777 == 0o600
    assert str(path) in capsys.readouterr().err  # first use is said, once
    k2 = deployment_key()
    assert not k2.created and capsys.readouterr().err == ""
    assert k1.key.public_key().public_bytes_raw() == k2.key.public_key().public_bytes_raw()
    (tmp_path / "junk.pem").write_text("nope")
    with pytest.raises(UserError, match="not a PEM"):
        load_key(tmp_path / "junk.pem")


def test_two_writers_on_one_file_stay_consistent(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """A CLI process (stop, approval) appending while the run appends: both see each other's rows."""
    db = tmp_path / "two.db"
    run_side = Ledger(SqliteStore(db), key=key)
    cli_side = Ledger(SqliteStore(db), key=key)
    for i in range(6):
        (run_side if i % 3 else cli_side).append(
            {"id": f"x{i}", "kind": "k", "time": (T0 + timedelta(seconds=i)).isoformat()})
    assert run_side.size == cli_side.size == 6
    assert run_side.root() == cli_side.root()
    assert verify_store(SqliteStore.open(db)).ok
