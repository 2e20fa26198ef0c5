"""The client's roots (`roots/list`): which folders a trusted client offers as its workspace."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.shared.message import ServerMessageMetadata
from mcp_types import (
    ClientCapabilities,
    ListRootsRequest,
    ListRootsResult,
    RootsCapability,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

log = logging.getLogger(__name__)

ROOTS_TIMEOUT_SECONDS = 5.0


def _root_paths(result: ListRootsResult) -> list[Path]:
    paths = []
    for root in result.roots:
        parts = urlsplit(str(root.uri))
        if parts.scheme != "file":
            continue
        path = Path(unquote(parts.path))
        if path.is_dir():
            paths.append(path.resolve())
    return paths


async def client_roots(ctx: Context) -> list[Path]:
    """The client's `file://` roots, when it declares the roots capability."""
    try:
        session = ctx.session
        if session.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return []  # roots/list does not exist from 2026-07-28 on
        if not session.check_client_capability(ClientCapabilities(roots=RootsCapability())):
            return []
        # Request-scoped, like the SDK's elicitation: over HTTP it rides the tool call's
        # own response stream, which exists even when the client opened no GET stream.
        related = ServerMessageMetadata(related_request_id=ctx.request_id)
        with anyio.fail_after(ROOTS_TIMEOUT_SECONDS):
            result = await session.send_request(
                ListRootsRequest(), ListRootsResult, metadata=related
            )
    except Exception as exc:  # roots are optional: never fail a call over them
        log.info("could not list the client's roots: %s", exc)
        return []
    return _root_paths(result)
