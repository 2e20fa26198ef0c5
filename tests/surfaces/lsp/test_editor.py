"""The features as plain functions over a loaded catalog: completions, insertions, hovers,
findings and the text they render."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.lsp import editor, render
from opensesame_predictor.surfaces.lsp.diagnostics import PathShapes, rewrite


@pytest.fixture
def runtime(fixtures: Path) -> Service:
    return Service.from_settings(Settings(specs=[str(fixtures / "petstore-3.0.yaml")]))


def op(catalog: Catalog, key: str) -> editor.Operation:
    found = catalog.get(key)
    assert found is not None
    return found


def test_request_snippet_and_plain_text(runtime: Service) -> None:
    create = op(runtime.catalog, "POST /pets")
    snippet = render.http_request(create, None, snippet=True, base="{{host}}")
    assert snippet.splitlines()[:3] == ["POST {{host}}/pets", "Content-Type: application/json", ""]
    assert '"name": "${1:' in snippet and snippet.endswith("}$0")
    plain = render.http_request(create, None, snippet=False)
    body = plain.split("\n\n", 1)[1]
    assert set(json.loads(body)) == {"name", "species"}  # the required fields, valid JSON
    photo = op(runtime.catalog, "POST /pets/{petId}/photos")
    assert render.url_text(photo, None, snippet=False) == "/pets/{petId}/photos"
    assert render.url_text(photo, None, snippet=True) == "/pets/${1:petId}/photos$0"
    assert render.escape_snippet("a$b}", in_placeholder=True) == "a\\$b\\}"


def test_completion_fills_values_from_the_prompt(runtime: Service) -> None:
    text = "### get the order 7\nGET \n"
    result = editor.complete(
        runtime.predictor.predict, runtime.catalog, text, "http", 1, 4, snippet=True
    )
    assert result is not None
    top = result.entries[0]
    assert top.label == "/store/orders/{orderId}"
    assert top.new_text == "/store/orders/7$0"  # the prompt's value, no tab stop needed


def test_code_insertions_are_valid_code(runtime: Service) -> None:
    catalog, predict = runtime.catalog, runtime.predictor.predict
    python = 'import requests\n\nAPI = "x"\n\n# create a pet named Rex\n'
    inserted = editor.intent_insertions(predict, catalog, python, "python", 4)
    assert inserted[0].title == "Insert API call: POST /pets"
    code = inserted[0].new_text
    ast.parse(python + code)
    assert code.startswith('response = requests.post("/pets", json={') and "'Rex'" in code

    shell = "# delete the pet 42"
    (curl,) = editor.intent_insertions(predict, catalog, shell, "shell", 0)[:1]
    assert (curl.line, curl.character) == (0, len(shell))  # no final newline: append one
    assert curl.new_text == '\ncurl -X DELETE "/pets/42"'
    assert editor.intent_insertions(predict, catalog, "x = 1\n", "python", 0) == []


def test_hover_and_findings(runtime: Service) -> None:
    text = 'fetch("/v1/pets/42");\nfetch("/v1/pet/42");\nfetch("https://other.example.com/x");\n'
    found = editor.hover(runtime.catalog, text, "js", 0, 10)
    assert found is not None and found[1].key == "GET /pets/{petId}"
    spec = runtime.catalog.specs[0]
    markdown = render.hover_markdown(found[1], spec)
    assert "Get a pet" in markdown and spec.source in markdown

    findings = editor.findings(PathShapes(runtime.catalog), text, "js")
    assert [f.call.line for f in findings] == [1]  # the other host is not ours to judge
    assert findings[0].path_fix == "/v1/pets/42"  # the server's base path is kept


def test_wrong_method_in_http_is_fixed_by_method(runtime: Service) -> None:
    text = "PATCH /pets/42\n"
    (finding,) = editor.findings(PathShapes(runtime.catalog), text, "http")
    assert "the path takes DELETE, GET, PUT" in finding.message
    assert finding.method_fix == "GET" and finding.path_fix is None


def test_rewrite_keeps_values() -> None:
    assert rewrite("/pet/42", "/pets/{petId}") == "/pets/42"
    assert rewrite("/pet/{{id}}", "/pets/{petId}") == "/pets/{{id}}"
    assert rewrite("/a/b/c", "/pets/{petId}") == "/pets/{petId}"


def test_bench_lsp_command(fixtures: Path) -> None:
    """`bench --lsp` drives a real stdio session and reports the round trip."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "opensesame_predictor",
            "bench",
            "--lsp",
            "--spec",
            str(fixtures / "petstore-3.0.yaml"),
            "--requests",
            "5",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    numbers = json.loads(done.stdout)
    assert numbers["requests"] == 5 and numbers["operations"] == 13
    assert numbers["completion_p50_ms"] <= numbers["completion_p95_ms"]
    assert numbers["first_top_label"].startswith("/")


def test_refused_prompt_falls_back_to_the_history(runtime: Service) -> None:
    text = "POST /pets\n\n### x'; DROP TABLE pets; --\nGET \n"
    with pytest.raises(editor.InvalidRequest):
        runtime.predictor.predict({"prompt": "x'; DROP TABLE pets; --"})
    result = editor.complete(
        runtime.predictor.predict, runtime.catalog, text, "http", 3, 4, snippet=False
    )
    assert result is not None and result.entries  # ranked from the history alone
