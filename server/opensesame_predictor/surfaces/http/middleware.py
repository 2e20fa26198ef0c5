"""The ASGI middleware in front of the routes: a 500 body for anything unhandled, request
metrics by route template, and the guard of POST /predict and /mcp (rate limits, content type,
body cap) that runs before anything parses the body."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opensesame_predictor.config import Settings
from opensesame_predictor.core.errors import OpenSesameError
from opensesame_predictor.surfaces.http.auth import hash_key, presented_key
from opensesame_predictor.surfaces.http.errors import core_error_response, error_response
from opensesame_predictor.surfaces.http.metrics import HTTPMetrics
from opensesame_predictor.surfaces.http.ratelimit import (
    Decision,
    RateLimitGuard,
    ratelimit_headers,
)

log = logging.getLogger(__name__)

PREDICT_PATH = "/predict"
BATCH_PATH = "/predict/batch"
BATCH_LIMIT = 32  # requests in one batch
MCP_PATH = "/mcp"


class CatchAllMiddleware:
    """Turns an unhandled exception into a 500 error body. The log gets the exception type and
    the frames, not its message (which may quote the request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("internal error %s on %s\n%s", type(exc).__name__, scope["path"], frames)
            if not started:
                response = error_response(500, "internal_error", "internal error")
                await response(scope, receive, send)


class MetricsMiddleware:
    """Counts and times every request by route template (not raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: HTTPMetrics, known_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    def route_label(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str) and path in self.known_paths:
            return path
        raw = str(scope.get("path", ""))
        if raw in self.known_paths:
            return raw
        return "/mcp" if raw.startswith("/mcp") else "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - started
            route = self.route_label(scope)
            self.metrics.observe(route, scope["method"], status, elapsed)
            log.debug("%s %s %d %.1f ms", scope["method"], route, status, elapsed * 1000)


def client_identity(headers: Headers, scope: Scope) -> str:
    """Who a request counts against: its API key (a caller cannot rotate it to dodge the
    per-user quota), else X-User-Id, else the client address. The guard keeps only a salted
    hash of it."""
    key = presented_key(headers)
    if key:
        return f"key:{hash_key(key[:512])}"
    user = headers.get("x-user-id", "").strip()
    if user:
        return f"user:{user[:256]}"
    client = scope.get("client")
    return f"addr:{client[0] if client else 'unknown'}"


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class GuardMiddleware:
    """Rate limit (429), content type (415) and body cap (413) for POST /predict, in that
    order, before anything parses the body; the same per-user and global limits for every POST
    to /mcp, whose tools predict too (its content is the MCP SDK's to check). Passing requests
    get the RateLimit headers."""

    def __init__(
        self,
        app: ASGIApp,
        guard: RateLimitGuard | None,
        metrics: HTTPMetrics,
        max_body_bytes: int,
        limited: frozenset[str] = frozenset({PREDICT_PATH, MCP_PATH}),
        require_ready: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.guard = guard
        self.require_ready = require_ready
        self.metrics = metrics
        # the body cap of each JSON route; a batch holds up to BATCH_LIMIT bodies (its items
        # are counted against the limits one by one, by the route)
        self.caps = {PREDICT_PATH: max_body_bytes, BATCH_PATH: max_body_bytes * BATCH_LIMIT}
        self.limited = limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or (path not in self.limited and path not in self.caps)
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        extra_headers: dict[str, str] = {}
        if self.guard is not None and path == PREDICT_PATH and self.require_ready is not None:
            # refused for the server's own state (specs still loading, a failed load): the
            # answer says so at once, and the caller's quota is not spent on it
            try:
                self.require_ready()
            except OpenSesameError as exc:
                await core_error_response(exc)(scope, receive, send)
                return
        if self.guard is not None and path in self.limited:
            decision = self.guard.check(client_identity(headers, scope))
            extra_headers = ratelimit_headers(decision, self.guard.policy_header)
            if not decision.allowed:
                self.metrics.rate_limited.labels(decision.scope).inc()
                log.info("rate limited (%s limit)", decision.scope)
                response = error_response(
                    429, "rate_limited", refusal_message(decision), headers=extra_headers
                )
                await response(scope, receive, send)
                return
        cap = self.caps.get(path)
        if cap is None:
            await self.app(scope, receive, _with_headers(send, extra_headers))
            return
        refusal = self._check_headers(headers, cap)
        if refusal is None:
            body, refusal = await self._read_body(receive, cap)
        if refusal is not None:
            refusal.headers.update(extra_headers)
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), _with_headers(send, extra_headers))

    def _check_headers(self, headers: Headers, cap: int) -> JSONResponse | None:
        content_type = headers.get("content-type", "")
        if not is_json(content_type):
            return error_response(
                415, "unsupported_media_type", "Content-Type must be application/json"
            )
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return error_response(400, "bad_request", "Content-Length is not a number")
            if int(length) > cap:
                return _too_large(cap)
        return None

    async def _read_body(self, receive: Receive, cap: int) -> tuple[bytes, JSONResponse | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > cap:
                return b"", _too_large(cap)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), None


def _too_large(cap: int) -> JSONResponse:
    return error_response(
        413, "payload_too_large", f"request body is over the limit of {cap} bytes"
    )


def refusal_message(decision: Decision) -> str:
    """What a 429 says: the block, or the quota that was spent."""
    if decision.scope == "blocked":
        return "temporarily blocked after repeated rate-limit violations"
    return (
        f"rate limit exceeded ({decision.scope} quota: "
        f"{decision.limit} per {decision.window_seconds} s)"
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands out the body already read, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _with_headers(send: Send, extra: Mapping[str, str]) -> Send:
    if not extra:
        return send
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *encoded]}
        await send(message)

    return sending


def build_guard(settings: Settings) -> RateLimitGuard | None:
    if not (settings.enable_guardrails and settings.rate_limit_enabled):
        return None
    return RateLimitGuard(
        per_user=settings.rate_limit_per_user,
        global_limit=settings.rate_limit_global,
        block_after=settings.rate_limit_block_after,
        block_seconds=settings.rate_limit_block_seconds,
        storage_uri=settings.rate_limit_storage_uri,
        salt=settings.rate_limit_salt.get_secret_value(),
    )
