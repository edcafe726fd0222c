"""RFC 6962 / 9162 Merkle tree hashing: roots, inclusion and consistency proofs, and their verification."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

EMPTY_ROOT = hashlib.sha256(b"").digest()


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8, no NaN/Infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a list of leaf hashes."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = split_point(n)
    return node_hash(root_hash(leaves[:k]), root_hash(leaves[k:]))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaves`` (RFC 6962 §2.1.1)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise IndexError(f"leaf index {index} outside a tree of size {n}")
    if n == 1:
        return []
    k = split_point(n)
    if index < k:
        return [*inclusion_proof(leaves[:k], index), root_hash(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), root_hash(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], m: int) -> list[bytes]:
    """The proof that the first ``m`` leaves are a prefix of ``leaves`` (RFC 6962 §2.1.2)."""
    n = len(leaves)
    if not 0 <= m <= n:
        raise IndexError(f"old size {m} outside 0..{n}")
    if m in (0, n):
        return []
    return _subproof(leaves, m, True)


def _subproof(leaves: Sequence[bytes], m: int, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_hash(leaves)]
    k = split_point(n)
    if m <= k:
        return [*_subproof(leaves[:k], m, complete), root_hash(leaves[k:])]
    return [*_subproof(leaves[k:], m - k, False), root_hash(leaves[:k])]


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof implies (RFC 9162 §2.1.3.2), or None when the proof is malformed."""
    if not 0 <= index < size or len(leaf) != 32:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if len(p) != 32 or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """True when ``proof`` shows leaf ``index`` with hash ``leaf`` is in the tree of ``size`` with ``root``."""
    got = root_from_inclusion(leaf, index, size, proof)
    return got is not None and got == root


def verify_consistency(m: int, n: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> bool:
    """True when ``proof`` shows the tree of size ``m`` (``root1``) is a prefix of the one of size ``n``."""
    if m < 0 or n < m:
        return False
    if m == n:
        return root1 == root2 and not proof
    if m == 0:
        return not proof
    if not proof or any(len(p) != 32 for p in proof):
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # m is a power of two: the old root is itself a node of the new tree
        path.insert(0, root1)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root1 and sr == root2 and sn == 0


class Frontier:
    """The right edge of a growing tree (perfect subtree roots), giving the root after each append in O(log n)."""

    def __init__(self, nodes: Sequence[tuple[int, bytes]] = ()) -> None:
        self.nodes: list[tuple[int, bytes]] = list(nodes)

    @property
    def size(self) -> int:
        """Leaves appended so far."""
        return sum(s for s, _ in self.nodes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        size, h = 1, leaf
        while self.nodes and self.nodes[-1][0] == size:
            s, left = self.nodes.pop()
            size, h = size + s, node_hash(left, h)
        self.nodes.append((size, h))

    def root(self) -> bytes:
        """The tree hash of everything appended."""
        if not self.nodes:
            return EMPTY_ROOT
        h = self.nodes[-1][1]
        for _, left in reversed(self.nodes[:-1]):
            h = node_hash(left, h)
        return h

    def to_list(self) -> list[list[Any]]:
        """JSON-ready form."""
        return [[s, h.hex()] for s, h in self.nodes]

    @classmethod
    def from_list(cls, data: Sequence[Sequence[Any]]) -> Frontier:
        """Inverse of :meth:`to_list`."""
        return cls([(int(s), bytes.fromhex(h)) for s, h in data])
