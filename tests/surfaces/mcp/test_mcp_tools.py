"""Every tool over the SDK's in-memory client, with its error paths."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from opensesame_predictor.present import DESCRIBE_BUDGET
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.mcp.server import build_server
from support.mcp import call, text_of


async def test_lists_five_tools_with_input_and_output_schemas(petstore_service: Service) -> None:
    async with Client(build_server(petstore_service)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == {
        "predict_next_call",
        "search_endpoints",
        "describe_endpoint",
        "list_specs",
        "load_spec",
    }
    for tool in tools.values():
        assert tool.description
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None
    predict = tools["predict_next_call"].input_schema
    assert "required" not in predict  # a prompt, a history or both (checked by the tool)
    assert set(predict["properties"]) >= {"prompt", "history", "temperature"}
    assert predict["properties"]["max_predictions"]["maximum"] == 20
    assert tools["predict_next_call"].annotations is not None
    assert tools["predict_next_call"].annotations.read_only_hint is True


async def test_predict_returns_the_wire_format_and_a_compact_text(
    petstore_service: Service,
) -> None:
    result = await call(
        petstore_service,
        "predict_next_call",
        {"prompt": "upload a photo of my pet", "history": ["POST /pets"], "max_predictions": 3},
    )
    assert not result.is_error
    data = result.structured_content
    assert data is not None
    assert [p["rank"] for p in data["predictions"]] == [1, 2, 3]
    top = data["predictions"][0]
    assert top["api_call"] == "POST /pets/{petId}/photos"
    assert {
        "api_call",
        "method",
        "description",
        "parameters",
        "confidence",
        "rank",
        "reasons",
    } <= set(top)
    assert data["confidence_scores"] == [p["confidence"] for p in data["predictions"]]
    assert data["metadata"]["processing_method"] == "ml"
    text = text_of(result)
    assert text.startswith("1. POST /pets/{petId}/photos")
    assert len(text) < len(json.dumps(data))


async def test_predict_takes_history_objects_and_reuses_their_values(
    petstore_service: Service,
) -> None:
    history = [{"api_call": "/pets/pet-77", "method": "GET", "timestamp": "2024-01-01T10:00:00Z"}]
    result = await call(
        petstore_service,
        "predict_next_call",
        {"prompt": "upload a photo of it", "history": history},
    )
    assert result.structured_content is not None
    top = result.structured_content["predictions"][0]
    assert top["parameters"].get("petId") == "pet-77"


@pytest.mark.parametrize(
    "arguments",
    [
        {"prompt": "list pets", "max_predictions": 0},
        {"prompt": "list pets", "max_predictions": 21},
        {"prompt": ""},
        {"prompt": "list pets", "history": "POST /pets"},
        {"max_predictions": 3},
    ],
)
async def test_bad_arguments_get_the_http_face_messages_not_pydantic(
    petstore_service: Service, arguments: dict[str, Any]
) -> None:
    """The same field-naming words as over HTTP: `invalid_request: field: what it may be`."""
    result = await call(petstore_service, "predict_next_call", arguments)
    assert result.is_error
    text = text_of(result)
    assert "invalid_request: " in text, text
    field = next(k for k in ("max_predictions", "prompt", "history") if k in text)
    assert field in str(arguments) or field == "prompt", text
    for pydantic_words in ("validation error", "pydantic", "Arguments", "Input should"):
        assert pydantic_words not in text, text


async def test_unknown_arguments_are_refused_as_over_http(petstore_service: Service) -> None:
    """Decided: every face refuses an argument it does not take (HTTP's body forbids extra
    fields), naming it and the ones it takes; temperature is one they all take."""
    ok = await call(
        petstore_service, "predict_next_call", {"prompt": "list pets", "temperature": 0}
    )
    assert not ok.is_error, text_of(ok)
    assert ok.structured_content is not None
    assert ok.structured_content["confidence_scores"][0] == 1.0  # temperature 0: peaked
    for tool, arguments in (
        ("predict_next_call", {"prompt": "list pets", "foo": 1}),
        ("search_endpoints", {"query": "pets", "foo": 1}),
        ("list_specs", {"foo": 1}),
    ):
        refused = await call(petstore_service, tool, arguments)
        assert refused.is_error, tool
        text = text_of(refused)
        assert f"invalid_request: foo: not an argument of {tool}" in text, text


async def test_core_limits_and_guardrails_become_tool_errors(petstore_service: Service) -> None:
    long = await call(petstore_service, "predict_next_call", {"prompt": "x" * 5000})
    assert long.is_error and "over the limit of 4096" in text_of(long)
    injected = await call(petstore_service, "predict_next_call", {"prompt": "list pets; rm -rf /"})
    assert injected.is_error and "shell_injection" in text_of(injected)
    bad_history = await call(
        petstore_service,
        "predict_next_call",
        {"prompt": "list pets", "history": [{"method": "GET"}]},
    )
    assert bad_history.is_error and "history" in text_of(bad_history)
    unknown_spec = await call(
        petstore_service, "predict_next_call", {"prompt": "pets", "spec": "nope"}
    )
    assert unknown_spec.is_error and "petstore-3.0" in text_of(unknown_spec)


async def test_search_ranks_and_filters_by_method_and_tag(petstore_service: Service) -> None:
    result = await call(petstore_service, "search_endpoints", {"query": "pets", "method": "get"})
    assert result.structured_content is not None
    rows = result.structured_content["matches"]
    assert rows and all(row["api_call"].startswith("GET ") for row in rows)
    assert set(rows[0]) == {"api_call", "summary", "spec"}
    assert "GET /pets — List pets [petstore-3.0]" in text_of(result)

    tagged = await call(petstore_service, "search_endpoints", {"query": "order", "tag": "STORE"})
    assert tagged.structured_content is not None
    calls = [row["api_call"] for row in tagged.structured_content["matches"]]
    assert calls and all("/store/" in c for c in calls)

    limited = await call(petstore_service, "search_endpoints", {"query": "pet", "limit": 2})
    assert limited.structured_content is not None
    assert len(limited.structured_content["matches"]) == 2
    assert limited.structured_content["total"] > 2


async def test_describe_gives_parameters_body_and_response(petstore_service: Service) -> None:
    result = await call(petstore_service, "describe_endpoint", {"api_call": "POST /pets"})
    data = result.structured_content
    assert data is not None and not result.is_error
    fields = data["request_body"]["fields"]
    assert fields["name"]["required"] is True
    assert fields["species"]["enum"][:2] == ["dog", "cat"]
    response = data["response"]
    assert "Pet" in response["schemas"]
    assert set(response["fields"]["photos"]["fields"]) >= {"id", "url"}
    assert data["resource"] == "openapi://petstore-3.0/operations/createPet"
    assert len(json.dumps(data, separators=(",", ":")).encode()) <= DESCRIBE_BUDGET
    assert "photos{id, petId, url, caption}" in text_of(result)


async def test_describe_accepts_concrete_calls_and_uids(petstore_service: Service) -> None:
    concrete = await call(petstore_service, "describe_endpoint", {"api_call": "GET /pets/42"})
    assert concrete.structured_content is not None
    assert concrete.structured_content["api_call"] == "GET /pets/{petId}"
    params = concrete.structured_content["parameters"]
    assert params[0]["name"] == "petId" and params[0]["in"] == "path"
    uid = await call(
        petstore_service, "describe_endpoint", {"api_call": "petstore-3.0:DELETE /pets/{petId}"}
    )
    assert uid.structured_content is not None
    assert uid.structured_content["api_call"] == "DELETE /pets/{petId}"


async def test_unknown_endpoint_names_the_closest_matches(petstore_service: Service) -> None:
    result = await call(petstore_service, "describe_endpoint", {"api_call": "GET /petz"})
    assert result.is_error
    message = text_of(result)
    assert "unknown operation 'GET /petz'" in message
    assert "closest: GET /pets" in message


async def test_list_specs_reports_sources_counts_and_failures(
    make_service: Callable[..., Service], fixtures: Path
) -> None:
    runtime = make_service(fixtures / "petstore-3.0.yaml", fixtures / "bad" / "invalid.yaml")
    result = await call(runtime, "list_specs", {})
    assert result.structured_content is not None
    specs = {s["name"]: s for s in result.structured_content["specs"]}
    assert specs["petstore-3.0"]["operations"] == 13
    assert specs["petstore-3.0"]["source"].endswith("petstore-3.0.yaml")
    assert specs["invalid"]["error"]
    assert result.structured_content["operations"] == 13
    assert "petstore-3.0: Petstore API 1.4.0 — 13 operations" in text_of(result)


async def test_tools_on_an_empty_catalog_say_to_load_a_spec(
    make_service: Callable[..., Service],
) -> None:
    runtime = make_service()
    predict = await call(runtime, "predict_next_call", {"prompt": "list pets"})
    assert predict.is_error and "no spec is loaded" in text_of(predict)
    assert "catalog_empty: no spec is loaded" in text_of(predict)  # the error keeps its code
    listed = await call(runtime, "list_specs", {})
    assert "call load_spec" in text_of(listed)


async def test_server_loads_specs_in_the_background_and_tools_wait(fixtures: Path) -> None:
    from opensesame_predictor.config import Settings

    runtime = Service(Settings(specs=[str(fixtures / "tasks-3.1.json")]))
    runtime.set_sources(runtime.settings.specs)
    assert not runtime.ready.is_set()
    result = await call(runtime, "search_endpoints", {"query": "comment on a task"})
    assert runtime.ready.is_set()
    assert result.structured_content is not None
    assert result.structured_content["matches"][0]["spec"] == "tasks-3.1"


async def test_the_server_stays_up_after_errors(petstore_service: Service) -> None:
    async with Client(build_server(petstore_service)) as client:
        bad = await client.call_tool("describe_endpoint", {"api_call": "GET /nothing"})
        assert bad.is_error
        worse = await client.call_tool("load_spec", {"source": "/etc/passwd"})
        assert worse.is_error
        good = await client.call_tool("predict_next_call", {"prompt": "list all pets"})
        assert not good.is_error


async def test_predict_reuses_ids_from_history_responses(petstore_service: Service) -> None:
    history = [{"api_call": "POST /pets", "response": {"id": "pet-77"}}]
    result = await call(
        petstore_service,
        "predict_next_call",
        {"prompt": "upload a photo of it", "history": history},
    )
    assert result.structured_content is not None
    top = result.structured_content["predictions"][0]
    assert top["api_call"] == "POST /pets/{petId}/photos"
    assert top["parameters"]["petId"] == "pet-77"
    assert top["parameter_sources"]["petId"] == "history"
