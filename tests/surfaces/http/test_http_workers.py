"""`http --workers N`: several processes behind one socket share the rate limits through Redis,
/metrics counts every worker, and the parent stops its workers. Per-process limits are refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from opensesame_predictor.config import Settings
from support.network import free_port
from support.processes import RunningServer
from support.redis_server import Redis

ROOT = Path(__file__).resolve().parents[3]


def test_settings_travel_to_the_workers_through_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        specs=["a spec.yaml", "https://example.com/openapi.json"],
        workspace="/srv/specs",
        enable_guardrails=False,
        rate_limit_salt="pepper",  # type: ignore[arg-type]
        http_workers=3,
        cache_ttl_seconds=12.5,
    )
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings


def wait_until_every_worker_loaded(
    base_url: str, in_a_row: int = 12, spanning: float = 2.0
) -> None:
    """A worker answers 503 `loading` until it has read the warm store: wait for a run of
    ready answers on new connections (the kernel spreads them over the workers) that lasts
    a while: a worker busy loading accepts seldom, so a quick run may meet only the other."""
    deadline = time.monotonic() + 60
    ready, since = 0, time.monotonic()
    while ready < in_a_row or time.monotonic() - since < spanning:
        assert time.monotonic() < deadline, "the workers never all finished loading"
        with httpx.Client(base_url=base_url, timeout=10) as client:
            status = client.get("/health").json()["status"]
        if status == "loading":
            ready, since = 0, time.monotonic()
        else:
            ready += 1
        time.sleep(0.05)


def test_two_workers_share_limits_and_metrics(
    redis_server: Redis,
    start_server: Callable[..., RunningServer],
    fixtures: Path,
    tmp_path: Path,
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        "OPENSESAME_RATE_LIMIT_STORAGE_URI": redis_server.url,
        "OPENSESAME_RATE_LIMIT_SALT": "a-shared-salt",
        "OPENSESAME_RATE_LIMIT_PER_USER": "10/minute",
        "OPENSESAME_RATE_LIMIT_BLOCK_AFTER": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    spec = str(fixtures / "petstore-3.0.yaml")
    server = start_server("http", "--workers", "2", "--spec", spec, env=env)
    wait_until_every_worker_loaded(server.base_url)
    body = {"prompt": "find the pet with id 7"}
    codes = []
    for i in range(30):  # a new connection each time: the kernel spreads them over both
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            response = client.post("/predict", json=body, headers={"X-User-Id": f"u{i % 2}"})
            codes.append(response.status_code)
    assert codes.count(200) == 20 and codes.count(429) == 10  # 10 per user, not per worker
    # both workers run in multiprocess mode: each wrote its own gauge file
    pids = {re.search(r"_(\d+)\.db$", f.name).group(1) for f in metrics_dir.glob("*.db")}  # type: ignore[union-attr]
    assert len(pids) >= 2, sorted(metrics_dir.iterdir())
    exposition = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    counted = {
        status: float(value)
        for status, value in re.findall(
            r'opensesame_http_requests_total\{method="POST",route="/predict",status="(\d+)"\} '
            r"([\d.]+)",
            exposition,
        )
    }
    assert counted == {"200": 20.0, "429": 10.0}  # every worker's requests, whichever answers
    assert re.search(r"^opensesame_specs_loaded 1\.0$", exposition, re.MULTILINE)
    assert re.search(r"^opensesame_rate_limit_rejections_total\{scope=\"user\"\} 10\.0$",
                     exposition, re.MULTILINE)  # fmt: skip
    logged = server.stop()
    assert "with 2 workers" in logged and "Traceback" not in logged
    time.sleep(0.5)
    for pid in pids:  # the parent took its workers down with it
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        ), pid


def test_workers_with_per_process_limits_are_refused(fixtures: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "server"),
        "OPENSESAME_RATE_LIMIT_STORAGE_URI": "",
    }
    env.pop("OPENSESAME_RATE_LIMIT_STORAGE_URI")
    done = subprocess.run(
        [sys.executable, "-m", "opensesame_predictor", "http", "--workers", "2",
         "--port", str(free_port()), "--spec", str(fixtures / "petstore-3.0.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "share them through Redis" in done.stderr and "Traceback" not in done.stderr
