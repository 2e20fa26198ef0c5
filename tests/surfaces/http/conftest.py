"""Fixtures for the HTTP tests: apps over the fixture specs, an ASGI client, a fake clock for
the rate limiter, and a real server process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import limits.storage.memory
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from opensesame_predictor.cli import http_app
from support.network import free_port
from support.processes import FakeClock, RunningServer
from support.redis_server import REDIS_SERVER, Redis
from support.services import make_service

ROOT = Path(__file__).resolve().parents[3]
SERVER = str(ROOT / "server")


@pytest.fixture
def make_client(petstore_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Build an app (rate limits off unless asked for) and a TestClient that runs its lifespan."""
    clients: list[TestClient] = []

    def build(*specs: Path, app: FastAPI | None = None, **overrides: Any) -> TestClient:
        if app is None:
            overrides.setdefault("rate_limit_enabled", False)
            runtime = make_service(*(specs or (petstore_path,)), **overrides)
            app = http_app(runtime)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(limits.storage.memory, "time", types.SimpleNamespace(time=fake.time))
    return fake


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """`python -m opensesame_predictor <args>` on 127.0.0.1, waited for until /health is 200."""
    servers: list[RunningServer] = []

    def start(*args: str, env: dict[str, str] | None = None) -> RunningServer:
        port = free_port()
        stderr_path = tmp_path / f"server-{port}.log"
        environment = {**os.environ, **(env or {})}
        environment["PYTHONPATH"] = os.pathsep.join(
            p for p in (SERVER, environment.get("PYTHONPATH", "")) if p
        )
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "opensesame_predictor", *args, "--port", str(port)],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=ROOT,
            )
        server = RunningServer(process, f"http://127.0.0.1:{port}", stderr_path)
        servers.append(server)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"server exited early:\n{server.stop()}")
            try:
                if httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not healthy in time:\n{server.stop()}")

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    """A redis-server of the test's own, stopped by its pid afterwards."""
    if REDIS_SERVER is None:
        pytest.skip("needs redis-server")
    server = Redis(free_port())
    server.start()
    yield server
    server.stop()
