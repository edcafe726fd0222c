"""Tenants: one store per tenant (``NGSILD-Tenant``, also ``Fiware-Service``), opened on first use."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from aicity.platform.errors import NgsiError, bad
from aicity.platform.store import PlatformStore

DEFAULT = ""
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,50}$")


class Tenants:
    """Stores by tenant name: the default tenant's store is given, the others live beside it (or in memory)."""

    def __init__(self, default: PlatformStore, folder: Path | None = None) -> None:
        self._stores: dict[str, PlatformStore] = {DEFAULT: default}
        self.folder = folder
        self._lock = threading.Lock()

    @staticmethod
    def name(ngsild: str | None, fiware: str | None) -> str:
        """The tenant of a request from its headers (``NGSILD-Tenant`` wins over ``Fiware-Service``)."""
        raw = (ngsild if ngsild is not None else fiware) or DEFAULT
        raw = raw.strip()
        if raw and not _NAME.match(raw):
            raise bad(f"tenant {raw!r} is not a valid name (letters, digits, '_' and '-', at most 50)")
        return raw.lower()

    def get(self, tenant: str, *, create: bool) -> PlatformStore:
        """The tenant's store; a tenant that does not exist is created on a write, NonexistentTenant on a read."""
        with self._lock:
            store = self._stores.get(tenant)
            if store is None and self.folder is not None and (self.folder / f"tenant-{tenant}.db").is_file():
                store = self._stores[tenant] = PlatformStore(self.folder / f"tenant-{tenant}.db")
            if store is None:
                if not create:
                    raise NgsiError("NonexistentTenant", f"tenant {tenant!r} does not exist")
                path = ":memory:" if self.folder is None else self.folder / f"tenant-{tenant}.db"
                store = self._stores[tenant] = PlatformStore(path)
            return store

    def all(self) -> dict[str, PlatformStore]:
        """Every open tenant's store."""
        with self._lock:
            return dict(self._stores)

    def close(self) -> None:
        """Close every tenant's store except the default one (its owner closes it)."""
        with self._lock:
            for name, store in self._stores.items():
                if name != DEFAULT:
                    store.close()
