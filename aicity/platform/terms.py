"""Term names in a tenant's store: the kernel stores short attribute and type names, the API speaks IRIs.

A name of the core context's ``@vocab`` (``https://uri.etsi.org/ngsi-ld/default-context/<name>``) is stored as
the bare name; any other IRI gets a short alias, kept in the store (collection ``ngsild.terms``) so it reads back
as the same IRI after a restart.
"""

from __future__ import annotations

import re
import threading

from aicity.core.entity import ATTR_RE
from aicity.core.store import StateStore
from aicity.platform.errors import bad
from aicity.platform.jsonld import core

TERMS = "ngsild.terms"
_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


class TermRegistry:
    """IRI ↔ stored short name for one tenant's store."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.vocab = core().vocab or ""
        self._lock = threading.Lock()
        self._by_name: dict[str, str] = {k: str(d["iri"]) for k, d in store.doc_query(TERMS)}
        self._by_iri = {v: k for k, v in self._by_name.items()}

    def name(self, iri: str, *, create: bool = True) -> str | None:
        """The stored name of an IRI (registered on first use when ``create``)."""
        known = self._by_iri.get(iri)
        if known is not None:
            return known
        if iri.startswith(self.vocab):
            bare = iri[len(self.vocab):]
            if ATTR_RE.match(bare):
                if bare in self._by_name:
                    if not create:
                        return None  # no entity can carry this IRI: it matches nothing
                    raise bad(f"the name {bare!r} is bound to {self._by_name[bare]} in this tenant; "
                              f"send {iri} with a context that names it differently")
                return bare
        if not create:
            return None
        with self._lock:
            known = self._by_iri.get(iri)  # registered by another thread meanwhile (requests run in threads)
            if known is not None:
                return known
            m = _TAIL.search(iri.replace("-", "_"))
            base = m.group(0) if m else "term"
            cand, n = base, 1
            while cand in self._by_name:
                n += 1
                cand = f"{base}_{n}"
            self.store.doc_put(TERMS, cand, {"iri": iri})
            self._by_name[cand] = iri
            self._by_iri[iri] = cand
            return cand

    def iri(self, name: str) -> str:
        """The IRI of a stored name."""
        return self._by_name.get(name) or self.vocab + name
