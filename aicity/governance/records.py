"""Decision records: what an AI decided, from what, under which policy and autonomy, and what was actuated."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aicity.core.context import Context
from aicity.core.domain import Outcome, ProposedAction, Snapshot
from aicity.core.entity import Entity
from aicity.governance.merkle import canonical_json

RECORD_KIND = "decision"
SCHEMA_VERSION = "aicity-decision/1"


_LEAVES = (str, int, bool, type(None))


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of ``value`` (mappings, sequences, datetimes, numbers; NaN becomes None)."""
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def iso(when: datetime) -> str:
    """UTC ISO-8601 of an aware datetime (naive datetimes are taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def content_hash(entity: Entity) -> str:
    """SHA-256 of the entity's canonical NGSI-LD JSON."""
    ngsi = entity.to_ngsi()
    try:
        data = canonical_json(ngsi)
    except (TypeError, ValueError):  # numpy scalars, NaN: normalise first
        data = canonical_json(jsonable(ngsi))
    return hashlib.sha256(data).hexdigest()


def observed_at(entity: Entity) -> datetime | None:
    """The latest ``observedAt`` among the entity's attributes."""
    times = [a.observed_at for a in entity.attrs.values() if a.observed_at is not None]
    return max(times) if times else None


@dataclass(frozen=True, slots=True)
class InputRef:
    """One input entity a decision rested on."""

    entity_id: str
    entity_type: str
    observed_at: str | None
    content_hash: str
    values: Mapping[str, Any] = field(default_factory=dict)


def input_entity_id(key: str, snapshot: Snapshot) -> str | None:
    """The entity id an input key refers to: ``<id>`` or ``<id>#<attribute>``, when it is in the snapshot."""
    if key in snapshot.entities:
        return key
    base = key.rsplit("#", 1)[0]  # ids may contain '#' themselves (SUMO lane ids do)
    return base if base in snapshot.entities else None


def input_refs(proposal: ProposedAction, snapshot: Snapshot,
               cache: dict[str, tuple[Entity, str]] | None = None) -> list[InputRef]:
    """References (id, type, observedAt, content hash, values) to every snapshot entity a proposal names.

    ``cache`` keeps content hashes per entity object, so entities shared by many proposals are hashed once.
    """
    values: dict[str, dict[str, Any]] = {}
    for key, value in proposal.inputs.items():
        eid = input_entity_id(key, snapshot)
        if eid is not None:
            values.setdefault(eid, {})[key] = jsonable(value)
    out = []
    for eid in sorted(values):
        ent = snapshot.entities[eid]
        obs = observed_at(ent)
        hit = cache.get(eid) if cache is not None else None
        if hit is not None and hit[0] is ent:
            digest = hit[1]
        else:
            digest = content_hash(ent)
            if cache is not None:
                cache[eid] = (ent, digest)
        out.append(InputRef(eid, ent.type, iso(obs) if obs else None, digest, values[eid]))
    return out


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The model behind a planner: id, version and the hash of its artifact."""

    id: str
    version: str | None = None
    artifact_hash: str | None = None


@dataclass(slots=True)
class DecisionRecord:
    """One AI decision and what became of it; ``to_dict`` is what the ledger stores."""

    id: str
    time: str
    domain: str
    model: Mapping[str, Any]
    inputs: Sequence[Mapping[str, Any]]
    forecasts: Mapping[str, Any]
    candidates: Sequence[Mapping[str, Any]]
    chosen: Mapping[str, Any]
    policy: Mapping[str, Any]
    limits_evaluated: Sequence[str]
    limits_bound: Sequence[str]
    autonomy_level: str
    verdict: str
    degraded: bool
    reasons: Sequence[str]
    owner_role: str
    approvals: list[Mapping[str, Any]] = field(default_factory=list)
    actuation: Mapping[str, Any] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    kind: str = RECORD_KIND
    schema: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the ledger (fields are made JSON-ready when the record is built)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["approvals"] = jsonable(self.approvals)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionRecord:
        """Inverse of :meth:`to_dict`."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def context_dict(context: Context | Mapping[str, Any] | None) -> dict[str, Any]:
    """Context ids linking a record into the kernel's Context chain."""
    if context is None:
        return {}
    if isinstance(context, Context):
        return {"decision": context.id, "parent": context.parent_id, "actor": str(context.actor)}
    return {str(k): jsonable(v) for k, v in context.items()}


def actuation_dict(outcome: Outcome | None) -> dict[str, Any] | None:
    """What the actuator edge did: status, command, limits that bound it, reason, acknowledgement."""
    if outcome is None:
        return None
    return {"status": outcome.status, "command": jsonable(outcome.command), "bound_by": list(outcome.bound_by),
            "reason": outcome.reason, "ack": not outcome.refused,
            "target": outcome.action.target, "action": outcome.action.action,
            "params": jsonable(outcome.action.params)}


def chosen_dict(proposal: ProposedAction) -> dict[str, Any]:
    """The chosen action of a proposal."""
    return {"target": proposal.target, "action": proposal.action, "params": jsonable(proposal.params),
            "score": jsonable(proposal.score), "action_type": proposal.action_type, "planner": proposal.planner}


def build_record(proposal: ProposedAction, snapshot: Snapshot | None, *, record_id: str, domain: str,
                 now: datetime, model: ModelInfo | None = None, outcome: Outcome | None = None,
                 autonomy_level: str = "autonomous-within-envelope", verdict: str = "act",
                 degraded: bool = False, reasons: Sequence[str] = (), owner_role: str = "unassigned",
                 policy: Mapping[str, Any] | None = None, limits_evaluated: Sequence[str] = (),
                 limits_bound: Sequence[str] = (), inputs: Sequence[InputRef] | None = None,
                 context: Context | Mapping[str, Any] | None = None) -> DecisionRecord:
    """A decision record from a proposal, the snapshot it was made on and the actuator's outcome."""
    refs = inputs if inputs is not None else (input_refs(proposal, snapshot) if snapshot is not None else [])
    m = model or ModelInfo(proposal.planner or "unknown")
    bound = list(limits_bound) + [b for b in (outcome.bound_by if outcome else ()) if b not in limits_bound]
    return DecisionRecord(
        id=record_id, time=iso(now), domain=domain,
        model={"id": m.id, "version": m.version, "artifact_hash": m.artifact_hash},
        inputs=[jsonable(asdict(r)) for r in refs],
        forecasts=jsonable(proposal.forecasts), candidates=jsonable(list(proposal.candidates)),
        chosen=chosen_dict(proposal), policy=jsonable(policy or {}),
        limits_evaluated=list(limits_evaluated), limits_bound=bound,
        autonomy_level=autonomy_level, verdict=verdict, degraded=degraded, reasons=list(reasons),
        owner_role=owner_role, actuation=actuation_dict(outcome), context=context_dict(context))


@dataclass(frozen=True, slots=True)
class Actuation:
    """One actuation reconstructed from the records alone."""

    time: str
    domain: str
    target: str
    action: str
    params: Mapping[str, Any]
    status: str
    command: Mapping[str, Any]
    record_id: str


def reconstruct_actuations(records: Iterable[Mapping[str, Any]]) -> list[Actuation]:
    """Every actuation (applied or clamped, not refused) of a run, in ledger order, from the records alone."""
    out = []
    for rec in records:
        if rec.get("kind") != RECORD_KIND:
            continue
        act = rec.get("actuation")
        if not act or act.get("status") == "refused":
            continue
        out.append(Actuation(rec["time"], rec["domain"], act["target"], act["action"], act.get("params", {}),
                             act["status"], act.get("command", {}), rec["id"]))
    return out
