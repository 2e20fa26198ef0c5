"""Errors as the HTTP API answers them: `{"error": {"code", "message"}}` with the status the
service's error table gives the code's kind, never a stack trace; and the /predict body parsed
with the documented JSON types."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from opensesame_predictor.core.errors import (
    GuardrailViolation,
    InvalidRequest,
    OpenSesameError,
)
from opensesame_predictor.core.guardrails import parse_request, require_something
from opensesame_predictor.core.models import PredictRequest
from opensesame_predictor.service import ErrorKind, Loading, meaning_of

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable name, e.g. invalid_request.")
    message: str = Field(description="What went wrong, for people.")
    field: str | None = Field(default=None, description="The request field at fault.")
    rule: str | None = Field(default=None, description="The guardrail rule that refused it.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    **extra: str | None,
) -> JSONResponse:
    detail = ErrorDetail(code=code, message=message, **extra)
    return JSONResponse(
        {"error": detail.model_dump(exclude_none=True)}, status_code=status, headers=headers
    )


# The service's error table, by kind: the status each kind of core error leaves with.
STATUS_OF_KIND: dict[ErrorKind, int] = {
    "invalid": 422,
    "not_found": 404,
    "unavailable": 503,
    "failed": 500,
}


def core_error_status(exc: OpenSesameError) -> int:
    return STATUS_OF_KIND[meaning_of(exc.code).kind]


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def describe_validation(errors: Iterable[Any]) -> tuple[int, str, str, str]:
    """(status, code, field, message) of FastAPI's validation errors; never echoes the input."""
    errors = list(errors)
    if any(e.get("type") == "json_invalid" for e in errors):
        return 400, "invalid_json", "body", "request body is not valid JSON"
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = ".".join(loc) or "request"
    message = f"{field}: {first.get('msg', 'invalid value')}"
    if first.get("type") == "missing" and not loc:
        message = "request: a JSON object body is required"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return 422, "invalid_request", field, message


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:  # JSON Schema: 19.0 is an integer too
    return _is_number(value) and float(value).is_integer()


def _is_timestamp(value: Any) -> bool:
    return value is None or isinstance(value, str)


def load_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadJSON() from None
    except RecursionError:  # a body under the size cap can still nest 100,000 deep
        raise BadJSON("request body is nested too deeply") from None


def parse_body(raw: bytes) -> PredictRequest:
    """The /predict body: JSON, with the documented JSON types (the model alone would coerce
    "5" to 5 or a number to a timestamp), then the core's validation and limits."""
    return parse_item(load_json(raw))


def parse_item(data: Any, prefix: str = "") -> PredictRequest:
    """One /predict body already read as JSON; `prefix` names where it sits (`requests.3.`)."""
    if isinstance(data, dict):
        _expect(data, "max_predictions", _is_integer, "an integer", prefix)
        _expect(data, "temperature", _is_number, "a number", prefix)
        history = data.get("history")
        if isinstance(history, list):
            for i, event in enumerate(history):
                if isinstance(event, dict):
                    _expect(
                        event,
                        "timestamp",
                        _is_timestamp,
                        "a date-time string",
                        f"{prefix}history.{i}.",
                    )
    request = parse_request(data)
    require_something(request, prefix)
    return request


def error_detail(exc: OpenSesameError) -> ErrorDetail:
    field = exc.field if isinstance(exc, InvalidRequest) else None
    rule = exc.rule if isinstance(exc, GuardrailViolation) else None
    return ErrorDetail(code=exc.code, message=exc.message, field=field, rule=rule)


def _expect(
    data: dict[str, Any], key: str, valid: Callable[[Any], bool], what: str, prefix: str = ""
) -> None:
    if key in data and not valid(data[key]):
        raise InvalidRequest(f"{prefix}{key}: must be {what}", field=f"{prefix}{key}")


class BadJSON(Exception):
    """The body is not JSON (or JSON nested too deeply to read)."""


def core_error_response(exc: OpenSesameError) -> JSONResponse:
    """The answer to a request the core refused: its status, code and message."""
    status = core_error_status(exc)
    log.info("request refused: %s (%d)", exc.code, status)
    headers = {"Retry-After": "1"} if isinstance(exc, Loading) else None
    detail = error_detail(exc)
    return JSONResponse(
        {"error": detail.model_dump(exclude_none=True)}, status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    async def on_core_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OpenSesameError)
        return core_error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, code, field, message = describe_validation(exc.errors())
        log.info("request refused: %s (%d)", code, status)
        return error_response(status, code, message, field=field)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    async def on_bad_json(_: Request, exc: Exception) -> JSONResponse:
        return error_response(400, "invalid_json", str(exc) or "request body is not valid JSON")

    app.add_exception_handler(BadJSON, on_bad_json)
    app.add_exception_handler(OpenSesameError, on_core_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
