"""RFC 6962 hashing against the Certificate Transparency reference vectors."""

from __future__ import annotations

import hashlib

import pytest

from aicity.governance.merkle import (
    EMPTY_ROOT,
    Frontier,
    canonical_json,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    split_point,
    verify_consistency,
    verify_inclusion,
)

# The CT reference leaves and roots (certificate-transparency merkle_tree_test / transparency-dev testonly).
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
H = [leaf_hash(d) for d in LEAVES]
# (1-based leaf, tree size, path)
INCLUSION = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def test_empty_root_and_reference_roots() -> None:
    assert root_hash([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    for n in range(1, 9):
        assert root_hash(H[:n]) == ROOTS[n - 1], f"size {n}"


def test_split_is_largest_power_of_two_below_n() -> None:
    assert [split_point(n) for n in (2, 3, 4, 5, 8, 9, 1000)] == [1, 2, 2, 4, 4, 8, 512]


def test_frontier_matches_recursive_root() -> None:
    f = Frontier()
    for n, h in enumerate(H, start=1):
        f.append(h)
        assert f.root() == ROOTS[n - 1]
    assert Frontier.from_list(f.to_list()).root() == ROOTS[-1]


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_reference_inclusion_proofs(leaf: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(p) for p in path]
    assert inclusion_proof(H[:size], leaf - 1) == proof
    assert verify_inclusion(H[leaf - 1], leaf - 1, size, proof, ROOTS[size - 1])
    # wrong index, size, leaf, root, truncated and extended proofs all fail
    assert not verify_inclusion(H[leaf - 1], leaf, size, proof, ROOTS[size - 1])
    assert not verify_inclusion(H[leaf - 1], leaf - 1, size * 2, proof, ROOTS[size - 1])
    assert not verify_inclusion(leaf_hash(b"WrongLeaf"), leaf - 1, size, proof, ROOTS[size - 1])
    assert not verify_inclusion(H[leaf - 1], leaf - 1, size, proof, EMPTY_ROOT)
    assert not verify_inclusion(H[leaf - 1], leaf - 1, size, proof[:-1], ROOTS[size - 1])
    assert not verify_inclusion(H[leaf - 1], leaf - 1, size, [*proof, ROOTS[0]], ROOTS[size - 1])
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        assert not verify_inclusion(H[leaf - 1], leaf - 1, size, bad, ROOTS[size - 1])


@pytest.mark.parametrize(("m", "n", "path"), CONSISTENCY)
def test_reference_consistency_proofs(m: int, n: int, path: list[str]) -> None:
    proof = [bytes.fromhex(p) for p in path]
    assert consistency_proof(H[:n], m) == proof
    assert verify_consistency(m, n, ROOTS[m - 1], ROOTS[n - 1], proof)
    assert not verify_consistency(m, n, ROOTS[n - 1], ROOTS[m - 1], proof)
    assert not verify_consistency(m - 1 or 3, n, ROOTS[m - 1], ROOTS[n - 1], proof)
    assert not verify_consistency(m, n, ROOTS[m - 1], ROOTS[n - 1], proof[:-1])
    assert not verify_consistency(m, n, ROOTS[m - 1], ROOTS[n - 1], [])
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        assert not verify_consistency(m, n, ROOTS[m - 1], ROOTS[n - 1], bad)


def test_every_generated_proof_verifies() -> None:
    leaves = [leaf_hash(bytes([i, i * 7 % 256])) for i in range(40)]
    for n in range(1, len(leaves) + 1):
        root = root_hash(leaves[:n])
        for i in range(n):
            assert verify_inclusion(leaves[i], i, n, inclusion_proof(leaves[:n], i), root)
        for m in range(0, n + 1):
            assert verify_consistency(m, n, root_hash(leaves[:m]), root, consistency_proof(leaves[:n], m))


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": 1, "a": ["é", 2.5]}) == '{"a":["é",2.5],"b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
