"""Resources, the planning prompt, load_spec with its safety rules, roots and notifications."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, MCPError
from mcp.client.session import ClientRequestContext
from mcp_types import (
    ListRootsResult,
    ResourceListChangedNotification,
    ResourceTemplateReference,
    Root,
    TextContent,
    TextResourceContents,
)

from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.mcp.server import build_server
from support.mcp import text_of


async def read_text(client: Client, uri: str) -> str:
    result = await client.read_resource(uri)
    content = result.contents[0]
    assert isinstance(content, TextResourceContents)
    return content.text


async def test_each_spec_is_a_resource_with_an_operation_index(petstore_service: Service) -> None:
    async with Client(build_server(petstore_service)) as client:
        resources = (await client.list_resources()).resources
        assert [str(r.uri) for r in resources] == ["openapi://petstore-3.0"]
        assert resources[0].mime_type == "text/markdown"
        templates = {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
        assert templates == {"openapi://{spec}", "openapi://{spec}/operations/{operation}"}
        index = await read_text(client, "openapi://petstore-3.0")
    lines = index.splitlines()
    assert lines[0] == "# petstore-3.0: Petstore API 1.4.0 — 13 operations"
    assert "createPet  POST /pets — Create a pet" in lines


async def test_each_operation_is_a_resource(petstore_service: Service) -> None:
    async with Client(build_server(petstore_service)) as client:
        text = await read_text(client, "openapi://petstore-3.0/operations/getPetById")
        with pytest.raises(MCPError, match="unknown operation"):
            await client.read_resource("openapi://petstore-3.0/operations/nothing")
        with pytest.raises(MCPError, match="unknown spec"):
            await client.read_resource("openapi://nothing")
    data = json.loads(text)
    assert data["api_call"] == "GET /pets/{petId}"
    assert data["parameters"][0]["name"] == "petId"


async def test_operations_without_an_id_get_a_slug(
    make_service: Callable[..., Service], fixtures: Path
) -> None:
    runtime = make_service(fixtures / "library-swagger-2.0.json")
    async with Client(build_server(runtime)) as client:
        index = await read_text(client, "openapi://library-swagger-2.0")
        slug = index.splitlines()[2].split()[0]
        data = json.loads(
            await read_text(client, f"openapi://library-swagger-2.0/operations/{slug}")
        )
    assert data["api_call"].split()[1].startswith("/api/v2/")


async def test_the_planning_prompt_names_relevant_operations(petstore_service: Service) -> None:
    async with Client(build_server(petstore_service)) as client:
        prompts = (await client.list_prompts()).prompts
        assert [p.name for p in prompts] == ["plan_api_calls"]
        assert prompts[0].arguments and prompts[0].arguments[0].name == "task"
        result = await client.get_prompt(
            "plan_api_calls", {"task": "adopt a dog and upload its photo"}
        )
    content = result.messages[0].content
    assert isinstance(content, TextContent)
    assert "adopt a dog and upload its photo" in content.text
    assert "POST /pets/{petId}/photos" in content.text
    assert "describe_endpoint" in content.text


@pytest.fixture
def in_fixtures(fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """With no --workspace and no client roots, the current directory is the workspace."""
    monkeypatch.chdir(fixtures)
    return fixtures


async def test_load_spec_adds_a_file_and_its_resource(
    petstore_service: Service, in_fixtures: Path
) -> None:
    async with Client(build_server(petstore_service)) as client:
        result = await client.call_tool("load_spec", {"source": "tasks-3.1.json"})
        assert not result.is_error, text_of(result)
        assert result.structured_content == {
            "loaded": ["tasks-3.1"],
            "failed": [],
            "operations": 27,
        }
        listed = await client.call_tool("list_specs", {})
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        found = await client.call_tool("search_endpoints", {"query": "comment on a task"})
    assert uris == ["openapi://petstore-3.0", "openapi://tasks-3.1"]
    assert listed.structured_content is not None
    assert [s["name"] for s in listed.structured_content["specs"]] == ["petstore-3.0", "tasks-3.1"]
    assert found.structured_content is not None
    assert found.structured_content["matches"][0]["spec"] == "tasks-3.1"


async def test_load_spec_takes_a_folder_inside_the_workspace(
    make_service: Callable[..., Service], fixtures: Path
) -> None:
    runtime = make_service(fixtures / "petstore-3.0.yaml", workspace=str(fixtures / "workspace"))
    async with Client(build_server(runtime)) as client:
        result = await client.call_tool("load_spec", {"source": "specs"})
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    assert result.structured_content["loaded"] == ["billing"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("../../../etc/passwd", "outside the workspace"),
        ("/etc/hostname", "outside the workspace"),
        ("bad/invalid.yaml", "could not load the spec"),
        ("bad/not-openapi.yaml", "could not load the spec"),
        ("missing.yaml", "file not found"),
        ("http://127.0.0.1:9/openapi.json", "could not load the spec"),
        ("ftp://example.com/openapi.json", ""),
    ],
)
async def test_load_spec_failures_are_tool_errors_with_the_reason(
    petstore_service: Service, in_fixtures: Path, source: str, reason: str
) -> None:
    async with Client(build_server(petstore_service)) as client:
        result = await client.call_tool("load_spec", {"source": source})
        assert result.is_error
        assert reason in text_of(result)
        still = await client.call_tool("list_specs", {})
    assert not still.is_error


async def test_load_spec_refuses_private_addresses_with_the_ssrf_reason(
    petstore_service: Service,
) -> None:
    async with Client(build_server(petstore_service)) as client:
        result = await client.call_tool("load_spec", {"source": "http://127.0.0.1:9/openapi.json"})
    assert result.is_error
    message = text_of(result).lower()
    assert "private" in message or "loopback" in message or "refused" in message


async def test_client_roots_are_the_workspace(
    make_service: Callable[..., Service], fixtures: Path, tmp_path: Path
) -> None:
    """With no --workspace and no --spec, the client's roots are searched for specs, and
    load_spec accepts files inside them only."""
    runtime = make_service()
    root = fixtures / "workspace"

    async def roots(context: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=root.as_uri(), name="workspace")])  # type: ignore[arg-type]

    changed: list[Any] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceListChangedNotification):
            changed.append(message)

    server = build_server(runtime)
    async with Client(
        server, mode="legacy", list_roots_callback=roots, message_handler=on_message
    ) as client:
        listed = await client.call_tool("list_specs", {})
        assert listed.structured_content is not None
        names = {s["name"] for s in listed.structured_content["specs"]}
        assert names == {"notes-api", "billing", "weather-api"}  # by title or file stem
        outside = await client.call_tool("load_spec", {"source": str(fixtures / "cyclic.yaml")})
        assert outside.is_error and "outside the workspace" in text_of(outside)
        inside = await client.call_tool("load_spec", {"source": str(root / "api" / "openapi.yaml")})
        assert not inside.is_error, text_of(inside)
        with anyio.fail_after(5):
            while not changed:
                await anyio.sleep(0.01)


async def test_load_spec_notifies_resource_list_changes_to_listeners(
    petstore_service: Service, in_fixtures: Path
) -> None:
    """2026-07-28 clients hear of the new `openapi://` resource through subscriptions/listen."""
    async with (
        Client(build_server(petstore_service)) as client,
        client.listen(resources_list_changed=True) as subscription,
    ):
        result = await client.call_tool("load_spec", {"source": "cyclic.yaml"})
        assert not result.is_error, text_of(result)
        with anyio.fail_after(5):
            event = await subscription.__anext__()
    assert "resource" in type(event).__name__.lower()


async def test_legacy_clients_hear_resource_list_changes(
    petstore_service: Service, in_fixtures: Path
) -> None:
    runtime = petstore_service
    changed: list[Any] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, ResourceListChangedNotification):
            changed.append(message)

    async with Client(build_server(runtime), mode="legacy", message_handler=on_message) as client:
        result = await client.call_tool("load_spec", {"source": "split/openapi.yaml"})
        assert not result.is_error, text_of(result)
        with anyio.fail_after(5):
            while not changed:
                await anyio.sleep(0.01)
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
    assert "openapi://invoicing-api" in uris  # split/openapi.yaml, named by its title


async def test_legacy_initialize_advertises_resource_list_changes(
    petstore_service: Service,
) -> None:
    async with Client(build_server(petstore_service), mode="legacy") as client:
        capabilities = client.server_capabilities
    assert capabilities.resources is not None
    assert capabilities.resources.list_changed is True
    assert capabilities.tools is not None
    assert capabilities.prompts is not None


async def test_template_arguments_complete_to_specs_and_operations(
    make_service: Callable[..., Service], fixtures: Path
) -> None:
    runtime = make_service(fixtures / "petstore-3.0.yaml", fixtures / "tasks-3.1.json")
    template = ResourceTemplateReference(uri="openapi://{spec}/operations/{operation}")
    async with Client(build_server(runtime)) as client:
        specs = await client.complete(template, {"name": "spec", "value": "ta"})
        operations = await client.complete(
            template,
            {"name": "operation", "value": "getPet"},
            context_arguments={"spec": "petstore-3.0"},
        )
    assert specs.completion.values == ["tasks-3.1"]
    assert operations.completion.values == ["getPetById"]
