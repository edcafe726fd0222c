"""The append-only, tamper-evident ledger: canonical JSON records in an RFC 6962 Merkle tree with signed heads.

Every record becomes one leaf (``leaf = SHA-256(0x00 ‖ canonical JSON)``); after each append the ledger signs
the tree head (size, root) with the deployment's Ed25519 key and keeps it with the row, so ``verify`` can name
the first record whose bytes, leaf hash or tree head no longer match. Rows live in the run's state store
(:class:`aicity.core.store.StateStore`), never behind a raw connection.

Truncation (the newest records deleted) leaves a valid shorter log, so the latest signed tree head is also
published where the records are not (a ``ledger-head.json`` next to the run, the report) and ``verify`` checks the
ledger against it, or against ``--expect-size/--expect-root`` or a witness copy. Retention pruning blanks the
content of old records but keeps their leaf hashes and signed heads, and is itself ledgered (how many, by whom,
under which rule); content blanked without a prune record accounting for it fails verification.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aicity.core.errors import AicityError, UserError
from aicity.core.store import LedgerRow, StateStore, StoreConflict
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
HEAD_FORMAT = "aicity-ledger-head/1"
HEAD_FILE = "ledger-head.json"
KEY_ENV = "AICITY_LEDGER_KEY"

__all__ = ["LedgerRow"]


class LedgerError(AicityError):
    """A ledger operation that cannot be done (bad record, wrong key, unknown id)."""


def deployment_key_path() -> Path:
    """The deployment's key location when ``$AICITY_LEDGER_KEY`` is not set: ``~/.aicity/ledger-ed25519.pem``."""
    return Path.home() / ".aicity" / "ledger-ed25519.pem"


def default_key_path() -> Path:
    """Where the deployment's signing key lives: ``$AICITY_LEDGER_KEY`` or ``~/.aicity/ledger-ed25519.pem``."""
    env = os.environ.get(KEY_ENV)
    return Path(env) if env else deployment_key_path()


def load_key(path: str | Path, *, what: str = "ledger key") -> Ed25519PrivateKey:
    """Load an Ed25519 PEM private key; missing, unreadable or not a key: one :class:`UserError`, never a new key."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{what} {p} does not exist; aicity never replaces a missing key "
                        f"(restore it, or point {KEY_ENV} at the deployment key)") from None
    except OSError as exc:
        raise UserError(f"{what} {p} cannot be read: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{what} {p} is not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{what} {p} is not an Ed25519 key")
    return key


@dataclass(frozen=True, slots=True)
class DeploymentKey:
    """The deployment's signing key, where it lives, and whether this call created it (first use)."""

    key: Ed25519PrivateKey
    path: Path
    created: bool = False


def _create_key(p: Path) -> bool:
    """Write a fresh key at ``p`` (mode 0600) atomically; False when another process created it first."""
    key = Ed25519PrivateKey.generate()  # the one place real randomness is right
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".ledger-key-", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, p)  # atomic: never a half-written key for a racing process
        except FileExistsError:
            return False
    finally:
        os.unlink(tmp)
    return True


def deployment_key(*, create: bool = True) -> DeploymentKey:
    """The deployment key: ``$AICITY_LEDGER_KEY`` when set (it must exist and be readable), else
    ``~/.aicity/ledger-ed25519.pem``, created there on first use (``create``) and announced on stderr."""
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if not env.strip():
            raise UserError(f"{KEY_ENV} is set but empty: point it at the deployment's ledger key file")
        return DeploymentKey(load_key(env, what=f"ledger key (${KEY_ENV})"), Path(env))
    p = deployment_key_path()
    if p.exists() or p.is_symlink():
        return DeploymentKey(load_key(p), p)
    if not create:
        raise UserError(f"no ledger key configured: set {KEY_ENV} or pass --key (none at {p})")
    try:
        created = _create_key(p)
    except OSError as exc:
        raise UserError(f"cannot create the ledger key at {p}: {exc.strerror or exc}; set {KEY_ENV} to the "
                        "deployment's key file") from exc
    if created:
        print(f"aicity: first use: created the deployment's ledger signing key at {p} (mode 0600); "
              "keep it safe and back it up: it signs every ledger of this deployment", file=sys.stderr)
    return DeploymentKey(load_key(p), p, created)


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

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "tree head") -> SignedTreeHead:
        """Inverse of :meth:`to_dict`; a malformed head is one :class:`UserError`."""
        try:
            size, root, sig, pub = data["size"], data["root"], data["signature"], data["public_key"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or not isinstance(pub, str):
                raise TypeError(size)
            return cls(size, bytes.fromhex(root), bytes.fromhex(sig), pub)
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{source} is not a signed tree head (size, root, signature, public_key)") from exc


def write_head(path: str | Path, head: SignedTreeHead, *, time: datetime, **about: Any) -> None:
    """Publish a signed tree head as a small JSON file (written atomically), e.g. ``<mode>/ledger-head.json``."""
    p = Path(path)
    body = {"format": HEAD_FORMAT, "time": time.astimezone(UTC).isoformat(), **about, **head.to_dict()}
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, p)
    except OSError as exc:
        raise UserError(f"cannot write the ledger head {p}: {exc.strerror or exc}") from exc


def read_head(path: str | Path) -> SignedTreeHead:
    """Read a published tree head file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UserError(f"no tree head file at {p}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the tree head {p}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != HEAD_FORMAT:
        raise UserError(f"{p} is not an {HEAD_FORMAT} file")
    return SignedTreeHead.from_dict(data, str(p))


@dataclass(frozen=True, slots=True)
class Expectation:
    """What the ledger must contain: at least ``size`` records, with ``root`` at that size (when known)."""

    size: int
    root: bytes | None
    source: str
    head: SignedTreeHead | None = None


def _check_sig(public: str, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of :func:`verify_rows`: ok, how many records were checked, the first failure, what was pruned."""

    ok: bool
    checked: int
    failed_id: str | None = None
    failed_seq: int | None = None
    problem: str = ""
    pruned: int = 0
    prunings: tuple[str, ...] = ()
    heads: tuple[str, ...] = ()

    def message(self) -> str:
        """One line for the CLI."""
        if not self.ok:
            where = f"record {self.failed_id or '?'} (#{self.failed_seq})" if self.failed_id else "the ledger"
            return f"{where} fails verification: {self.problem}"
        text = f"ledger intact: {self.checked} records verified"
        if self.heads:
            text += "; consistent with " + "; ".join(self.heads)
        if self.pruned:
            text += f"; {self.pruned} records pruned (content blanked, hashes kept): " + "; ".join(self.prunings)
        return text


def row_line(row: LedgerRow) -> bytes:
    """One row as a canonical JSON line of an export."""
    return canonical_json({
        "seq": row.seq, "id": row.id, "kind": row.kind, "time": row.time,
        "record": json.loads(row.record) if row.record is not None else None,
        "leaf_hash": row.leaf_hash, "root": row.root, "signature": row.signature})


def _utc_iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise LedgerError(f"time {when!r} has no timezone; ledger times are UTC")
    return when.astimezone(UTC).isoformat()


def _hashes(hexes: Iterable[str]) -> list[bytes]:
    try:
        return [bytes.fromhex(h) for h in hexes]
    except ValueError as exc:
        raise LedgerError("a stored leaf hash is not hex: run `aicity audit verify`") from exc


class Ledger:
    """The append-only ledger in a run's state store (``city.db``)."""

    def __init__(self, store: StateStore, *, key: Ed25519PrivateKey | None = None,
                 retention: timedelta = DEFAULT_RETENTION) -> None:
        self.store = store
        self.retention = retention
        self._key = key
        stored = store.ledger_meta("public_key")
        if key is not None:
            pub = public_hex(key.public_key())
            if stored is None:
                stored = store.ledger_set_meta("public_key", pub)
                store.ledger_set_meta("format", FORMAT)
            if stored != pub:
                raise UserError(f"this ledger is signed with key {key_id(stored)}, not {key_id(pub)}; "
                                "pass the deployment's ledger key")
        self.public_key = stored
        self._frontier = Frontier()
        self._sync()

    @classmethod
    def open(cls, store: StateStore, key_path: str | Path | None = None, *,
             retention: timedelta = DEFAULT_RETENTION) -> Ledger:
        """A ledger signing with ``key_path`` (it must exist) or the configured deployment key (never created)."""
        key = load_key(key_path) if key_path is not None else deployment_key(create=False).key
        return cls(store, key=key, retention=retention)

    # ---- state ---------------------------------------------------------------------------------
    def _sync(self) -> None:
        """Catch up with rows another process appended (e.g. a stop or an approval from the CLI)."""
        n = self.store.ledger_size()
        if n < self._frontier.size:
            self._frontier = Frontier()
        if n > self._frontier.size:
            for h in _hashes(self.store.ledger_leaf_hashes(self._frontier.size, n)):
                self._frontier.append(h)

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
        key, public = self._key, self.public_key
        if key is None or public is None:
            raise LedgerError("this ledger was opened read-only (no signing key)")
        for name in ("id", "kind", "time"):
            if not isinstance(record.get(name), str) or not record.get(name):
                raise LedgerError(f"ledger record needs a non-empty string {name!r}, got {record.get(name)!r}")
        try:
            data = canonical_json(dict(record))
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"record {record.get('id')!r} is not canonical JSON: {exc}") from exc
        leaf = leaf_hash(data)
        done: list[Frontier] = []

        def build(size: int) -> LedgerRow:
            self._sync()  # inside the store's write lock: size is final
            frontier = Frontier(self._frontier.nodes)
            frontier.append(leaf)
            root = frontier.root()
            sig = key.sign(tree_head_message(frontier.size, root))
            done.append(frontier)
            return LedgerRow(size, str(record["id"]), str(record["kind"]), str(record["time"]), data.decode("utf-8"),
                             leaf.hex(), root.hex(), sig.hex())

        try:
            row = self.store.ledger_append(build)
        except StoreConflict as exc:
            raise LedgerError(f"record id {record['id']!r} is already in the ledger") from exc
        self._frontier = done[-1]
        return SignedTreeHead(row.seq + 1, bytes.fromhex(row.root), bytes.fromhex(row.signature), public)

    def prune(self, now: datetime, *, by: str = "governance.retention") -> int:
        """Blank the content of records older than the retention period (leaf hashes and signed heads stay, so
        the log still verifies); the pruning is appended as a ``prune`` record saying how many, by whom and under
        which retention rule. Needs the signing key: pruning that is not ledgered would fail verification."""
        if self._key is None:
            raise LedgerError("pruning needs the signing key (it is recorded in the ledger)")
        cutoff = _utc_iso(now - self.retention)
        n = self.store.ledger_prune(cutoff)
        if n:
            days = self.retention.total_seconds() / 86400
            self.append({"id": f"prune-{self.size:07d}", "kind": "prune", "time": _utc_iso(now), "cutoff": cutoff,
                         "pruned_records": n, "pruned_total": self.store.ledger_pruned(), "by": by,
                         "retention_days": days,
                         "rule": f"retention of {days:g} days (EU AI Act Art. 19, 26(6): at least 6 months)"})
        return n

    # ---- reads ---------------------------------------------------------------------------------
    def rows(self) -> Iterator[LedgerRow]:
        """Every stored row in order (read as bytes, so corrupted text is reported, not raised)."""
        return self.store.ledger_rows()

    def get(self, record_id: str) -> dict[str, Any] | None:
        """A record by id (None when unknown or pruned)."""
        row = self.store.ledger_find(record_id)
        if row is None or row.record is None:
            return None
        out: dict[str, Any] = json.loads(row.record)
        return out

    def records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Every unpruned record, in order, optionally of one kind."""
        for text in self.store.ledger_records(kind):
            yield json.loads(text)

    def index_of(self, record_id: str) -> int:
        """The leaf index of a record."""
        row = self.store.ledger_find(record_id)
        if row is None:
            raise LedgerError(f"no record {record_id!r} in the ledger")
        return row.seq

    def leaf_hashes(self, size: int | None = None) -> list[bytes]:
        """Leaf hashes of the first ``size`` records (all by default)."""
        n = self.size if size is None else size
        return _hashes(self.store.ledger_leaf_hashes(0, n))

    def tree_head(self, size: int | None = None) -> SignedTreeHead:
        """The signed head at ``size`` (default: the latest)."""
        n = self.size if size is None else size
        if n == 0 or self.public_key is None:
            raise LedgerError("the ledger is empty: no tree head yet")
        rows = list(self.store.ledger_rows(n - 1, n))
        if not rows:
            raise LedgerError(f"no tree head of size {n}")
        row = rows[0]
        return SignedTreeHead(n, bytes.fromhex(row.root), bytes.fromhex(row.signature), self.public_key)

    def publish_head(self, path: str | Path, *, now: datetime, **about: Any) -> SignedTreeHead | None:
        """Write the latest signed tree head to ``path`` (None, nothing written, while the ledger is empty)."""
        if self.size == 0 or self.public_key is None:
            return None
        head = self.tree_head()
        write_head(path, head, time=now, **about)
        return head

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

    def verify(self, public_key: str | None = None, *, expect: Sequence[Expectation] = ()) -> VerifyResult:
        """Recompute everything; the first failing record is named; ``expect`` catches truncation."""
        return verify_rows(self.rows(), public_key or self.public_key, expect=expect)

    def export_jsonl(self, path: str | Path) -> int:
        """Write a header line and one canonical JSON line per record; returns the record count."""
        n = 0
        with open(path, "wb") as fh:
            fh.write(canonical_json({"format": FORMAT, "public_key": self.public_key}) + b"\n")
            for row in self.rows():
                fh.write(row_line(row) + b"\n")
                n += 1
        return n


@dataclass
class _Walk:
    """Running state of a verification."""

    frontier: Frontier = field(default_factory=Frontier)
    n: int = 0
    seen_content: bool = False
    pruned: int = 0
    accounted: int = 0
    prunings: list[str] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)


def _note_prune(walk: _Walk, row: LedgerRow) -> None:
    if row.kind != "prune" or row.record is None:
        return
    try:
        rec = json.loads(row.record)
    except ValueError:
        return
    n = rec.get("pruned_records")
    total = rec.get("pruned_total")
    if isinstance(total, int):
        walk.accounted = max(walk.accounted, total)
    elif isinstance(n, int):
        walk.accounted += n
    rule = rec.get("rule") or f"retention of {rec.get('retention_days')} days"
    walk.prunings.append(f"{row.id}: {n} by {rec.get('by', 'an unnamed process')} at {rec.get('time')} under "
                         f"{rule} (cutoff {rec.get('cutoff')})")


def verify_rows(rows: Iterable[LedgerRow], public_key: str | None, *,
                expect: Sequence[Expectation] = ()) -> VerifyResult:
    """Check every row (canonical bytes, leaf hash, running root, signed head), then that content blanked by
    pruning is accounted for by prune records and that the ledger is not shorter than, and agrees with, each
    published head in ``expect``; stops at the first failure."""
    if public_key is None:
        rows = list(rows)
        if not rows and not expect:
            return VerifyResult(True, 0)
        first = rows[0] if rows else None
        return VerifyResult(False, 0, first.id if first else None, first.seq if first else None,
                            "no public key recorded for this ledger")
    walk = _Walk()
    wanted = {e.size for e in expect}
    for row in rows:
        problem, name = _check_row(row, walk.n, walk.frontier, public_key, walk.seen_content)
        if problem:
            return VerifyResult(False, walk.n, name, walk.n, problem)
        walk.seen_content = walk.seen_content or row.record is not None
        walk.pruned += row.record is None
        _note_prune(walk, row)
        walk.n += 1
        if walk.n in wanted:
            walk.roots[walk.n] = walk.frontier.root()
    if walk.pruned > walk.accounted:
        return VerifyResult(False, walk.n, None, None,
                            f"{walk.pruned - walk.accounted} of {walk.pruned} records have their content blanked but "
                            "no prune record accounts for them (pruning outside the retention process)")
    heads = []
    for e in expect:
        problem = _check_expectation(e, walk, public_key)
        if problem:
            return VerifyResult(False, walk.n, None, None, problem)
        heads.append(f"{e.source} (size {e.size})")
    return VerifyResult(True, walk.n, pruned=walk.pruned, prunings=tuple(walk.prunings), heads=tuple(heads))


def _check_expectation(e: Expectation, walk: _Walk, public_key: str) -> str:
    if e.head is not None:
        if e.head.public_key != public_key:
            return f"{e.source} is signed with key {key_id(e.head.public_key)}, the ledger's is {key_id(public_key)}"
        if not e.head.verify():
            return f"the signature of the tree head in {e.source} does not verify"
    if walk.n < e.size:
        gone = e.size - walk.n
        return (f"truncated: the ledger holds {walk.n} records but {e.source} vouches for {e.size}: "
                f"the newest {gone} record{'s are' if gone > 1 else ' is'} missing")
    if e.size == 0:
        return ""
    if e.root is not None and walk.roots.get(e.size) != e.root:
        return (f"the ledger's root at size {e.size} differs from {e.source}: its first {e.size} records were "
                "rewritten")
    return ""


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


def verify_store(store: StateStore, public_key: str | None = None, *,
                 expect: Sequence[Expectation] = ()) -> VerifyResult:
    """Verify the ledger in a store (read-only; ``public_key`` overrides the stored one)."""
    stored = store.ledger_meta("public_key")
    if stored is None and store.ledger_size() == 0 and not expect:
        raise UserError("this database has no ledger")
    if public_key is not None and stored is not None and stored != public_key:
        return VerifyResult(False, 0, None, None,
                            f"the ledger declares key {key_id(stored)}, the trusted key is {key_id(public_key)}")
    return verify_rows(store.ledger_rows(), public_key or stored, expect=expect)


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
    except (ValueError, RecursionError) as exc:
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
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
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


def verify_jsonl(path: str | Path, public_key: str | None = None, *,
                 expect: Sequence[Expectation] = ()) -> VerifyResult:
    """Verify an export offline (``public_key``: the trusted deployment key; default the declared one)."""
    try:
        declared, rows = read_jsonl(path)
    except _BadLine as exc:
        return VerifyResult(False, exc.seq, exc.ident, exc.seq, exc.problem)
    except LedgerError as exc:
        return VerifyResult(False, 0, "header", None, str(exc))
    if public_key is not None and declared != public_key:
        return VerifyResult(False, 0, "header", None, "the export declares a different key than the trusted one")
    return verify_rows(rows, public_key or declared, expect=expect)


def witness_expectation(path: str | Path) -> Expectation:
    """What a witness copy vouches for: a published head file, or an earlier export (verified first)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no witness file at {p}")
    if p.suffix == ".json":
        head = read_head(p)
        return Expectation(head.size, head.root, f"the witness head {p}", head)
    result = verify_jsonl(p)
    if not result.ok:
        raise UserError(f"the witness copy {p} does not verify: {result.message()}")
    _, rows = read_jsonl(p)
    if not rows:
        return Expectation(0, None, f"the witness copy {p}")
    return Expectation(len(rows), bytes.fromhex(rows[-1].root), f"the witness copy {p}")


def import_jsonl(path: str | Path, store: StateStore) -> int:
    """Load a verified export into a store's empty ledger; returns the record count."""
    result = verify_jsonl(path)
    if not result.ok:
        raise LedgerError(result.message())
    declared, rows = read_jsonl(path)
    try:
        store.ledger_import(rows, {"public_key": declared or "", "format": FORMAT})
    except StoreConflict as exc:
        raise LedgerError(str(exc)) from exc
    return len(rows)
