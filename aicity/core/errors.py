"""Typed errors raised by the kernel; each names what was wrong."""

from __future__ import annotations


class AicityError(Exception):
    """Base class of every error aicity raises on purpose."""


class UserError(AicityError):
    """An error a user can cause (bad scenario, bad seed, unwritable folder); shown as one clear line."""


class ValidationError(AicityError):
    """Input that failed validation; names the entity, the attribute and the problem."""

    def __init__(self, entity_id: str | None, attribute: str | None, problem: str) -> None:
        self.entity_id = entity_id
        self.attribute = attribute
        self.problem = problem
        where = entity_id or "<no id>"
        if attribute:
            where += f".{attribute}"
        super().__init__(f"{where}: {problem}")


class EntityValidationError(ValidationError):
    """A malformed NGSI-LD entity."""


class ObservationError(ValidationError):
    """A malformed or implausible observation."""


def unreadable(exc: BaseException) -> str:
    """Why a file or text could not be read, in words: a ``RecursionError`` (input nested deeper than Python's
    parsers go) says so instead of "maximum recursion depth exceeded"."""
    return "nested too deeply to read" if isinstance(exc, RecursionError) else str(exc)
