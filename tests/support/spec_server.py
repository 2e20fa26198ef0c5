"""A small threaded HTTP server on 127.0.0.1 for fetch tests, with canned routes.

    with LocalServer({"/spec.yaml": spec_route(body, etag='"v1"')}) as server:
        fetch(server.url("/spec.yaml"), FetchPolicy(allow_private=True))

Every request is recorded (`server.requests`) so tests can check what a client sent, e.g. its
`If-None-Match` header, or that a refused URL was never requested at all.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

Route = Callable[["Handler"], None]


@dataclass
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str] = field(default_factory=dict)


class Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.owner.requests.append(
            Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
        )
        route = self.server.owner.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.reply(404, b"not found", content_type="text/plain")
            return
        with contextlib.suppress(ConnectionError):  # clients may hang up on purpose
            route(self)

    def reply(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        content_length: bool = True,
    ) -> None:
        """Send a whole response; without `content_length` the body ends when the connection
        closes, the way servers stream bodies of unknown size."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if content_length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hangs up mid-body is expected in size-cap tests


class LocalServer:
    """An HTTP server on 127.0.0.1 with an ephemeral port, served from a background thread."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Seen] = []
        self.stopping = threading.Event()  # slow routes wait on it so stop() is prompt
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.owner = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._running = False

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> LocalServer:
        self._thread.start()
        self._running = True
        return self

    def stop(self) -> None:
        if self._running:
            self.stopping.set()
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._running = False
        self._server.server_close()

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def spec_route(
    body: bytes | str,
    etag: str | None = None,
    last_modified: str | None = None,
    content_type: str = "application/yaml",
) -> Route:
    """Serve a spec; answer 304 when the client's validator matches."""
    data = body.encode() if isinstance(body, str) else body

    def route(handler: Handler) -> None:
        headers = {}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        if (etag and handler.headers.get("If-None-Match") == etag) or (
            last_modified and handler.headers.get("If-Modified-Since") == last_modified
        ):
            handler.reply(304, headers=headers, content_length=False)
            return
        handler.reply(200, data, content_type=content_type, headers=headers)

    return route


def redirect_route(location: str, status: int = 302) -> Route:
    def route(handler: Handler) -> None:
        handler.reply(status, headers={"Location": location})

    return route


def large_route(size: int, content_length: bool = True, chunk: int = 16384) -> Route:
    """A body of `size` bytes, with or without a Content-Length header."""

    def route(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if content_length:
            handler.send_header("Content-Length", str(size))
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        sent = 0
        while sent < size:
            part = min(chunk, size - sent)
            handler.wfile.write(b" " * part)
            sent += part

    return route


def slow_route(delay: float, body: bytes = b'{"openapi": "3.0.0"}') -> Route:
    """Wait `delay` seconds (or until the server stops) before answering."""

    def route(handler: Handler) -> None:
        if handler.server.owner.stopping.wait(delay):
            return
        handler.reply(200, body)

    return route
