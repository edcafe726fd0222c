"""Real servers for the platform tests: uvicorn on 127.0.0.1, a real HTTP notification receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from aicity.core.store import open_store
from aicity.platform.app import create_app
from aicity.platform.auth import Auth
from aicity.platform.server import ServerThread
from aicity.platform.service import Platform

TOKENS = {"viewer": "v" * 20, "operator": "o" * 20, "engineer": "e" * 20, "admin": "a" * 20,
          "device": "d" * 20}
ACCESS = {"tokens": {TOKENS["viewer"]: {"person": "vera", "role": "viewer"},
                     TOKENS["operator"]: {"person": "otto", "role": "operator"},
                     TOKENS["engineer"]: {"person": "erin", "role": "engineer"},
                     TOKENS["admin"]: {"person": "ada", "role": "admin"},
                     TOKENS["device"]: {"person": "sensor-7", "role": "device",
                                        "entities": "urn:ngsi-ld:Sensor:7"}}}


def headers(role: str = "admin", **extra: str) -> dict[str, str]:
    """Bearer headers of a role."""
    return {"Authorization": f"Bearer {TOKENS[role]}", **extra}


class Receiver:
    """A real HTTP endpoint that records notifications; it can fail the first ``fail`` posts."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail = 0
        self.event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.got.append(json.loads(body))
                outer.headers.append(dict(self.headers))
                outer.event.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/notify"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Wait for at least ``n`` notifications."""
        import time
        deadline = time.monotonic() + timeout_s
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.got

    def close(self) -> None:
        """Stop listening."""
        self.httpd.shutdown()
        self.httpd.server_close()


class Api:
    """A running platform: base URL, client, platform and store."""

    def __init__(self, folder: Path, backoff: tuple[float, ...] = (0.05, 0.05, 0.05)) -> None:
        self.folder = folder
        self.store = open_store(folder / "city.db")
        self.platform = Platform(self.store, Auth.from_dict(ACCESS), location=folder / "city.db", backoff=backoff)
        self.platform.start()
        self.server = ServerThread(create_app(self.platform)).start()
        self.url = self.server.url
        self.http = httpx.Client(base_url=self.url, headers=headers("admin"), timeout=10)

    def close(self) -> None:
        """Stop everything (the store file stays)."""
        self.http.close()
        self.server.stop()
        self.platform.stop()
        self.store.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """A platform over a fresh store, served on a free port."""
    a = Api(tmp_path)
    yield a
    a.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real notification endpoint."""
    r = Receiver()
    yield r
    r.close()
