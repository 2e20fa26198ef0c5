"""A client's roots never widen what `load_spec` may read. With `--workspace`, roots can only
narrow it; over HTTP (any client that passes the Host/Origin checks) without a workspace, no
file is read at all; and a refusal never says whether a path outside exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp_types import CallToolResult, ListRootsResult, Root, TextContent

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.mcp.server import build_server

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def text_of(result: CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


def claiming(*folders: Path) -> Any:
    async def roots(context: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=f.as_uri(), name=f.name) for f in folders])  # type: ignore[arg-type]

    return roots


def runtime(**settings: Any) -> Service:
    built = Service(Settings(**settings))
    built.set_sources(built.settings.specs, built.settings.workspace or None)
    built.load()
    return built


async def test_roots_cannot_widen_a_workspace(fixtures: Path) -> None:
    workspace = fixtures / "workspace"
    server = build_server(runtime(workspace=str(workspace)), trust_client_roots=False)
    async with Client(server, mode="legacy", list_roots_callback=claiming(Path("/"))) as client:
        for outside in ("/etc/passwd", "/proc/self/status", "/etc/no-such-file", "/dev/zero"):
            refused = await client.call_tool("load_spec", {"source": outside})
            assert refused.is_error and "outside the workspace" in text_of(refused), outside
        inside = await client.call_tool(
            "load_spec", {"source": str(workspace / "api" / "openapi.yaml")}
        )
        assert not inside.is_error, text_of(inside)


async def test_roots_inside_the_workspace_narrow_it(fixtures: Path) -> None:
    workspace = fixtures / "workspace"
    narrow = workspace / "api"
    server = build_server(runtime(workspace=str(workspace)), trust_client_roots=True)
    async with Client(server, mode="legacy", list_roots_callback=claiming(narrow)) as client:
        elsewhere = await client.call_tool("load_spec", {"source": str(workspace / "swagger.json")})
        assert elsewhere.is_error and "outside the workspace" in text_of(elsewhere)
        inside = await client.call_tool("load_spec", {"source": str(narrow / "openapi.yaml")})
        assert not inside.is_error, text_of(inside)


async def test_over_http_without_a_workspace_no_file_is_read(fixtures: Path) -> None:
    spec = fixtures / "petstore-3.0.yaml"
    server = build_server(runtime(specs=[str(spec)]), trust_client_roots=False)
    async with Client(server, mode="legacy", list_roots_callback=claiming(Path("/"))) as client:
        for source in (str(fixtures / "tasks-3.1.json"), "/etc/passwd", "/etc/no-such-file"):
            refused = await client.call_tool("load_spec", {"source": source})
            assert refused.is_error
            assert "loads files only from its workspace" in text_of(refused), source
        listed = await client.call_tool("list_specs", {})
        assert not listed.is_error
