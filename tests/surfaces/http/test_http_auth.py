"""API keys: Bearer and X-API-Key, 401 with WWW-Authenticate, open probes, docs and metrics by
setting, the rate limit keyed on the key, and no start beyond loopback without keys."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from opensesame_predictor.cli import http_app
from opensesame_predictor.surfaces.http import app as http_module
from opensesame_predictor.surfaces.http.auth import hash_key, new_key
from opensesame_predictor.surfaces.http.ratelimit import RateLimitGuard
from support.network import free_port
from support.services import make_service

ROOT = Path(__file__).resolve().parents[3]
BODY = {"prompt": "list the pets"}
KEY, OTHER_KEY = new_key(), new_key()


@pytest.fixture
def keyed(make_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    def build(**overrides: Any) -> TestClient:
        keys = f"{hash_key(KEY)}, {hash_key(OTHER_KEY)}"
        return make_client(api_keys=keys, **overrides)

    return build


def test_a_key_is_needed_and_both_headers_carry_it(keyed: Callable[..., TestClient]) -> None:
    client = keyed()
    missing = client.post("/predict", json=BODY)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer ")
    assert missing.json()["error"] == {"code": "unauthorized", "message": "an API key is required"}
    wrong = client.post("/predict", json=BODY, headers={"X-API-Key": "osp_" + "x" * 43})
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]
    assert client.post("/predict", json=BODY, headers={"X-API-Key": KEY}).status_code == 200
    bearer = {"Authorization": f"Bearer {OTHER_KEY}"}
    assert client.post("/predict", json=BODY, headers=bearer).status_code == 200
    batch = client.post("/predict/batch", json={"requests": [BODY]})
    assert batch.status_code == 401
    mcp = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert mcp.status_code == 401


def test_probes_stay_open_docs_and_metrics_follow_the_setting(
    keyed: Callable[..., TestClient],
) -> None:
    closed = keyed()
    assert closed.get("/").status_code == 200
    assert closed.get("/health").status_code == 200
    for path in ("/metrics", "/docs", "/redoc", "/openapi.json"):
        assert closed.get(path).status_code == 401, path
        assert closed.get(path, headers={"X-API-Key": KEY}).status_code == 200, path
    opened = keyed(open_docs_and_metrics=True)
    for path in ("/metrics", "/docs", "/openapi.json"):
        assert opened.get(path).status_code == 200, path
    assert opened.post("/predict", json=BODY).status_code == 401


def test_without_keys_nothing_asks_for_one(client: TestClient) -> None:
    assert client.post("/predict", json=BODY).status_code == 200
    assert client.get("/metrics").status_code == 200


def test_a_plain_key_in_the_setting_is_refused(petstore_path: Path) -> None:
    service = make_service(petstore_path, api_keys=KEY)
    with pytest.raises(ValueError, match="OPENSESAME_API_KEYS holds hashes"):
        http_app(service)


def test_the_per_user_limit_keys_on_the_api_key(
    make_client: Callable[..., TestClient], petstore_path: Path
) -> None:
    service = make_service(petstore_path, api_keys=hash_key(KEY))
    guard = RateLimitGuard(per_user="2/minute", block_after=0)
    client = make_client(app=http_app(service, guard=guard))
    codes = [
        client.post(
            "/predict", json=BODY, headers={"X-API-Key": KEY, "X-User-Id": f"rotating-{i}"}
        ).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 429, 429]


def test_the_api_key_command_prints_a_key_and_its_hash(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "server")}
    done = subprocess.run(
        [sys.executable, "-m", "opensesame_predictor", "api-key"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0
    fields = dict(line.split()[:2] for line in done.stdout.splitlines())
    key, digest = fields["key:"], fields["hash:"]
    assert key.startswith("osp_") and len(key) > 40
    assert digest == "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def test_no_start_beyond_loopback_without_keys(tmp_path: Path, fixtures: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "server"), "OPENSESAME_API_KEYS": ""}
    spec = str(fixtures / "petstore-3.0.yaml")
    for host in ("0.0.0.0", "::", "192.0.2.10"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "opensesame_predictor",
                "http",
                "--host",
                host,
                "--port",
                str(free_port()),
                "--spec",
                spec,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 2, (host, done.stderr)
        assert "OPENSESAME_API_KEYS" in done.stderr and "--insecure-no-auth" in done.stderr
        assert "serving" not in done.stderr


def test_beyond_loopback_starts_with_keys_or_when_told(
    monkeypatch: pytest.MonkeyPatch, petstore_path: Path
) -> None:
    bound: list[str] = []
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets=None: bound.append(self.config.host)
    )
    assert http_module.run(make_service(petstore_path, load=False), host="0.0.0.0", port=0) == 2
    assert (
        http_module.run(
            make_service(petstore_path, load=False), host="0.0.0.0", port=0, insecure_no_auth=True
        )
        == 0
    )
    keyed = make_service(petstore_path, load=False, api_keys=hash_key(KEY))
    assert http_module.run(keyed, host="0.0.0.0", port=0) == 0
    assert http_module.run(make_service(petstore_path, load=False), host="127.0.0.1", port=0) == 0
    assert bound == ["0.0.0.0", "0.0.0.0", "127.0.0.1"]
