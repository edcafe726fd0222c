"""The governed loop on PostgreSQL while the server is away: blind, it holds its actuators in their safe state
and decides nothing; what it sensed waits in the store's buffer; once the store is back it hands control back,
and nothing recorded is lost or stored twice (a real server: the connection cut, then refused)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.store_pg import PostgresStore
from aicity.governance.ledger import verify_store
from aicity.runner import prepare_run
from tests.core.pgserver import cut_off, shared_server
from tests.scale.test_coordinator import _city

_away = cut_off


def test_the_loop_is_blind_and_safe_while_the_store_is_away(request: pytest.FixtureRequest,
                                                               tmp_path: Path) -> None:
    store = PostgresStore(shared_server(request.config).url())
    run = prepare_run(_city(), mode="ai", seed=3, store=store, out=tmp_path, key=Ed25519PrivateKey.generate())
    loop = run.loop
    loop.open()
    twin: Any = loop.parts[0].twin
    held: list[float] = []
    safe = twin.safe_state
    twin.safe_state = lambda: (held.append(twin.elapsed_s()), safe())[1]
    url = ""
    while not loop.done():
        if loop.stats.steps == 10:
            url = _away(store)
        if loop.stats.steps == 15:
            store.url = url
            time.sleep(0.3)  # the store tries the server again at most every 0.25 s
        loop.step()
    loop.close()
    assert loop.stats.blind_steps == 5 and held == [100.0]  # safe within the step it went blind, once
    assert len(store.events(type="blind")) == 5
    assert len(store.events(type="observation")) == 30  # every step's observations, blind ones included
    decisions = list(run.governance.ledger.records("decision"))
    ids = Counter(r["id"] for r in decisions)
    assert max(ids.values()) == 1 and len(decisions) == loop.stats.proposals == 6 * 25  # none while blind
    assert verify_store(store).ok
    assert store.outage.to_dict()["episodes"] == 1
    store.close()
