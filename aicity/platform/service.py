"""The platform service: tenants with their brokers, the notifier, access control, and (optionally) the live
city and the MQTT bridge — one object the HTTP app and the command share, passed in, never global."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aicity.core.store import StateStore
from aicity.platform.auth import Auth
from aicity.platform.broker import Broker
from aicity.platform.subscriptions import BACKOFF_S, Notifier, Sender, Subscriptions
from aicity.platform.tenants import DEFAULT, Tenants


class Platform:
    """Everything one ``aicity serve`` holds."""

    def __init__(self, store: StateStore, auth: Auth, *, location: str | Path | None = None, city: Any = None,
                 send: Sender | None = None, backoff: tuple[float, ...] = BACKOFF_S, bus: Any = None) -> None:
        self.tenants = Tenants(store, location)
        self.bus = bus
        """A :class:`aicity.core.natsbus.NatsBus` carrying entity changes to the subscriptions' durable consumers."""
        self.auth = auth
        self.city = city
        self.mqtt: Any = None
        self.compare: Any = None
        """Smart vs AI KPIs of a finished ``aicity run`` (its report.json comparison), shown beside the live ones."""
        self._brokers: dict[str, Broker] = {}
        self._lock = threading.Lock()
        self.notifier = Notifier(self._outboxes, send=send, backoff=backoff)
        self.broker(DEFAULT, create=True)
        for tenant in self.tenants.known():  # their outboxes are delivered after a restart too
            self.broker(tenant, create=False)

    def broker(self, tenant: str, *, create: bool) -> Broker:
        """The broker of a tenant (a new tenant is created on a write)."""
        with self._lock:
            found = self._brokers.get(tenant)
            if found is None:
                store = self.tenants.get(tenant, create=create)
                found = self._brokers[tenant] = Broker(tenant, store, self.notifier.wake, self.bus)
            return found

    def _outboxes(self) -> Mapping[str, tuple[StateStore, Subscriptions]]:
        with self._lock:
            return {t: (b.store, b.subs) for t, b in self._brokers.items()}

    def start(self) -> None:
        """Start the notifier (it delivers whatever an earlier run left in the outbox first)."""
        self.notifier.start()

    def stop(self) -> None:
        """Stop the bus's consumers (their places stay on the server), the notifier, and close the tenants'
        stores (the default store is its owner's)."""
        if self.bus is not None:
            self.bus.flush()
            with self._lock:
                for b in self._brokers.values():
                    b.subs.detach()
            self.bus.close()
        self.notifier.stop()
        self.tenants.close()
