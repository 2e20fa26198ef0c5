"""The HTTP API: POST /predict, liveness, health, Prometheus metrics and the OpenAPI docs.

Protocol glue only: the service does the work; the routes are module-level functions over the
app's service (`app.state.service`). Every error leaves as
`{"error": {"code", "message"}}` with its status code, never as a stack trace. Logs carry no
prompt text: only `prompt_fingerprint` (length and hash). Rate limits, the body cap and the
content-type check run in one ASGI middleware in front of /predict, before the body is parsed.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from limits.errors import ConfigurationError
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.routing import BaseRoute

from opensesame_predictor import __version__
from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.guardrails import prompt_fingerprint
from opensesame_predictor.core.models import PredictRequest, PredictResult
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.http import batch
from opensesame_predictor.surfaces.http.auth import AuthMiddleware, is_loopback, parse_hashes
from opensesame_predictor.surfaces.http.docs import install_docs
from opensesame_predictor.surfaces.http.errors import (
    ErrorResponse,
    install_error_handlers,
    parse_body,
)
from opensesame_predictor.surfaces.http.health import (
    NAME,
    Health,
    Liveness,
    LLMProbe,
    health_report,
    probe_llm,
)
from opensesame_predictor.surfaces.http.metrics import HTTPMetrics
from opensesame_predictor.surfaces.http.middleware import (
    PREDICT_PATH,
    CatchAllMiddleware,
    GuardMiddleware,
    MetricsMiddleware,
    build_guard,
)
from opensesame_predictor.surfaces.http.ratelimit import RateLimitGuard

log = logging.getLogger(__name__)


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
        "application/json": {
            "schema": {"$ref": REF_TEMPLATE.format(model="PredictRequest")},
            # what "Try it out" fills in: a real prompt after a real call
            "example": {
                "prompt": "upload a photo of the pet I just created",
                "history": ["POST /pets"],
                "max_predictions": 5,
            },
        }
    },
}


# --- the routes, over the app's service ----------------------------------------------------------

router = APIRouter()


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


@router.post(
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
    service = service_of(request)
    service.require_ready()
    started = time.perf_counter()
    result = await service.predict(body)
    elapsed = time.perf_counter() - started
    metrics: HTTPMetrics = request.app.state.metrics
    metrics.prediction.observe(elapsed)
    log.debug(
        "predict %s -> %d predictions in %.1f ms",
        prompt_fingerprint(body.prompt),
        len(result.predictions),
        elapsed * 1000,
    )
    # Already a validated PredictResult: serialise once, skip FastAPI's re-validation.
    return Response(result.model_dump_json(), media_type="application/json")


@router.get("/", response_model=Liveness, responses=COMMON_RESPONSES, tags=["service"])
async def liveness() -> Liveness:
    """Liveness: the process answers."""
    return Liveness(name=NAME, version=__version__)


@router.get(
    "/health",
    response_model=Health,
    responses={
        503: {"model": Health, "description": "Specs are loading or none is loaded."},
        **COMMON_RESPONSES,
    },
    tags=["service"],
)
async def health(request: Request) -> JSONResponse:
    """Readiness and components: catalog, store, LLM refinement, cache statistics."""
    report = await health_report(
        service_of(request), request.app.state.llm_probe, request.app.state.guard
    )
    status = 200 if report.status in ("ok", "degraded") else 503
    return JSONResponse(jsonable_encoder(report), status_code=status)


@router.get(
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
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics: of every worker together when there are several."""
    metrics: HTTPMetrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


# --- the app -------------------------------------------------------------------------------------

LifespanContext = Callable[[], AbstractAsyncContextManager[Any]]


@dataclass(frozen=True)
class Mounted:
    """Another ASGI app served by this one, e.g. the MCP server at /mcp: its routes join ours
    (a Mount would serve it at /mcp/), and our lifespan enters its context."""

    routes: Sequence[BaseRoute]
    lifespan: LifespanContext | None = None


def create_app(
    service: Service,
    settings: Settings | None = None,
    *,
    guard: RateLimitGuard | None = None,
    llm_probe: LLMProbe = probe_llm,
    mounted: Sequence[Mounted] = (),
) -> FastAPI:
    """The HTTP app over a service. Specs load in a thread at startup unless already loaded.
    `guard` overrides the rate limiter built from settings (tests inject a clock through it);
    `mounted` apps (the CLI hands in the MCP server) are served beside the routes."""
    settings = settings or service.settings
    guard = guard if guard is not None else build_guard(settings)
    metrics = HTTPMetrics(service)
    lifespans = [m.lifespan for m in mounted if m.lifespan is not None]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start_loading()
        async with AsyncExitStack() as stack:
            for context in lifespans:
                await stack.enter_async_context(context())
            yield
        metrics.process_ended()

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
        docs_url=None,  # served from installed assets, no CDN: see docs.install_docs
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    # flat, so every route path is known to the metrics
    app.router.routes.extend([*router.routes, *batch.router.routes])
    for other in mounted:
        app.router.routes.extend(other.routes)

    known = frozenset(getattr(route, "path", "") for route in app.routes) - {""}
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(
        GuardMiddleware,
        guard=guard,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        require_ready=service.require_ready,
    )
    app.add_middleware(
        AuthMiddleware,
        hashes=parse_hashes(settings.api_keys),
        open_docs_and_metrics=settings.open_docs_and_metrics,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_paths=known)
    app.state.service = service
    app.state.metrics = metrics
    app.state.guard = guard
    app.state.llm_probe = llm_probe
    _document(app, service, settings)
    return app


def _document(app: FastAPI, service: Service, settings: Settings) -> None:
    """The OpenAPI schema with the request body and the limits that depend on settings and on
    the loaded catalog (the prompt length, the spec names); rebuilt when the catalog changes."""
    build = app.openapi
    built_for: list[Catalog] = []

    def openapi() -> dict[str, Any]:
        catalog = service.catalog
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
            # a prompt, a history or both: with neither there is nothing to go on (422)
            request["anyOf"] = [
                {"required": ["prompt"], "properties": {"prompt": {"minLength": 1}}},
                {"required": ["history"], "properties": {"history": {"minItems": 1}}},
            ]
            schemas["PredictRequest"] = request
            app.openapi_schema = schema
            built_for[:] = [catalog]
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def run(
    service: Service,
    host: str | None = None,
    port: int | None = None,
    mounted: Sequence[Mounted] = (),
    insecure_no_auth: bool = False,
    worker_factory: str = "",
) -> int:
    """`opensesame-predictor http`: serve until interrupted. Beyond loopback it needs API keys,
    unless `insecure_no_auth` says the network in front does the job. With several workers
    (`settings.http_workers`), each builds its app with `worker_factory` (an import string)."""
    import prometheus_client
    import uvicorn

    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # noise series
    settings = service.settings
    try:
        app = create_app(service, settings, mounted=mounted)
    except (ValueError, ConfigurationError) as exc:  # rate-limit strings, storage URI, keys
        print(f"error: settings: {exc}", file=sys.stderr)
        return 2
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    if not is_loopback(host) and not settings.api_keys.strip() and not insecure_no_auth:
        print(
            f"error: binding to {host} exposes the service beyond this machine: set "
            "OPENSESAME_API_KEYS (`opensesame-predictor api-key` makes a key), or pass "
            "--insecure-no-auth when something in front authenticates",
            file=sys.stderr,
        )
        return 2
    if settings.http_workers > 1:
        from opensesame_predictor.surfaces.http.workers import run_workers

        return run_workers(settings, app, host, port, worker_factory)
    from opensesame_predictor.surfaces.http.limits import server_options

    config = uvicorn.Config(app, host=host, port=port, **server_options(settings))
    sock = bind(host, port)  # bound first: "serving" is only said of a socket we hold
    if isinstance(sock, str):
        print(f"error: {sock}", file=sys.stderr)
        return 2
    # stderr, like every log line: one line so the operator knows where to look
    print(f"serving http://{host}:{port} (docs at /docs, health at /health)", file=sys.stderr)
    with sock:
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def bind(host: str, port: int) -> socket.socket | str:
    """A listening TCP socket on host:port, or one line saying why there is none (a port in
    use, an address not of this machine) instead of a traceback."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        return f"cannot listen on {host}:{port}: {reason}"
    return sock
