"""Running the platform: uvicorn in the foreground (``aicity serve``) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicity.core.errors import UserError, unreadable
from aicity.core.store import StateStore, open_store
from aicity.platform.auth import Auth
from aicity.platform.service import Platform
from aicity.platform.subscriptions import BUS_DISTRICT


class ServerThread:
    """A uvicorn server on 127.0.0.1 in a daemon thread; ``url`` once started."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                     access_log=False)
        self.server = uvicorn.Server(self.config)
        self._thread = threading.Thread(target=self.server.run, name="aicity-http", daemon=True)
        self.url = ""

    def start(self, timeout_s: float = 20.0) -> ServerThread:
        """Start and wait until it listens."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise UserError("the HTTP server did not start")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class ServeOptions:
    """What ``aicity serve`` was asked for."""

    scenario: str | None = None
    speed: float = 1.0
    mode: str = "ai"
    seed: int = 1
    host: str = "127.0.0.1"
    port: int = 8000
    store: str = "runs/serve/city.db"
    folder: Path | None = None
    nats: str | None = None
    """A NATS JetStream URL: entity changes go on it and subscriptions are its durable consumers."""
    """Where the access file, the live city's outputs and mosquitto's data live (default: beside a SQLite store,
    else ``runs/serve``)."""
    access: Path | None = None
    mqtt: bool = False
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    city: bool = True
    duration_s: float | None = None
    compare: Path | None = None


def home(opts: ServeOptions) -> Path:
    """The folder of the access file, the city's outputs and mosquitto's data."""
    from aicity.platform.store import sqlite_file

    file = sqlite_file(opts.store)
    return opts.folder or (file.parent if file is not None else Path("runs/serve"))


def build(opts: ServeOptions) -> tuple[Platform, StateStore]:
    """The platform of ``opts``: store (a file or URL, PostgreSQL included), access, live city (not yet serving)."""
    from aicity.platform.city import LiveCity

    folder = home(opts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {folder}: {exc.strerror}") from exc
    if opts.access is not None:
        auth = Auth.load(opts.access)
    else:
        path = folder / "access.json"
        auth = Auth.load(path) if path.is_file() else Auth.generated(path)
        print(f"aicity: access tokens in {path} (pass --access FILE to use your own)", file=sys.stderr)
    bus = None
    if opts.nats is not None:
        try:
            from aicity.core.natsbus import NatsBus
        except ImportError as exc:
            raise UserError("--nats needs nats-py: pip install 'aicity[nats]'") from exc
        bus = NatsBus(opts.nats, district=BUS_DISTRICT, stream="AICITY_NGSILD", prefix="ngsild")
    store = open_store(opts.store)
    platform = Platform(store, auth, location=opts.store, bus=bus)
    if opts.compare is not None:
        try:
            platform.compare = json.loads(opts.compare.read_text()).get("comparison")
        except (OSError, ValueError, RecursionError, AttributeError) as exc:
            raise UserError(f"cannot read --compare {opts.compare}: {unreadable(exc)}") from exc
    if opts.city:
        platform.city = LiveCity(opts.scenario, store=store, out=folder, speed=opts.speed, mode=opts.mode,
                                 seed=opts.seed, duration_s=opts.duration_s)
    return platform, store


def serve(opts: ServeOptions) -> int:
    """Run ``aicity serve`` until interrupted."""
    import uvicorn

    from aicity.platform.app import create_app

    platform, store = build(opts)
    broker_proc = None
    try:
        platform.start()
        if opts.mqtt:
            from aicity.platform.mqtt import MqttBridge, start_broker

            if opts.mqtt_host in ("127.0.0.1", "localhost"):
                broker_proc = start_broker(opts.mqtt_port, str(home(opts) / "city.db"))
            platform.mqtt = MqttBridge(platform, host=opts.mqtt_host, port=opts.mqtt_port)
            platform.mqtt.start()
        if platform.city is not None:
            platform.city.start()
        print(f"aicity: serving on http://{opts.host}:{opts.port} (dashboard at /, NGSI-LD at /ngsi-ld/v1)",
              file=sys.stderr)
        uvicorn.run(create_app(platform), host=opts.host, port=opts.port, log_level="warning", lifespan="off")
    finally:
        if platform.city is not None:
            platform.city.close()
        if platform.mqtt is not None:
            platform.mqtt.stop()
        if broker_proc is not None:
            broker_proc.stop()
        platform.stop()
        store.close()
    return 0
