"""Tenants: one store per tenant (``NGSILD-Tenant``, also ``Fiware-Service``), opened on first use."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from pathlib import Path

from aicity.core.store import StateStore
from aicity.platform.errors import NgsiError, bad
from aicity.platform.store import TENANTS, open_tenant, sqlite_file

DEFAULT = ""
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,50}$")


class Tenants:
    """Stores by tenant name: the default tenant's store is given; the others live beside it (see
    :mod:`aicity.platform.store`), or in memory when ``location`` is None."""

    def __init__(self, default: StateStore, location: str | Path | None = None) -> None:
        self._stores: dict[str, StateStore] = {DEFAULT: default}
        self.default = default
        self.location = location
        self._lock = threading.Lock()

    @staticmethod
    def name(ngsild: str | None, fiware: str | None) -> str:
        """The tenant of a request from its headers (``NGSILD-Tenant`` wins over ``Fiware-Service``)."""
        raw = (ngsild if ngsild is not None else fiware) or DEFAULT
        raw = raw.strip()
        if raw and not _NAME.match(raw):
            raise bad(f"tenant {raw!r} is not a valid name (letters, digits, '_' and '-', at most 50)")
        return raw.lower()

    def known(self) -> list[str]:
        """Every tenant created so far (kept in the default store; older files beside a SQLite store too)."""
        names = {k for k, _ in self.default.doc_query(TENANTS)}
        file = sqlite_file(self.location) if self.location is not None else None
        if file is not None:
            names |= {p.stem[len("tenant-"):] for p in file.parent.glob("tenant-*.db")}
        return sorted(n for n in names if n != DEFAULT)

    def get(self, tenant: str, *, create: bool) -> StateStore:
        """The tenant's store; a tenant that does not exist is created on a write, NonexistentTenant on a read."""
        with self._lock:
            store = self._stores.get(tenant)
            if store is not None:
                return store
            if not create and tenant not in self.known():
                raise NgsiError("NonexistentTenant", f"tenant {tenant!r} does not exist")
            store = open_tenant(":memory:" if self.location is None else self.location, tenant)
            self.default.doc_put(TENANTS, tenant, {"created": datetime.now(UTC).isoformat()})
            self._stores[tenant] = store
            return store

    def all(self) -> dict[str, StateStore]:
        """Every open tenant's store."""
        with self._lock:
            return dict(self._stores)

    def close(self) -> None:
        """Close every tenant's store except the default one (its owner closes it)."""
        with self._lock:
            for name, store in self._stores.items():
                if name != DEFAULT:
                    store.close()
