"""NGSI-LD errors as RFC 7807 ProblemDetails (ETSI GS CIM 009, clause 5.5.2)."""

from __future__ import annotations

import json
import re
from typing import Any

BASE = "https://uri.etsi.org/ngsi-ld/errors/"
STATUS = {
    "InvalidRequest": 400, "BadRequestData": 400, "AlreadyExists": 409, "OperationNotSupported": 422,
    "ResourceNotFound": 404, "InternalError": 500, "TooComplexQuery": 403, "TooManyResults": 403,
    "LdContextNotAvailable": 503, "NoMultiTenantSupport": 501, "NonexistentTenant": 404,
    "Unauthorized": 401, "Forbidden": 403, "Conflict": 409, "UnsupportedMediaType": 415, "NotAcceptable": 406,
    "PayloadTooLarge": 413,
}
LOCAL = {"Unauthorized", "Forbidden", "Conflict", "UnsupportedMediaType", "NotAcceptable", "PayloadTooLarge"}


class NgsiError(Exception):
    """An error the API answers with a ProblemDetails body of an NGSI-LD error type."""

    def __init__(self, kind: str, detail: str, *, status: int | None = None, title: str | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status or STATUS.get(kind, 400)
        self.title = title or kind

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The ProblemDetails body."""
        base = "urn:aicity:errors:" if self.kind in LOCAL else BASE
        out: dict[str, Any] = {"type": base + self.kind, "title": self.title, "status": self.status,
                               "detail": self.detail}
        if instance:
            out["instance"] = instance
        return out


TOO_DEEP = "nested too deeply to process (more levels of arrays, objects or parentheses than the parser allows)"
"""What a request or device message too deeply nested for Python's parsers is refused with."""
NOT_TEXT = "holds a lone surrogate (a JSON escape such as \\ud800 not in a pair): it is not Unicode text"
"""What a body that no UTF-8 response or store could write is refused with."""


_SURROGATE_HINT = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")
"""Where a body could hold a surrogate: a JSON escape of one, or one encoded as UTF-8 bytes (which Python's JSON
reader passes through)."""


def no_constant(name: str) -> Any:
    """``parse_constant`` for JSON readers: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (Python's reader
    takes them, and a NaN stored in a document was written back out as invalid JSON)."""
    raise ValueError(f"{name} is not a JSON value")


def not_text(raw: bytes, data: Any) -> bool:
    """Whether ``data``, parsed from ``raw``, holds a lone surrogate: not Unicode text, so no UTF-8 response and no
    store could write it (a surrogate pair, escaped, is one character and fine)."""
    if not _SURROGATE_HINT.search(raw):
        return False
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def parse_body(raw: bytes) -> Any:
    """A request body's JSON; an ``InvalidRequest`` naming why when it is not JSON (``NaN`` and ``Infinity``
    included), is nested too deeply for the parser, or holds a lone surrogate."""
    try:
        data = json.loads(raw, parse_constant=no_constant)
    except ValueError as exc:
        raise NgsiError("InvalidRequest", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise NgsiError("InvalidRequest", f"the body is {TOO_DEEP}") from None
    if not_text(raw, data):
        raise NgsiError("InvalidRequest", f"the body {NOT_TEXT}")
    return data


def bad(detail: str) -> NgsiError:
    """A BadRequestData error."""
    return NgsiError("BadRequestData", detail)


def invalid(detail: str) -> NgsiError:
    """An InvalidRequest error."""
    return NgsiError("InvalidRequest", detail)


def not_found(detail: str) -> NgsiError:
    """A ResourceNotFound error."""
    return NgsiError("ResourceNotFound", detail)
