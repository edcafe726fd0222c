"""The city's responders as one look-ahead model (``DomainMeta.responders`` names one factory per domain)."""

from __future__ import annotations

from aicity.core.domain import Snapshot
from aicity.domains.city.guidance import GuidanceResponder
from aicity.domains.city.incident import IncidentResponder
from aicity.orchestrate.respond import Occasion


class CityResponders:
    """The held-incident responder and the charging-guidance responder, learning and answering together."""

    def __init__(self) -> None:
        self.parts = (IncidentResponder(), GuidanceResponder())

    def update(self, snapshot: Snapshot) -> None:
        """Let each responder learn from ``snapshot``."""
        for p in self.parts:
            p.update(snapshot)

    def occasions(self, snapshot: Snapshot) -> list[Occasion]:
        """Every responder's occasions, in order."""
        return [o for p in self.parts for o in p.occasions(snapshot)]


def responder() -> CityResponders:
    """A fresh set of the city's responders (the city's ``DomainMeta.responders`` factory)."""
    return CityResponders()
