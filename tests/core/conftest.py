"""Store tests run on every backend: SQLite (a file per store) and a real PostgreSQL server (a schema per store)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicity.core.store import StateStore, open_store

from .pgserver import PgServer, shared_server

BACKENDS = ("sqlite", "postgres")


class Backend:
    """Where new stores of one backend live, and how to open them."""

    def __init__(self, name: str, tmp_path: Path, server: PgServer | None) -> None:
        self.name = name
        self._tmp = tmp_path
        self._server = server
        self._n = 0

    def url(self) -> str:
        """The location of a new, empty store."""
        if self._server is not None:
            return self._server.url()
        self._n += 1
        return str(self._tmp / f"store{self._n}.db")

    def new(self) -> StateStore:
        """A new, empty, writable store (SQLite: in memory)."""
        return open_store(":memory:" if self._server is None else self._server.url())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store backend in turn."""
    server = shared_server(request.config) if request.param == "postgres" else None
    return Backend(request.param, tmp_path, server)


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> PgServer:
    """The session's PostgreSQL server."""
    return shared_server(request.config)
