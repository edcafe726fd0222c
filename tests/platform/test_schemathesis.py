"""Property-based tests of the served API with schemathesis over its own OpenAPI document, on a real server:
no request the document allows gives a 5xx, and no invalid entity is accepted."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from aicity.core.entity import Entity  # noqa: E402
from aicity.core.errors import ValidationError  # noqa: E402
from aicity.core.store import open_store  # noqa: E402
from aicity.platform.app import create_app  # noqa: E402
from aicity.platform.auth import Auth  # noqa: E402
from aicity.platform.server import ServerThread  # noqa: E402
from aicity.platform.service import Platform  # noqa: E402
from tests.platform.conftest import ACCESS, headers  # noqa: E402

_TMP = Path(tempfile.mkdtemp(prefix="aicity-schemathesis-"))
_STORE = open_store(_TMP / "city.db")
_PLATFORM = Platform(_STORE, Auth.from_dict(ACCESS), location=_TMP / "city.db")
_APP = create_app(_PLATFORM)
SCHEMA = schemathesis.openapi.from_dict(_APP.openapi())
WRITES = ("/ngsi-ld/v1/entities", "/ngsi-ld/v1/entityOperations/create", "/ngsi-ld/v1/entityOperations/upsert",
          "/ngsi-ld/v1/entityOperations/update")


@pytest.fixture(scope="module")
def server() -> Any:
    """The app on a real uvicorn server (one for the whole module)."""
    _PLATFORM.start()
    srv = ServerThread(_APP).start()
    yield srv
    srv.stop()
    _PLATFORM.stop()
    _STORE.close()


def _valid(item: Any) -> bool:
    try:
        Entity.from_ngsi(item)
    except (ValidationError, TypeError, ValueError, AttributeError):
        return False
    return True


@SCHEMA.exclude(path="/city/whatif").parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_the_document_allows_breaks_the_server(case: Any, server: Any) -> None:
    response = case.call(base_url=server.url, headers=headers("admin"))
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
    path = case.path.rstrip("/")
    if case.method.upper() == "POST" and path in WRITES and response.status_code in (200, 201, 204, 207):
        items = case.body if isinstance(case.body, list) else [case.body]
        if response.status_code == 207:  # a batch in part: every id reported a success has a valid entity
            ok = set(response.json().get("success", []))
            assert all(any(_valid(i) for i in items if isinstance(i, dict) and i.get("id") == eid) for eid in ok), \
                f"accepted an invalid entity: {case.body!r} -> {response.text}"
        else:
            assert all(_valid(i) for i in items), f"accepted an invalid entity: {case.body!r}"
