"""Typed errors of the core, each with a stable `code`; every surface maps a code to its
protocol's error through the one table in `service.py` (ERRORS)."""

from __future__ import annotations


class OpenSesameError(Exception):
    """Base class: `code` is a stable machine-readable name, the message is for people."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(OpenSesameError):
    """A request field is missing, malformed or outside its limit."""

    code = "invalid_request"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class GuardrailViolation(InvalidRequest):
    """A request was refused by a guardrail rule (injection pattern, content filter)."""

    code = "guardrail_violation"

    def __init__(self, message: str, rule: str, field: str | None = "prompt") -> None:
        super().__init__(message, field)
        self.rule = rule


class SpecError(OpenSesameError):
    """A spec source could not be read, parsed or resolved."""

    code = "spec_error"

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class FetchRefused(SpecError):
    """A URL was refused before any connection was made (scheme, address, redirect limit)."""

    code = "fetch_refused"


class UnknownOperation(OpenSesameError):
    """An operation key names nothing in the catalog."""

    code = "unknown_operation"

    def __init__(self, key: str, suggestions: list[str]) -> None:
        hint = f"; closest: {', '.join(suggestions)}" if suggestions else ""
        super().__init__(f"unknown operation {key!r}{hint}")
        self.key = key
        self.suggestions = suggestions


class CatalogEmpty(OpenSesameError):
    """No spec is loaded, so there is nothing to rank."""

    code = "catalog_empty"
