"""Ledger throughput: appends (canonical JSON + leaf hash + signed head), verify and export, on a file db."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.store import SqliteStore
from aicity.governance.ledger import Ledger, verify_jsonl, verify_store


def main(n: int = 10_000, out: str | None = None) -> list[dict[str, object]]:
    """Run the benchmark with ``n`` records of ~1 KB each; print and optionally write JSON."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # fixed bench key, never a deployment key
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "city.db")
        ledger = Ledger(store, key=key)
        payload = {"inputs": [{"entity_id": f"urn:ngsi-ld:X:{i}", "value": i * 0.5} for i in range(20)]}
        start = time.perf_counter()
        for i in range(n):
            ledger.append({"id": f"r{i}", "kind": "decision", "time": (t0 + timedelta(seconds=i)).isoformat(),
                           **payload})
        append_s = time.perf_counter() - start
        start = time.perf_counter()
        assert verify_store(store).ok
        verify_s = time.perf_counter() - start
        start = time.perf_counter()
        ledger.export_jsonl(Path(tmp) / "a.jsonl")
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        assert verify_jsonl(Path(tmp) / "a.jsonl").ok
        verify_jsonl_s = time.perf_counter() - start
        size = (Path(tmp) / "a.jsonl").stat().st_size
        store.close()
    rows = [{"bench": "ledger", "n": n, "record_bytes": round(size / n), "append_per_s": round(n / append_s),
             "verify_db_per_s": round(n / verify_s), "export_per_s": round(n / export_s),
             "verify_jsonl_per_s": round(n / verify_jsonl_s)}]
    text = json.dumps(rows, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
    return rows


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000, sys.argv[2] if len(sys.argv) > 2 else None)
