"""Rate limits of POST /predict with an injected clock: per user, global, and the block."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import Headers

from opensesame_predictor.cli import http_app
from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.http.app import run
from opensesame_predictor.surfaces.http.auth import hash_key
from opensesame_predictor.surfaces.http.middleware import client_identity
from opensesame_predictor.surfaces.http.ratelimit import (
    Decision,
    RateLimitGuard,
    hash_id,
    ratelimit_headers,
)
from support.processes import FakeClock
from support.services import make_service

BODY = {"prompt": "list the pets"}
POLICY = re.compile(r'^"user";q=(\d+);w=(\d+), "global";q=(\d+);w=(\d+)$')
REMAINING = re.compile(r'^"(user|global)";r=(\d+);t=(\d+)$')


def limited_client(
    make_client: Callable[..., TestClient],
    petstore_path: Path,
    clock: FakeClock,
    **guard_options: object,
) -> TestClient:
    runtime = make_service(petstore_path)
    guard = RateLimitGuard(clock=clock.time, **guard_options)  # type: ignore[arg-type]
    return make_client(app=http_app(runtime, guard=guard))


def test_61st_request_in_a_minute_is_429_with_headers(
    make_client: Callable[..., TestClient], petstore_path: Path, clock: FakeClock
) -> None:
    client = limited_client(make_client, petstore_path, clock)
    headers = {"X-User-Id": "alice"}
    for i in range(60):
        response = client.post("/predict", json=BODY, headers=headers)
        assert response.status_code == 200, (i, response.text)
        assert REMAINING.match(response.headers["ratelimit"]).group(2) == str(59 - i)  # type: ignore[union-attr]
        clock.advance(0.5)  # 60 requests over 30 s

    refused = client.post("/predict", json=BODY, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    policy = POLICY.match(refused.headers["ratelimit-policy"])
    assert policy is not None and policy.groups()[:2] == ("60", "60")
    remaining = REMAINING.match(refused.headers["ratelimit"])
    assert remaining is not None and remaining.group(1, 2) == ("user", "0")

    # another user is not affected; the first one is served again once the window moves on
    assert client.post("/predict", json=BODY, headers={"X-User-Id": "bob"}).status_code == 200
    clock.advance(retry_after + 0.1)
    assert client.post("/predict", json=BODY, headers=headers).status_code == 200

    metrics = client.get("/metrics").text
    assert 'opensesame_rate_limit_rejections_total{scope="user"} 1.0' in metrics
    assert 'route="/predict",status="429"} 1.0' in metrics


def test_rotating_ids_meet_the_global_limit(
    make_client: Callable[..., TestClient], petstore_path: Path, clock: FakeClock
) -> None:
    client = limited_client(make_client, petstore_path, clock, global_limit="100/minute")
    statuses = [
        client.post("/predict", json=BODY, headers={"X-User-Id": f"user-{i}"}).status_code
        for i in range(105)
    ]
    assert statuses[:100] == [200] * 100
    assert statuses[100:] == [429] * 5
    refused = client.post("/predict", json=BODY, headers={"X-User-Id": "fresh"})
    assert refused.status_code == 429
    assert refused.headers["ratelimit"].startswith('"global";r=0;')
    assert "global" in refused.json()["error"]["message"]
    clock.advance(61)
    assert client.post("/predict", json=BODY, headers={"X-User-Id": "fresh"}).status_code == 200


def test_repeated_violations_block_for_a_while(
    make_client: Callable[..., TestClient], petstore_path: Path, clock: FakeClock
) -> None:
    client = limited_client(
        make_client, petstore_path, clock, per_user="5/minute", block_after=3, block_seconds=600
    )
    headers = {"X-API-Key": "k-123"}
    statuses = [client.post("/predict", json=BODY, headers=headers).status_code for _ in range(9)]
    assert statuses == [200] * 5 + [429] * 4  # the 4th refusal in a minute starts the block
    blocked = client.post("/predict", json=BODY, headers=headers)
    assert blocked.status_code == 429
    assert "blocked" in blocked.json()["error"]["message"]
    assert int(blocked.headers["retry-after"]) > 500
    clock.advance(120)  # the per-user window is long past, the block is not
    assert client.post("/predict", json=BODY, headers=headers).status_code == 429
    clock.advance(600)
    assert client.post("/predict", json=BODY, headers=headers).status_code == 200
    assert 'opensesame_rate_limit_rejections_total{scope="blocked"}' in client.get("/metrics").text


def test_other_routes_are_not_limited(
    make_client: Callable[..., TestClient], petstore_path: Path, clock: FakeClock
) -> None:
    client = limited_client(make_client, petstore_path, clock, per_user="2/minute")
    for _ in range(5):
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_settings_turn_limits_on_and_off(make_client: Callable[..., TestClient]) -> None:
    limited = make_client(rate_limit_enabled=True, rate_limit_per_user="3/minute")
    assert [limited.post("/predict", json=BODY).status_code for _ in range(4)] == [200] * 3 + [429]
    for options in ({"rate_limit_enabled": False}, {"enable_guardrails": False}):
        free = make_client(rate_limit_per_user="3/minute", **options)
        assert {free.post("/predict", json=BODY).status_code for _ in range(5)} == {200}
        assert "ratelimit" not in free.post("/predict", json=BODY).headers


def test_user_identity_order() -> None:
    scope = {"client": ("10.1.2.3", 5555)}

    def who(**headers: str) -> str:
        return client_identity(
            Headers(headers={k.replace("_", "-"): v for k, v in headers.items()}), scope
        )

    # an API key is who the caller is: X-User-Id cannot be rotated around its quota
    assert who(x_user_id="alice", x_api_key="k") == f"key:{hash_key('k')}"
    assert who(x_api_key="k") == f"key:{hash_key('k')}"
    assert who(authorization="Bearer tok") == f"key:{hash_key('tok')}"
    assert who(x_user_id="alice") == "user:alice"
    assert who() == "addr:10.1.2.3"


def test_ids_are_kept_only_as_salted_hashes(clock: FakeClock) -> None:
    guard = RateLimitGuard(clock=clock.time, salt="pepper")
    guard.check("user:alice-canary-id")
    storage = guard.limiter.storage
    kept = repr(vars(storage))
    assert "alice-canary-id" not in kept
    assert hash_id("user:alice-canary-id", b"pepper") in kept
    assert hash_id("x", b"a") != hash_id("x", b"b")
    random_salted = RateLimitGuard(clock=clock.time)
    assert random_salted.key("user:a") != guard.key("user:a")


def test_header_format() -> None:
    allowed = Decision(True, "user", 60, 42, 60, 17)
    assert ratelimit_headers(allowed, "P") == {
        "RateLimit-Policy": "P",
        "RateLimit": '"user";r=42;t=17',
    }
    refused = Decision(False, "blocked", 1, 0, 300, 0)
    assert ratelimit_headers(refused, "P")["Retry-After"] == "1"  # never 0


def test_bad_limit_strings_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimitGuard(per_user="sixty a minute")


def test_http_mode_refuses_bad_limit_settings(
    petstore_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(specs=[str(petstore_path)], rate_limit_per_user="sixty a minute")
    assert run(Service(settings), host="127.0.0.1", port=0) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: settings:") and "sixty a minute" in error


MCP_CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "predict_next_call", "arguments": {"prompt": "list the pets"}},
}


def test_mcp_requests_count_against_the_same_limits(
    make_client: Callable[..., TestClient], petstore_path: Path, clock: FakeClock
) -> None:
    """/mcp predicts too: a user blocked on /predict is blocked there, and its POSTs spend the
    same per-user quota."""
    client = limited_client(make_client, petstore_path, clock)
    alice = {"X-User-Id": "alice"}
    for _ in range(60):
        assert client.post("/predict", json=BODY, headers=alice).status_code == 200
    refused = client.post("/mcp", json=MCP_CALL, headers=alice)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"

    carol = {"X-User-Id": "carol"}
    statuses = [client.post("/mcp", json=MCP_CALL, headers=carol).status_code for _ in range(61)]
    assert 429 not in statuses[:60] and statuses[60] == 429
    assert client.post("/predict", json=BODY, headers=carol).status_code == 429


def test_mcp_requests_meet_the_global_limit(
    make_client: Callable[..., TestClient], petstore_path: Path, clock: FakeClock
) -> None:
    client = limited_client(make_client, petstore_path, clock, global_limit="50/minute")
    for i in range(50):
        client.post("/predict", json=BODY, headers={"X-User-Id": f"user-{i}"})
    refused = client.post("/mcp", json=MCP_CALL, headers={"X-User-Id": "fresh"})
    assert refused.status_code == 429
    assert "global" in refused.json()["error"]["message"]


def test_answers_refused_while_loading_spend_no_quota(
    make_client: Callable[..., TestClient], petstore_path: Path, clock: FakeClock
) -> None:
    """A caller retrying while the specs load gets 503 `loading` each time, and still has
    the whole quota once they are loaded: the refusal was the server's, not the caller's."""
    runtime = make_service(petstore_path, load=False)
    release = threading.Event()
    real_load = runtime.load

    def slow_load(progress: object = None) -> object:
        release.wait(30)
        return real_load(progress)  # type: ignore[arg-type]

    runtime.load = slow_load  # type: ignore[method-assign]
    guard = RateLimitGuard(per_user="3/minute", block_after=0, clock=clock.time)
    client = make_client(app=http_app(runtime, guard=guard))
    headers = {"X-User-Id": "alice"}
    for _ in range(5):
        refused = client.post("/predict", json=BODY, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "loading"
        assert refused.headers["retry-after"] == "1"
    release.set()
    assert runtime.ready.wait(30)
    answers = [client.post("/predict", json=BODY, headers=headers).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
