"""Hostile or broken JSON-RPC on stdio: the language server and the MCP server answer what they
can, ignore what they cannot parse, and stay up for the next good message."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import pytest

TIMEOUT = 30.0


def spawn(*args: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENSESAME_DATABASE_URL": str(tmp_path / "store.json")}
    return subprocess.Popen(
        [sys.executable, "-m", "opensesame_predictor", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def reader(stream: IO[bytes], framed: bool) -> queue.Queue[dict[str, Any]]:
    """Messages the server writes, parsed in a thread: LSP frames or MCP lines."""
    messages: queue.Queue[dict[str, Any]] = queue.Queue()

    def run() -> None:
        while True:
            if framed:
                length = 0
                while (line := stream.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if not line:
                    return
                messages.put(json.loads(stream.read(length)))
            else:
                line = stream.readline()
                if not line:
                    return
                messages.put(json.loads(line))

    threading.Thread(target=run, daemon=True).start()
    return messages


def answer_to(messages: queue.Queue[dict[str, Any]], request_id: int) -> dict[str, Any]:
    """The response with this id, skipping notifications and other answers."""
    while True:
        message = messages.get(timeout=TIMEOUT)
        if message.get("id") == request_id and "method" not in message:
            return message


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=10)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def test_language_server_survives_malformed_messages(fixtures: Path, tmp_path: Path) -> None:
    process = spawn("lsp", "--spec", str(fixtures / "petstore-3.0.yaml"), tmp_path=tmp_path)
    assert process.stdin is not None and process.stdout is not None
    messages = reader(process.stdout, framed=True)
    try:
        for body in (
            b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {',  # cut short
            b"\xff\xfe not even text",
            b'{"hello": "world"}',  # JSON, but no JSON-RPC
            b'{"jsonrpc": "2.0", "id": 2, "method": "no/such/method", "params": {}}',
        ):
            process.stdin.write(frame(body))
        initialize = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "initialize",
            "params": {"processId": None, "rootUri": None, "capabilities": {}},
        }
        process.stdin.write(frame(json.dumps(initialize).encode()))
        process.stdin.flush()
        unknown = answer_to(messages, 2)
        assert unknown["error"]["code"] == -32601  # method not found
        answer = answer_to(messages, 3)
        assert "capabilities" in answer["result"]
        assert process.poll() is None
    finally:
        stop(process)


@pytest.mark.parametrize(
    "garbage",
    [b"not json at all\n", b'{"jsonrpc": "2.0", "id": 1, "method": \n', b"[1, 2, 3]\n"],
)
def test_mcp_server_survives_malformed_messages(
    fixtures: Path, tmp_path: Path, garbage: bytes
) -> None:
    process = spawn("mcp", "--spec", str(fixtures / "petstore-3.0.yaml"), tmp_path=tmp_path)
    assert process.stdin is not None and process.stdout is not None
    messages = reader(process.stdout, framed=False)
    try:
        process.stdin.write(garbage)
        initialize = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        }
        process.stdin.write(json.dumps(initialize).encode() + b"\n")
        process.stdin.flush()
        answer = answer_to(messages, 7)
        assert answer["result"]["serverInfo"]["name"]
        assert process.poll() is None
    finally:
        stop(process)
