"""State-store throughput on PostgreSQL beside SQLite: entity upserts, events and ledger appends per second.

Usage: python bench/store_pg.py [--url postgresql://…] [--n 50000] [--json bench/results/store_pg.json]

Without ``--url`` it starts a throw-away cluster with PostgreSQL's own durability defaults (fsync on) and
measures two sessions on it: ``synchronous_commit=on`` (each commit waits for the WAL on disk) and ``off`` (the
counterpart of SQLite's WAL with ``synchronous=NORMAL``, which is what the SQLite file store runs). The same
workload goes into a SQLite file for comparison. Keep it short: the machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.context import Actor, ActorKind, Context
from aicity.core.event import Event, EventType
from aicity.core.store import StateStore, open_store
from aicity.core_bench import sensor_updates
from aicity.governance.ledger import Ledger

T0 = datetime(2024, 1, 1, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # a fixed bench key, never a deployment key


def _rate(n: int, work: Callable[[], None]) -> int:
    started = time.perf_counter()
    work()
    return round(n / (time.perf_counter() - started))


def _events(n: int) -> list[Event]:
    ctx = Context(Actor(ActorKind.SENSOR, "bench"), None, "0" * 32)
    return [Event(EventType.OBSERVATION, {"part": "mobility", "entities": [f"urn:ngsi-ld:X:{i}"], "i": i}, ctx,
                  T0 + timedelta(seconds=i), entity_type="TrafficFlowObserved") for i in range(n)]


def measure(backend: str, new_store: Callable[[], StateStore], n: int) -> list[dict[str, Any]]:
    """Upserts (one by one and in batches of 1,000), events (likewise) and signed ledger appends on one backend."""
    single, records = min(n, 5_000), []
    updates, events = sensor_updates(n), _events(n)

    def row(bench: str, batch: int, count: int, per_s: int) -> None:
        records.append({"bench": bench, "backend": backend, "batch": batch, "n": count, "per_s": per_s,
                        "load_1m": round(os.getloadavg()[0], 1)})
        print(f"{bench:14} {backend:34} batch {batch:5} n {count:6}: {per_s:8,}/s", flush=True)

    for batch, count in ((1, single), (1000, n)):
        store = new_store()

        def upserts(store: StateStore = store, batch: int = batch, count: int = count) -> None:
            for k in range(0, count, batch):
                store.upsert_many(updates[k:k + batch], now=T0)
            store.flush()

        row("store_upsert", batch, count, _rate(count, upserts))

        def appends(store: StateStore = store, batch: int = batch, count: int = count) -> None:
            for k in range(0, count, batch):
                store.append_events(events[k:k + batch])

        row("event_append", batch, count, _rate(count, appends))
        store.close()
    store = new_store()
    ledger, count = Ledger(store, key=KEY), min(n, 2_000)
    payload = {"inputs": [{"entity_id": f"urn:ngsi-ld:X:{i}", "value": i * 0.5} for i in range(20)]}

    def ledger_appends() -> None:
        for i in range(count):
            ledger.append({"id": f"r{i}", "kind": "decision", "time": (T0 + timedelta(seconds=i)).isoformat(),
                           **payload})

    row("ledger_append", 1, count, _rate(count, ledger_appends))
    store.close()
    return records


def _schema_url(url: str, name: str, synchronous_commit: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE".encode())
        conn.execute(f"CREATE SCHEMA {name}".encode())
    opts = quote(f"-csearch_path={name} -csynchronous_commit={synchronous_commit}")
    return f"{url}{'&' if '?' in url else '?'}options={opts}"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark; print the rows and optionally write them as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="an existing PostgreSQL database (default: a throw-away local cluster)")
    ap.add_argument("--n", type=int, default=50_000, help="updates and events per batched run")
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args(argv)
    from aicity.core.pgcluster import LocalPostgres

    cluster = None if args.url else LocalPostgres("aicity_bench", durable=True).start()
    url = args.url or cluster.url  # type: ignore[union-attr]
    records: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = iter(range(1_000))
            records += measure("sqlite file (WAL, synchronous=NORMAL)",
                               lambda: open_store(Path(tmp) / f"s{next(files)}.db"), args.n)
        schemas = iter(range(1_000))
        for sync in ("on", "off"):
            def pg_store(sync: str = sync) -> StateStore:
                return open_store(_schema_url(url, f"bench_{next(schemas)}", sync))
            records += measure(f"postgresql (synchronous_commit={sync})", pg_store, args.n)
    finally:
        if cluster is not None:
            cluster.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2) + "\n")
    return records


if __name__ == "__main__":
    main(sys.argv[1:])
