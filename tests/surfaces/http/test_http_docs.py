"""The docs as a new user meets them: /docs and /redoc render with no network (their assets
come from the installed package), "Try it out" starts from a real request, and the errors of
a request with nothing to go on or a bad history entry say what a request may hold."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from opensesame_predictor.surfaces.http.app import create_app
from opensesame_predictor.surfaces.http.auth import hash_key
from support.processes import RunningServer
from support.services import make_service

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
KEY = "osp_docs-test-key"


def _external_references(html: str) -> list[str]:
    """Every src/href/url() of a page that names a host (http://, https:// or //host)."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(["']?([^)"']+)""", html)
    urls = [a or b for a, b in found]
    return [u for u in urls if re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", u, re.IGNORECASE)]


@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Debian's chromium (.ci/run installs it; in CI its absence fails)",
)
def test_docs_render_the_predict_operation_in_a_browser_with_no_network(
    start_server: Callable[..., RunningServer], fixtures: Path
) -> None:
    server = start_server(
        "http", "--host", "127.0.0.1", "--spec", str(fixtures / "petstore-3.0.yaml")
    )
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assert _external_references(html) == [], (page, _external_references(html))
            assert "/docs-assets/" in html
    assert CHROMIUM is not None
    # every request beyond loopback goes to a proxy that is not there: no network at all
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--proxy-server=http://127.0.0.1:9",
            f"--user-data-dir={server.stderr_path.parent / 'chromium'}",
            "--virtual-time-budget=8000",
            "--dump-dom",
            f"{server.base_url}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'class="swagger-ui' in dom.stdout, dom.stdout[:2000]
    assert re.search(r'data-path="/predict"', dom.stdout), dom.stdout[:4000]
    assert "Rank the next API call" in dom.stdout


def test_docs_assets_follow_the_docs_rule_of_api_keys() -> None:
    for open_docs, status in ((False, 401), (True, 200)):
        service = make_service(load=False, api_keys=hash_key(KEY), open_docs_and_metrics=open_docs)
        with TestClient(create_app(service)) as client:
            for path in ("/docs", "/redoc", "/docs-assets/swagger-ui-bundle.js"):
                assert client.get(path).status_code == status, (path, open_docs)
            keyed = client.get("/docs-assets/swagger-ui.css", headers={"X-API-Key": KEY})
            assert keyed.status_code == 200 and "swagger-ui" in keyed.text
            # the prefix opens the assets only, never a way around the key
            assert client.get("/docs-assets/../predict").status_code in (401, 404, 405)


def test_try_it_out_starts_from_a_real_request(fixtures: Path) -> None:
    service = make_service(fixtures / "petstore-3.0.yaml")
    with TestClient(create_app(service)) as client:
        schema = client.get("/openapi.json").json()
        body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
        example = body["example"]
        assert example["prompt"] and example["history"] == ["POST /pets"]
        answer = client.post("/predict", json=example)
        assert answer.status_code == 200
        assert answer.json()["predictions"][0]["api_call"] == "POST /pets/{petId}/photos"
        request = schema["components"]["schemas"]["PredictRequest"]
        assert request["properties"]["prompt"]["examples"][0]
        assert request["properties"]["history"]["examples"] == [["POST /pets"]]


@pytest.mark.parametrize(
    "body",
    [{}, {"prompt": ""}, {"history": []}, {"prompt": "", "history": [], "max_predictions": 3}],
)
def test_neither_prompt_nor_history_is_a_422_naming_both(fixtures: Path, body: dict) -> None:
    service = make_service(fixtures / "petstore-3.0.yaml")
    with TestClient(create_app(service)) as client:
        answer = client.post("/predict", json=body)
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["code"] == "invalid_request"
        assert "prompt" in error["message"] and "history" in error["message"]
        alone = client.post("/predict", json={"history": ["POST /pets"]})  # what comes next
        assert alone.status_code == 200 and alone.json()["predictions"]


@pytest.mark.parametrize("entry", [5, None, ["GET /pets"], {"method": "GET"}, {"api_call": 7}, ""])
def test_a_bad_history_entry_says_what_an_entry_may_be(fixtures: Path, entry: object) -> None:
    service = make_service(fixtures / "petstore-3.0.yaml")
    with TestClient(create_app(service)) as client:
        answer = client.post("/predict", json={"prompt": "list pets", "history": [entry]})
        assert answer.status_code == 422
        message = answer.json()["error"]["message"]
        assert message.startswith("history.0"), message
        assert "a history entry is a call already made" in message
        assert "'POST /pets'" in message and "api_call" in message
        assert "Input should be" not in message and "HistoryEvent" not in message


def test_a_busy_port_is_one_line_and_serving_is_said_only_once_bound(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "opensesame_predictor", "http", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: the port is in use"
    ]
