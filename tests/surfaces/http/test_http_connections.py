"""What one connection may hold, on a real server: clients too slow to send their headers
(slowloris) or idle ones are cut off, and X-Forwarded-For counts only from trusted proxies."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from support.processes import RunningServer


def _address(server: RunningServer) -> tuple[str, int]:
    parts = urlsplit(server.base_url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_slow_and_idle_clients_are_cut_off(
    start_server: Callable[..., RunningServer], fixtures: Path
) -> None:
    server = start_server(
        "http",
        "--spec",
        str(fixtures / "petstore-3.0.yaml"),
        env={"OPENSESAME_HTTP_HEADER_TIMEOUT_SECONDS": "1"},
    )
    address = _address(server)
    idle = socket.create_connection(address)
    drips = [socket.create_connection(address) for _ in range(20)]
    for sock in drips:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    while time.monotonic() - started < 4:  # a header line every half second: never done
        for number, sock in enumerate(drips):
            with contextlib.suppress(OSError):  # the server may have closed it already
                sock.sendall(b"X-Drip-%d: 1\r\n" % number)
        time.sleep(0.5)
    for sock in [idle, *drips]:
        sock.settimeout(5)
        assert _closed_by_peer(sock)
        sock.close()
    response = httpx.post(f"{server.base_url}/predict", json={"prompt": "list the pets"})
    assert response.status_code == 200  # real clients are served all along
    server.stop()


def test_forwarded_addresses_count_only_from_trusted_proxies(
    start_server: Callable[..., RunningServer], fixtures: Path
) -> None:
    """Rotating X-Forwarded-For from 127.0.0.1 does not escape the per-address limit."""
    server = start_server(
        "http",
        "--spec",
        str(fixtures / "petstore-3.0.yaml"),
        env={"OPENSESAME_RATE_LIMIT_PER_USER": "5/minute"},
    )
    statuses = [
        httpx.post(
            f"{server.base_url}/predict",
            json={"prompt": "list the pets"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        ).status_code
        for i in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    server.stop()

    trusting = start_server(
        "http",
        "--spec",
        str(fixtures / "petstore-3.0.yaml"),
        env={
            "OPENSESAME_RATE_LIMIT_PER_USER": "5/minute",
            "OPENSESAME_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    behind_proxy = [
        httpx.post(
            f"{trusting.base_url}/predict",
            json={"prompt": "list the pets"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        ).status_code
        for i in range(6)
    ]
    assert behind_proxy == [200] * 6  # six clients behind the configured proxy
    trusting.stop()
