"""A throw-away local PostgreSQL cluster: ``initdb`` in a temp folder, ``pg_ctl`` on 127.0.0.1 and a free port.

For the store tests and benchmarks (and for trying the PostgreSQL store without a server): trust authentication,
no durability (``fsync=off``) unless asked for, removed on :meth:`LocalPostgres.stop`. As root the server runs as the
``postgres`` user (PostgreSQL refuses to run as root). Needs the server binaries (Debian: ``postgresql``).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from aicity.core.errors import UserError


def server_bindir() -> Path:
    """The folder of the newest installed PostgreSQL server binaries (Debian's layout, else ``initdb`` on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise UserError("no PostgreSQL server binaries: install them (apt-get install -y postgresql)")
    return Path(initdb).parent


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """One throw-away cluster; ``url`` names its database once started (``durable``: PostgreSQL's own defaults)."""

    def __init__(self, database: str = "aicity", *, durable: bool = False) -> None:
        self.database = database
        self.durable = durable
        self.root: Path | None = None
        self.url = ""
        self._opts = ""

    def _run(self, *args: str) -> None:
        cmd = [str(server_bindir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode:
            log = self.root / "log" if self.root else None
            tail = log.read_text()[-1500:] if log and log.exists() else ""
            raise UserError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()} {tail}".replace("\n", " "))

    def start(self) -> LocalPostgres:
        """Create the cluster, start it and create the database; returns self."""
        import psycopg

        self.root = Path(tempfile.mkdtemp(prefix="aicity-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data, port = self.root / "data", free_port()
        self._run("initdb", "-D", str(data), "-U", "aicity", "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
        opts = f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1"
        if not self.durable:  # a test cluster: nothing survives a crash, nothing waits for the disk
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._opts = opts
        self._run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(self.root / "log"), "-w", "-t", "60", "start")
        server = f"postgresql://aicity@127.0.0.1:{port}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"'.encode())
        self.url = f"{server}/{self.database}"
        return self

    def restart(self) -> None:
        """Stop the server at once and start it again (same port, same data): what a crash and recovery look like."""
        if self.root is None:
            raise UserError("the cluster was not started")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "-t", "60",
                  "-l", str(self.root / "log"), "restart")

    def kill(self, sig: int = signal.SIGQUIT, timeout_s: float = 30.0) -> None:
        """Stop the server by its PID (SIGQUIT: immediate shutdown, as a crash; SIGINT: fast shutdown, as a
        restart); its data stays."""
        if self.root is None:
            raise UserError("the cluster was not started")
        pid_file = self.root / "data" / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        raise UserError(f"PostgreSQL (pid {pid}) did not stop within {timeout_s:.0f} s")

    def start_again(self) -> None:
        """Start the server again on the same port and data after :meth:`kill` (crash recovery runs first)."""
        if self.root is None:
            raise UserError("the cluster was not started")
        self._run("pg_ctl", "-D", str(self.root / "data"), "-o", self._opts, "-l", str(self.root / "log"), "-w",
                  "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        if self.root is None:
            return
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
