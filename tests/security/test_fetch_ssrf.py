"""The fetcher refuses URLs that could reach the local machine or internal network (SSRF), and
it refuses them before any connection is made: a listener on 127.0.0.1 never sees one."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core import fetch as fetch_module
from opensesame_predictor.core.errors import FetchRefused, SpecError
from opensesame_predictor.core.fetch import FetchPolicy, fetch
from opensesame_predictor.service import Service, fetch_policy
from support.spec_server import LocalServer, redirect_route, spec_route

SPEC = "openapi: 3.0.0\ninfo: {title: Remote, version: '1'}\npaths:\n  /ping:\n    get: {}\n"
STRICT = FetchPolicy(timeout_seconds=0.5)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every outgoing TCP connection httpx (httpcore, on anyio) tries to open, by address."""
    seen: list[Any] = []
    real = socket.create_connection
    real_async = anyio.connect_tcp

    def spy(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        seen.append(address)
        return real(address, *args, **kwargs)

    async def spy_async(*args: Any, **kwargs: Any) -> Any:
        host = kwargs.get("remote_host", args[0] if args else None)
        port = kwargs.get("remote_port", args[1] if len(args) > 1 else None)
        seen.append((host, port))
        return await real_async(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    monkeypatch.setattr(anyio, "connect_tcp", spy_async)
    return seen


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A raw TCP listener on 127.0.0.1; a connection to it would wait in its backlog."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def assert_never_connected(sock: socket.socket) -> None:
    # A TCP handshake completes in the kernel even if nobody calls accept(); a non-blocking
    # accept() that finds nothing proves no client ever connected.
    with pytest.raises(BlockingIOError):
        conn, _ = sock.accept()
        conn.close()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ftp.example.com/openapi.yaml",
        "gopher://127.0.0.1:70/_GET",
        "dict://127.0.0.1:11211/stat",
        "javascript:alert(1)",
    ],
)
def test_only_http_and_https_are_fetched(url: str, connections: list[Any]) -> None:
    with pytest.raises(FetchRefused) as info:
        fetch(url, STRICT)
    assert "is not allowed (http, https only)" in info.value.reason
    assert info.value.source == url
    assert connections == []


def test_a_host_resolving_to_loopback_is_refused_and_never_contacted(
    listener: socket.socket, connections: list[Any]
) -> None:
    port = listener.getsockname()[1]
    assert "127.0.0.1" in {info[4][0] for info in socket.getaddrinfo("localhost", port)}
    url = f"http://localhost:{port}/openapi.json"
    with pytest.raises(FetchRefused) as info:
        fetch(url, STRICT)
    assert info.value.code == "fetch_refused"
    assert "non-public address 127.0.0.1" in info.value.reason
    assert "OPENSESAME_ALLOW_PRIVATE_URLS" in info.value.reason
    assert url in info.value.message
    assert connections == []
    assert_never_connected(listener)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:9/", "127.0.0.1"),
        ("http://10.0.0.1/openapi.json", "10.0.0.1"),
        ("http://192.168.1.10:8080/spec.yaml", "192.168.1.10"),
        ("http://172.16.5.4/spec.yaml", "172.16.5.4"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::1]:8080/openapi.json", "::1"),
        ("http://[fe80::1]/openapi.json", "fe80::1"),
        ("http://[::ffff:127.0.0.1]/openapi.json", "127.0.0.1"),  # IPv4-mapped loopback
        ("http://0.0.0.0:8000/openapi.json", "0.0.0.0"),
        ("http://2130706433/openapi.json", "127.0.0.1"),  # decimal form of 127.0.0.1
        ("http://100.64.0.1/openapi.json", "100.64.0.1"),  # carrier-grade NAT
        # IPv6 forms that carry a loopback IPv4 address
        ("http://[::127.0.0.1]/openapi.json", "127.0.0.1"),  # IPv4-compatible
        ("http://[64:ff9b::7f00:1]/openapi.json", "127.0.0.1"),  # NAT64
        ("http://[64:ff9b:1::7f00:1]/openapi.json", "127.0.0.1"),  # local-use NAT64
        ("http://[2002:7f00:1::1]/openapi.json", "127.0.0.1"),  # 6to4
        ("http://[2002:a00:1::1]/openapi.json", "10.0.0.1"),  # 6to4 of a private address
    ],
)
def test_private_and_link_local_addresses_are_refused_before_connecting(
    url: str, address: str, connections: list[Any]
) -> None:
    with pytest.raises(FetchRefused) as info:
        fetch(url, STRICT)
    assert f"non-public address {address}" in info.value.reason
    assert connections == []


def test_urls_with_credentials_are_refused(connections: list[Any]) -> None:
    with pytest.raises(FetchRefused, match="credentials"):
        fetch("http://user:secret@127.0.0.1/openapi.json", FetchPolicy(allow_private=True))
    assert connections == []


def test_allow_private_reaches_a_local_server(connections: list[Any]) -> None:
    with LocalServer({"/openapi.yaml": spec_route(SPEC)}) as server:
        result = fetch(server.url("/openapi.yaml"), FetchPolicy(allow_private=True))
    assert result.content == SPEC.encode()
    assert connections == [("127.0.0.1", server.port)]  # the spy does see real connections


def test_the_setting_turns_into_the_fetch_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fetch_policy(Settings()).allow_private is False
    monkeypatch.setenv("OPENSESAME_ALLOW_PRIVATE_URLS", "true")
    settings = Settings()
    assert fetch_policy(settings).allow_private is True
    with LocalServer({"/openapi.yaml": spec_route(SPEC)}) as server:
        settings = Settings(specs=[server.url("/openapi.yaml")])
        runtime = Service.from_settings(settings)
    assert [op.key for op in runtime.catalog.operations] == ["GET /ping"]


def test_without_the_setting_the_runtime_reports_the_refusal(listener: socket.socket) -> None:
    url = f"http://localhost:{listener.getsockname()[1]}/openapi.yaml"
    runtime = Service.from_settings(Settings(specs=[url]))
    [summary] = runtime.catalog.specs
    assert summary.source == url
    assert summary.error is not None and "non-public address" in summary.error
    assert_never_connected(listener)


def test_a_redirect_to_a_disallowed_scheme_is_refused() -> None:
    routes = {"/spec": redirect_route("file:///etc/passwd")}
    with LocalServer(routes) as server, pytest.raises(FetchRefused) as info:
        fetch(server.url("/spec"), FetchPolicy(allow_private=True))
    assert "'file' is not allowed" in info.value.reason
    assert server.paths() == ["/spec"]


@pytest.fixture
def public_alias(monkeypatch: pytest.MonkeyPatch) -> Callable[[LocalServer], str]:
    """Make `spec-host.test` look like a public host that is served by a local server, so a
    test can follow the classic SSRF: a public URL that redirects into the private network."""
    real = fetch_module._public_address

    def resolve(source: str, host: str, port: int, allow_private: bool) -> str:
        if host == "spec-host.test":
            return "127.0.0.1"
        return real(source, host, port, allow_private)

    monkeypatch.setattr(fetch_module, "_public_address", resolve)
    return lambda server: server.url("/", host="spec-host.test").rstrip("/")


@pytest.mark.parametrize(
    "target",
    ["http://localhost:{port}/internal", "http://169.254.169.254/latest/meta-data/"],
)
def test_every_redirect_hop_is_checked_again(
    target: str,
    public_alias: Callable[[LocalServer], str],
    listener: socket.socket,
    connections: list[Any],
) -> None:
    location = target.format(port=listener.getsockname()[1])
    with LocalServer({"/spec": redirect_route(location)}) as server:
        base = public_alias(server)
        with pytest.raises(FetchRefused) as info:
            fetch(f"{base}/spec", FetchPolicy(timeout_seconds=0.5))
    assert "non-public address" in info.value.reason
    # the first hop went to the checked address with the original Host header (pinned) ...
    assert connections == [("127.0.0.1", server.port)]
    assert server.requests[0].headers["host"] == f"spec-host.test:{server.port}"
    # ... and the second hop was never attempted
    assert_never_connected(listener)


def test_a_public_looking_redirect_chain_is_followed(
    public_alias: Callable[[LocalServer], str],
) -> None:
    with LocalServer() as server:
        base = public_alias(server)
        server.routes["/old"] = redirect_route(f"{base}/new", status=301)
        server.routes["/new"] = redirect_route("/openapi.yaml", status=307)  # relative
        server.routes["/openapi.yaml"] = spec_route(SPEC)
        result = fetch(f"{base}/old", FetchPolicy(timeout_seconds=2))
    assert result.content == SPEC.encode()
    assert server.paths() == ["/old", "/new", "/openapi.yaml"]


def test_a_redirect_loop_stops_at_the_limit() -> None:
    with LocalServer() as server:
        server.routes["/a"] = redirect_route(server.url("/b"))
        server.routes["/b"] = redirect_route("/a")
        with pytest.raises(FetchRefused) as info:
            fetch(server.url("/a"), FetchPolicy(allow_private=True, max_redirects=3))
    assert info.value.reason == "more than 3 redirects"
    assert len(server.requests) == 4  # the first request and three redirects


def test_a_redirect_without_location_is_an_error() -> None:
    def no_location(handler: Any) -> None:
        handler.reply(302)

    with LocalServer({"/spec": no_location}) as server, pytest.raises(SpecError) as info:
        fetch(server.url("/spec"), FetchPolicy(allow_private=True))
    assert "without a Location" in info.value.reason


def test_a_host_that_does_not_resolve_is_a_spec_error(connections: list[Any]) -> None:
    with pytest.raises(SpecError) as info:
        fetch("http://no-such-host.invalid/openapi.json", STRICT)
    assert not isinstance(info.value, FetchRefused)
    assert "cannot resolve host 'no-such-host.invalid'" in info.value.reason
    assert connections == []
