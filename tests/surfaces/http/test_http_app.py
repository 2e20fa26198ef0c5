"""Every route and every error of the HTTP app, through the ASGI test client."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opensesame_predictor import __version__
from opensesame_predictor.cli import http_app
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.http.health import LLMHealth
from support.services import make_service

PHOTO = {"prompt": "upload a photo of the pet I just created", "history": ["POST /pets"]}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in response.text
    return dict(body["error"])


def test_liveness(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.json() == {
        "name": "opensesame-predictor",
        "version": __version__,
        "status": "ok",
    }


def test_predict_answers_in_the_wire_format(client: TestClient) -> None:
    response = client.post(
        "/predict",
        json={
            "prompt": "upload a photo of the pet I just created",
            "history": [
                {"api_call": "/pets", "method": "POST", "timestamp": "2024-01-01T10:00:00Z"}
            ],
            "max_predictions": 3,
            "temperature": 0.7,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) >= {"predictions", "confidence_scores", "processing_time_ms", "metadata"}
    top = body["predictions"][0]
    assert top["api_call"] == "POST /pets/{petId}/photos"
    assert top["method"] == "POST"
    assert [p["rank"] for p in body["predictions"]] == [1, 2, 3]
    assert body["confidence_scores"] == [p["confidence"] for p in body["predictions"]]
    assert body["metadata"]["processing_method"] == "ml"
    assert body["metadata"]["model_version"]


def test_history_may_be_written_as_strings(client: TestClient) -> None:
    response = client.post("/predict", json=PHOTO)
    assert response.status_code == 200
    assert response.json()["predictions"][0]["api_call"] == "POST /pets/{petId}/photos"


def test_health_reports_components(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    components = body["components"]
    assert components["catalog"] == {
        "status": "ok",
        "specs": 1,
        "operations": 13,
        "failed_specs": 0,
        "spec_names": ["petstore-3.0"],
        "error": None,
    }
    assert components["store"]["status"] == "ok"
    llm = components["llm"]
    assert (llm["provider"], llm["status"]) == ("none", "disabled")
    assert llm["refiner"]["enabled"] is False
    assert llm["refiner"]["last_status"] is None
    assert set(components["cache"]) >= {"l1_hits", "l2_hits", "misses", "hit_ratio"}


def test_health_is_503_while_loading_and_predict_says_loading(petstore_path: Path) -> None:
    runtime = make_service(petstore_path, load=False, rate_limit_enabled=False)
    release = threading.Event()
    real_load = runtime.load

    def slow_load(progress: Any = None) -> Any:
        release.wait(30)
        return real_load(progress)

    runtime.load = slow_load  # type: ignore[method-assign]
    with TestClient(http_app(runtime)) as client:
        response = client.get("/health")
        assert response.status_code == 503
        assert response.json()["status"] == "loading"
        assert response.json()["components"]["catalog"]["status"] == "loading"
        refused = client.post("/predict", json=PHOTO)
        assert_error(refused, 503, "loading")
        assert refused.headers["retry-after"] == "1"
        assert client.get("/").status_code == 200  # liveness does not wait for the catalog
        release.set()
        assert runtime.ready.wait(30)
        assert client.get("/health").status_code == 200
        assert client.post("/predict", json=PHOTO).status_code == 200


def test_a_failed_load_says_why_on_health_and_predict(petstore_path: Path) -> None:
    """Not 'still loading' for ever: the reason, on both routes, and the server stays up."""
    runtime = make_service(petstore_path, load=False, rate_limit_enabled=False)
    done = threading.Event()

    def failing_load(progress: Any = None) -> Any:
        done.set()
        raise OSError("the workspace folder went away")

    runtime.load = failing_load  # type: ignore[method-assign]
    with TestClient(http_app(runtime)) as client:
        assert done.wait(30)
        for _ in range(100):  # the load thread records the failure right after raising
            health = client.get("/health")
            if health.json()["components"]["catalog"]["status"] == "failed":
                break
            threading.Event().wait(0.05)
        assert health.status_code == 503
        assert health.json()["components"]["catalog"]["error"] == "the workspace folder went away"
        refused = assert_error(client.post("/predict", json=PHOTO), 503, "load_failed")
        assert "the workspace folder went away" in refused["message"]
        assert client.get("/").status_code == 200


def test_no_spec_loaded(make_client: Callable[..., TestClient], fixtures: Path) -> None:
    client = make_client(fixtures / "bad" / "invalid.yaml")
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["components"]["catalog"]["status"] == "empty"
    assert health.json()["components"]["catalog"]["failed_specs"] == 1
    assert_error(client.post("/predict", json=PHOTO), 503, "catalog_empty")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"prompt": "x", "max_predictions": 50}, "max_predictions", "20"),
        ({"prompt": "x", "max_predictions": 0}, "max_predictions", "1"),
        ({"prompt": "x", "temperature": 3}, "temperature", "2"),
        ({"prompt": "x", "temperature": "0.5"}, "temperature", "number"),
        ({"prompt": "x", "max_predictions": "5"}, "max_predictions", "integer"),
        ({"prompt": "x", "max_predictions": True}, "max_predictions", "integer"),
        ({"prompt": "x" * 4097}, "prompt", "4096"),
        ({"prompt": 5}, "prompt", "string"),
        ({"prompt": "x", "history": [{"api_call": "/a"}] * 101}, "history", "100"),
        ({"prompt": "x", "history": [{"api_call": "/a", "timestamp": 5}]}, "history.0", ""),
        ({"prompt": "x", "history": [{"method": "GET"}]}, "history.0.api_call", ""),
        ({"prompt": "x", "unknown": 1}, "unknown", ""),
        ({"prompt": "x", "spec": "nope"}, "spec", "petstore-3.0"),
        ({"prompt": "a\x00b"}, "prompt", "NUL"),
    ],
)
def test_invalid_requests_name_the_field(
    client: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    error = assert_error(client.post("/predict", json=body), 422, "invalid_request")
    assert error["field"].startswith(field)
    assert error["message"].startswith(field)
    assert words in error["message"]


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"5", b"null"])
def test_body_must_be_an_object(client: TestClient, body: bytes) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_request")


@pytest.mark.parametrize(
    ("prompt", "rule"),
    [
        ("list users' OR '1'='1", "sql_injection"),
        ("find pets; DROP TABLE pets", "sql_injection"),
        ("show <script>alert(1)</script>", "script_injection"),
        ("get the pet && rm -rf /", "shell_injection"),
        ("read ../../etc/passwd", "path_traversal"),
    ],
)
def test_injection_patterns_are_refused_naming_the_rule(
    client: TestClient, prompt: str, rule: str
) -> None:
    error = assert_error(
        client.post("/predict", json={"prompt": prompt}), 422, "guardrail_violation"
    )
    assert error["rule"] == rule
    assert rule in error["message"]


def test_ordinary_words_are_not_injections(client: TestClient) -> None:
    response = client.post("/predict", json={"prompt": "delete the last order and select a pet"})
    assert response.status_code == 200


def test_guardrails_off_lets_patterns_through(make_client: Callable[..., TestClient]) -> None:
    client = make_client(enable_guardrails=False)
    assert client.post("/predict", json={"prompt": "get the pet && rm -rf /"}).status_code == 200


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/predict", content=b'{"prompt": ', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")
    empty = client.post("/predict", content=b"", headers={"content-type": "application/json"})
    assert_error(empty, 400, "invalid_json")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_content_type_must_be_json(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/predict", content=b'{"prompt": "x"}', headers=headers)
    assert_error(response, 415, "unsupported_media_type")


def test_json_content_type_with_charset_is_fine(client: TestClient) -> None:
    response = client.post(
        "/predict",
        content=b'{"prompt": "list pets"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_body_cap(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=2048)
    big = b'{"prompt": "' + b"x" * 4096 + b'"}'
    declared = client.post("/predict", content=big, headers={"content-type": "application/json"})
    error = assert_error(declared, 413, "payload_too_large")
    assert "2048" in error["message"]

    def chunks() -> Any:  # no Content-Length: the cap applies while reading
        yield big[:1000]
        yield big[1000:]

    streamed = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "payload_too_large")
    bad_length = client.post(
        "/predict",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "abc"},
    )
    assert bad_length.status_code in (400, 413)


def test_unknown_route_and_wrong_method(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    wrong = client.get("/predict")
    assert_error(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "POST"
    assert_error(client.delete("/health"), 405, "method_not_allowed")


def test_internal_errors_are_500_without_details(
    make_client: Callable[..., TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    runtime: Service = client.app.state.service  # type: ignore[attr-defined]

    detail = f"secret-{uuid.uuid4().hex}"  # built at run time: not in the traceback's source

    async def broken(_: Any) -> Any:
        raise RuntimeError(detail)

    runtime.predictor.apredict = broken  # type: ignore[method-assign,assignment]
    response = client.post("/predict", json=PHOTO)
    assert_error(response, 500, "internal_error")
    assert "secret" not in response.text
    assert "RuntimeError" in caplog.text  # the operator sees what failed and where
    assert detail not in caplog.text


def test_metrics(client: TestClient) -> None:
    client.post("/predict", json=PHOTO)
    client.post("/predict", json={"prompt": "x", "max_predictions": 99})
    client.get("/nope")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in (
        'opensesame_http_requests_total{method="POST",route="/predict",status="200"} 1.0',
        'opensesame_http_requests_total{method="POST",route="/predict",status="422"} 1.0',
        'opensesame_http_requests_total{method="GET",route="unmatched",status="404"} 1.0',
        "opensesame_prediction_duration_seconds_count 1.0",
        "opensesame_specs_loaded 1.0",
        "opensesame_operations_loaded 13.0",
    ):
        assert line in text, line
    for name in (
        "opensesame_http_request_duration_seconds_bucket",
        'opensesame_cache_hits_total{level="l1"}',
        "opensesame_cache_misses_total",
        "opensesame_cache_hit_ratio",
        "# TYPE opensesame_rate_limit_rejections_total counter",
    ):
        assert name in text, name


def test_two_apps_in_one_process_keep_their_own_metrics(
    make_client: Callable[..., TestClient],
) -> None:
    first, second = make_client(), make_client()
    first.post("/predict", json=PHOTO)
    assert 'route="/predict",status="200"} 1.0' in first.get("/metrics").text
    assert 'route="/predict"' not in second.get("/metrics").text


def test_openapi_documents_every_response(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    predict = schema["paths"]["/predict"]["post"]
    assert set(predict["responses"]) == {"200", "400", "413", "415", "422", "429", "500", "503"}
    for status, response in predict["responses"].items():
        if status != "200":
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorResponse")
    assert set(predict["responses"]["429"]["headers"]) == {
        "Retry-After",
        "RateLimit",
        "RateLimit-Policy",
    }
    body = predict["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = schema["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert request["properties"]["prompt"]["maxLength"] == 4096
    assert {"type": "string", "enum": ["petstore-3.0"]} in request["properties"]["spec"]["anyOf"]
    assert "PredictResult" in schema["components"]["schemas"]
    assert "HistoryEvent" in schema["components"]["schemas"]
    for path in ("/", "/health", "/metrics"):
        assert "500" in schema["paths"][path]["get"]["responses"]
    assert "503" in schema["paths"]["/health"]["get"]["responses"]


def test_docs_pages(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        response = client.get(path)
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]
        assert "/openapi.json" in response.text


def test_llm_component(make_client: Callable[..., TestClient], petstore_path: Path) -> None:
    client = make_client(llm_provider="ollama", ollama_host="http://127.0.0.1:9")
    llm = client.get("/health").json()["components"]["llm"]
    assert (llm["provider"], llm["status"]) == ("ollama", "unreachable")
    assert llm["refiner"]["enabled"] is True
    assert llm["refiner"]["host"] == "http://127.0.0.1:9"

    async def reachable(service: Service) -> LLMHealth:
        return LLMHealth(provider=service.settings.llm_provider, status="reachable")

    runtime = make_service(petstore_path, llm_provider="ollama", rate_limit_enabled=False)
    hooked = make_client(app=http_app(runtime, llm_probe=reachable))
    health = hooked.get("/health")
    assert health.status_code == 200  # refinement is optional: health does not depend on it
    assert health.json()["components"]["llm"]["status"] == "reachable"


def test_health_reports_a_read_only_store(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/health").json()["components"]["store"]["status"] == "ok"
    # file modes cannot make the file unwritable for root, so the check itself answers no
    monkeypatch.setattr(os, "access", lambda *_: False)
    store = client.get("/health").json()["components"]["store"]
    assert store == {"status": "read_only", "backend": "tinydb", "ttl_seconds": 3600.0}


def test_a_body_nested_too_deeply_is_a_400_that_says_why(client: TestClient) -> None:
    body = b'{"prompt": "pets", "history": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    error = assert_error(response, 400, "invalid_json")
    assert "nested too deeply" in error["message"]
    assert client.post("/predict", json=PHOTO).status_code == 200
