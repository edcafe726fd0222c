"""Clients' regular expressions (``idPattern``, ``q``'s ``~=``) compiled with RE2.

Python's ``re`` backtracks: one query with ``idPattern=^urn:ngsi-ld:Thing:(a+)+$`` against a 40-character id held
the server for good, every other request with it. RE2 matches in time linear in the text whatever the pattern; it
has no backreferences or look-around, and a pattern using them is refused as bad input.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from aicity.platform.errors import NgsiError, bad

MAX_PATTERN_MEMORY = 8 << 20
"""Bytes one compiled pattern may use (RE2's own default); a larger pattern is refused."""


class Pattern(Protocol):
    """The calls the broker makes on a compiled pattern."""

    def search(self, text: str) -> Any:
        """A match anywhere in ``text``, else None."""

    def fullmatch(self, text: str) -> Any:
        """A match of the whole of ``text``, else None."""


def compile_pattern(pattern: str, what: str) -> Pattern:
    """``pattern`` compiled with RE2; a :func:`bad` error naming ``what`` (e.g. ``idPattern``) if it is not one."""
    import re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PATTERN_MEMORY
    try:
        return cast(Pattern, re2.compile(pattern, options))
    except re2.error as exc:
        raise _refused(pattern, what, exc) from None


def _refused(pattern: str, what: str, exc: Exception) -> NgsiError:
    reason = exc.args[0] if exc.args else exc
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return bad(f"{what} {pattern[:200]!r} is not a regular expression this broker runs ({reason}; RE2 syntax: no "
               "backreferences or look-around)")
