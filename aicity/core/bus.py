"""In-process publish/subscribe by event type and entity type, with failure isolation."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aicity.core.event import Event

log = logging.getLogger(__name__)

Handler = Callable[[Event], None]
ANY = "*"


@dataclass(frozen=True, slots=True)
class Subscription:
    """A handle returned by :meth:`Bus.subscribe`; pass it to :meth:`Bus.unsubscribe`."""

    event_type: str
    entity_type: str
    handler: Handler
    serial: int


class Bus:
    """Delivers each published event, synchronously and in subscription order, to matching handlers.

    A handler that raises is logged and counted in :attr:`failures`; delivery to the others goes on.
    """

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self._serial = 0
        self.published: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()

    def subscribe(self, event_type: str = ANY, handler: Handler | None = None, *,
                  entity_type: str = ANY) -> Subscription:
        """Call ``handler`` for events of ``event_type`` (``"*"`` for all) about ``entity_type``."""
        if handler is None:
            raise TypeError("subscribe needs a handler")
        self._serial += 1
        sub = Subscription(str(event_type), entity_type, handler, self._serial)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop delivering to ``sub``."""
        self._subs = [s for s in self._subs if s.serial != sub.serial]

    def wants(self, event_type: str, entity_type: str | None = None) -> bool:
        """True when some subscriber would receive an event of this type (lets publishers skip work)."""
        return any(
            s.event_type in (ANY, event_type) and (s.entity_type == ANY or s.entity_type == entity_type)
            for s in self._subs)

    def publish(self, event: Event) -> int:
        """Deliver ``event``; return how many handlers ran without error."""
        self.published[str(event.type)] += 1
        ok = 0
        for sub in list(self._subs):
            if sub.event_type not in (ANY, event.type):
                continue
            if sub.entity_type != ANY and sub.entity_type != event.entity_type:
                continue
            try:
                sub.handler(event)
                ok += 1
            except Exception:
                name = getattr(sub.handler, "__qualname__", repr(sub.handler))
                self.failures[name] += 1
                log.exception("subscriber %s failed on %s event", name, event.type)
        return ok

    @property
    def failure_count(self) -> int:
        """Total subscriber failures so far."""
        return sum(self.failures.values())
