"""Shared fixtures for the governance tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.store import SqliteStore, StateStore, open_store
from aicity.governance.ledger import Ledger

from ..core.pgserver import shared_server

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    """A fixed test key (never a real deployment key)."""
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that go through the store run on SQLite and PostgreSQL; those that open SQLite raw, on SQLite."""
    if "store" in metafunc.fixturenames:
        backends = ["sqlite"] if "conn" in metafunc.fixturenames else ["sqlite", "postgres"]
        metafunc.parametrize("store", backends, indirect=True)


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """A state store: a SQLite file (so a test can also open it raw, as an attacker would) or a PostgreSQL schema."""
    s: StateStore = (SqliteStore(tmp_path / "city.db") if request.param == "sqlite"
                     else open_store(shared_server(request.config).url()))
    yield s
    s.close()


@pytest.fixture
def conn(store: SqliteStore) -> Iterator[sqlite3.Connection]:
    """A raw connection to the store's file: the attacker's (or a careless admin's) view."""
    c = sqlite3.connect(store.path, isolation_level=None)
    yield c
    c.close()


@pytest.fixture
def ledger(store: StateStore, key: Ed25519PrivateKey) -> Ledger:
    """An empty ledger signing with the test key."""
    return Ledger(store, key=key)
