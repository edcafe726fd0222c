"""Districts keeping their state in PostgreSQL (``aicity run --districts N --store postgresql://…``): each district in
a schema of its own, so a worker restarted anywhere in the cluster reaches its store and ledger; on a real server."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from aicity.core.city import City, Part
from aicity.core.store import open_store
from aicity.governance.ledger import Ledger
from aicity.scale.coordinator import DistrictCity
from aicity.scale.district import new_key
from aicity.scale.executors import LocalExecutor
from tests.scale.belt import domain as belt

_RUNS = itertools.count()


def test_a_lost_district_comes_back_on_its_postgresql_schema(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """d2 lost at step 10 with checkpoints every 4 steps: the new worker opens d2's schema on the server, loads the
    checkpoint, replays 2 steps; every district's ledger in its own schema verifies, the recovery record included."""
    from aicity.core.store_pg import in_schema
    from tests.core.pgserver import shared_server

    server = shared_server(request.config)
    schema = f"aicity_test_districts_{next(_RUNS)}_{tmp_path.name.lower()[-12:]}"
    scen = dataclasses.replace(belt.scenarios()[0], end_s=300.0, params={"stations": 6, "checkpoints": 1})
    city = City("belt-city", "a belt", (Part(belt, scen),))
    coordinator = open_store(in_schema(server.base_url, schema))
    try:
        run = DistrictCity(city, districts=3, mode="ai", seed=3, store=coordinator, out=tmp_path, key=new_key(),
                           executor=LocalExecutor(limit=None), kill={10: "d2"}, checkpoint_every=4,
                           district_store=(server.base_url, schema))
        ep = run.run()
    finally:
        coordinator.close()
    (rec,) = ep.scale.recoveries
    assert (rec["district"], rec["checkpoint_step"], rec["replayed_steps"]) == ("d2", 8, 2)
    assert not list(tmp_path.rglob("*.db"))  # nothing kept in SQLite files
    for d in ep.districts:
        assert d["db"].endswith(f"schema {schema}_{d['district']}")
        store = open_store(in_schema(server.base_url, f"{schema}_{d['district']}"))
        try:
            ledger = Ledger(store, key=None)
            assert ledger.verify().ok
            kinds = [r.get("kind") for r in ledger.records()]
            assert kinds.count("recovery") == (1 if d["district"] == "d2" else 0)
        finally:
            store.close()


def test_aicity_run_districts_keeps_every_district_in_postgresql(tmp_path: Path,
                                                                  request: pytest.FixtureRequest) -> None:
    """``aicity run --districts 2 --store postgresql://…``: SUMO districts as Ray actors, each district's ledger in
    its own schema of the server, none in a file; ``aicity audit verify`` is not needed: the report says verified."""
    import json

    from aicity.cli import main
    from aicity.runner import store_schema
    from tests.core.pgserver import shared_server

    server = shared_server(request.config)
    out = tmp_path / f"pgd{next(_RUNS)}"
    assert main(["run", "--scenario", "gridcity-2", "--duration", "120", "--mode", "ai", "--quiet", "--seed", "2",
                 "--districts", "2", "--out", str(out), "--store", server.base_url]) == 0
    rep = json.loads((out / "report.json").read_text())["modes"]["ai"]
    assert rep["governance"]["ledger_verified"] is True and set(rep["governance"]["district_ledgers"]) == {"d1", "d2"}
    assert rep["db"].startswith("postgresql://") and not list(out.rglob("*.db"))
    from aicity.core.store_pg import in_schema

    for d in ("d1", "d2"):
        store = open_store(in_schema(server.base_url, f"{store_schema(out, 'ai')}_{d}"))
        try:
            assert store.ledger_size() > 0 and Ledger(store, key=None).verify().ok
        finally:
            store.close()
