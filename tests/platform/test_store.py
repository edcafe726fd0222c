"""The platform on the kernel store's public API: ``aicity serve --store`` with SQLite or PostgreSQL, tenants too."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from aicity.platform.app import create_app
from aicity.platform.server import ServeOptions, ServerThread, build
from aicity.platform.store import schema_of, sqlite_file, tenant_location
from tests.core.pgserver import shared_server

from .conftest import ACCESS, headers


def _serve(store: str, folder: Path) -> tuple[object, ServerThread, httpx.Client]:
    access = folder / "access.json"
    if not access.exists():
        import json

        access.write_text(json.dumps(ACCESS))
    platform, kept = build(ServeOptions(store=store, folder=folder, access=access, city=False))
    platform.start()
    server = ServerThread(create_app(platform)).start()
    return (platform, kept), server, httpx.Client(base_url=server.url, headers=headers("admin"), timeout=10)


def _stop(held: tuple[object, ServerThread, httpx.Client]) -> None:
    (platform, store), server, http = held
    http.close()
    server.stop()
    platform.stop()  # type: ignore[attr-defined]
    store.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_serve_on_a_store_url_with_tenants_that_survive_a_restart(backend, tmp_path, request):
    store = str(tmp_path / "city.db") if backend == "sqlite" else shared_server(request.config).url()
    ent = {"id": "urn:ngsi-ld:Room:1", "type": "Room", "t": {"type": "Property", "value": 21}}
    held = _serve(store, tmp_path)
    http = held[2]
    assert http.post("/ngsi-ld/v1/entities", json=ent).status_code == 201
    r = http.post("/ngsi-ld/v1/entities", json={**ent, "t": {"type": "Property", "value": 5}},
                  headers={"NGSILD-Tenant": "Acme-1"})
    assert r.status_code == 201
    assert http.put("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:1", json={"u": {"type": "Property", "value": 1}},
                    headers={"Fiware-Service": "acme-1"}).status_code == 204
    _stop(held)
    held = _serve(store, tmp_path)  # a restart: the tenant is known again, its data where it was
    http = held[2]
    try:
        assert http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:1").json()["t"]["value"] == 21
        got = http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:1", params={"options": "sysAttrs"},
                       headers={"NGSILD-Tenant": "acme-1"}).json()
        assert "t" not in got and got["u"]["value"] == 1 and got["createdAt"] <= got["modifiedAt"]
        assert http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Room:1",
                        headers={"NGSILD-Tenant": "nobody"}).json()["type"].endswith("NonexistentTenant")
        assert held[0][0].tenants.known() == ["acme-1"]  # type: ignore[attr-defined]
    finally:
        _stop(held)


def test_tenant_locations():
    assert tenant_location("/x/city.db", "acme") == "/x/tenant-acme.db"
    assert tenant_location(":memory:", "acme") == ":memory:"
    assert sqlite_file("sqlite:///rel/city.db") == Path("rel/city.db") and sqlite_file("postgresql://h/db") is None
    assert schema_of("a_b", "s1") == "s1_t_a_b" and schema_of("a-b", "s1").startswith("s1_t_a_b_")
    assert len(schema_of("x" * 50, "p" * 40)) <= 63
