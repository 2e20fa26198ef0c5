"""Core errors answer with the JSON-RPC error of their kind, from the service's one table."""

from __future__ import annotations

from lsprotocol import types

from opensesame_predictor.core.errors import CatalogEmpty, InvalidRequest, SpecError
from opensesame_predictor.service import Loading
from opensesame_predictor.surfaces.lsp.server import rpc_error


def test_core_errors_map_by_kind() -> None:
    invalid = rpc_error(InvalidRequest("prompt: too long", field="prompt"))
    assert invalid.code == types.ErrorCodes.InvalidParams
    assert invalid.data == {"code": "invalid_request"}
    empty = rpc_error(CatalogEmpty("no spec is loaded"))  # not the caller's fault
    assert empty.code == types.LSPErrorCodes.RequestFailed
    assert empty.data == {"code": "catalog_empty"}
    assert rpc_error(Loading("still loading")).code == types.LSPErrorCodes.RequestFailed
    assert rpc_error(SpecError("a.yaml", "broken")).code == types.ErrorCodes.InternalError
