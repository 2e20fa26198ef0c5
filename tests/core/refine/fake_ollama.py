"""A stand-in Ollama server on 127.0.0.1 that speaks the parts of Ollama's HTTP API the refiner
uses (POST /api/chat and /api/generate non-streaming, GET /api/tags, POST /api/embed), with a
behaviour each test sets: a good answer, a stall, garbage, an HTTP error."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["answer", "stall", "garbage_content", "garbage_body", "error500", "no_message"]
Answer = dict[str, Any] | str | Callable[[dict[str, Any]], dict[str, Any] | str]

CREATED_AT = "2024-01-01T10:00:00.000000Z"


@dataclass
class Recorded:
    method: str
    path: str
    body: dict[str, Any]


@dataclass
class FakeOllama:
    """Start with `start()` (returns the base URL), stop with `stop()`."""

    mode: Mode = "answer"
    answer: Answer = field(default_factory=lambda: {"ranking": []})
    stall_seconds: float = 30.0
    models: list[str] = field(default_factory=lambda: ["llama3.2:latest"])
    requests: list[Recorded] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def chats(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/api/chat"]

    def start(self) -> str:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._release.set()  # let stalled handlers finish
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- what the "model" says

    def content(self, body: dict[str, Any]) -> str:
        answer = self.answer(body) if callable(self.answer) else self.answer
        return answer if isinstance(answer, str) else json.dumps(answer)

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        if self.mode == "stall":
            self._release.wait(self.stall_seconds)
        if self.mode == "error500":
            return 500, json.dumps({"error": "model runner crashed"}).encode()
        if self.mode == "garbage_body":
            return 200, b"<html>not an API</html>"
        model = str(body.get("model", ""))
        if path == "/api/embed":
            inputs = body.get("input", "")
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            return 200, _json({"model": model, "embeddings": [_vector(t) for t in texts]})
        content = "this is not JSON {" if self.mode == "garbage_content" else self.content(body)
        if path == "/api/generate":
            return 200, _json(
                {"model": model, "created_at": CREATED_AT, "response": content, "done": True}
            )
        reply: dict[str, Any] = {"model": model, "created_at": CREATED_AT, "done": True}
        if self.mode != "no_message":
            reply["message"] = {"role": "assistant", "content": content}
        reply["done_reason"] = "stop"
        return 200, _json(reply)

    def tags(self) -> bytes:
        return _json(
            {
                "models": [
                    {
                        "name": name,
                        "model": name,
                        "modified_at": CREATED_AT,
                        "size": 2019393189,
                        "digest": hashlib.sha256(name.encode()).hexdigest(),
                        "details": {"format": "gguf", "family": "llama"},
                    }
                    for name in self.models
                ]
            }
        )


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def _vector(text: str, size: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 4) for b in digest[:size]]


def _handler(fake: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _send(self, status: int, payload: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (budget exceeded): expected in stall tests

        def do_GET(self) -> None:
            fake.requests.append(Recorded("GET", self.path, {}))
            if self.path == "/api/tags":
                if fake.mode == "stall":
                    fake._release.wait(fake.stall_seconds)
                self._send(200, fake.tags())
            else:
                self._send(404, b'{"error": "not found"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, b'{"error": "invalid JSON"}')
                return
            fake.requests.append(Recorded("POST", self.path, body))
            if self.path not in ("/api/chat", "/api/generate", "/api/embed"):
                self._send(404, b'{"error": "not found"}')
                return
            status, payload = fake.respond(self.path, body)
            self._send(status, payload)

    return Handler
