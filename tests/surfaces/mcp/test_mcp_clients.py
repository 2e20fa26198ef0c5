"""The client configurations in clients/mcp/ name real commands, and the example client runs."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from opensesame_predictor.cli import build_parser

CLIENTS = Path(__file__).resolve().parents[3] / "clients" / "mcp"
ROOT = CLIENTS.parents[1]


def parses_as_mcp_command(args: list[str]) -> None:
    parsed = build_parser().parse_args(args)
    assert parsed.command == "mcp"


@pytest.mark.parametrize("name", ["claude_desktop_config.json", "mcp.json"])
def test_json_configs_start_the_mcp_server(name: str) -> None:
    servers = json.loads((CLIENTS / name).read_text())["mcpServers"]
    stdio = [s for s in servers.values() if "command" in s]
    assert stdio
    for server in stdio:
        assert Path(server["command"]).name == "opensesame-predictor"
        parses_as_mcp_command(server["args"])
    for server in servers.values():
        if server.get("type") == "http":
            assert server["url"].startswith("http://127.0.0.1:")
            assert server["url"].endswith("/mcp")


def test_claude_code_commands_start_the_mcp_server() -> None:
    lines = [
        line.lstrip("# ").strip()
        for line in (CLIENTS / "claude-code.sh").read_text().splitlines()
        if "claude mcp add" in line
    ]
    assert len(lines) == 2
    stdio = shlex.split(lines[0])
    assert stdio[:3] == ["claude", "mcp", "add"]
    command = stdio[stdio.index("--") + 1 :]
    assert command[0] == "opensesame-predictor"
    parses_as_mcp_command(command[1:])
    http = shlex.split(lines[1])
    assert "--transport" in http and http[http.index("--transport") + 1] == "http"
    assert http[-1].endswith("/mcp")


def test_example_client_over_stdio(server_env: dict[str, str], fixtures: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(CLIENTS / "example_client.py"),
            "--spec",
            str(fixtures / "petstore-3.0.yaml"),
            "--history",
            "POST /pets",
            "upload a photo of my pet",
        ],
        env=server_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tools: predict_next_call, search_endpoints")
    assert lines[1].startswith("1. POST /pets/{petId}/photos")
    assert any(line.startswith("POST /pets/{petId}/photos [petstore-3.0]") for line in lines)


def test_example_client_over_http(server_env: dict[str, str], http_server: int) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(CLIENTS / "example_client.py"),
            "--url",
            f"http://127.0.0.1:{http_server}/mcp",
            "list all pets",
        ],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "GET /pets" in result.stdout
