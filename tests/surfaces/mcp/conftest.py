"""Fixtures for the MCP server tests: a runtime over fixture specs and the server built on it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service

ROOT = Path(__file__).resolve().parents[3]


def loaded_runtime(*specs: Path, **settings: object) -> Service:
    """A runtime over the given specs, loaded (the store comes from OPENSESAME_DATABASE_URL)."""
    runtime = Service(Settings(specs=[str(s) for s in specs], **settings))  # type: ignore[arg-type]
    runtime.set_sources(runtime.settings.specs, runtime.settings.workspace or None)
    runtime.load()
    return runtime


ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_runtime() -> ServiceFactory:
    """`make_runtime(*spec_paths, **settings)`: a loaded runtime on the test's own store."""
    return loaded_runtime


@pytest.fixture
def petstore(fixtures: Path) -> Service:
    return loaded_runtime(fixtures / "petstore-3.0.yaml")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_accepting(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing accepted on 127.0.0.1:{port}")


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
