"""The orchestration stage: settles the proposals of every domain before governance (see :mod:`.stage`)."""

from aicity.orchestrate.stage import (
    Candidate,
    Orchestrator,
    Precedence,
    PriorityOrchestrator,
    PriorityPolicy,
    Resolution,
    Settled,
    violations,
)

__all__ = ["Candidate", "Orchestrator", "Precedence", "PriorityOrchestrator", "PriorityPolicy", "Resolution",
           "Settled", "violations"]
