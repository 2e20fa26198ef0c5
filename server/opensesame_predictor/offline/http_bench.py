"""`opensesame-predictor bench --http`: POST /predict under load, against a real server process.

It starts `python -m opensesame_predictor http` on 127.0.0.1 (one uvicorn worker or `workers`;
rate limiting off, or on through a shared storage such as Redis to measure what it costs),
waits for /health, then measures
  (a) sustained requests/s: a closed loop of a few concurrent clients over a fixed count,
  (b) latency at 100 requests/s: an open loop that sends on a schedule for a few seconds;
      latency counts from the scheduled send time, so a stalled server cannot hide its queue,
and the server's peak RSS (VmHWM). With a shared rate-limit storage it also checks the quota
across workers: 4,000 requests from 40 users within a minute, 60 a minute each promised, the
global limit above 4,000; each user must get exactly 60 through, whichever worker answers.
Everything is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from opensesame_predictor.config import Settings
from opensesame_predictor.core.errors import CatalogEmpty, SpecError
from opensesame_predictor.offline.bench import bench_prompts
from opensesame_predictor.service import Service

CLIENTS = 4  # concurrent connections of the closed loop
OPEN_LOOP_RPS = 100
OPEN_LOOP_SECONDS = 5.0
PHASE_TIMEOUT = 60.0  # no phase runs longer, whatever the server does
STARTUP_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


QUOTA_USERS = 40
QUOTA_REQUESTS = 4000
QUOTA_PER_USER = 60


def server_command(settings: Settings, port: int, workers: int = 1) -> list[str]:
    command = [sys.executable, "-m", "opensesame_predictor", "http"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    for spec in settings.specs:
        command += ["--spec", spec]
    if settings.workspace:
        command += ["--workspace", settings.workspace]
    return command


def read_memory_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak) and VmRSS (now) of a process, in MB, from /proc."""
    values: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}")
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"the server was not healthy within {timeout:.0f} s")


async def closed_loop(base: str, bodies: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """`total` requests from CLIENTS workers, each sending its next as soon as one returns."""
    latencies: list[float] = []
    errors = 0
    next_index = 0
    deadline = time.monotonic() + PHASE_TIMEOUT

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index, errors
        while next_index < total and time.monotonic() < deadline:
            body = bodies[next_index % len(bodies)]
            next_index += 1
            started = time.perf_counter()
            try:
                response = await client.post("/predict", json=body)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status_code != 200

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, timeout=10.0, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    return _summary(latencies, errors, elapsed, next_index)


def _summary(latencies: list[float], errors: int, elapsed: float, sent: int) -> dict[str, Any]:
    return {
        "sent": sent,
        "rps": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": _percentile(latencies, 50),
        "p95_ms": _percentile(latencies, 95),
    }


async def open_loop(
    base: str, bodies: list[dict[str, Any]], rate: float, seconds: float
) -> dict[str, Any]:
    """Send at `rate` requests/s for `seconds`, whatever the answers; latency from schedule."""
    count = round(rate * seconds)
    latencies: list[float] = []
    errors = 0

    async def one(client: httpx.AsyncClient, body: dict[str, Any], due: float) -> None:
        nonlocal errors
        try:
            response = await client.post("/predict", json=body)
            errors += response.status_code != 200
        except httpx.HTTPError:
            errors += 1
            return
        latencies.append((time.perf_counter() - due) * 1000)

    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=base, timeout=10.0, limits=limits) as client:
        start = time.perf_counter()
        tasks = []
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, bodies[i % len(bodies)], due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=PHASE_TIMEOUT)
        elapsed = time.perf_counter() - start
    return _summary(latencies, errors, elapsed, count)


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def split_requests(total: int) -> tuple[int, int, int]:
    """`total` requests as (warm-up, closed-loop burst, paced at OPEN_LOOP_RPS): they add up
    to `total`, the number the caller asked to send."""
    warm_up = min(50, total // 10)
    paced = min(int(OPEN_LOOP_RPS * OPEN_LOOP_SECONDS), (total - warm_up) // 3)
    return warm_up, total - warm_up - paced, paced


def run_http_bench(
    settings: Settings, requests: int = 1500, workers: int = 1, limits_storage: str = ""
) -> dict[str, Any]:
    """Start a server over `settings.specs` (`workers` processes; rate limits off, or on
    through `limits_storage`), load it, and send it `requests` POST /predict in all (warm-up,
    burst, paced: `split_requests`); the server is stopped by pid."""
    runtime = Service.from_settings(settings)  # the prompts come from the same catalog
    catalog = runtime.catalog
    if catalog.errors:
        raise SpecError(catalog.errors[0].source, catalog.errors[0].error or "failed")
    if not catalog.operations:
        raise CatalogEmpty("no operations loaded: the specs define no paths")
    prompts = bench_prompts(catalog, max(requests, 200))
    bodies = [r.model_dump(mode="json") for r in prompts]
    for request in prompts[:20]:  # warm-up
        runtime.predictor.predict(request)
    in_process = []
    for request in prompts:  # the core alone, for comparison with the HTTP numbers
        started = time.perf_counter()
        runtime.predictor.predict(request)
        in_process.append((time.perf_counter() - started) * 1000)
    warm_up, burst, paced_count = split_requests(requests)

    limits = {"OPENSESAME_RATE_LIMIT_ENABLED": "false"}
    if limits_storage:  # on, but out of the way: what counting in the storage costs
        limits = _limits(limits_storage, "10000000/minute", "10000000/minute")
    with serving(settings, workers, limits) as (base, process):
        idle = _memory(process.pid)
        warm = asyncio.run(closed_loop(base, bodies, warm_up))
        cpu_before = _cpu(process.pid)
        sustained = asyncio.run(closed_loop(base, bodies, burst))
        cpu_used = _cpu(process.pid) - cpu_before
        seconds = paced_count / OPEN_LOOP_RPS
        paced = asyncio.run(open_loop(base, bodies, OPEN_LOOP_RPS, seconds))
        loaded = _memory(process.pid)
    quota: dict[str, Any] = {}
    if limits_storage:
        per_user, total = f"{QUOTA_PER_USER}/minute", f"{QUOTA_REQUESTS * 2}/minute"
        with serving(settings, workers, _limits(limits_storage, per_user, total)) as (base, _):
            quota = asyncio.run(quota_check(base, bodies))
    return {
        "specs": len(catalog.spec_names()),
        "operations": len(catalog.operations),
        "workers": workers,
        "rate_limits": limits_storage.split("://", 1)[0] if limits_storage else "off",
        "clients": CLIENTS,
        "requests_sent": warm["sent"] + sustained["sent"] + paced["sent"],
        "rps": sustained["rps"],
        "burst_requests": sustained["requests"],
        "burst_errors": sustained["errors"],
        "burst_p50_ms": sustained["p50_ms"],
        "burst_p95_ms": sustained["p95_ms"],
        # CPU the server spent per request: 1000 / this is the ceiling of one worker on an idle
        # core, whatever else the machine is doing
        "server_cpu_ms_per_request": round(cpu_used * 1000 / max(1, sustained["requests"]), 2),
        "paced_rps_target": OPEN_LOOP_RPS,
        "paced_requests": paced["requests"],
        "paced_errors": paced["errors"],
        "p50_ms_at_100rps": paced["p50_ms"],
        "p95_ms_at_100rps": paced["p95_ms"],
        "core_p50_ms": _percentile(in_process, 50),
        "core_p95_ms": _percentile(in_process, 95),
        "rss_mb_idle": idle.get("VmRSS", 0.0),
        "rss_mb": loaded.get("VmHWM", 0.0),
        **quota,
    }


def _limits(storage: str, per_user: str, total: str) -> dict[str, str]:
    return {
        "OPENSESAME_RATE_LIMIT_ENABLED": "true",
        "OPENSESAME_RATE_LIMIT_STORAGE_URI": storage,
        "OPENSESAME_RATE_LIMIT_SALT": secrets.token_hex(16),
        "OPENSESAME_RATE_LIMIT_PER_USER": per_user,
        "OPENSESAME_RATE_LIMIT_GLOBAL": total,
        "OPENSESAME_RATE_LIMIT_BLOCK_AFTER": "0",
    }


def _family(pid: int) -> list[int]:
    """The server and its workers (children), whose memory and CPU add up."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


def _memory(pid: int) -> dict[str, float]:
    total: dict[str, float] = {}
    for member in _family(pid):
        for key, value in read_memory_mb(member).items():
            total[key] = round(total.get(key, 0.0) + value, 1)
    return total


def _cpu(pid: int) -> float:
    return sum(cpu_seconds(member) for member in _family(pid))


@contextlib.contextmanager
def serving(
    settings: Settings, workers: int, env_extra: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A server process on a free loopback port, healthy, stopped by its pid afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **env_extra}
    env.setdefault("OPENSESAME_DATABASE_URL", str(settings.database_path()))
    with tempfile.TemporaryFile() as log_file:
        process = subprocess.Popen(
            server_command(settings, port, workers),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            try:
                wait_healthy(base, process, STARTUP_TIMEOUT)
            except RuntimeError as exc:
                log_file.seek(0)
                tail = log_file.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"{exc}; its log ends with:\n{tail}") from None
            yield base, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def quota_check(base: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """QUOTA_REQUESTS requests spread over QUOTA_USERS users, 16 at a time: how many each
    user got through."""
    accepted = dict.fromkeys(range(QUOTA_USERS), 0)
    refused = errors = 0
    queue = list(range(QUOTA_REQUESTS))
    started = time.perf_counter()

    async def sender(client: httpx.AsyncClient) -> None:
        nonlocal refused, errors
        while queue and time.perf_counter() - started < PHASE_TIMEOUT:
            i = queue.pop()
            user = i % QUOTA_USERS
            headers = {"X-User-Id": f"quota-user-{user}"}
            try:
                response = await client.post(
                    "/predict", json=bodies[i % len(bodies)], headers=headers
                )
            except httpx.HTTPError:
                errors += 1
                continue
            if response.status_code == 200:
                accepted[user] += 1
            elif response.status_code == 429:
                refused += 1
            else:
                errors += 1

    # no keep-alive: each request a new connection, which the kernel hands to any worker
    limits = httpx.Limits(max_connections=16, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=10.0, limits=limits) as client:
        await asyncio.gather(*(sender(client) for _ in range(16)))
    counts = sorted(accepted.values())
    return {
        "quota_users": QUOTA_USERS,
        "quota_sent": QUOTA_REQUESTS - len(queue),
        "quota_seconds": round(time.perf_counter() - started, 1),
        "quota_promised_per_user": QUOTA_PER_USER,
        "quota_accepted_per_user_min": counts[0],
        "quota_accepted_per_user_max": counts[-1],
        "quota_refused": refused,
        "quota_errors": errors,
    }
