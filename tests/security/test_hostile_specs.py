"""Hostile specs cost a bounded amount of memory and time: YAML alias bombs, documents nested
too deeply, files over the size limit, and specs with thousands of operations."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog, SpecLoader, SpecSource
from opensesame_predictor.core.errors import SpecError
from opensesame_predictor.core.fetch import FetchPolicy
from opensesame_predictor.core.specs import parse_spec, parse_text
from opensesame_predictor.core.store import SpecStore
from opensesame_predictor.service import Service

MEMORY_LIMIT = 1 << 30  # 1 GiB of address space: an expanded 9^9 bomb needs far more

LOL = "".join(
    f"x-lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]\n"
    if i > 1
    else 'x-lol1: &lol1 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 10)
)
# Aliases of the 9^9 list in every place the loader turns into text or copies.
ALIASES_EVERYWHERE = LOL + textwrap.dedent(
    """\
        openapi: 3.0.0
        info: {title: *lol9, version: *lol9, description: *lol9}
        servers: [{url: *lol9}]
        security: [{bearer: *lol9}]
        paths:
          /bomb/{id}:
            parameters:
              - {name: id, in: path, required: true, schema: *lol9, example: *lol9}
            get:
              operationId: *lol9
              summary: *lol9
              tags: *lol9
              parameters:
                - {name: q, in: *lol9, schema: {type: *lol9, enum: *lol9, default: *lol9}}
                - {name: page, in: query, examples: {a: {value: *lol9}}}
              responses:
                '200':
                  description: ok
                  content:
                    application/json:
                      schema: {type: object, properties: {id: {type: string, example: *lol9}}}
                  links:
                    L: {operationId: *lol9, operationRef: *lol9, parameters: {id: *lol9}}
            post:
              operationId: createBomb
              requestBody:
                content:
                  application/json:
                    schema:
                      type: object
                      required: *lol9
                      properties: {name: {type: string, description: *lol9, enum: *lol9}}
              responses: {'201': {description: created}}
        """
)

CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from pathlib import Path
from opensesame_predictor.core.catalog import SpecLoader, SpecSource
from opensesame_predictor.core.fetch import FetchPolicy
from opensesame_predictor.core.store import SpecStore
path = Path(sys.argv[1])
store = SpecStore(Path(sys.argv[2]))
loaded = SpecLoader(store, FetchPolicy(), 1 << 20).load(SpecSource(str(path), path.parent), "b")
print(json.dumps({{
    "error": loaded.summary.error,
    "operations": loaded.parsed.model_dump(mode="json")["operations"] if loaded.parsed else [],
    "stored_bytes": Path(sys.argv[2]).stat().st_size if loaded.parsed else 0,
}}))
"""


def load_in_limited_process(spec: Path, store: Path) -> dict[str, object]:
    """Load a spec through the store in a child process that cannot use more than 1 GiB: if
    anything expanded a bomb, the child would die with MemoryError instead of the machine
    swapping."""
    code = CHILD.format(limit=MEMORY_LIMIT)
    done = subprocess.run(
        [sys.executable, "-c", code, str(spec), str(store)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_fixture_alias_bomb_loads_with_bounded_memory(fixtures: Path, tmp_path: Path) -> None:
    result = load_in_limited_process(fixtures / "bad" / "yaml-bomb.yaml", tmp_path / "s.json")
    assert result["error"] is None
    [operation] = result["operations"]  # type: ignore[misc]
    assert (operation["method"], operation["path"]) == ("GET", "/bomb")  # type: ignore[index]
    assert len(json.dumps(operation)) < 2000
    assert 0 < result["stored_bytes"] < 10_000  # type: ignore[operator]


def test_the_fixture_alias_bomb_serialises_small_in_process(fixtures: Path) -> None:
    path = fixtures / "bad" / "yaml-bomb.yaml"
    parsed = parse_spec(parse_text(path.read_bytes(), str(path)), str(path), "bomb")
    [operation] = parsed.operations
    assert operation.key == "GET /bomb"
    assert operation.response_schemas == ["Bomb"]
    assert len(parsed.model_dump_json()) < 2000


def test_aliases_of_a_bomb_everywhere_are_never_expanded(tmp_path: Path) -> None:
    spec = tmp_path / "bombs.yaml"
    spec.write_text(ALIASES_EVERYWHERE)
    result = load_in_limited_process(spec, tmp_path / "s.json")
    assert result["error"] is None
    ops = {op["method"] + " " + op["path"]: op for op in result["operations"]}  # type: ignore[union-attr]
    assert set(ops) == {"GET /bomb/{id}", "POST /bomb/{id}"}
    get = ops["GET /bomb/{id}"]
    assert get["operation_id"] == "" and get["tags"] == []
    assert [p["name"] for p in get["parameters"]] == ["id", "page"]  # `in: <bomb>` is dropped
    assert get["links"] == [
        {"name": "L", "operation_id": None, "operation_ref": None, "parameters": {}}
    ]
    assert ops["POST /bomb/{id}"]["body_fields"] == ["name"]
    assert len(json.dumps(result["operations"])) < 10_000


def test_a_bomb_as_the_version_is_a_clean_error() -> None:
    doc = parse_text(LOL + "openapi: *lol9\npaths: {}\n", "v.yaml")
    with pytest.raises(SpecError) as info:
        parse_spec(doc, "v.yaml", "v")
    assert info.value.reason == "unsupported OpenAPI version ''"


@pytest.mark.parametrize(
    "text",
    [
        '{"openapi": "3.0.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"openapi": "3.0.0", "x": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}",
    ],
    ids=["arrays", "objects"],
)
def test_deeply_nested_json_is_a_clean_spec_error(text: str, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        parse_text(text, "deep.json")
    assert info.value.source == "deep.json"
    assert info.value.reason == "document is nested too deeply"
    path = tmp_path / "deep.json"
    path.write_text(text)
    loader = SpecLoader(SpecStore(tmp_path / "s.json"), FetchPolicy(), 1 << 24)
    assert loader.load(SpecSource(str(path), tmp_path), "deep").summary.error == (
        "document is nested too deeply"
    )


def test_deeply_nested_yaml_is_a_clean_spec_error() -> None:
    with pytest.raises(SpecError) as info:
        parse_text("openapi: 3.0.0\nx: " + "[" * 100_000 + "]" * 100_000 + "\n", "deep.yaml")
    assert info.value.reason.startswith("invalid YAML")
    assert "nesting depth" in info.value.reason


def test_a_deeply_nested_schema_that_parses_is_walked_to_a_bounded_depth() -> None:
    schema: dict[str, object] = {"type": "string"}
    for level in range(500):
        schema = {"type": "object", "properties": {f"l{level}": schema}}
    doc = {
        "openapi": "3.0.0",
        "paths": {
            "/deep": {"get": {"responses": {"200": {"content": {"a/json": {"schema": schema}}}}}}
        },
    }
    [operation] = parse_spec(doc, "deep.json", "deep").operations
    assert 0 < len(operation.response_fields) <= 10


def test_a_file_over_max_spec_bytes_is_refused_by_name(tmp_path: Path) -> None:
    big = tmp_path / "openapi.yaml"
    big.write_text("openapi: 3.0.0\npaths: {}\n" + "# padding\n" * 2000)
    runtime = Service.from_settings(Settings(specs=[str(big)], max_spec_bytes=4096))
    [summary] = runtime.catalog.specs
    assert summary.source == str(big)
    assert summary.error == "file is larger than 4096 bytes"
    assert runtime.catalog.errors == [summary]


def test_a_huge_sparse_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(65 * 1024 * 1024)  # 1 MiB over the default cap, no disk used
    loader = SpecLoader(SpecStore(tmp_path / "s.json"), FetchPolicy(), Settings().max_spec_bytes)
    loaded = loader.load(SpecSource(str(huge), tmp_path), "huge")
    assert loaded.summary.error == f"file is larger than {64 * 1024 * 1024} bytes"


def test_a_spec_with_thousands_of_operations_loads(tmp_path: Path) -> None:
    paths = {
        f"/resources{i}/{{id}}": {
            "get": {"operationId": f"get{i}", "summary": f"Get resource {i}"},
            "delete": {"operationId": f"delete{i}"},
        }
        for i in range(1000)
    }
    spec = tmp_path / "many.json"
    spec.write_text(json.dumps({"openapi": "3.0.0", "info": {"title": "Many"}, "paths": paths}))
    loader = SpecLoader(SpecStore(tmp_path / "s.json"), FetchPolicy(), 1 << 24)
    loaded = loader.load(SpecSource(str(spec), tmp_path), "many")
    assert loaded.summary.error is None and loaded.summary.operations == 2000
    catalog = Catalog([loaded])
    assert catalog.match("GET /resources1234/abc") == catalog.get("GET /resources1234/{id}")
    # a warm load of the same file comes from the store
    again = SpecLoader(SpecStore(tmp_path / "s.json"), FetchPolicy(), 1 << 24)
    assert again.load(SpecSource(str(spec), tmp_path), "many").summary.operations == 2000
    assert again.store.stats.l2_hits == 1


def test_a_schema_shared_by_many_operations_is_walked_once() -> None:
    inner = {"type": "object", "properties": {f"g{i}": {"type": "string"} for i in range(40)}}
    big = {
        "type": "object",
        "properties": {f"f{i}": {"$ref": "#/components/schemas/Inner"} for i in range(40)},
    }
    ok = {
        "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Big"}}}}
    }
    doc = {
        "openapi": "3.0.0",
        "components": {"schemas": {"Big": big, "Inner": inner}},
        "paths": {f"/p{i}": {"get": {"responses": ok}} for i in range(1500)},
    }
    parsed = parse_spec(doc, "wide.json", "wide")
    assert len(parsed.operations) == 1500
    fields = parsed.operations[0].response_fields
    # capped at MAX_FIELDS; an object's own fields come before what they embed
    assert len(fields) == 400 and fields[:2] == ["f0", "f1"] and fields[40] == "f0.g0"
    assert all(op.response_fields == fields for op in parsed.operations)


def test_long_texts_are_truncated() -> None:
    doc = {
        "openapi": "3.0.0",
        "paths": {"/a": {"get": {"description": "x" * 1_000_000, "summary": "s" * 10_000}}},
    }
    [operation] = parse_spec(doc, "long.json", "long").operations
    assert len(operation.description) == 4000 and len(operation.summary) == 300
