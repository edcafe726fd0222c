"""Consent and purpose binding: a subject's data is used, consent is withdrawn, and further use stops."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aicity.core.entity import Entity, Property
from aicity.core.errors import UserError
from aicity.core.store import SqliteStore
from aicity.governance.consent import (
    ConsentRecord,
    ConsentRefused,
    ConsentRegistry,
    Controller,
    Purpose,
    PurposeBoundAccess,
)
from aicity.governance.ledger import Ledger

from .conftest import T0

CITY = Controller("City of Example, Traffic Department", "privacy@city.example", email="dpo@city.example")
PROBE = Purpose("adaptive signal control", "service provision", ["vehicle speed", "vehicle position"],
                termination="on withdrawal or after 12 months")


def probes(step: int) -> list[Entity]:
    """Three connected vehicles reporting speed."""
    return [Entity(f"urn:ngsi-ld:ProbeVehicle:{v}", "ProbeVehicle",
                   {"speed": Property(10.0 + i * 5 + step, observed_at=T0 + timedelta(seconds=step))})
            for i, v in enumerate(("car1", "car2", "car3"))]


def test_withdrawal_mid_run_stops_use(store: SqliteStore, ledger: Ledger) -> None:
    reg = ConsentRegistry(store, ledger)
    for car in ("car1", "car2"):
        reg.give(f"urn:ngsi-ld:ProbeVehicle:{car}", [PROBE], CITY, now=T0)
    access = PurposeBoundAccess(reg, "probe-vehicles", pii_category="vehicle speed")
    derived: dict[str, float] = {}  # e.g. a learner's per-vehicle state
    reg.on_withdraw(lambda sid, _p: derived.pop(sid, None))
    used: list[set[str]] = []
    for step in range(6):
        now = T0 + timedelta(seconds=step)
        if step == 3:
            reg.withdraw("urn:ngsi-ld:ProbeVehicle:car1", now=now)
        allowed = access.filter(probes(step), "adaptive signal control", now, lambda e: e.id)
        for e in allowed:
            derived[e.id] = float(e.get("speed"))
        used.append({e.local_id for e in allowed})
    assert used[:3] == [{"car1", "car2"}] * 3  # car3 never consented
    assert used[3:] == [{"car2"}] * 3
    assert "urn:ngsi-ld:ProbeVehicle:car1" not in derived
    with pytest.raises(ConsentRefused, match="consent withdrawn"):
        access.read("urn:ngsi-ld:ProbeVehicle:car1", "adaptive signal control", T0 + timedelta(seconds=9),
                    lambda s: s)
    with pytest.raises(ConsentRefused, match="no matching consent"):
        access.read("urn:ngsi-ld:ProbeVehicle:car2", "marketing", T0, lambda s: s)
    assert access.refused["adaptive signal control"] == 3 + 3 + 3 + 1  # car3 ×6, car1 ×3, the read
    kinds = [r["kind"] for r in ledger.records()]
    assert kinds == ["consent_given", "consent_given", "consent_withdrawn"]
    assert ledger.verify().ok


def test_lawful_basis_allows_non_consent_data(store: SqliteStore) -> None:
    reg = ConsentRegistry(store)
    access = PurposeBoundAccess(reg, "loop-detectors")
    with pytest.raises(ConsentRefused):
        access.read("det-1", "traffic management", T0, lambda s: 7)
    reg.record_basis("loop-detectors", "traffic management", "public_task", "Road Traffic Act art. 18")
    assert access.read("det-1", "traffic management", T0, lambda s: 7) == 7
    with pytest.raises(ConsentRefused):
        access.read("det-1", "", T0, lambda s: 7)
    with pytest.raises(UserError, match="not one of"):
        reg.record_basis("x", "y", "because", "r")


def test_receipt_and_persistence(store: SqliteStore) -> None:
    reg = ConsentRegistry(store)
    rec = reg.give("subj-1", [PROBE], CITY, now=T0, expires=T0 + timedelta(days=365))
    receipt = rec.receipt()
    assert receipt["piiPrincipalId"] == "subj-1" and receipt["consentTimestamp"] == T0.isoformat()
    p = receipt["services"][0]["purposes"][0]
    assert p["purposeCategory"] == ["service provision"] and "vehicle speed" in p["piiCategory"]
    assert p["termination"].startswith("on withdrawal") and len(receipt["receiptHash"]) == 64
    again = ConsentRegistry(store)  # reloaded from the database
    assert again.allows("subj-1", "adaptive signal control", "vehicle speed", T0)
    assert not again.allows("subj-1", "adaptive signal control", "licence plate", T0)
    assert not again.allows("subj-1", "adaptive signal control", None, T0 + timedelta(days=400))
    assert ConsentRecord.from_dict(rec.to_dict()).to_dict() == rec.to_dict()
    with pytest.raises(UserError, match="no active consent"):
        reg.withdraw("nobody", now=T0)
