"""The tests' PostgreSQL server: one throw-away cluster per test session, one fresh schema per store.

Kept in the pytest config's stash and stopped (and removed) when the session ends. ``AICITY_TEST_POSTGRES=
postgresql://…`` uses an existing server instead. If no server can be had, the tests that need it fail with the
reason: they never skip.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from aicity.core.pgcluster import LocalPostgres

if TYPE_CHECKING:
    from aicity.core.store_pg import PostgresStore

_KEY = pytest.StashKey["PgServer"]()


class PgServer:
    """A server for the tests: a :class:`LocalPostgres` of our own, or an existing one named by URL."""

    def __init__(self, url: str | None = None) -> None:
        self.cluster = None if url else LocalPostgres("aicity_test")
        self.base_url = url or ""
        self.error = ""
        self._schemas = itertools.count()

    def start(self) -> None:
        """Start the cluster (unless a URL was given)."""
        if self.cluster is not None:
            self.base_url = self.cluster.start().url

    def url(self) -> str:
        """A URL to a new, empty schema of the test database."""
        import psycopg

        name = f"s{os.getpid()}_{next(self._schemas)}"
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}".encode())
        return f"{self.base_url}?options={quote(f'-csearch_path={name}')}"

    def stop(self) -> None:
        """Stop and remove the cluster (nothing to do for a server given by URL)."""
        if self.cluster is not None:
            self.cluster.stop()


def shared_server(config: pytest.Config) -> PgServer:
    """The session's server, started on first use and stopped when the session ends."""
    if _KEY not in config.stash:
        server = PgServer(os.environ.get("AICITY_TEST_POSTGRES"))
        config.add_cleanup(server.stop)
        try:
            server.start()
        except Exception as exc:  # kept, so every test needing it fails with the reason (no retry per test)
            server.error = f"{type(exc).__name__}: {exc}"
        config.stash[_KEY] = server
    server = config.stash[_KEY]
    if server.error:
        raise RuntimeError(f"no PostgreSQL server for the tests: {server.error}")
    return server


def cut_off(store: PostgresStore) -> str:
    """Make the server unreachable for ``store`` (its connection cut, the next one refused); the URL to restore."""
    import psycopg

    from aicity.core.pgcluster import free_port

    url = store.url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
    store.url = f"postgresql://aicity@127.0.0.1:{free_port()}/nowhere"
    return url
