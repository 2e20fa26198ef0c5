"""Control characters never reach a terminal, an editor or an agent: a spec whose paths,
names, summaries and examples carry escape sequences is read without them, and what the
command line and the MCP server print of file names and errors shows them escaped."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import TextContent

from opensesame_predictor.config import Settings
from opensesame_predictor.core.guardrails import printable
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.mcp.server import build_server

EVIL = "\x1b]0;owned\x07\x1b[2J\u202e"


def hostile_spec() -> dict[str, Any]:
    param = {
        "name": f"petId{EVIL}",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "example": f"7{EVIL}"},
    }
    return {
        "openapi": "3.0.0",
        "info": {"title": f"Pets{EVIL}", "version": "1"},
        "paths": {
            f"/pets{EVIL}/{{petId{EVIL}}}": {
                "get": {
                    "operationId": f"getPet{EVIL}",
                    "summary": f"Get a pet{EVIL}",
                    "description": f"Line one{EVIL}\nline two",
                    "tags": [f"pets{EVIL}"],
                    "parameters": [param],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings(k), *strings(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "pets.json"
    path.write_text(json.dumps(hostile_spec()), encoding="utf-8")
    return path


def test_spec_text_is_read_without_control_characters(spec: Path) -> None:
    catalog = Service.from_settings(Settings(specs=[str(spec)])).catalog
    [operation] = catalog.operations
    assert operation.key == "GET /pets]0;owned[2J/{petId]0;owned[2J}"  # what is left is text
    for text in strings(asdict(replace(operation, parameters=[]))) + strings(
        [asdict(replace(p, example=None)) for p in operation.parameters]
    ):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, text
    assert operation.description == "Line one]0;owned[2J\nline two"  # lines kept


def test_the_command_line_escapes_what_it_prints(spec: Path, tmp_path: Path) -> None:
    broken = tmp_path / f"bad{EVIL}.yaml"
    broken.write_text("openapi: [", encoding="utf-8")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "opensesame_predictor", "predict", "get the pet 7"),
            *("--spec", str(spec), "--spec", str(broken)),
        ],
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert b"\x1b" not in done.stdout and b"\x07" not in done.stdout
    assert b"\x1b" not in done.stderr and b"\x07" not in done.stderr
    assert b"\\x1b" in done.stderr  # the file name is shown, escaped


def test_printable_escapes_and_keeps_lines() -> None:
    assert printable("a\x1b[2Jb\nc\td") == "a\\x1b[2Jb\nc\td"
    assert printable("\u202eabc") == "\\u202eabc"


@pytest.mark.anyio
async def test_mcp_error_texts_carry_no_control_characters(spec: Path) -> None:
    runtime = Service.from_settings(Settings(specs=[str(spec)]))
    async with Client(build_server(runtime)) as client:
        result = await client.call_tool("load_spec", {"source": f"missing{EVIL}.yaml"})
        assert result.is_error
        text = " ".join(c.text for c in result.content if isinstance(c, TextContent))
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        described = await client.call_tool("describe_endpoint", {"api_call": f"GET /x{EVIL}"})
        text = " ".join(c.text for c in described.content if isinstance(c, TextContent))
        assert "\x1b" not in text and "\x07" not in text


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
