"""The text an agent reads: where each value came from, which spec each call belongs to, spec
HTML as plain text, counts, and errors instead of empty answers or silent guesses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from mcp import Client

from opensesame_predictor.present import safe_line, safe_value
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.mcp.server import build_server
from support.mcp import call, text_of

STRIPE_LIKE = (
    '<p>Returns a list of your customers. See <a href="/docs/api/pagination">pagination</a>'
    " for more &amp; less.</p>"
)


def html_spec(tmp_path: Path) -> Path:
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Customers", "version": "1"},
        "paths": {
            "/v1/customers": {
                "get": {
                    "operationId": "ListCustomers",
                    "summary": "<b>List</b> all customers",
                    "description": STRIPE_LIKE,
                    "parameters": [
                        {
                            "name": "email",
                            "in": "query",
                            "description": "<p>A filter on the <code>email</code></p>",
                            "schema": {"type": "string", "example": "<b>not markup</b>"},
                        }
                    ],
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
    }
    path = tmp_path / "customers.json"
    path.write_text(json.dumps(spec))
    return path


async def test_predict_text_says_which_values_are_examples_or_placeholders(
    petstore_service: Service,
) -> None:
    result = await call(
        petstore_service,
        "predict_next_call",
        {"prompt": "upload a photo of the pet I just created", "history": ["POST /pets"]},
    )
    text = text_of(result)
    first = text.split("\n2. ")[0]
    assert re.search(
        r'petId="4f7c2a1e-[0-9a-f-]+" \(the spec\'s example, not a real value\)', first
    )
    assert "(placeholder: fill in)" in first, first
    assert "[spec " not in text  # one spec: nothing to tell apart
    with_id = await call(
        petstore_service,
        "predict_next_call",
        {"prompt": "show the pet", "history": ["GET /pets/42"]},
    )
    assert 'petId="42" (from the history)' in text_of(with_id)


async def test_predict_text_names_the_spec_of_each_call_when_several_are_loaded(
    make_service: Callable[..., Service], fixtures: Path
) -> None:
    runtime = make_service(fixtures / "petstore-3.0.yaml", fixtures / "tasks-3.1.json")
    text = text_of(await call(runtime, "predict_next_call", {"prompt": "list the pets"}))
    calls = [line for line in text.splitlines() if re.match(r"^\d+\. ", line)]
    assert calls and all(re.search(r"\[spec [^\]]+\]", line) for line in calls), text


async def test_an_abstaining_answer_shows_no_confident_number(petstore_service: Service) -> None:
    result = await call(
        petstore_service, "predict_next_call", {"prompt": "bake a chocolate cake with cinnamon"}
    )
    assert result.structured_content is not None
    assert result.structured_content["metadata"]["abstain"]
    calls = [line for line in text_of(result).splitlines() if re.match(r"^\d+\. ", line)]
    assert calls and all("(no match)" in line for line in calls), calls
    assert not any(re.search(r"\b[01]\.\d", line) for line in calls), calls


async def test_history_that_matches_nothing_is_said(petstore_service: Service) -> None:
    result = await call(
        petstore_service,
        "predict_next_call",
        {
            "prompt": "list pets",
            "history": ["POST /petz", {"api_call": "/pets", "method": "FETCH"}],
        },
    )
    assert result.structured_content is not None
    assert result.structured_content["metadata"]["unmatched_history"] == [
        "POST /petz",
        "FETCH /pets",
    ]
    assert "match no operation (ignored): POST /petz, FETCH /pets" in text_of(result)


async def test_spec_html_reads_as_plain_text_in_every_tool(
    make_service: Callable[..., Service], tmp_path: Path
) -> None:
    runtime = make_service(html_spec(tmp_path))
    texts = [
        text_of(await call(runtime, "predict_next_call", {"prompt": "list all customers"})),
        text_of(await call(runtime, "search_endpoints", {"query": "customers"})),
        text_of(await call(runtime, "describe_endpoint", {"api_call": "GET /v1/customers"})),
    ]
    for text in texts:
        assert "<p>" not in text and "<a " not in text and "<b>" not in text, text
        assert "List all customers" in text
    described = texts[2]
    assert "Returns a list of your customers. See pagination for more & less." in described
    # values are data, not prose: an example is shown as the spec gives it
    assert safe_value("<b>not markup</b>") == "<b>not markup</b>"
    assert safe_line("a <br/>b &lt;c&gt;") == "a b <c>"
    assert safe_line("GET /users/<id> returns <User>") == "GET /users/<id> returns <User>"


async def test_search_says_how_many_of_how_many(petstore_service: Service) -> None:
    result = await call(petstore_service, "search_endpoints", {"query": "pet", "limit": 3})
    assert result.structured_content is not None
    total = result.structured_content["total"]
    assert total > 3
    assert text_of(result).splitlines()[0] == f"3 of {total} matching operations, best first:"


async def test_an_unknown_method_is_an_error_not_an_empty_answer(
    petstore_service: Service,
) -> None:
    result = await call(petstore_service, "search_endpoints", {"query": "pets", "method": "FETCH"})
    assert result.is_error
    text = text_of(result)
    assert "invalid_request: method: 'FETCH' is not an HTTP method" in text
    assert "No matching operations" not in text
    lower = await call(petstore_service, "search_endpoints", {"query": "pets", "method": "get"})
    assert not lower.is_error


async def test_describe_says_which_operation_it_chose_when_not_named_exactly(
    petstore_service: Service,
) -> None:
    loose = await call(petstore_service, "describe_endpoint", {"api_call": "pets"})
    text = text_of(loose)
    assert text.startswith("No operation is exactly 'pets': showing GET /pets"), text
    assert "POST /pets" in text.splitlines()[0]  # the other candidate on that path
    assert loose.structured_content is not None and "note" in loose.structured_content
    exact = await call(petstore_service, "describe_endpoint", {"api_call": "GET /pets"})
    assert not text_of(exact).startswith("No operation")


async def test_load_spec_without_a_workspace_says_none_is_configured(
    make_service: Callable[..., Service], fixtures: Path, tmp_path: Path
) -> None:
    runtime = make_service(fixtures / "petstore-3.0.yaml")
    roots = [tmp_path]
    assert not runtime.settings.workspace
    try:
        runtime.sources_for(str(fixtures / "tasks-3.1.json"), roots)
    except Exception as exc:
        assert "no workspace is configured" in str(exc) and "--workspace" in str(exc)
    else:
        raise AssertionError("a file outside the roots was accepted")
    async with Client(build_server(runtime, trust_client_roots=False)) as client:
        refused = await client.call_tool("load_spec", {"source": str(fixtures / "tasks-3.1.json")})
    assert refused.is_error and "it has none" in text_of(refused)


async def test_a_history_alone_is_enough_and_neither_is_an_error_naming_both(
    petstore_service: Service,
) -> None:
    """As over HTTP: a history alone asks what comes after it; with neither there is
    nothing to go on."""
    alone = await call(petstore_service, "predict_next_call", {"history": ["POST /pets"]})
    assert not alone.is_error, text_of(alone)
    for arguments in ({}, {"prompt": "", "history": []}):
        neither = await call(petstore_service, "predict_next_call", arguments)
        assert neither.is_error
        assert "invalid_request: prompt, history: neither is given" in text_of(neither)
