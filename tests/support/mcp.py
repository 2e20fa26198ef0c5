"""Calling the MCP server's tools in memory, and reading their text."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp_types import CallToolResult, TextContent

from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.mcp.server import build_server


def text_of(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


async def call(runtime: Service, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async with Client(build_server(runtime)) as client:
        return await client.call_tool(tool, arguments)
