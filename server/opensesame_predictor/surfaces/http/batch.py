"""POST /predict/batch: up to 32 /predict bodies in one request, answered in order.

Each item stands alone: a bad item gets its own error (the status and code /predict would
have answered) and the others are still predicted; each item counts against the rate limits
as one /predict would, so a batch cannot stretch a quota."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from opensesame_predictor.core.errors import InvalidRequest, OpenSesameError
from opensesame_predictor.core.models import PredictResult
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.http.errors import (
    ErrorDetail,
    ErrorResponse,
    core_error_status,
    error_detail,
    error_response,
    load_json,
    parse_item,
)
from opensesame_predictor.surfaces.http.metrics import HTTPMetrics
from opensesame_predictor.surfaces.http.middleware import (
    BATCH_LIMIT,
    BATCH_PATH,
    client_identity,
    refusal_message,
)
from opensesame_predictor.surfaces.http.ratelimit import (
    Decision,
    RateLimitGuard,
    ratelimit_headers,
)


class BatchItem(BaseModel):
    """One request's answer: its result, or the error /predict would have answered."""

    index: int = Field(description="Position of the request in the batch.")
    status: int = Field(description="The HTTP status /predict would have answered.")
    result: PredictResult | None = None
    error: ErrorDetail | None = None


class BatchResult(BaseModel):
    results: list[BatchItem]


BATCH_BODY_DOC = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["requests"],
                "additionalProperties": False,
                "properties": {
                    "requests": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": BATCH_LIMIT,
                        # checked one by one: a bad item gets its own error, not the batch
                        "items": {
                            "type": "object",
                            "description": "A /predict body (PredictRequest), validated on "
                            "its own: a bad one gets its own error in `results`.",
                        },
                    }
                },
            },
            "example": {
                "requests": [
                    {"prompt": "find the pet with id 7", "history": []},
                    {"prompt": "upload a photo of it", "history": ["GET /pets/7"]},
                ]
            },
        }
    },
}

router = APIRouter()


@router.post(
    BATCH_PATH,
    response_model=BatchResult,
    summary="Rank the next API call for several requests",
    tags=["predict"],
    openapi_extra={"requestBody": BATCH_BODY_DOC},
    responses={
        400: {"model": ErrorResponse, "description": "The body is not JSON (`invalid_json`)."},
        413: {"model": ErrorResponse, "description": "Body over 32 × the /predict cap."},
        415: {"model": ErrorResponse, "description": "Content-Type is not application/json."},
        422: {
            "model": ErrorResponse,
            "description": 'Not `{"requests": [...]}` with 1 to 32 items.',
        },
        429: {"model": ErrorResponse, "description": "Every item was refused by a rate limit."},
        503: {"model": ErrorResponse, "description": "Specs are still loading."},
    },
)
async def predict_batch(request: Request) -> Response:
    """Up to 32 /predict bodies; answers in the same order, each with its own status."""
    items = _items(load_json(await request.body()))
    service: Service = request.app.state.service
    service.require_ready()
    guard: RateLimitGuard | None = request.app.state.guard
    metrics: HTTPMetrics = request.app.state.metrics
    identity = client_identity(request.headers, request.scope)
    answers: list[BatchItem] = []
    last: Decision | None = None
    for index, item in enumerate(items):
        if guard is not None:
            last = guard.check(identity)
            if not last.allowed:
                metrics.rate_limited.labels(last.scope).inc()
                detail = ErrorDetail(code="rate_limited", message=refusal_message(last))
                answers.append(BatchItem(index=index, status=429, error=detail))
                continue
        answers.append(await _answer(service, metrics, index, item))
    headers = ratelimit_headers(last, guard.policy_header) if guard and last else {}
    if last is not None and all(a.status == 429 for a in answers):
        return error_response(429, "rate_limited", refusal_message(last), headers=headers)
    body = BatchResult(results=answers).model_dump_json(exclude_none=True)
    return Response(body, media_type="application/json", headers=headers)


async def _answer(service: Service, metrics: HTTPMetrics, index: int, item: Any) -> BatchItem:
    try:
        body = parse_item(item, f"requests.{index}.")
        started = time.perf_counter()
        result = await service.predict(body)
        metrics.prediction.observe(time.perf_counter() - started)
    except OpenSesameError as exc:
        return BatchItem(index=index, status=core_error_status(exc), error=error_detail(exc))
    return BatchItem(index=index, status=200, result=result)


def _items(data: Any) -> list[Any]:
    if not isinstance(data, dict) or set(data) != {"requests"}:
        raise InvalidRequest(
            'a batch is a JSON object {"requests": [...]} and nothing else', field="requests"
        )
    items = data["requests"]
    if not isinstance(items, list) or not 1 <= len(items) <= BATCH_LIMIT:
        raise InvalidRequest(
            f"requests: a list of 1 to {BATCH_LIMIT} /predict bodies", field="requests"
        )
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequest(
                f"requests.{index}: each request is a JSON object, a /predict body",
                field=f"requests.{index}",
            )
    return items
