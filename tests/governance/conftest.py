"""Shared fixtures for the governance tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.store import SqliteStore
from aicity.governance.ledger import Ledger

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    """A fixed test key (never a real deployment key)."""
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    """A state store in a file (so a test can also open it raw, as an attacker would)."""
    s = SqliteStore(tmp_path / "city.db")
    yield s
    s.close()


@pytest.fixture
def conn(store: SqliteStore) -> Iterator[sqlite3.Connection]:
    """A raw connection to the store's file: the attacker's (or a careless admin's) view."""
    c = sqlite3.connect(store.path, isolation_level=None)
    yield c
    c.close()


@pytest.fixture
def ledger(store: SqliteStore, key: Ed25519PrivateKey) -> Ledger:
    """An empty ledger signing with the test key."""
    return Ledger(store, key=key)
