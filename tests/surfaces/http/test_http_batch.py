"""POST /predict/batch: answers in order, per-item errors, per-item rate limits, body caps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from opensesame_predictor.cli import http_app
from opensesame_predictor.surfaces.http.middleware import BATCH_LIMIT
from opensesame_predictor.surfaces.http.ratelimit import RateLimitGuard
from support.processes import FakeClock
from support.services import make_service

REQUESTS = [
    {"prompt": "find the pet with id 7", "history": []},
    {"prompt": "place an order for it", "history": ["GET /pets/7"]},
    {"prompt": "log the user out"},
]


def test_answers_come_in_order_and_match_single_predictions(client: TestClient) -> None:
    response = client.post("/predict/batch", json={"requests": REQUESTS})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert all(r["status"] == 200 and "error" not in r for r in results)
    for request, answer in zip(REQUESTS, results, strict=True):
        single = client.post("/predict", json=request).json()
        batched = answer["result"]["predictions"]
        assert [p["api_call"] for p in batched] == [p["api_call"] for p in single["predictions"]]
        assert [p["confidence"] for p in batched] == [
            p["confidence"] for p in single["predictions"]
        ]


def test_a_bad_item_gets_its_own_error_and_the_rest_are_answered(client: TestClient) -> None:
    requests = [
        REQUESTS[0],
        {"prompt": "list the pets", "max_predictions": "5"},
        {"prompt": "pets'; DROP TABLE pets; --"},
        {"prompt": "x" * 10, "unknown": 1},
        REQUESTS[2],
    ]
    response = client.post("/predict/batch", json={"requests": requests})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 422, 422, 422, 200]
    assert results[1]["error"]["code"] == "invalid_request"
    assert results[1]["error"]["field"] == "requests.1.max_predictions"
    assert results[2]["error"]["code"] == "guardrail_violation"
    assert results[2]["error"]["rule"] == "sql_injection"
    assert "result" not in results[1] and results[4]["result"]["predictions"]


def test_a_batch_that_is_no_batch_is_refused_whole(client: TestClient) -> None:
    cases = [
        [REQUESTS[0]],
        {"requests": []},
        {"requests": [REQUESTS[0]] * (BATCH_LIMIT + 1)},
        {"requests": [REQUESTS[0], "GET /pets"]},
        {"requests": REQUESTS, "extra": True},
        {"prompt": "list the pets"},
    ]
    for body in cases:
        response = client.post("/predict/batch", json=body)
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "requests" in error["message"]
    assert client.post("/predict/batch", json={"requests": [REQUESTS[0]] * BATCH_LIMIT}).is_success
    not_json = client.post(
        "/predict/batch", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    text = client.post("/predict/batch", content=b"{}", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415


def test_the_body_cap_of_a_batch_is_32_predict_bodies(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_body_bytes=1024)
    prompt = "find the pet with id 7 " * 30  # ~700 bytes: one fits the /predict cap
    fits = {"requests": [{"prompt": prompt}] * 30}
    assert client.post("/predict/batch", json=fits).status_code == 200
    over = {"requests": [{"prompt": prompt * 2}] * 30}  # under 32 items, over 32 x 1024 bytes
    assert client.post("/predict/batch", json=over).status_code == 413
    huge = client.post(
        "/predict/batch",
        content=b'{"requests": [' + b" " * (1024 * 32 + 1) + b"]}",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and str(1024 * 32) in huge.json()["error"]["message"]


def test_each_item_counts_against_the_rate_limit(
    make_client: Callable[..., TestClient], petstore_path: Path, clock: FakeClock
) -> None:
    guard = RateLimitGuard(per_user="5/minute", block_after=0, clock=clock.time)
    client = make_client(app=http_app(make_service(petstore_path), guard=guard))
    headers = {"X-User-Id": "ana"}
    response = client.post("/predict/batch", json={"requests": REQUESTS * 3}, headers=headers)
    assert response.status_code == 200
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == [200] * 5 + [429] * 4
    refused = response.json()["results"][5]["error"]
    assert refused["code"] == "rate_limited" and "5 per 60 s" in refused["message"]
    assert response.headers["ratelimit"].startswith('"user";r=0')
    # nothing left: the whole batch is refused, and so is a single /predict
    again = client.post("/predict/batch", json={"requests": REQUESTS[:1]}, headers=headers)
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
    assert client.post("/predict", json=REQUESTS[0], headers=headers).status_code == 429
    # another user has a quota of their own
    other = client.post("/predict/batch", json={"requests": REQUESTS}, headers={"X-User-Id": "b"})
    assert [r["status"] for r in other.json()["results"]] == [200, 200, 200]
    clock.advance(61)
    assert client.post("/predict/batch", json={"requests": REQUESTS}, headers=headers).is_success


def test_the_batch_is_in_the_openapi_document(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/predict/batch"]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["requests"]["maxItems"] == BATCH_LIMIT
    assert body["example"]["requests"]
    assert "BatchResult" in document["components"]["schemas"]
