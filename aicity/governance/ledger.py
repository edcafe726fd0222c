"""The append-only, tamper-evident ledger: canonical JSON records in an RFC 6962 Merkle tree with signed heads.

Every record becomes one leaf (``leaf = SHA-256(0x00 ‖ canonical JSON)``); after each append the ledger signs
the tree head (size, root) with the deployment's Ed25519 key and keeps it with the row, so ``verify`` can name
the first record whose bytes, leaf hash or tree head no longer match. Retention pruning blanks the content of
old records but keeps their leaf hashes and signed heads, so the log stays verifiable end to end.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aicity.core.errors import AicityError, UserError
from aicity.governance.merkle import (
    Frontier,
    canonical_json,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
)

DEFAULT_RETENTION = timedelta(days=183)  # ≥ 6 months (EU AI Act Art. 19, 26(6))
FORMAT = "aicity-ledger/1"

SCHEMA = """
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
"""


class LedgerError(AicityError):
    """A ledger operation that cannot be done (bad record, wrong key, unknown id)."""


def default_key_path() -> Path:
    """Where the deployment's signing key lives: ``$AICITY_LEDGER_KEY`` or ``~/.aicity/ledger-ed25519.pem``."""
    env = os.environ.get("AICITY_LEDGER_KEY")
    return Path(env) if env else Path.home() / ".aicity" / "ledger-ed25519.pem"


def load_or_create_key(path: str | Path | None = None) -> Ed25519PrivateKey:
    """Load the deployment key, generating it with the OS RNG (mode 0600) on first use."""
    p = Path(path) if path is not None else default_key_path()
    if p.exists():
        try:
            key = serialization.load_pem_private_key(p.read_bytes(), password=None)
        except ValueError as exc:
            raise UserError(f"ledger key {p} is not a PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise UserError(f"ledger key {p} is not an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()  # the one place real randomness is right
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def public_hex(key: Ed25519PublicKey) -> str:
    """The raw public key as hex."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id(public: str) -> str:
    """A short fingerprint of a hex public key."""
    return hashlib.sha256(bytes.fromhex(public)).hexdigest()[:16]


def tree_head_message(size: int, root: bytes) -> bytes:
    """The bytes signed for a tree head."""
    return f"{FORMAT}\n{size}\n{root.hex()}\n".encode()


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A signed (size, root) of the ledger."""

    size: int
    root: bytes
    signature: bytes
    public_key: str

    def verify(self, public_key: str | None = None) -> bool:
        """True when the signature is valid for ``public_key`` (default: the one recorded)."""
        return _check_sig(public_key or self.public_key, tree_head_message(self.size, self.root), self.signature)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"size": self.size, "root": self.root.hex(), "signature": self.signature.hex(),
                "key_id": key_id(self.public_key), "public_key": self.public_key}


def _check_sig(public: str, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of :func:`verify_rows`: ok, how many records were checked, and the first failure."""

    ok: bool
    checked: int
    failed_id: str | None = None
    failed_seq: int | None = None
    problem: str = ""

    def message(self) -> str:
        """One line for the CLI."""
        if self.ok:
            return f"ledger intact: {self.checked} records verified"
        return f"record {self.failed_id or '?'} (#{self.failed_seq}) fails verification: {self.problem}"


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One stored ledger row (``record`` is None when pruned)."""

    seq: int
    id: str
    kind: str
    time: str
    record: str | None
    leaf_hash: str
    root: str
    signature: str

    def to_line(self) -> bytes:
        """This row as one canonical JSON line of an export."""
        return canonical_json({
            "seq": self.seq, "id": self.id, "kind": self.kind, "time": self.time,
            "record": json.loads(self.record) if self.record is not None else None,
            "leaf_hash": self.leaf_hash, "root": self.root, "signature": self.signature})


def _text(value: Any) -> Any:
    return value.decode("utf-8", errors="surrogateescape") if isinstance(value, bytes) else value


def _select_rows(conn: sqlite3.Connection) -> Iterator[LedgerRow]:
    sql = ("SELECT seq, CAST(id AS BLOB), CAST(kind AS BLOB), CAST(time AS BLOB), CAST(record AS BLOB), "
           "CAST(leaf_hash AS BLOB), CAST(root AS BLOB), CAST(signature AS BLOB) FROM ledger ORDER BY seq")
    for r in conn.execute(sql):
        yield LedgerRow(r[0], *(_text(v) for v in r[1:]))


def _utc_iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise LedgerError(f"time {when!r} has no timezone; ledger times are UTC")
    return when.astimezone(UTC).isoformat()


class Ledger:
    """The append-only ledger in one SQLite connection (the run's ``city.db``)."""

    def __init__(self, conn: sqlite3.Connection, *, key: Ed25519PrivateKey | None = None,
                 retention: timedelta = DEFAULT_RETENTION) -> None:
        self.conn = conn
        self.retention = retention
        conn.executescript(SCHEMA)
        self._key = key
        stored = self._meta("public_key")
        if key is not None:
            pub = public_hex(key.public_key())
            if stored is None:
                with conn:
                    conn.execute("INSERT INTO ledger_meta VALUES ('public_key', ?)", (pub,))
                    conn.execute("INSERT OR IGNORE INTO ledger_meta VALUES ('format', ?)", (FORMAT,))
                stored = pub
            elif stored != pub:
                raise UserError(f"this ledger is signed with key {key_id(stored)}, not {key_id(pub)}; "
                                "pass the deployment's ledger key")
        self.public_key = stored
        self._frontier = self._load_frontier()

    @classmethod
    def open(cls, conn: sqlite3.Connection, key_path: str | Path | None = None, *,
             retention: timedelta = DEFAULT_RETENTION) -> Ledger:
        """A ledger signing with the deployment key file (created on first use)."""
        return cls(conn, key=load_or_create_key(key_path), retention=retention)

    # ---- state ---------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _load_frontier(self) -> Frontier:
        frontier = Frontier()
        for (h,) in self.conn.execute("SELECT leaf_hash FROM ledger ORDER BY seq"):
            frontier.append(bytes.fromhex(h))
        return frontier

    def _sync(self) -> None:
        """Catch up with rows another process appended (e.g. a stop or an approval from the CLI)."""
        n = int(self.conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM ledger").fetchone()[0])
        if n != self._frontier.size:
            self._frontier = self._load_frontier()

    def __len__(self) -> int:
        return self.size

    @property
    def size(self) -> int:
        """Records in the ledger (including pruned ones)."""
        self._sync()
        return self._frontier.size

    def root(self) -> bytes:
        """The current tree root."""
        self._sync()
        return self._frontier.root()

    # ---- writes --------------------------------------------------------------------------------
    def append(self, record: Mapping[str, Any]) -> SignedTreeHead:
        """Append one record (a JSON object with string ``id``, ``kind`` and ``time``); returns the new head."""
        if self._key is None or self.public_key is None:
            raise LedgerError("this ledger was opened read-only (no signing key)")
        for name in ("id", "kind", "time"):
            if not isinstance(record.get(name), str) or not record.get(name):
                raise LedgerError(f"ledger record needs a non-empty string {name!r}, got {record.get(name)!r}")
        try:
            data = canonical_json(dict(record))
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"record {record.get('id')!r} is not canonical JSON: {exc}") from exc
        leaf = leaf_hash(data)
        own_tx = not self.conn.in_transaction
        if own_tx:
            self.conn.execute("BEGIN IMMEDIATE")  # one writer at a time across processes
        try:
            self._sync()
            frontier = Frontier(self._frontier.nodes)
            frontier.append(leaf)
            size, root = frontier.size, frontier.root()
            sig = self._key.sign(tree_head_message(size, root))
            self.conn.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?)",
                              (size - 1, record["id"], record["kind"], record["time"], data.decode("utf-8"),
                               leaf.hex(), root.hex(), sig.hex()))
        except sqlite3.IntegrityError as exc:
            if own_tx:
                self.conn.rollback()
            raise LedgerError(f"record id {record['id']!r} is already in the ledger") from exc
        except BaseException:
            if own_tx:
                self.conn.rollback()
            raise
        if own_tx:
            self.conn.commit()
        self._frontier = frontier
        return SignedTreeHead(size, root, sig, self.public_key)

    def prune(self, now: datetime) -> int:
        """Blank the content of records older than the retention period (leaf hashes and signed heads stay,
        so the log still verifies); the pruning itself is appended as a ``prune`` record."""
        cutoff = _utc_iso(now - self.retention)
        with self.conn:
            cur = self.conn.execute(
                "UPDATE ledger SET record = NULL WHERE record IS NOT NULL AND seq < "
                "(SELECT COALESCE(MIN(seq), (SELECT COUNT(*) FROM ledger)) FROM ledger WHERE time >= ?)",
                (cutoff,))
        n = int(cur.rowcount)
        if n and self._key is not None:
            self.append({"id": f"prune-{self.size:07d}", "kind": "prune", "time": _utc_iso(now), "cutoff": cutoff,
                         "pruned_records": n, "retention_days": self.retention.total_seconds() / 86400})
        return n

    # ---- reads ---------------------------------------------------------------------------------
    def rows(self) -> Iterator[LedgerRow]:
        """Every stored row in order (read as bytes, so corrupted text is reported, not raised)."""
        return _select_rows(self.conn)

    def get(self, record_id: str) -> dict[str, Any] | None:
        """A record by id (None when unknown or pruned)."""
        row = self.conn.execute("SELECT record FROM ledger WHERE id = ?", (record_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        out: dict[str, Any] = json.loads(row[0])
        return out

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Every unpruned record, in order, optionally of one kind."""
        sql = "SELECT record FROM ledger WHERE record IS NOT NULL"
        params: tuple[Any, ...] = ()
        if kind is not None:
            sql += " AND kind = ?"
            params = (kind,)
        for (text,) in self.conn.execute(sql + " ORDER BY seq", params):
            yield json.loads(text)

    def index_of(self, record_id: str) -> int:
        """The leaf index of a record."""
        row = self.conn.execute("SELECT seq FROM ledger WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise LedgerError(f"no record {record_id!r} in the ledger")
        return int(row[0])

    def leaf_hashes(self, size: int | None = None) -> list[bytes]:
        """Leaf hashes of the first ``size`` records (all by default)."""
        n = self.size if size is None else size
        return [bytes.fromhex(h) for (h,) in
                self.conn.execute("SELECT leaf_hash FROM ledger WHERE seq < ? ORDER BY seq", (n,))]

    def tree_head(self, size: int | None = None) -> SignedTreeHead:
        """The signed head at ``size`` (default: the latest)."""
        n = self.size if size is None else size
        if n == 0 or self.public_key is None:
            raise LedgerError("the ledger is empty: no tree head yet")
        row = self.conn.execute("SELECT root, signature FROM ledger WHERE seq = ?", (n - 1,)).fetchone()
        if row is None:
            raise LedgerError(f"no tree head of size {n}")
        return SignedTreeHead(n, bytes.fromhex(row[0]), bytes.fromhex(row[1]), self.public_key)

    def inclusion_proof(self, record_id: str, size: int | None = None) -> tuple[int, bytes, list[bytes]]:
        """(leaf index, leaf hash, audit path) of a record in the tree of ``size`` (default: latest)."""
        leaves = self.leaf_hashes(size)
        index = self.index_of(record_id)
        if index >= len(leaves):
            raise LedgerError(f"record {record_id!r} is not in the tree of size {len(leaves)}")
        return index, leaves[index], inclusion_proof(leaves, index)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """Proof that the tree of ``old_size`` is a prefix of the one of ``new_size``."""
        return consistency_proof(self.leaf_hashes(new_size), old_size)

    def root_at(self, size: int) -> bytes:
        """The root recomputed from the stored leaf hashes."""
        return root_hash(self.leaf_hashes(size))

    def verify(self, public_key: str | None = None) -> VerifyResult:
        """Recompute everything; the first failing record is named."""
        return verify_rows(self.rows(), public_key or self.public_key)

    def export_jsonl(self, path: str | Path) -> int:
        """Write a header line and one canonical JSON line per record; returns the record count."""
        n = 0
        with open(path, "wb") as fh:
            fh.write(canonical_json({"format": FORMAT, "public_key": self.public_key}) + b"\n")
            for row in self.rows():
                fh.write(row.to_line() + b"\n")
                n += 1
        return n


def verify_rows(rows: Iterator[LedgerRow] | Sequence[LedgerRow], public_key: str | None) -> VerifyResult:
    """Check every row: canonical bytes, leaf hash, running root and the signed head; stop at the first failure."""
    if public_key is None:
        rows = list(rows)
        if not rows:
            return VerifyResult(True, 0)
        return VerifyResult(False, 0, rows[0].id, rows[0].seq, "no public key recorded for this ledger")
    frontier = Frontier()
    n = 0
    seen_content = False
    for row in rows:
        problem, name = _check_row(row, n, frontier, public_key, seen_content)
        if problem:
            return VerifyResult(False, n, name, n, problem)
        seen_content = seen_content or row.record is not None
        n += 1
    return VerifyResult(True, n)


def _check_row(row: LedgerRow, n: int, frontier: Frontier, public_key: str,
               seen_content: bool) -> tuple[str, str]:
    """Check one row at position ``n`` and extend ``frontier``; returns (problem or "", name of the record)."""
    if row.seq != n:
        return f"sequence number {row.seq} where {n} was expected (a record is missing or moved)", row.id
    try:
        stored_leaf = bytes.fromhex(row.leaf_hash)
        stored_root = bytes.fromhex(row.root)
        signature = bytes.fromhex(row.signature)
    except ValueError:
        return "a stored hash or signature is not hex", row.id
    if row.record is None:
        if seen_content:
            return "record content is missing after unpruned records (pruning keeps a prefix only)", row.id
    else:
        data = row.record.encode("utf-8", errors="surrogateescape")
        try:
            parsed = json.loads(data)
            canon = canonical_json(parsed)
        except (ValueError, TypeError, UnicodeDecodeError):
            return "record is not valid JSON", row.id
        if canon != data:
            return "record is not in canonical JSON form", row.id
        leaf_ok = leaf_hash(data) == stored_leaf
        if not isinstance(parsed, dict) or parsed.get("id") != row.id or parsed.get("kind") != row.kind \
                or parsed.get("time") != row.time:
            inner = parsed.get("id") if isinstance(parsed, dict) else None
            return ("record id, kind or time differ from the indexed columns",
                    inner if leaf_ok and isinstance(inner, str) else row.id)
        if not leaf_ok:
            return "record content does not match its leaf hash", row.id
    frontier.append(stored_leaf)
    if frontier.root() != stored_root:
        return "tree root after this record does not match the stored one", row.id
    if not _check_sig(public_key, tree_head_message(frontier.size, stored_root), signature):
        return "signed tree head does not verify with the ledger key", row.id
    return "", row.id


def verify_db(conn: sqlite3.Connection, public_key: str | None = None) -> VerifyResult:
    """Verify the ledger in a database (read-only; ``public_key`` overrides the stored one)."""
    has = conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='ledger'").fetchone()
    if has is None:
        raise UserError("this database has no ledger table")
    row = conn.execute("SELECT value FROM ledger_meta WHERE key = 'public_key'").fetchone()
    stored = None if row is None else str(row[0])
    if public_key is not None and stored is not None and stored != public_key:
        return VerifyResult(False, 0, None, None,
                            f"the ledger declares key {key_id(stored)}, the trusted key is {key_id(public_key)}")
    return verify_rows(_select_rows(conn), public_key or stored)


def read_jsonl(path: str | Path) -> tuple[str | None, list[LedgerRow]]:
    """Parse an export into (public key, rows); raises :class:`LedgerError` naming the first bad line."""
    raw = Path(path).read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise LedgerError(f"{path}: empty export")
    try:
        header = json.loads(lines[0])
    except ValueError as exc:
        raise LedgerError(f"{path}: line 1 (header) is not JSON") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT or canonical_json(header) != lines[0]:
        raise LedgerError(f"{path}: line 1 is not an {FORMAT} header")
    rows: list[LedgerRow] = []
    for i, line in enumerate(lines[1:], start=2):
        rows.append(_parse_line(line, i, len(rows)))
    pk = header.get("public_key")
    return (pk if isinstance(pk, str) else None), rows


LINE_KEYS = {"seq", "id", "kind", "time", "record", "leaf_hash", "root", "signature"}


class _BadLine(LedgerError):
    def __init__(self, seq: int, ident: str | None, problem: str) -> None:
        self.seq, self.ident, self.problem = seq, ident, problem
        super().__init__(problem)


def _parse_line(line: bytes, lineno: int, expected_seq: int) -> LedgerRow:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadLine(expected_seq, None, f"line {lineno} is not valid JSON") from exc
    ident = obj.get("id") if isinstance(obj, dict) else None
    ident = ident if isinstance(ident, str) else None
    if not isinstance(obj, dict) or canonical_json(obj) != line:
        raise _BadLine(expected_seq, ident, f"line {lineno} is not canonical JSON")
    rec = obj.get("record")
    fields = [obj.get(k) for k in ("id", "kind", "time", "leaf_hash", "root", "signature")]
    if set(obj) != LINE_KEYS or not isinstance(obj.get("seq"), int) or not all(isinstance(f, str) for f in fields) \
            or not (rec is None or isinstance(rec, dict)):
        raise _BadLine(expected_seq, ident, f"line {lineno} lacks ledger fields")
    return LedgerRow(obj["seq"], obj["id"], obj["kind"], obj["time"],
                     None if rec is None else canonical_json(rec).decode("utf-8"),
                     obj["leaf_hash"], obj["root"], obj["signature"])


def verify_jsonl(path: str | Path, public_key: str | None = None) -> VerifyResult:
    """Verify an export offline (``public_key``: the trusted deployment key; default the declared one)."""
    try:
        declared, rows = read_jsonl(path)
    except _BadLine as exc:
        return VerifyResult(False, exc.seq, exc.ident, exc.seq, exc.problem)
    except LedgerError as exc:
        return VerifyResult(False, 0, "header", None, str(exc))
    if public_key is not None and declared != public_key:
        return VerifyResult(False, 0, "header", None, "the export declares a different key than the trusted one")
    return verify_rows(rows, public_key or declared)


def import_jsonl(path: str | Path, conn: sqlite3.Connection) -> int:
    """Load a verified export into an empty ledger table; returns the record count."""
    result = verify_jsonl(path)
    if not result.ok:
        raise LedgerError(result.message())
    declared, rows = read_jsonl(path)
    conn.executescript(SCHEMA)
    if conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]:
        raise LedgerError("import needs an empty ledger")
    with conn:
        conn.execute("INSERT OR REPLACE INTO ledger_meta VALUES ('public_key', ?)", (declared,))
        conn.executemany("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?)",
                         [(r.seq, r.id, r.kind, r.time, r.record, r.leaf_hash, r.root, r.signature) for r in rows])
    return len(rows)
