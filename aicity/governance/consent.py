"""Consent records (shaped after ISO/IEC TS 27560) with Kantara-style receipts, and purpose-bound data access.

Every read of personal data carries a purpose. A read is allowed only under an active consent of the subject for
that purpose and PII category, or under a lawful basis recorded for the dataset and purpose; otherwise it is
refused with :class:`ConsentRefused`. Consent given and withdrawn go into the ledger; withdrawal stops future
use at once and notifies subscribers (so derived data and retraining can drop the subject).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from aicity.core.errors import AicityError, UserError
from aicity.core.store import SqliteStore, StateStore
from aicity.governance.ledger import Ledger
from aicity.governance.merkle import canonical_json
from aicity.governance.records import iso

LAWFUL_BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests")
CONSENTS, BASES = "consents", "lawful_bases"
T = TypeVar("T")


class ConsentRefused(AicityError):
    """A read of personal data without a matching consent or lawful basis."""

    def __init__(self, subject_id: str, purpose: str, dataset: str, why: str) -> None:
        self.subject_id, self.purpose, self.dataset = subject_id, purpose, dataset
        super().__init__(f"read of {dataset} data of {subject_id} for purpose {purpose!r} refused: {why}")


@dataclass(frozen=True, slots=True)
class Purpose:
    """One purpose of processing, with its category, PII categories and termination."""

    purpose: str
    purpose_category: str
    pii_categories: Sequence[str]
    termination: str = "on withdrawal"
    primary: bool = True
    third_party_disclosure: bool = False
    third_parties: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Controller:
    """The PII controller."""

    name: str
    contact: str
    address: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """A state change of a consent: given or withdrawn (TS 27560 events)."""

    type: str
    time: str
    by: str
    purposes: Sequence[str] = ()


@dataclass
class ConsentRecord:
    """A consent record after ISO/IEC TS 27560: header, parties, processing (purposes, PII), events."""

    record_id: str
    subject_id: str
    controller: Controller
    purposes: Sequence[Purpose]
    consent_type: str = "explicit"
    jurisdiction: str = "EU"
    collection_method: str = "in-app opt-in"
    language: str = "en"
    policy_url: str = ""
    expires: str | None = None
    events: list[ConsentEvent] = field(default_factory=list)
    schema: str = "aicity-consent/1 (after ISO/IEC TS 27560)"

    def withdrawn_purposes(self) -> set[str]:
        """Purposes whose latest event is a withdrawal."""
        state: dict[str, str] = {}
        for ev in self.events:
            for p in ev.purposes or [p.purpose for p in self.purposes]:
                state[p] = ev.type
        return {p for p, t in state.items() if t == "withdrawn"}

    def allows(self, purpose: str, pii_category: str | None, now: datetime) -> bool:
        """True when this consent covers ``purpose`` (and the PII category) at ``now``."""
        if self.expires is not None and now >= datetime.fromisoformat(self.expires):
            return False
        if purpose in self.withdrawn_purposes() or not any(e.type == "given" for e in self.events):
            return False
        return any(p.purpose == purpose and (pii_category is None or pii_category in p.pii_categories)
                   for p in self.purposes)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConsentRecord:
        """Inverse of :meth:`to_dict`."""
        data = dict(d)
        data["controller"] = Controller(**data["controller"])
        data["purposes"] = [Purpose(**p) for p in data["purposes"]]
        data["events"] = [ConsentEvent(**e) for e in data.get("events", [])]
        return cls(**data)

    def receipt(self) -> dict[str, Any]:
        """A Kantara Consent Receipt (v1.1 field names) for the subject."""
        given = next((e.time for e in self.events if e.type == "given"), None)
        body = {
            "version": "KI-CR-v1.1.0", "jurisdiction": self.jurisdiction, "consentTimestamp": given,
            "collectionMethod": self.collection_method, "consentReceiptID": self.record_id,
            "language": self.language, "piiPrincipalId": self.subject_id,
            "piiControllers": [{"piiController": self.controller.name, "contact": self.controller.contact,
                                "address": self.controller.address, "email": self.controller.email}],
            "policyUrl": self.policy_url,
            "services": [{"service": "aicity", "purposes": [
                {"purpose": p.purpose, "purposeCategory": [p.purpose_category], "consentType": self.consent_type,
                 "piiCategory": list(p.pii_categories), "primaryPurpose": p.primary, "termination": p.termination,
                 "thirdPartyDisclosure": p.third_party_disclosure, "thirdPartyName": list(p.third_parties)}
                for p in self.purposes]}],
            "sensitive": False, "spiCat": [],
            "events": [asdict(e) for e in self.events],
        }
        body["receiptHash"] = hashlib.sha256(canonical_json(body)).hexdigest()
        return body


@dataclass(frozen=True, slots=True)
class LawfulBasis:
    """A lawful basis (GDPR Art. 6) recorded for one dataset and purpose."""

    dataset: str
    purpose: str
    basis: str
    reference: str


def _basis_key(dataset: str, purpose: str) -> str:
    return json.dumps([dataset, purpose])


class ConsentRegistry:
    """Consents and lawful bases, kept in the run's state store; consent events go into the ledger."""

    def __init__(self, store: StateStore, ledger: Ledger | None = None) -> None:
        self.store = store
        self.ledger = ledger
        self._by_subject: dict[str, list[ConsentRecord]] = {}
        for _, data in store.doc_query(CONSENTS):
            rec = ConsentRecord.from_dict(data)
            self._by_subject.setdefault(rec.subject_id, []).append(rec)
        self._listeners: list[Callable[[str, Sequence[str]], object]] = []

    def on_withdraw(self, callback: Callable[[str, Sequence[str]], object]) -> None:
        """Call ``callback(subject_id, purposes)`` on every withdrawal (to purge derived data)."""
        self._listeners.append(callback)

    @classmethod
    def in_memory(cls) -> ConsentRegistry:
        """A registry in its own in-memory store, with no ledger (tests, a twin run without governance)."""
        return cls(SqliteStore())

    def _save(self, rec: ConsentRecord) -> None:
        self.store.doc_put(CONSENTS, rec.record_id, rec.to_dict())

    def _ledger(self, kind: str, rec: ConsentRecord, ev: ConsentEvent) -> None:
        if self.ledger is not None:
            self.ledger.append({"id": f"{kind}-{self.ledger.size:07d}", "kind": kind, "time": ev.time,
                                "consent_record": rec.record_id, "subject_id": rec.subject_id,
                                "purposes": list(ev.purposes) or [p.purpose for p in rec.purposes],
                                "by": ev.by, "receipt_hash": rec.receipt()["receiptHash"]})

    def give(self, subject_id: str, purposes: Sequence[Purpose], controller: Controller, *, now: datetime,
             by: str | None = None, expires: datetime | None = None, **header: Any) -> ConsentRecord:
        """Record a consent given by ``subject_id``; returns the record (its receipt is ``.receipt()``)."""
        if not subject_id:
            raise UserError("a consent needs a subject id")
        if not purposes:
            raise UserError(f"consent of {subject_id} names no purpose")
        n = sum(len(v) for v in self._by_subject.values())
        rec = ConsentRecord(f"consent-{n + 1:06d}", subject_id, controller, list(purposes),
                            expires=iso(expires) if expires else None, **header)
        ev = ConsentEvent("given", iso(now), by or subject_id, [p.purpose for p in purposes])
        rec.events.append(ev)
        self._by_subject.setdefault(subject_id, []).append(rec)
        self._save(rec)
        self._ledger("consent_given", rec, ev)
        return rec

    def withdraw(self, subject_id: str, *, now: datetime, purposes: Sequence[str] | None = None,
                 by: str | None = None) -> list[ConsentRecord]:
        """Withdraw consent (all purposes by default); future reads are refused at once."""
        recs = [r for r in self._by_subject.get(subject_id, []) if r.withdrawn_purposes() != {
            p.purpose for p in r.purposes}]
        if not recs:
            raise UserError(f"{subject_id} has no active consent to withdraw")
        for rec in recs:
            names = [p.purpose for p in rec.purposes if purposes is None or p.purpose in purposes]
            if not names:
                continue
            ev = ConsentEvent("withdrawn", iso(now), by or subject_id, names)
            rec.events.append(ev)
            self._save(rec)
            self._ledger("consent_withdrawn", rec, ev)
        gone = list(purposes) if purposes is not None else sorted({p.purpose for r in recs for p in r.purposes})
        for cb in self._listeners:
            cb(subject_id, gone)
        return recs

    def consents(self, subject_id: str) -> list[ConsentRecord]:
        """Every consent record of a subject."""
        return list(self._by_subject.get(subject_id, []))

    def record_basis(self, dataset: str, purpose: str, basis: str, reference: str) -> LawfulBasis:
        """Record the lawful basis for using ``dataset`` for ``purpose`` (e.g. public task for sensor data)."""
        if basis not in LAWFUL_BASES:
            raise UserError(f"lawful basis {basis!r} is not one of {', '.join(LAWFUL_BASES)}")
        if not reference.strip():
            raise UserError(f"lawful basis for {dataset}/{purpose} needs a reference (law, decision)")
        self.store.doc_put(BASES, _basis_key(dataset, purpose),
                           {"dataset": dataset, "purpose": purpose, "basis": basis, "reference": reference})
        return LawfulBasis(dataset, purpose, basis, reference)

    def basis(self, dataset: str, purpose: str) -> LawfulBasis | None:
        """The recorded non-consent lawful basis for a dataset and purpose, if any."""
        d = self.store.doc_get(BASES, _basis_key(dataset, purpose))
        return None if d is None else LawfulBasis(d["dataset"], d["purpose"], d["basis"], d["reference"])

    def allows(self, subject_id: str, purpose: str, pii_category: str | None, now: datetime) -> bool:
        """True when an active consent of the subject covers the purpose and category."""
        return any(r.allows(purpose, pii_category, now) for r in self._by_subject.get(subject_id, []))

    def counts(self) -> dict[str, int]:
        """How many subjects gave consent, and how many withdrew some of it (counts only, no ids)."""
        recs = [r for rs in self._by_subject.values() for r in rs]
        return {"subjects": len(self._by_subject), "records": len(recs),
                "withdrawn": len({r.subject_id for r in recs if r.withdrawn_purposes()})}


@dataclass
class PurposeBoundAccess:
    """The only door to one dataset of personal data: every read carries a purpose and is checked."""

    registry: ConsentRegistry
    dataset: str
    pii_category: str | None = None
    reads: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    def check(self, subject_id: str, purpose: str, now: datetime) -> str:
        """How the read is justified ("consent" or a lawful basis); raises :class:`ConsentRefused`."""
        if not purpose:
            raise ConsentRefused(subject_id, purpose, self.dataset, "no purpose given")
        basis = self.registry.basis(self.dataset, purpose)
        if basis is not None and basis.basis != "consent":
            return basis.basis
        if self.registry.allows(subject_id, purpose, self.pii_category, now):
            return "consent"
        why = ("consent withdrawn" if any(purpose in r.withdrawn_purposes()
                                          for r in self.registry.consents(subject_id))
               else "no matching consent or lawful basis")
        raise ConsentRefused(subject_id, purpose, self.dataset, why)

    def read(self, subject_id: str, purpose: str, now: datetime, loader: Callable[[str], T]) -> T:
        """Load one subject's data for ``purpose``; refused without consent or lawful basis."""
        try:
            self.check(subject_id, purpose, now)
        except ConsentRefused:
            self.refused[purpose] += 1
            raise
        self.reads[purpose] += 1
        return loader(subject_id)

    def filter(self, items: Iterable[T], purpose: str, now: datetime,
               subject_of: Callable[[T], str]) -> list[T]:
        """Only the items whose subject allows ``purpose`` (refusals are counted, never silently dropped)."""
        out = []
        for item in items:
            sid = subject_of(item)
            try:
                self.check(sid, purpose, now)
            except ConsentRefused:
                self.refused[purpose] += 1
                continue
            self.reads[purpose] += 1
            out.append(item)
        return out

    def summary(self) -> dict[str, Any]:
        """Reads and refusals per purpose, for the report."""
        return {"dataset": self.dataset, "reads": dict(self.reads), "refused": dict(self.refused)}
