"""A throw-away NATS server with JetStream for the tests: ``nats-server`` on 127.0.0.1, a free port, its own store.

It fails, never skips, when the binary is missing (Debian: ``apt-get install -y nats-server``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """One ``nats-server -js`` process; :meth:`restart` keeps its port and its stored streams."""

    def __init__(self) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            raise RuntimeError("nats-server is not installed: apt-get install -y nats-server (the bus tests need it)")
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="aicity-nats-"))
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NatsServer:
        """Start the server and wait until it takes connections."""
        self.proc = subprocess.Popen([self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                                      "-sd", str(self.root / "store"), "-l", str(self.root / "log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
        log = (self.root / "log").read_text()[-1500:] if (self.root / "log").exists() else ""
        raise RuntimeError(f"nats-server did not start on port {self.port}: {log}")

    def kill(self) -> None:
        """Stop the server at once (its store stays)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port and store."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
