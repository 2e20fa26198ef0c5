"""Every JSON-RPC request gets an answer: malformed frames sent by a raw stdio client to the
real language server and the real MCP server each get an error with the request's id (a null
id for a parse error), and the server goes on answering."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
WAIT = 30.0


def _deep(levels: int) -> Any:
    nested: Any = []
    for _ in range(levels):
        nested = [nested]
    return nested


class RawClient:
    """A stdio peer that writes frames as given and reads every message the server sends."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        command = [sys.executable, "-m", "opensesame_predictor", mode]
        command += ["--spec", str(FIXTURES / "petstore-3.0.yaml")]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            if self.mode == "lsp":
                length = 0
                while True:
                    header = stream.readline()
                    if not header:
                        return
                    if header.lower().startswith(b"content-length:"):
                        length = int(header.split(b":")[1])
                    if not header.strip():
                        break
                body = stream.read(length)
            else:
                body = stream.readline()
                if not body:
                    return
            self.messages.put(json.loads(body))

    def send(self, message: dict[str, Any] | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(message).encode()
        stdin = self.process.stdin
        assert stdin is not None
        if self.mode == "lsp":
            stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        else:
            stdin.write(data + b"\n")
        stdin.flush()

    def answer(self, request_id: int | None) -> dict[str, Any]:
        """The next response to `request_id` (None: a response with a null id)."""
        while True:
            message = self.messages.get(timeout=WAIT)
            if "method" in message:
                continue  # the server's own notifications and requests
            if message.get("id") == request_id and ("result" in message or "error" in message):
                return message

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=WAIT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def lsp() -> Iterator[RawClient]:
    client = RawClient("lsp")
    client.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"capabilities": {}}})
    client.answer(0)
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    yield client
    client.close()


@pytest.fixture
def mcp() -> Iterator[RawClient]:
    client = RawClient("mcp")
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    }
    client.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params})
    client.answer(0)
    client.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    yield client
    client.close()


POSITION = {"line": 0, "character": 0}


@pytest.mark.parametrize(
    ("frame", "request_id", "code"),
    [
        (  # a document that is a number
            {
                "method": "textDocument/completion",
                "params": {"textDocument": 42, "position": POSITION},
            },
            1,
            -32602,
        ),
        (  # a position nested 200 deep
            {
                "method": "textDocument/hover",
                "params": {"textDocument": {"uri": "file:///a.http"}, "position": _deep(200)},
            },
            2,
            -32602,
        ),
        ({"method": "textDocument/hover", "params": "oops"}, 3, -32602),
        (b'{"jsonrpc":"2.0","id":4,"method":"textDocument/hover",', None, -32700),
        (b'{"jsonrpc":"2.0","id":5,"method":"x","params":' + b"[" * 100_000, None, -32700),
    ],
)
def test_the_language_server_answers_every_request(
    lsp: RawClient, frame: dict[str, Any] | bytes, request_id: int | None, code: int
) -> None:
    if isinstance(frame, bytes):
        lsp.send(raw=frame)
    else:
        lsp.send({"jsonrpc": "2.0", "id": request_id, **frame})
    assert lsp.answer(request_id)["error"]["code"] == code
    lsp.send({"jsonrpc": "2.0", "id": 99, "method": "shutdown"})  # and it goes on
    assert "result" in lsp.answer(99)


@pytest.mark.parametrize(
    ("frame", "request_id", "code"),
    [
        (  # arguments nested 200 deep
            {
                "method": "tools/call",
                "params": {"name": "search_endpoints", "arguments": _deep(200)},
            },
            1,
            -32602,
        ),
        (
            {
                "method": "tools/call",
                "params": {
                    "name": "search_endpoints",
                    "arguments": {"query": "pets"},
                    "x": _deep(200),
                },
            },
            2,
            -32602,
        ),
        ({"method": "tools/list", "params": "oops"}, 3, -32602),
        (b'{"jsonrpc":"2.0","id":4,"method":"tools/list",', None, -32700),
        (b"[" * 100_000, None, -32700),
        (b"not json at all", None, -32700),
    ],
)
def test_the_mcp_server_answers_every_request(
    mcp: RawClient, frame: dict[str, Any] | bytes, request_id: int | None, code: int
) -> None:
    if isinstance(frame, bytes):
        mcp.send(raw=frame)
    else:
        mcp.send({"jsonrpc": "2.0", "id": request_id, **frame})
    assert mcp.answer(request_id)["error"]["code"] == code
    mcp.send({"jsonrpc": "2.0", "id": 99, "method": "tools/list"})  # and it goes on
    assert mcp.answer(99)["result"]["tools"]
