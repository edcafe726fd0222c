"""JSON-LD contexts, resolved only from pinned local copies: terms expand to IRIs and compact back.

A small, exact subset of JSON-LD 1.1 context processing, enough for NGSI-LD: term definitions (strings or
``{"@id": ...}``), compact IRIs (``prefix:suffix``), ``@vocab``, arrays of contexts and remote contexts by URL
— served from files shipped in the package, never fetched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from aicity.platform.errors import NgsiError, bad

CORE_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CORE_FILE = "ngsi-ld-core-context-v1.8.jsonld"
LINK_REL = "http://www.w3.org/ns/json-ld#context"
_CORE_RE = re.compile(r"^https?://uri\.etsi\.org/ngsi-ld/v1/ngsi-ld-core-context(-v1\.\d+)?\.jsonld$")
LOCAL = {
    "https://smartdatamodels.org/context.jsonld": "smart-data-models-context.jsonld",
    "https://raw.githubusercontent.com/smart-data-models/data-models/master/context.jsonld":
        "smart-data-models-context.jsonld",
}
"""Remote context URLs answered from shipped files (besides every version of the core context)."""
SHIPPED = (CORE_FILE, "smart-data-models-context.jsonld")


@cache
def shipped(name: str) -> dict[str, Any]:
    """A context file shipped in the package, parsed once."""
    text = resources.files("aicity.platform").joinpath("contexts", name).read_text(encoding="utf-8")
    out: dict[str, Any] = json.loads(text)
    return out


def local_file(url: str) -> str | None:
    """The shipped file answering a context URL (None when not shipped)."""
    if _CORE_RE.match(url):
        return CORE_FILE
    if url in LOCAL:
        return LOCAL[url]
    for name in SHIPPED:  # our own server's copies: http://host/ngsi-ld/v1/contexts/<name>
        if url.endswith("/contexts/" + name):
            return name
    return None


@dataclass(frozen=True)
class Context:
    """A processed context: term → IRI, with ``@vocab``; compacts IRIs back to the shortest term."""

    terms: Mapping[str, str] = field(default_factory=dict)
    vocab: str | None = None
    urls: tuple[str, ...] = ()
    inline: tuple[Any, ...] = ()
    _inv: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def expand(self, term: str) -> str:
        """The IRI of a term (attribute or type name)."""
        iri = self.terms.get(term)
        if iri is not None:
            return iri
        prefix, sep, suffix = term.partition(":")
        if sep and not suffix.startswith("//"):
            base = self.terms.get(prefix)
            if base is not None:
                return base + suffix
        if sep and (suffix.startswith("//") or prefix in ("urn", "http", "https")):
            return term  # already an absolute IRI
        return (self.vocab or "") + term

    def compact(self, iri: str) -> str:
        """The shortest term of this context for an IRI (the IRI itself when none)."""
        term = _inverse(self).get(iri)
        if term is not None:
            return term
        if self.vocab and iri.startswith(self.vocab) and ":" not in iri[len(self.vocab):]:
            return iri[len(self.vocab):]
        return iri

    def body(self) -> Any:
        """The ``@context`` value to put in a response body."""
        items: list[Any] = [*self.urls, *self.inline]
        if CORE_URL not in items:
            items.append(CORE_URL)
        return items[0] if len(items) == 1 else items


def _inverse(ctx: Context) -> dict[str, str]:
    inv = ctx._inv
    if not inv and ctx.terms:
        for term, iri in sorted(ctx.terms.items(), key=lambda kv: (len(kv[0]), kv[0]), reverse=True):
            if not term.startswith("@") and ":" not in term:
                inv[iri] = term
    return inv


def _definitions(value: Any, depth: int = 0) -> list[Mapping[str, Any]]:
    """Flatten a context value (URL, object or array) into term-definition maps, resolving URLs locally."""
    if depth > 8:
        raise bad("@context nests too deeply")
    if value is None:
        return []
    if isinstance(value, str):
        name = local_file(value)
        if name is None:
            raise NgsiError("LdContextNotAvailable",
                            f"@context {value!r} is not available here: this broker serves only pinned local "
                            "contexts (the NGSI-LD core, a Smart Data Models subset) and never fetches one; "
                            "send the context inline instead")
        return _definitions(shipped(name).get("@context"), depth + 1)
    if isinstance(value, list):
        return [d for item in value for d in _definitions(item, depth + 1)]
    if isinstance(value, Mapping):
        return [value]
    raise bad(f"@context must be a URL, an object or an array, got {type(value).__name__}")


@cache
def core() -> Context:
    """The NGSI-LD core context (the default of every request without one)."""
    return _process(CORE_URL)


def _process(value: Any) -> Context:
    terms: dict[str, str] = {}
    vocab: str | None = None
    raw: dict[str, Any] = {}
    for defs in _definitions(value):
        raw.update(defs)
    for term, definition in raw.items():
        if term == "@vocab" and isinstance(definition, str):
            vocab = definition
        elif isinstance(definition, str) and not term.startswith("@"):
            terms[term] = definition
        elif isinstance(definition, Mapping) and isinstance(definition.get("@id"), str):
            terms[term] = definition["@id"]
    resolved = Context(terms, vocab)
    for term, iri in list(terms.items()):  # expand compact IRIs (``ngsi-ld:Property``) once
        if not iri.startswith("@"):
            terms[term] = resolved.expand(iri) if ":" in iri and not iri.split(":", 1)[1].startswith("//") else iri
    urls = tuple(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str))
    inline = tuple(v for v in (value if isinstance(value, list) else [value]) if not isinstance(v, str))
    return Context(terms, vocab, urls, inline)


@lru_cache(maxsize=256)
def _cached(text: str) -> Context:
    ctx = _process(json.loads(text))
    base = core()
    return Context({**base.terms, **ctx.terms}, ctx.vocab or base.vocab, ctx.urls, ctx.inline)


def process(value: Any) -> Context:
    """A request's context over the core context (core terms are protected: they always win)."""
    if value is None:
        return core()
    ctx = _cached(json.dumps(value, sort_keys=True))
    base = core()
    if all(ctx.terms.get(t) == iri for t, iri in base.terms.items()):
        return ctx
    return Context({**ctx.terms, **base.terms}, ctx.vocab, ctx.urls, ctx.inline)


def parse_link(header: str | None) -> str | None:
    """The context URL of a ``Link`` header with ``rel="http://www.w3.org/ns/json-ld#context"``."""
    if not header:
        return None
    for part in header.split(","):
        m = re.match(r'\s*<([^>]*)>(.*)$', part)
        if m and LINK_REL in m.group(2):
            return m.group(1)
    if "<" in header:
        raise bad(f"Link header {header!r} has no rel=\"{LINK_REL}\"")
    return None


def link_header(ctx: Context) -> str:
    """The ``Link`` header naming a response's context (the first URL, else the core context)."""
    url = ctx.urls[0] if ctx.urls and not ctx.inline else CORE_URL
    return f'<{url}>; rel="{LINK_REL}"; type="application/ld+json"'
