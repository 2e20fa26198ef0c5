"""Small helpers several test modules share."""

from __future__ import annotations

from typing import Any

import pytest

from opensesame_predictor.core import catalog as catalog_module
from opensesame_predictor.core.specs import ParsedSpec, parse_spec


def json_ok(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI `responses` object: 200 with a JSON body of this schema."""
    return {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}


def json_body(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI `requestBody`: required JSON with one required property of this schema."""
    body = {"type": "object", "required": [name], "properties": {name: schema}}
    return {"required": True, "content": {"application/json": {"schema": body}}}


def in_path(name: str) -> dict[str, Any]:
    """An OpenAPI path parameter holding a string."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def in_query(name: str) -> dict[str, Any]:
    """An optional OpenAPI query parameter holding a string (`q` of a search)."""
    return {"name": name, "in": "query", "schema": {"type": "string"}}


def with_id() -> dict[str, Any]:
    """A schema of an object that carries a string `id`."""
    return {"type": "object", "properties": {"id": {"type": "string"}}}


class Clock:
    """A clock the tests move by hand (`clock.now += 3600`)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ParseCounter:
    """Counts parse_spec calls made by the loader (a warm or revalidated load makes none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        monkeypatch.setattr(catalog_module, "parse_spec", self)

    def __call__(self, *args: Any, **kwargs: Any) -> ParsedSpec:
        self.calls += 1
        return parse_spec(*args, **kwargs)


def count_reads(monkeypatch: pytest.MonkeyPatch, reader: Any) -> list[str]:
    """The texts a sentence encoder reads (runs its model on) from here on, in order."""
    texts: list[str] = []
    original = reader._read

    def counted(text: str, pieces: int) -> Any:
        texts.append(text)
        return original(text, pieces)

    monkeypatch.setattr(reader, "_read", counted)
    return texts
