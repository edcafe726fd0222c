"""The platform's stores, on the kernel store's public API: one :class:`StateStore` per tenant, opened by URL.

The default tenant's store is the one ``aicity serve --store`` names (a SQLite file, ``sqlite:///…``, ``:memory:``
or ``postgresql://…``); another tenant lives beside it: a file ``tenant-<name>.db`` next to a SQLite store, a schema
of its own on PostgreSQL (created on first use). The default store keeps the list of tenants, so a restart opens
them all again (and delivers their outboxes).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from aicity.core.store import POSTGRES_SCHEMES, StateStore, open_store

TENANTS = "platform.tenants"
"""The default store's collection of tenants (key: the tenant's name)."""
_SEARCH_PATH = re.compile(r"-c\s*search_path\s*=\s*([A-Za-z0-9_]+)")


def is_postgres(target: str | Path) -> bool:
    """True when a store location is a PostgreSQL URL."""
    return str(target).startswith(POSTGRES_SCHEMES)


def sqlite_file(target: str | Path) -> Path | None:
    """The file of a SQLite store location (None in memory or on PostgreSQL)."""
    text = str(target)
    if is_postgres(text) or text in (":memory:", "sqlite://", "sqlite:///", "sqlite:///:memory:"):
        return None
    return Path(text[len("sqlite:///"):] if text.startswith("sqlite:///") else text)


def schema_of(tenant: str, prefix: str) -> str:
    """The PostgreSQL schema of a tenant: readable when the name allows, unique always, at most 63 characters."""
    safe = tenant if re.fullmatch(r"[a-z0-9_]+", tenant) else \
        tenant.replace("-", "_") + "_" + hashlib.sha1(tenant.encode()).hexdigest()[:8]
    name = f"{prefix}_t_{safe}"
    return name if len(name) <= 63 else f"{prefix[:20]}_t_{hashlib.sha1(tenant.encode()).hexdigest()[:24]}"


def tenant_url(url: str, tenant: str) -> str:
    """The PostgreSQL URL of a tenant's schema beside the default store's (the schema is created when missing)."""
    from aicity.core.store_pg import in_schema

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join(v for k, v in query if k == "options")
    found = _SEARCH_PATH.search(options)
    prefix = found.group(1).lower() if found else "aicity"
    schema = schema_of(tenant, prefix)
    rest = [(k, v) for k, v in query if k != "options"]
    plain = urlunsplit(parts._replace(query=urlencode(rest)))
    in_schema(plain, schema)  # creates it
    other = _SEARCH_PATH.sub("", options).strip()
    opts = f"{other} -csearch_path={schema}".strip()
    return urlunsplit(parts._replace(query=urlencode([*rest, ("options", opts)], quote_via=quote)))


def tenant_location(default: str | Path, tenant: str) -> str:
    """Where a tenant's store lives beside the default store at ``default``."""
    text = str(default)
    if is_postgres(text):
        return tenant_url(text, tenant)
    file = sqlite_file(text)
    return ":memory:" if file is None else str(file.parent / f"tenant-{tenant}.db")


def open_tenant(default: str | Path, tenant: str) -> StateStore:
    """Open (creating) the store of a tenant beside the default store at ``default``."""
    return open_store(tenant_location(default, tenant))
