"""Fixtures for the MCP server tests: services over fixture specs, and a server process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opensesame_predictor.service import Service
from support import services
from support.network import free_port, wait_until_accepting

ROOT = Path(__file__).resolve().parents[3]


ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service() -> ServiceFactory:
    """`make_service(*spec_paths, **settings)`: a loaded service on the test's own store."""
    return services.make_service


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a server subprocess: its own store, the source tree importable."""
    env = dict(os.environ)
    env["OPENSESAME_DATABASE_URL"] = str(tmp_path / "subprocess-store.json")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "server"), env.get("PYTHONPATH", "")) if p
    )
    return env


@pytest.fixture
def http_server(server_env: dict[str, str], fixtures: Path, tmp_path: Path) -> Iterator[int]:
    """`opensesame-predictor mcp --transport streamable-http` on a free loopback port."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "opensesame_predictor",
        "mcp",
        "--spec",
        str(fixtures / "petstore-3.0.yaml"),
        "--transport",
        "streamable-http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=server_env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_until_accepting(port, process)
            yield port
        finally:
            process.kill()  # by pid: this process only
            process.wait(timeout=10)
