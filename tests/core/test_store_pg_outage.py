"""The PostgreSQL store while its server is away: writes wait in a bounded buffer, a full buffer refuses with a
typed error (dead letters still fit), a retried write or ledger append is stored once."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aicity.core.context import Actor, ActorKind, Context
from aicity.core.entity import Entity, Property
from aicity.core.event import Event, EventType
from aicity.core.store import StoreUnavailable
from aicity.core.store_pg import PostgresStore, StoreBufferFull
from aicity.governance.ledger import Ledger, LedgerError, verify_store

from .pgserver import cut_off

T = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _batch(i: int, n: int = 10) -> list[Entity]:
    return [Entity(f"urn:ngsi-ld:Sensor:{k}", "Sensor", {"v": Property(i, T)}) for k in range(n)]


_away = cut_off


def test_writes_wait_while_the_server_is_away_and_a_full_buffer_refuses(pg):
    s = PostgresStore(pg.url(), buffer_rows=25)
    s.upsert_many(_batch(0), now=T)
    url = _away(s)
    s.upsert_many(_batch(1), now=T)  # 10 history rows + 10 series rows wait
    s.append_event(Event(EventType.OBSERVATION, {"domain": "d", "entities": []}, Context(Actor(ActorKind.SENSOR, "t")),
                         T))
    assert s.waiting == 21 and not s.writable() and s.outage.to_dict()["blind"]
    with pytest.raises(StoreBufferFull, match="rows already wait") as info:
        s.upsert_many(_batch(2), now=T)
    assert isinstance(info.value, StoreUnavailable) and "\n" not in str(info.value)
    assert s.get("urn:ngsi-ld:Sensor:0").get("v") == 1  # the refused write left no trace
    s.dead_letter("t", info.value, {"batch": 2}, now=T)  # … but it can still be kept as a dead letter
    assert s.outage.refused_writes == 1 and s.dead_letter_count == 1
    s.url = url
    time.sleep(0.3)
    assert s.writable() and s.waiting == 0
    assert [p.value for p in s.series("urn:ngsi-ld:Sensor:3", "v")] == [0, 1]
    assert len(s.events()) == 1 and [d.payload for d in s.dead_letters()] == [{"batch": 2}]
    out = s.outage.to_dict()
    assert out["episodes"] == 1 and out["replayed_writes"] == 3 and not out["blind"] and out["blind_s"] > 0
    s.close()


def test_closing_while_the_server_is_away_names_what_could_not_be_written(pg):
    s = PostgresStore(pg.url())
    _away(s)
    s.upsert_many(_batch(1, 3), now=T)
    with pytest.raises(StoreUnavailable, match="6 buffered rows could not be written"):
        s.close()


def test_a_write_retried_after_its_commit_went_through_is_stored_once(pg):
    s = PostgresStore(pg.url())
    part = ("dead_letters", "time, source, error, reason, payload", [(0.0, "s", "E", "r", "{}")])
    assert s._commit("w1", [part]) and not s._commit("w1", [part])
    assert len(s.dead_letters()) == 1
    ledger = Ledger(s, key=Ed25519PrivateKey.generate())
    record = {"id": "decision-1", "kind": "decision", "time": T.isoformat()}
    ledger.append(record)
    with pytest.raises(LedgerError, match="already"):  # a plain duplicate is a caller's mistake: refused
        ledger.append(record)
    s._uncertain.add("decision-1")  # as when the connection dropped before the commit's answer came back
    ledger.append(record)  # the retry of an append that went through unseen is stored once
    assert s.ledger_size() == 1 and verify_store(s).ok and not s._uncertain
    s.close()
