"""A throw-away PostgreSQL server for the tests: initdb in a temp folder, pg_ctl on 127.0.0.1 and a free port.

One server per test session (kept in the pytest config's stash, stopped and removed at the end), one fresh schema
per store. ``AICITY_TEST_POSTGRES=postgresql://…`` uses an existing server instead. If no server can be had, the
tests that need it fail with the reason: they never skip.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

_KEY = pytest.StashKey["PgServer"]()


def _bindir() -> Path:
    """Debian's newest PostgreSQL binaries (or whatever initdb is on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql (the store tests need it)")
    return Path(initdb).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """A PostgreSQL cluster of its own, or an existing server named by URL."""

    def __init__(self, url: str | None = None) -> None:
        self.base_url = url or ""
        self.root: Path | None = None
        self.error = ""
        self._schemas = itertools.count()

    def _run(self, *args: str) -> None:
        """Run a PostgreSQL binary, as the ``postgres`` user when we are root (postgres refuses to run as root)."""
        cmd = [str(_bindir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode:
            log = (self.root / "log").read_text() if self.root and (self.root / "log").exists() else ""
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()} {log[-2000:]}")

    def start(self) -> PgServer:
        """Create and start the cluster (unless a URL was given); create the test database."""
        if not self.base_url:
            self.root = Path(tempfile.mkdtemp(prefix="aicity-pg-"))
            if os.geteuid() == 0:
                shutil.chown(self.root, "postgres", "postgres")
            data, port = self.root / "data", _free_port()
            self._run("initdb", "-D", str(data), "-U", "aicity", "--auth=trust", "--no-locale", "-E", "UTF8",
                      "--no-sync")
            opts = (f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off")
            self._run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(self.root / "log"), "-w", "-t", "60", "start")
            self.base_url = f"postgresql://aicity@127.0.0.1:{port}/postgres"
        import psycopg
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS aicity_test")
            conn.execute("CREATE DATABASE aicity_test")
        self.base_url = self.base_url.rsplit("/", 1)[0] + "/aicity_test"
        return self

    def url(self) -> str:
        """A URL to a new, empty schema of the test database."""
        import psycopg
        name = f"s{os.getpid()}_{next(self._schemas)}"
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}".encode())
        return f"{self.base_url}?options={quote(f'-csearch_path={name}')}"

    def stop(self) -> None:
        """Stop the cluster and remove its folder (nothing to do for a server given by URL)."""
        if self.root is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


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
