"""The image's configuration run for real, without a container: a server process started with
the Dockerfile's environment (loopback and a free port instead of 0.0.0.0:8000, temporary
folders instead of /specs and /data) and the HEALTHCHECK command run against it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deploy_support import ROOT, exec_form, stages

SERVER = str(ROOT / "server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health_check_command() -> list[str]:
    (check,) = stages()[1][-1].all("HEALTHCHECK")
    command = exec_form(check.arguments.split("CMD", 1)[1])
    return [sys.executable if command[0] == "python" else command[0], *command[1:]]


def image_environment(tmp_path: Path, port: int) -> dict[str, str]:
    """The runtime stage's ENV, with the image's paths and address moved onto this machine,
    and the example specs copied where the image has them."""
    runtime = stages()[1][-1]
    env = runtime.env()
    specs = tmp_path / "specs"
    specs.mkdir()
    (copy,) = [
        c.arguments.split()
        for c in runtime.all("COPY")
        if c.arguments.split()[-1].rstrip("/") == env["OPENSESAME_WORKSPACE"]
    ]
    for source in copy[:-1]:
        shutil.copy(ROOT / source, specs)
    data = tmp_path / "data"
    data.mkdir()
    env["OPENSESAME_WORKSPACE"] = str(specs)
    store = Path(env["OPENSESAME_DATABASE_URL"])
    env["OPENSESAME_DATABASE_URL"] = str(data / store.name)
    env["OPENSESAME_API_HOST"] = "127.0.0.1"  # the test stays on loopback
    env["OPENSESAME_API_PORT"] = str(port)
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    port = free_port()
    image_env = image_environment(tmp_path, port)
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith("OPENSESAME_")
    } | image_env
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (SERVER, environment.get("PYTHONPATH", "")) if p
    )
    log = tmp_path / "server.log"
    arguments = exec_form(stages()[1][-1].all("CMD")[-1].arguments)  # the image's CMD
    command = [sys.executable, "-m", "opensesame_predictor", *arguments]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=tmp_path,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, f"server exited early:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail(f"server not healthy in time:\n{log.read_text()}")
        yield base, environment, tmp_path / "data"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_image_environment_serves_the_example_specs(
    server: tuple[str, dict[str, str], Path],
) -> None:
    base, _, data = server
    health = httpx.get(f"{base}/health", timeout=5).json()
    catalog = health["components"]["catalog"]
    assert catalog["status"] == "ok"
    assert catalog["specs"] == 3 and catalog["failed_specs"] == 0
    response = httpx.post(
        f"{base}/predict",
        json={"prompt": "upload a photo of the pet I just created", "history": ["POST /pets"]},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert (data / "store.json").exists()  # the store went to the volume's folder


def test_the_health_check_passes_on_a_healthy_server(
    server: tuple[str, dict[str, str], Path],
) -> None:
    _, environment, _ = server
    result = subprocess.run(
        health_check_command(), env=environment, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def test_the_health_check_fails_when_nothing_answers(tmp_path: Path) -> None:
    environment = {**os.environ, "OPENSESAME_API_PORT": str(free_port())}
    result = subprocess.run(
        health_check_command(), env=environment, capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
