"""Shared fixtures for the governance tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.governance.ledger import Ledger

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    """A fixed test key (never a real deployment key)."""
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    """An in-memory database."""
    c = sqlite3.connect(":memory:")
    yield c
    c.close()


@pytest.fixture
def ledger(conn: sqlite3.Connection, key: Ed25519PrivateKey) -> Ledger:
    """An empty ledger signing with the test key."""
    return Ledger(conn, key=key)
