"""The MCP server's stdio transport, where every request with an id gets an answer.

The SDK's stdio reader hands a line it cannot read as an MCP message to the session as an
exception, and the session drops it: a client that sent a truncated frame, params that are no
object or arguments nested deeper than the SDK's JSON parser goes waits forever. JSON-RPC 2.0
asks for an error: -32700 for a parse error (null id), -32600 for an invalid request, -32602
for invalid params, with the request's id whenever it can be read.
"""

from __future__ import annotations

import json
import logging
from types import TracebackType
from typing import Any, Self

import anyio
from mcp.shared.message import SessionMessage
from mcp_types import ErrorData, JSONRPCError
from pydantic import ValidationError

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602


def answer(error: Exception) -> JSONRPCError | None:
    """The error response to a line the transport could not read; None for a notification
    (it gets no answer)."""
    line = _line_of(error)
    try:
        message = json.loads(line) if line is not None else None
    except (ValueError, RecursionError):
        message = None
    if not isinstance(message, dict):
        reason = "not a JSON object" if line is not None else "unreadable message"
        if line is not None:
            try:
                json.loads(line)
            except (ValueError, RecursionError) as exc:
                reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        return JSONRPCError(
            jsonrpc="2.0",
            id=None,
            error=ErrorData(code=PARSE_ERROR, message=f"Parse error: {reason}"),
        )
    request_id = message.get("id")
    if not isinstance(request_id, int | str) or isinstance(request_id, bool):
        if "method" in message and "id" not in message:
            return None  # a notification
        request_id = None
    if "method" not in message or not isinstance(message.get("method"), str):
        code, text = INVALID_REQUEST, "Invalid request: no method"
    else:
        code, text = INVALID_PARAMS, f"Invalid params: {_reason(error)}"
    return JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=text))


def _line_of(error: Exception) -> str | None:
    """The raw line, where the SDK's error keeps it (its JSON parser's errors do)."""
    if isinstance(error, ValidationError):
        for detail in error.errors(include_url=False):
            value = detail.get("input")
            if detail.get("type") == "json_invalid" and isinstance(value, str | bytes):
                return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            if isinstance(value, dict) and "jsonrpc" in value:
                return json.dumps(value)
    return None


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors(include_url=False)[0]
        if first.get("type") == "json_invalid":
            return "nested too deeply" if "recursion" in str(first.get("msg")) else "bad JSON"
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "message"
        return f"{where}: {first.get('msg')}"
    return type(error).__name__


class AnsweringReader:
    """Wraps the transport's read stream: what it could not read is answered on the write
    stream and skipped; the session reads only messages."""

    def __init__(self, inner: Any, write: Any) -> None:
        self.inner = inner
        self.write = write

    async def receive(self) -> SessionMessage:
        while True:
            item = await self.inner.receive()
            if not isinstance(item, Exception):
                return item  # type: ignore[no-any-return]
            response = answer(item)
            log.warning(
                "refused an unreadable message: %s", response.error.message if response else item
            )
            if response is not None:
                await self.write.send(SessionMessage(response))

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __aiter__(self) -> Self:
        return self

    @property
    def last_context(self) -> Any:
        """The sender's context of the last message, as the SDK's context streams keep it."""
        return getattr(self.inner, "last_context", None)

    async def __anext__(self) -> SessionMessage:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        await self.inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        result: bool | None = await self.inner.__aexit__(exc_type, exc_val, exc_tb)
        return result
