"""A throw-away NATS server with JetStream for the tests: ``nats-server`` on 127.0.0.1, a free port, its own store.

It fails, never skips, when the binary is missing (Debian: ``apt-get install -y nats-server``).
"""

from __future__ import annotations

from aicity.core.errors import UserError
from aicity.platform.restarts import NatsProcess


class NatsServer(NatsProcess):
    """One ``nats-server -js`` process; :meth:`restart` keeps its port and its stored streams."""

    def __init__(self) -> None:
        try:
            super().__init__()
        except UserError as exc:
            raise RuntimeError(f"{exc} (the bus tests need it)") from exc
