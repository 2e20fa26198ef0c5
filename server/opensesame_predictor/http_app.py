"""HTTP adapter: POST /predict, liveness, health, Prometheus metrics and the OpenAPI docs.

Protocol glue only: the predictor does the work. Every error leaves as
`{"error": {"code", "message"}}` with its status code, never as a stack trace. Logs carry no
prompt text: only `prompt_fingerprint` (length and hash). Rate limits, the body cap and the
content-type check run in one ASGI middleware in front of /predict, before the body is parsed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from limits.errors import ConfigurationError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opensesame_predictor import __version__
from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.errors import (
    CatalogEmpty,
    GuardrailViolation,
    InvalidRequest,
    OpenSesameError,
    UnknownOperation,
)
from opensesame_predictor.core.guardrails import parse_request, prompt_fingerprint
from opensesame_predictor.core.models import PredictRequest, PredictResult
from opensesame_predictor.ratelimit import RateLimitGuard, ratelimit_headers
from opensesame_predictor.runtime import Runtime

log = logging.getLogger(__name__)

NAME = "opensesame-predictor"
PREDICT_PATH = "/predict"
MCP_PATH = "/mcp"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


# --- wire models of the non-predict routes and of errors ---------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable name, e.g. invalid_request.")
    message: str = Field(description="What went wrong, for people.")
    field: str | None = Field(default=None, description="The request field at fault.")
    rule: str | None = Field(default=None, description="The guardrail rule that refused it.")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Liveness(BaseModel):
    name: str
    version: str
    status: Literal["ok"] = "ok"


class CatalogHealth(BaseModel):
    status: Literal["loading", "ok", "empty", "failed"]
    specs: int = Field(description="Specs loaded without error.")
    operations: int
    failed_specs: int = 0
    spec_names: list[str] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why loading failed, when it did.")


class StoreHealth(BaseModel):
    status: Literal["ok", "read_only"] = Field(
        description="read_only: the store file cannot be written, so every start parses afresh."
    )
    backend: str
    ttl_seconds: float


class LLMHealth(BaseModel):
    provider: str
    status: Literal["disabled", "reachable", "unreachable"]
    refiner: dict[str, Any] | None = None  # budget, last outcome, back-off of the refiner


class CacheHealth(BaseModel):
    l1_hits: int
    l2_hits: int
    misses: int
    writes: int
    stale_served: int
    quarantined: int
    hit_ratio: float


class LimitsHealthModel(BaseModel):
    """Where the rate limits count; degraded while a shared storage is unreachable (each
    process then counts alone)."""

    status: Literal["ok", "degraded"]
    storage: str
    shared: bool
    error: str | None = None


class HealthComponents(BaseModel):
    catalog: CatalogHealth
    store: StoreHealth
    llm: LLMHealth
    cache: CacheHealth
    rate_limits: LimitsHealthModel | None = None


class Health(BaseModel):
    # degraded: serving, with a part not as promised (rate limits counted per process)
    status: Literal["ok", "degraded", "loading", "unavailable"]
    name: str
    version: str
    components: HealthComponents


def _error_doc(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


_RATE_HEADERS = {
    "RateLimit": {
        "description": 'Remaining quota: `"user";r=59;t=60`.',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'Quotas: `"user";q=60;w=60`.',
        "schema": {"type": "string"},
    },
}
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Ranked predictions.", "headers": _RATE_HEADERS},
    400: _error_doc("Malformed JSON or Content-Length (`invalid_json`, `bad_request`)."),
    413: _error_doc("Body over OPENSESAME_MAX_BODY_BYTES (`payload_too_large`)."),
    415: _error_doc("Content-Type is not application/json (`unsupported_media_type`)."),
    422: _error_doc(
        "A field is missing or outside its limit (`invalid_request`, naming the field), or a "
        "guardrail refused the prompt (`guardrail_violation`, naming the rule)."
    ),
    429: {
        **_error_doc("Rate limit exceeded (`rate_limited`); retry after `Retry-After` seconds."),
        "headers": {
            **_RATE_HEADERS,
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
        },
    },
    500: _error_doc("Internal error (`internal_error`); the log has the details."),
    503: _error_doc("Specs are still loading (`loading`) or none is loaded (`catalog_empty`)."),
}
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {500: PREDICT_RESPONSES[500]}
REF_TEMPLATE = "#/components/schemas/{model}"
PREDICT_BODY_DOC = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model="PredictRequest")}}
    },
}


# --- errors --------------------------------------------------------------------------------------


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


def core_error_status(exc: OpenSesameError) -> int:
    if isinstance(exc, InvalidRequest):  # GuardrailViolation included
        return 422
    if isinstance(exc, UnknownOperation):
        return 404
    if isinstance(exc, CatalogEmpty):
        return 503
    return 500


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


def parse_body(raw: bytes) -> PredictRequest:
    """The /predict body: JSON, with the documented JSON types (the model alone would coerce
    "5" to 5 or a number to a timestamp), then the core's validation and limits."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadJSON() from None
    except RecursionError:  # a body under the size cap can still nest 100,000 deep
        raise BadJSON("request body is nested too deeply") from None
    if isinstance(data, dict):
        _expect(data, "max_predictions", _is_integer, "an integer")
        _expect(data, "temperature", _is_number, "a number")
        history = data.get("history")
        if isinstance(history, list):
            for i, event in enumerate(history):
                if isinstance(event, dict):
                    _expect(
                        event, "timestamp", _is_timestamp, "a date-time string", f"history.{i}."
                    )
    return parse_request(data)


def _expect(
    data: dict[str, Any], key: str, valid: Callable[[Any], bool], what: str, prefix: str = ""
) -> None:
    if key in data and not valid(data[key]):
        raise InvalidRequest(f"{prefix}{key}: must be {what}", field=f"{prefix}{key}")


class BadJSON(Exception):
    """The body is not JSON (or JSON nested too deeply to read)."""


def install_error_handlers(app: FastAPI) -> None:
    async def on_core_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OpenSesameError)
        field = exc.field if isinstance(exc, InvalidRequest) else None
        rule = exc.rule if isinstance(exc, GuardrailViolation) else None
        status = core_error_status(exc)
        log.info("request refused: %s (%d)", exc.code, status)
        return error_response(status, exc.code, exc.message, field=field, rule=rule)

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


# --- metrics -------------------------------------------------------------------------------------


class RuntimeCollector(Collector):
    """Catalog size and store cache statistics, read at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterable[Metric]:
        catalog = self.runtime.catalog
        stats = self.runtime.store.stats
        yield GaugeMetricFamily(
            "opensesame_specs_loaded", "Specs loaded without error.", len(catalog.spec_names())
        )
        yield GaugeMetricFamily(
            "opensesame_operations_loaded", "Operations in the catalog.", len(catalog.operations)
        )
        hits = CounterMetricFamily(
            "opensesame_cache_hits", "Spec store cache hits.", labels=["level"]
        )
        hits.add_metric(["l1"], stats.l1_hits)
        hits.add_metric(["l2"], stats.l2_hits)
        yield hits
        yield CounterMetricFamily("opensesame_cache_misses", "Spec store misses.", stats.misses)
        yield GaugeMetricFamily(
            "opensesame_cache_hit_ratio", "Spec store hits / lookups.", stats.hit_ratio
        )


class HTTPMetrics:
    """The app's own metrics on a dedicated registry (several apps in one process don't clash)."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry()
        labels = ["route", "method", "status"]
        self.requests = Counter(
            "opensesame_http_requests", "HTTP requests.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "opensesame_http_request_duration_seconds",
            "HTTP request latency.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.prediction = Histogram(
            "opensesame_prediction_duration_seconds",
            "Time spent in the predictor per /predict request.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "opensesame_rate_limit_rejections",
            "Requests refused by a rate limit, by the limit that refused them.",
            ["scope"],
            registry=self.registry,
        )
        self.registry.register(RuntimeCollector(runtime))

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method, str(status)).observe(seconds)


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


# --- guardrails in front of /predict -------------------------------------------------------------


def client_identity(headers: Headers, scope: Scope) -> str:
    """Who a request counts against: X-User-Id, else the API key, else the client address.
    Only the guard's salted hash of it is ever kept."""
    user = headers.get("x-user-id", "").strip()
    if user:
        return f"user:{user[:256]}"
    key = headers.get("x-api-key", "").strip()
    auth = headers.get("authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    if key:
        return f"key:{key[:512]}"
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
        paths: frozenset[str] = frozenset({PREDICT_PATH}),
        limited: frozenset[str] = frozenset({PREDICT_PATH, MCP_PATH}),
    ) -> None:
        self.app = app
        self.guard = guard
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.paths = paths
        self.limited = limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in self.limited
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        extra_headers: dict[str, str] = {}
        if self.guard is not None:
            decision = self.guard.check(client_identity(headers, scope))
            extra_headers = ratelimit_headers(decision, self.guard.policy_header)
            if not decision.allowed:
                self.metrics.rate_limited.labels(decision.scope).inc()
                log.info("rate limited (%s limit)", decision.scope)
                message = (
                    "temporarily blocked after repeated rate-limit violations"
                    if decision.scope == "blocked"
                    else f"rate limit exceeded ({decision.scope} quota: "
                    f"{decision.limit} per {decision.window_seconds} s)"
                )
                response = error_response(429, "rate_limited", message, headers=extra_headers)
                await response(scope, receive, send)
                return
        if scope["path"] not in self.paths:
            await self.app(scope, receive, _with_headers(send, extra_headers))
            return
        refusal = self._check_headers(headers)
        if refusal is None:
            body, refusal = await self._read_body(receive)
        if refusal is not None:
            refusal.headers.update(extra_headers)
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), _with_headers(send, extra_headers))

    def _check_headers(self, headers: Headers) -> JSONResponse | None:
        content_type = headers.get("content-type", "")
        if not is_json(content_type):
            return error_response(
                415, "unsupported_media_type", "Content-Type must be application/json"
            )
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return error_response(400, "bad_request", "Content-Length is not a number")
            if int(length) > self.max_body_bytes:
                return self._too_large()
        return None

    async def _read_body(self, receive: Receive) -> tuple[bytes, JSONResponse | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), None

    def _too_large(self) -> JSONResponse:
        return error_response(
            413,
            "payload_too_large",
            f"request body is over the limit of {self.max_body_bytes} bytes",
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


# --- health --------------------------------------------------------------------------------------

LLMProbe = Callable[[Settings], Awaitable[LLMHealth]]


async def probe_llm(settings: Settings) -> LLMHealth:
    """Whether the refinement model answers. Hook: the Ollama refiner may pass its own probe."""
    provider = settings.llm_provider
    if provider in ("none", "placeholder"):
        return LLMHealth(provider=provider, status="disabled")
    try:
        async with httpx.AsyncClient(timeout=0.5) as client:
            response = await client.get(f"{settings.ollama_host.rstrip('/')}/api/version")
        ok = response.status_code == 200
    except httpx.HTTPError:
        ok = False
    return LLMHealth(provider=provider, status="reachable" if ok else "unreachable")


def catalog_health(runtime: Runtime, load_error: str | None) -> CatalogHealth:
    catalog = runtime.catalog
    names = catalog.spec_names()
    if not runtime.ready.is_set():
        status: Literal["loading", "ok", "empty", "failed"] = "failed" if load_error else "loading"
    else:
        status = "ok" if catalog.operations else "empty"
    return CatalogHealth(
        status=status,
        specs=len(names),
        operations=len(catalog.operations),
        failed_specs=len(catalog.errors),
        spec_names=names,
        error=load_error,
    )


def store_health(runtime: Runtime) -> StoreHealth:
    path = runtime.store.path
    writable = path is None or os.access(path if path.exists() else path.parent, os.W_OK)
    return StoreHealth(
        status="ok" if writable else "read_only",
        backend="tinydb" if path else "memory",
        ttl_seconds=runtime.store.ttl,
    )


async def health_report(
    runtime: Runtime,
    llm_probe: LLMProbe,
    load_error: str | None,
    guard: RateLimitGuard | None = None,
) -> Health:
    catalog = catalog_health(runtime, load_error)
    limits = guard.health() if guard is not None else None
    stats = runtime.store.stats
    components = HealthComponents(
        catalog=catalog,
        store=store_health(runtime),
        llm=(await llm_probe(runtime.settings)).model_copy(
            update={"refiner": runtime.refiner.state.model_dump(mode="json")}
        ),
        cache=CacheHealth(
            l1_hits=stats.l1_hits,
            l2_hits=stats.l2_hits,
            misses=stats.misses,
            writes=stats.writes,
            stale_served=stats.stale_served,
            quarantined=stats.quarantined,
            hit_ratio=round(stats.hit_ratio, 4),
        ),
        rate_limits=None
        if limits is None
        else LimitsHealthModel(
            status="degraded" if limits.degraded else "ok",
            storage=limits.storage,
            shared=limits.shared,
            error=limits.error,
        ),
    )
    status: Literal["ok", "degraded", "loading", "unavailable"] = (
        ("degraded" if limits is not None and limits.degraded else "ok")
        if catalog.status == "ok"
        else "loading"
        if catalog.status == "loading"
        else "unavailable"
    )
    return Health(status=status, name=NAME, version=__version__, components=components)


# --- the app -------------------------------------------------------------------------------------

LifespanContext = Callable[[], AbstractAsyncContextManager[Any]]


def create_app(
    runtime: Runtime,
    settings: Settings | None = None,
    *,
    guard: RateLimitGuard | None = None,
    llm_probe: LLMProbe = probe_llm,
) -> FastAPI:
    """The HTTP app over a runtime. Specs load in a thread at startup unless already loaded.
    `guard` overrides the rate limiter built from settings (tests inject a clock through it)."""
    settings = settings or runtime.settings
    guard = guard if guard is not None else build_guard(settings)
    metrics = HTTPMetrics(runtime)
    load_error: list[str] = []  # why the load failed, once it has
    # Async context managers the lifespan enters, e.g. an MCP session manager (see below).
    lifespans: list[LifespanContext] = []

    def load() -> None:
        try:
            catalog = runtime.load()
        except Exception as exc:  # the server stays up and /health and /predict say why
            load_error.append(str(exc) or type(exc).__name__)
            log.error("loading specs failed: %s", exc)
            return
        for spec in catalog.errors:
            log.warning("spec %s failed: %s", spec.source, spec.error)
        log.info("loaded %d specs, %d operations", len(catalog.specs), len(catalog.operations))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not runtime.ready.is_set():
            threading.Thread(target=load, name="opensesame-load", daemon=True).start()
        async with AsyncExitStack() as stack:
            for context in lifespans:
                await stack.enter_async_context(context())
            yield

    app = FastAPI(
        title="OpenSesame Predictor",
        version=__version__,
        summary="Which API call should I make next? Ranked from your OpenAPI specs.",
        description=(
            "POST a prompt and the calls made so far to `/predict`; get ranked operations with "
            "filled-in parameters, a confidence and the reasons. Errors are "
            '`{"error": {"code": "...", "message": "..."}}`.'
        ),
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},  # Prometheus instead
    )
    install_error_handlers(app)

    @app.post(
        PREDICT_PATH,
        response_model=PredictResult,
        responses=PREDICT_RESPONSES,
        summary="Rank the next API call",
        tags=["predict"],
        openapi_extra={"requestBody": PREDICT_BODY_DOC},
    )
    async def predict(request: Request) -> Response:
        """Rank the operations of the loaded specs for a prompt and the calls made so far."""
        body = parse_body(await request.body())
        if load_error:
            return error_response(503, "load_failed", f"loading specs failed: {load_error[0]}")
        if not runtime.ready.is_set():
            return error_response(
                503, "loading", "specs are still loading; retry shortly", {"Retry-After": "1"}
            )
        started = time.perf_counter()
        result = await runtime.predictor.apredict(body)
        elapsed = time.perf_counter() - started
        metrics.prediction.observe(elapsed)
        log.debug(
            "predict %s -> %d predictions in %.1f ms",
            prompt_fingerprint(body.prompt),
            len(result.predictions),
            elapsed * 1000,
        )
        # Already a validated PredictResult: serialise once, skip FastAPI's re-validation.
        return Response(result.model_dump_json(), media_type="application/json")

    @app.get("/", response_model=Liveness, responses=COMMON_RESPONSES, tags=["service"])
    async def liveness() -> Liveness:
        """Liveness: the process answers."""
        return Liveness(name=NAME, version=__version__)

    @app.get(
        "/health",
        response_model=Health,
        responses={
            503: {"model": Health, "description": "Specs are loading or none is loaded."},
            **COMMON_RESPONSES,
        },
        tags=["service"],
    )
    async def health() -> JSONResponse:
        """Readiness and components: catalog, store, LLM refinement, cache statistics."""
        report = await health_report(
            runtime, llm_probe, load_error[0] if load_error else None, guard
        )
        status = 200 if report.status in ("ok", "degraded") else 503
        return JSONResponse(jsonable_encoder(report), status_code=status)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **COMMON_RESPONSES,
        },
        tags=["service"],
    )
    async def prometheus_metrics() -> Response:
        """Prometheus metrics of this process."""
        from prometheus_client import generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # The MCP server over the same runtime, streamable HTTP at /mcp with its Host/Origin checks.
    # Its route joins ours (a Mount would serve it at /mcp/), and our lifespan runs its sessions.
    from opensesame_predictor.mcp_server import build_server, transport_security

    mcp_server = build_server(runtime, trust_client_roots=False)
    mcp_app = mcp_server.streamable_http_app(
        host=settings.api_host, transport_security=transport_security(settings.api_host)
    )
    app.router.routes.extend(mcp_app.routes)
    lifespans.append(mcp_server.session_manager.run)

    known = frozenset(getattr(route, "path", "") for route in app.routes) - {""}
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(
        GuardMiddleware, guard=guard, metrics=metrics, max_body_bytes=settings.max_body_bytes
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_paths=known)
    app.state.runtime = runtime
    app.state.metrics = metrics
    app.state.guard = guard
    app.state.lifespans = lifespans
    _document(app, runtime, settings)
    return app


def _document(app: FastAPI, runtime: Runtime, settings: Settings) -> None:
    """The OpenAPI schema with the request body and the limits that depend on settings and on
    the loaded catalog (the prompt length, the spec names); rebuilt when the catalog changes."""
    build = app.openapi
    built_for: list[Catalog] = []

    def openapi() -> dict[str, Any]:
        catalog = runtime.catalog
        if app.openapi_schema is None or not built_for or built_for[0] is not catalog:
            app.openapi_schema = None
            schema = build()
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            request = PredictRequest.model_json_schema(ref_template=REF_TEMPLATE)
            schemas.update(request.pop("$defs", {}))
            prompt = request["properties"]["prompt"]
            prompt["maxLength"] = settings.max_prompt_length
            prompt["pattern"] = "^[^\\u0000]*$"  # NUL is refused
            history = request["properties"]["history"]
            history["items"] = {  # an event may also be written as "METHOD /path"
                "anyOf": [
                    history["items"],
                    {"type": "string", "minLength": 1, "maxLength": 2048},
                ]
            }
            names = catalog.spec_names()
            if names:
                request["properties"]["spec"]["anyOf"] = [
                    {"type": "string", "enum": names},
                    {"type": "null"},
                ]
            schemas["PredictRequest"] = request
            app.openapi_schema = schema
            built_for[:] = [catalog]
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def run(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    """`opensesame-predictor http`: serve until interrupted."""
    import prometheus_client
    import uvicorn

    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # noise series
    runtime = Runtime(settings)
    runtime.set_sources(settings.specs, settings.workspace or None)
    try:
        app = create_app(runtime, settings)
    except (ValueError, ConfigurationError) as exc:  # a rate-limit string or storage URI
        print(f"error: rate-limit settings: {exc}", file=sys.stderr)
        return 2
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    from opensesame_predictor.http_limits import with_header_deadline

    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,  # it would log client addresses; the metrics count requests instead
        server_header=False,
        http=with_header_deadline(settings.http_header_timeout_seconds),
        timeout_keep_alive=settings.http_keep_alive_seconds,
        limit_concurrency=settings.http_max_connections,
        # X-Forwarded-For decides who a request counts against: only from configured proxies
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
    )
    # stderr, like every log line: one line so the operator knows where to look
    print(f"serving http://{host}:{port} (docs at /docs, health at /health)", file=sys.stderr)
    uvicorn.Server(config).run()
    return 0
