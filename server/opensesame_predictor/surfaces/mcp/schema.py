"""The MCP tools' output models (their outputSchema) and the schema compaction that keeps
tools/list small."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.json_schema import SkipJsonSchema

from opensesame_predictor.core.guardrails import describe_errors

# ---------------------------------------------------------------- output models (schemas)
# Deliberately small: they are the tools' outputSchema, and tools/list must stay ≤ 4 KB.
# `extra="allow"` keeps the wire format's additional fields valid.


class PredictionOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    api_call: str
    method: str
    confidence: float
    rank: int
    description: str = ""
    parameters: dict[str, Any] = {}
    reasons: list[str] = []


class PredictOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    predictions: list[PredictionOut]
    metadata: dict[str, Any]


class EndpointRow(BaseModel):
    api_call: str
    summary: str = ""
    spec: str = ""


class SearchOut(BaseModel):
    matches: list[EndpointRow]
    total: int = 0


class EndpointOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    api_call: str
    spec: str
    parameters: list[dict[str, Any]] = []
    request_body: dict[str, Any] | None = None
    response: dict[str, Any] = {}


class SpecOut(BaseModel):
    name: str
    operations: int
    source: str = ""
    title: str = ""
    version: SkipJsonSchema[str] = ""  # in the data, not worth its bytes in tools/list
    error: str | None = None


class SpecsOut(BaseModel):
    specs: list[SpecOut]
    operations: int = 0


class LoadedOut(BaseModel):
    loaded: list[str]
    failed: list[str] = []
    operations: int = 0


# ---------------------------------------------------------------- schema compaction


def compact_schema(schema: Any, in_properties: bool = False, output: bool = False) -> Any:
    """The same JSON Schema in fewer bytes, so tools/list stays small: no pydantic `title`s
    (properties named title are kept), no `additionalProperties: true` (the default), no
    `default: null`, and `anyOf: [X, null]` as `type: [x, "null"]`."""
    if isinstance(schema, list):
        return [compact_schema(item, output=output) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if in_properties:
        return {key: compact_schema(value, output=output) for key, value in schema.items()}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if (key == "additionalProperties" and value is True) or (
            key == "default" and (value is None or output)  # outputs always carry every field
        ):
            continue
        out[key] = compact_schema(value, key in ("properties", "$defs", "definitions"), output)
    options = out.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        other = next(o for o in options if o != {"type": "null"})
        if isinstance(other, dict) and isinstance(other.get("type"), str):
            del out["anyOf"]
            out = {**other, **out, "type": [other["type"], "null"]}
    return out


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace `$ref`s to non-recursive `$defs` by the definition itself (fewer bytes)."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict) or any(
        f'"#/$defs/{n}"' in json.dumps(d) for n, d in defs.items()
    ):
        return schema

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


class CheckedTool(Tool):
    """A tool whose arguments are checked as /predict's body is over HTTP: an argument the
    tool does not take is refused, naming it and the ones it takes; a value outside its
    limits gets the same field-naming message as over HTTP, never pydantic's text."""

    async def run(
        self, arguments: dict[str, Any], context: Any, convert_result: bool = False
    ) -> Any:
        known = sorted(self.parameters.get("properties", {}))
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            raise ToolError(
                f"invalid_request: {unknown[0]}: not an argument of {self.name} "
                f"(its arguments: {', '.join(known)})"
            )
        try:
            return await super().run(arguments, context, convert_result)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                _, message = describe_errors(exc.__cause__.errors(include_url=False))
                raise ToolError(f"invalid_request: {message}") from None
            raise


def make_tool(fn: Callable[..., Any], annotations: ToolAnnotations) -> Tool:
    description = " ".join(inspect.cleandoc(fn.__doc__ or "").split())
    tool = CheckedTool.from_function(fn, description=description, annotations=annotations)
    tool.parameters = inline_defs(compact_schema(tool.parameters))
    if tool.fn_metadata.output_schema is not None:
        schema = compact_schema(tool.fn_metadata.output_schema, output=True)
        tool.fn_metadata.output_schema = inline_defs(schema)
    return tool
