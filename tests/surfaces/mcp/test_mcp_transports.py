"""The real server processes: stdio spawned by the SDK's stdio client, and streamable HTTP on
127.0.0.1 with the SDK's Host/Origin protection."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
from mcp import Client, StdioServerParameters
from mcp_types import TextContent

ROOT = Path(__file__).resolve().parents[3]


async def test_stdio_server_answers_predict_next_call(
    server_env: dict[str, str], fixtures: Path
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "opensesame_predictor", "mcp", "--spec", "fixtures/petstore-3.0.yaml"],
        env={k: server_env[k] for k in ("OPENSESAME_DATABASE_URL", "PYTHONPATH")},
        cwd=str(ROOT),
    )
    async with Client(params) as client:
        tools = await client.list_tools()
        assert "predict_next_call" in {tool.name for tool in tools.tools}
        result = await client.call_tool(
            "predict_next_call",
            {"prompt": "upload a photo of my pet", "history": ["POST /pets"]},
        )
        bad = await client.call_tool("describe_endpoint", {"api_call": "GET /nope"})
        after = await client.call_tool("list_specs", {})
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["predictions"][0]["api_call"] == "POST /pets/{petId}/photos"
    assert isinstance(result.content[0], TextContent)
    assert result.content[0].text.startswith("1. POST /pets/{petId}/photos")
    assert bad.is_error
    assert not after.is_error


async def test_stdio_server_works_with_a_legacy_handshake(server_env: dict[str, str]) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "opensesame_predictor", "mcp", "--spec", "fixtures/tasks-3.1.json"],
        env={k: server_env[k] for k in ("OPENSESAME_DATABASE_URL", "PYTHONPATH")},
        cwd=str(ROOT),
    )
    async with Client(params, mode="legacy") as client:
        result = await client.call_tool("search_endpoints", {"query": "comments of a task"})
    assert result.structured_content is not None
    assert result.structured_content["matches"][0]["spec"] == "tasks-3.1"


async def test_streamable_http_serves_mcp_and_refuses_foreign_origins(http_server: int) -> None:
    url = f"http://127.0.0.1:{http_server}/mcp"
    async with Client(url) as client:
        result = await client.call_tool("describe_endpoint", {"api_call": "GET /pets/{petId}"})
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["api_call"] == "GET /pets/{petId}"

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "evil", "version": "0"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient() as http:
        evil = await http.post(
            url, json=initialize, headers={**headers, "Origin": "http://evil.example"}
        )
        rebound = await http.post(url, json=initialize, headers={**headers, "Host": "evil.example"})
        local = await http.post(
            url, json=initialize, headers={**headers, "Origin": f"http://127.0.0.1:{http_server}"}
        )
    assert evil.status_code in (400, 403, 421)
    assert rebound.status_code in (400, 403, 421)
    assert local.status_code == 200
