"""Rate limits shared through a real Redis: two limiters, and two server processes, count as
one; only salted hashes reach Redis; losing Redis mid-run degrades to per-process counting
(logged, reported by /health), never to a 500.

Needs Debian's `redis-server` (installed by `.ci/run`)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from opensesame_predictor.surfaces.http import ratelimit
from opensesame_predictor.surfaces.http.ratelimit import RateLimitGuard
from support.network import free_port
from support.processes import RunningServer
from support.redis_server import REDIS_SERVER, Redis

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server")
SALT = "a-salt-shared-by-every-process"


def guard(url: str, **overrides: object) -> RateLimitGuard:
    settings: dict[str, object] = {
        "per_user": "5/minute",
        "global_limit": "100/minute",
        "block_after": 0,
        "storage_uri": url,
        "salt": SALT,
        **overrides,
    }
    return RateLimitGuard(**settings)  # type: ignore[arg-type]


def test_two_limiters_share_the_user_and_global_limits(redis_server: Redis) -> None:
    first, second = guard(redis_server.url), guard(redis_server.url)
    allowed = [(first if i % 2 else second).check("ana").allowed for i in range(12)]
    assert allowed.count(True) == 5
    first, second = (guard(redis_server.url, global_limit="8/minute") for _ in range(2))
    first.reset()
    users = [f"user-{i}" for i in range(12)]
    decisions = [(first if i % 2 else second).check(user) for i, user in enumerate(users)]
    assert [d.allowed for d in decisions].count(True) == 8
    assert {d.scope for d in decisions if not d.allowed} == {"global"}


def test_a_block_earned_on_one_process_holds_on_another(redis_server: Redis) -> None:
    first = guard(redis_server.url, per_user="2/minute", block_after=3, block_seconds=300)
    second = guard(redis_server.url, per_user="2/minute", block_after=3, block_seconds=300)
    scopes = [first.check("kenji").scope for _ in range(8)]
    assert "blocked" in scopes
    assert second.check("kenji").scope == "blocked"
    assert second.check("maya").allowed


def test_redis_holds_salted_hashes_never_the_user_id(redis_server: Redis) -> None:
    limiter = guard(redis_server.url, block_after=1)
    for _ in range(8):
        limiter.check("ana.ruiz@example.com")
    keys = redis_server.keys()
    assert keys and not any("ana" in key or "example" in key for key in keys)
    assert any(limiter.key("ana.ruiz@example.com") in key for key in keys)


def test_a_shared_storage_without_a_salt_is_refused(redis_server: Redis) -> None:
    with pytest.raises(ValueError, match="OPENSESAME_RATE_LIMIT_SALT"):
        guard(redis_server.url, salt="")


def test_losing_redis_serves_on_local_counts_and_says_so(
    redis_server: Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = guard(redis_server.url, per_user="3/minute")
    assert limiter.check("omar").allowed
    assert not limiter.health().degraded
    redis_server.stop()
    with caplog.at_level(logging.ERROR, logger="opensesame_predictor.surfaces.http.ratelimit"):
        decisions = [limiter.check("omar") for _ in range(5)]
    # counted in this process from the outage on: the local limit still holds
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    health = limiter.health()
    assert health.degraded and health.shared and health.storage == "redis"
    assert health.error and "Connection" in health.error
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "redis://" in errors[0].getMessage()
    # Redis back: the next probe finds it and the limits are shared again
    monkeypatch.setattr(ratelimit, "PROBE_SECONDS", 0.0)
    limiter._next_probe = 0.0
    redis_server.start()
    assert not limiter.health().degraded
    assert limiter.check("omar").allowed  # Redis forgot the count: it started empty


def test_an_unreachable_redis_at_start_is_reported_not_fatal() -> None:
    limiter = guard(f"redis://127.0.0.1:{free_port()}/0")
    assert limiter.health().degraded
    assert limiter.check("priya").allowed


def test_two_server_processes_share_one_redis(
    redis_server: Redis, start_server: Callable[..., RunningServer], fixtures: Path
) -> None:
    env = {
        "OPENSESAME_RATE_LIMIT_STORAGE_URI": redis_server.url,
        "OPENSESAME_RATE_LIMIT_SALT": SALT,
        "OPENSESAME_RATE_LIMIT_PER_USER": "10/minute",
        "OPENSESAME_RATE_LIMIT_BLOCK_AFTER": "0",
    }
    spec = str(fixtures / "petstore-3.0.yaml")
    servers = [start_server("http", "--spec", spec, env=env) for _ in range(2)]
    body = {"prompt": "find a pet by its id", "history": []}
    codes = [
        httpx.post(
            f"{servers[i % 2].base_url}/predict",
            json=body,
            headers={"X-User-Id": "liam"},
            timeout=10,
        ).status_code
        for i in range(24)
    ]
    assert codes.count(200) == 10 and codes.count(429) == 14
    redis_server.stop()
    after = [
        httpx.post(
            f"{server.base_url}/predict", json=body, headers={"X-User-Id": "sofia"}, timeout=10
        )
        for server in servers
    ]
    assert [r.status_code for r in after] == [200, 200]
    health = httpx.get(f"{servers[0].base_url}/health", timeout=10)
    assert health.status_code == 200
    report = health.json()
    assert report["status"] == "degraded"
    assert report["components"]["rate_limits"]["status"] == "degraded"
    logged = servers[0].stop()
    assert "rate-limit storage redis:// unreachable" in logged
    assert "Traceback" not in logged


def test_the_server_refuses_to_start_with_a_shared_storage_and_no_salt(
    redis_server: Redis, fixtures: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "OPENSESAME_RATE_LIMIT_STORAGE_URI": redis_server.url,
        "OPENSESAME_RATE_LIMIT_SALT": "",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "server"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "opensesame_predictor",
            "http",
            "--port",
            str(free_port()),
            "--spec",
            str(fixtures / "petstore-3.0.yaml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "OPENSESAME_RATE_LIMIT_SALT" in done.stderr
    assert "Traceback" not in done.stderr
