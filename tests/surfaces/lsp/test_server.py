"""The language server end to end: `python -m opensesame_predictor lsp` over stdio, driven by
pytest-lsp with the capabilities of real clients (VS Code, Neovim 0.7)."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from .conftest import Session, Starter

HTTP = """\
@baseUrl = http://localhost:8080/v1

### Create a pet
POST {{baseUrl}}/pets
Content-Type: application/json

{"name": "Rex", "species": "dog"}

### Upload a photo of the pet
POST \n"""

PYTHON = '''\
import httpx

BASE = "http://localhost:8080/v1"


def cancel_order(client: httpx.Client, order_id: int) -> None:
    """Cancel the store order."""
    client.delete(f"{BASE}/")
'''

TYPESCRIPT = """\
// list the pets that are for sale
export async function listPets(): Promise<unknown> {
  const response = await fetch("/");
  return response.json();
}
"""


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Applies LSP text edits (ASCII documents: UTF-16 columns are code points)."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(position: types.Position) -> int:
        return offsets[min(position.line, len(lines))] + position.character

    for edit in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def edits_of(action: types.CodeAction, uri: str) -> list[types.TextEdit]:
    assert action.edit is not None and action.edit.changes is not None
    return list(action.edit.changes[uri])


async def code_actions(session: Session, uri: str, line: int) -> list[types.CodeAction]:
    diagnostics = session.client.diagnostics.get(uri, [])
    result = await session.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(
                start=types.Position(line=line, character=0),
                end=types.Position(line=line, character=0),
            ),
            context=types.CodeActionContext(
                diagnostics=[d for d in diagnostics if d.range.start.line == line]
            ),
        )
    )
    return [a for a in result or [] if isinstance(a, types.CodeAction)]


async def test_http_path_completion_ranks_and_uses_snippets(lsp: Starter, petstore: str) -> None:
    session = await lsp(specs=[petstore], client="visual-studio-code")
    await session.wait_indexed()
    uri = session.open("pets.http", HTTP, "http")

    result = await session.complete(uri, 9, 5)

    labels = [item.label for item in result.items]
    assert labels[0] == "/pets/{petId}/photos"  # the method is written: paths only
    assert all(label.startswith("/") for label in labels)
    assert [item.sort_text for item in result.items] == sorted(i.sort_text for i in result.items)
    top = result.items[0]
    # a call: the kind editors show for functions (not Reference)
    assert {item.kind for item in result.items} == {types.CompletionItemKind.Function}
    assert top.insert_text_format == types.InsertTextFormat.Snippet
    assert isinstance(top.text_edit, types.TextEdit)
    assert top.text_edit.new_text.startswith("/pets/${1:")
    assert top.text_edit.new_text.endswith("}/photos$0")
    assert top.detail == "Upload a pet photo"
    assert isinstance(top.documentation, types.MarkupContent)
    assert "Confidence: " in top.documentation.value and "petId" in top.documentation.value
    assert top.label_details is not None and top.label_details.description is not None
    assert re.match(r"[01]\.\d\d · petstore", top.label_details.description)
    # only POST operations follow `POST `
    assert "/pets/{petId}" not in labels[:3] or "POST" in labels[0]


async def test_http_completion_is_plain_text_without_snippet_support(
    lsp: Starter, petstore: str
) -> None:
    session = await lsp(specs=[petstore], client="neovim@v0.7.0")
    await session.wait_indexed()
    uri = session.open("pets.http", HTTP, "http")

    result = await session.complete(uri, 9, 5)

    top = result.items[0]
    assert top.label == "/pets/{petId}/photos"
    assert top.insert_text_format == types.InsertTextFormat.PlainText
    assert isinstance(top.text_edit, types.TextEdit)
    assert top.text_edit.new_text == "/pets/{petId}/photos"
    assert "$" not in "".join(i.text_edit.new_text for i in result.items if i.text_edit)


async def test_http_whole_request_completion(lsp: Starter, petstore: str) -> None:
    session = await lsp(specs=[petstore])
    await session.wait_indexed()
    text = "@baseUrl = http://localhost:8080/v1\n\n### Create a pet called Rex\n\n"
    uri = session.open("new.http", text, "http")

    result = await session.complete(uri, 3, 0)

    top = result.items[0]
    assert top.label == "POST /pets"
    # a whole request is inserted: the kind editors show for snippets
    assert {item.kind for item in result.items} == {types.CompletionItemKind.Snippet}
    assert isinstance(top.text_edit, types.TextEdit)
    request = top.text_edit.new_text
    assert request.startswith("POST {{baseUrl}}/pets\nContent-Type: application/json\n\n{\n")
    assert '"name": "Rex"' in request  # a value the prompt names is filled in
    assert '"species": "${1:dog}"' in request  # the spec's example is a tab stop
    assert request.endswith("}$0")


async def test_an_abstaining_answer_shows_no_confidence(lsp: Starter, petstore: str) -> None:
    """Nothing in the specs fits the prompt: the items say so instead of a probability that
    reads 0.50 or 1.00."""
    session = await lsp(specs=[petstore])
    await session.wait_indexed()
    uri = session.open("cake.http", "### bake a chocolate cake with cinnamon\n\n", "http")

    result = await session.complete(uri, 1, 0)

    assert result.items
    for item in result.items:
        assert item.label_details is not None and item.label_details.description is not None
        assert item.label_details.description.startswith("no match · ")
        assert isinstance(item.documentation, types.MarkupContent)
        (line,) = [x for x in item.documentation.value.splitlines() if "Confidence" in x]
        assert line.startswith("Confidence: no match") and not re.search(r"\d\.\d", line)


async def test_python_completion_inside_url_string(lsp: Starter, petstore: str) -> None:
    session = await lsp(specs=[petstore])
    await session.wait_indexed()
    uri = session.open("client.py", PYTHON, "python")

    result = await session.complete(uri, 7, 27)  # after the `/` of f"{BASE}/"

    labels = [item.label for item in result.items]
    assert {item.kind for item in result.items} == {types.CompletionItemKind.Function}
    assert labels[0] == "/store/orders/{orderId}"  # client.delete(...): DELETE operations
    assert set(labels) <= {"/store/orders/{orderId}", "/pets/{petId}"}
    edit = result.items[0].text_edit
    assert isinstance(edit, types.TextEdit)
    assert edit.range.start == types.Position(line=7, character=26)  # keeps `{BASE}`
    assert edit.range.end == types.Position(line=7, character=27)


async def test_typescript_completion_in_fetch(lsp: Starter, petstore: str) -> None:
    session = await lsp(specs=[petstore])
    await session.wait_indexed()
    uri = session.open("pets.ts", TYPESCRIPT, "typescript")

    result = await session.complete(uri, 2, 33)  # inside fetch("/")

    assert result.items[0].label == "GET /pets"  # no method written: METHOD /path labels
    assert all(" /" in item.label for item in result.items)


async def test_intent_comment_offers_calls_that_apply(lsp: Starter, petstore: str) -> None:
    session = await lsp(specs=[petstore])
    await session.wait_indexed()
    python = "import httpx\n\n\ndef cleanup() -> None:\n    # TODO: cancel the order 7\n    pass\n"
    uri = session.open("cleanup.py", python, "python")

    actions = await code_actions(session, uri, 4)

    titles = [a.title for a in actions]
    assert titles[0] == "Insert API call: DELETE /store/orders/{orderId}"
    assert 1 <= len(titles) <= 3
    assert all(t.startswith("Insert API call: ") for t in titles)
    applied = apply_edits(python, edits_of(actions[0], uri))
    ast.parse(applied)  # still valid Python
    assert '    response = httpx.delete("/store/orders/7")\n    pass' in applied

    typescript = "// TODO: create a pet named Rex\nexport {};\n"
    ts_uri = session.open("create.ts", typescript, "typescript")
    ts_actions = await code_actions(session, ts_uri, 0)
    assert ts_actions[0].title == "Insert API call: POST /pets"
    ts_applied = apply_edits(typescript, edits_of(ts_actions[0], ts_uri))
    assert 'await fetch("/pets", {\n  method: "POST",' in ts_applied
    assert '"Content-Type": "application/json"' in ts_applied

    http = "# delete the pet 42\n"
    http_uri = session.open("delete.http", http, "http")
    http_actions = await code_actions(session, http_uri, 0)
    assert http_actions[0].title == "Insert API call: DELETE /pets/{petId}"
    assert apply_edits(http, edits_of(http_actions[0], http_uri)).splitlines()[1] == (
        "DELETE /pets/42"
    )


async def test_hover_shows_the_operation(lsp: Starter, petstore: str) -> None:
    session = await lsp(specs=[petstore])
    await session.wait_indexed()
    uri = session.open("get.http", "GET http://localhost:8080/v1/pets/42\n", "http")

    hover = await session.client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=0, character=32),
        )
    )

    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    text = hover.contents.value
    assert "**GET /pets/{petId}** — Get a pet" in text
    assert "`petId` (path, string, required)" in text
    assert "Response:" in text and "petstore-3.0" in text and "petstore-3.0.yaml" in text
    assert hover.range == types.Range(
        start=types.Position(line=0, character=4), end=types.Position(line=0, character=36)
    )


async def test_unknown_path_gets_a_warning_and_a_quick_fix(lsp: Starter, petstore: str) -> None:
    session = await lsp(specs=[petstore])
    await session.wait_indexed()
    text = "### get the pet\nGET {{host}}/pet/42\n\n### ok\nGET {{host}}/pets\n"
    uri = session.open("typo.http", text, "http")
    await session.wait_for(lambda: uri in session.client.diagnostics)

    diagnostics = session.client.diagnostics[uri]

    assert len(diagnostics) == 1
    warning = diagnostics[0]
    assert warning.severity == types.DiagnosticSeverity.Warning
    assert warning.source == "opensesame"
    assert "closest: GET /pets/{petId}" in warning.message
    assert warning.range.start.line == 1
    actions = await code_actions(session, uri, 1)
    fixes = [a for a in actions if a.kind == types.CodeActionKind.QuickFix]
    assert len(fixes) == 1 and fixes[0].diagnostics
    fixed = apply_edits(text, edits_of(fixes[0], uri))
    assert fixed.splitlines()[1] == "GET {{host}}/pets/42"


async def test_progress_while_indexing(lsp: Starter, petstore: str) -> None:
    session = await lsp(specs=[petstore])
    indexed = await session.wait_indexed()

    assert indexed["operations"] == 13 and indexed["errors"] == []
    reports = [r for rs in session.client.progress_reports.values() for r in rs]
    assert isinstance(reports[0], types.WorkDoneProgressBegin)
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert reports[-1].message == "13 operations"
    assert any(isinstance(r, types.WorkDoneProgressReport) for r in reports)


async def test_reindexes_when_a_spec_changes(lsp: Starter, petstore: str, tmp_path: Path) -> None:
    spec = tmp_path / "api" / "petstore.yaml"
    spec.parent.mkdir()
    shutil.copy(petstore, spec)
    session = await lsp(specs=[str(spec)])
    await session.wait_indexed()
    assert [r.method for r in session.registrations] == ["workspace/didChangeWatchedFiles"]
    uri = session.open("search.http", "### find pets\nGET \n", "http")
    before = [i.label for i in (await session.complete(uri, 1, 4)).items]
    assert "/pets/search" in before

    spec.write_text(spec.read_text().replace("/pets/search:", "/pets/lookup:"))
    session.client.workspace_did_change_watched_files(
        types.DidChangeWatchedFilesParams(
            changes=[types.FileEvent(uri=spec.as_uri(), type=types.FileChangeType.Changed)]
        )
    )
    await session.wait_indexed(2)

    after = [i.label for i in (await session.complete(uri, 1, 4)).items]
    assert "/pets/lookup" in after and "/pets/search" not in after

    # saving the spec in the editor re-indexes too
    spec.write_text(spec.read_text().replace("/pets/lookup:", "/pets/find:"))
    session.client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(spec.as_uri()))
    )
    await session.wait_indexed(3)
    saved = [i.label for i in (await session.complete(uri, 1, 4)).items]
    assert "/pets/find" in saved and "/pets/lookup" not in saved


async def test_broken_spec_is_reported_and_the_others_serve(
    lsp: Starter, petstore: str, fixtures: Path
) -> None:
    broken = str(fixtures / "bad" / "invalid.yaml")
    session = await lsp(specs=[broken, petstore])
    indexed = await session.wait_indexed()
    await session.wait_for(lambda: bool(session.client.messages))

    message = session.client.messages[0]
    assert message.type == types.MessageType.Warning
    assert "invalid.yaml" in message.message and "could not load" in message.message
    await session.wait_for(lambda: bool(session.client.log_messages))
    log = session.client.log_messages[0]  # the editor's output channel gets the log line
    assert log.type == types.MessageType.Warning and "invalid.yaml" in log.message
    assert indexed["operations"] == 13
    assert [e["source"] for e in indexed["errors"]] == [broken]
    uri = session.open("ok.http", "### list pets\nGET \n", "http")
    assert (await session.complete(uri, 1, 4)).items


async def test_failing_request_answers_an_error_and_the_server_stays_up(
    lsp: Starter, petstore: str
) -> None:
    session = await lsp(specs=[petstore])
    await session.wait_indexed()

    with pytest.raises(JsonRpcException) as error:
        await session.client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="opensesame.predict", arguments=[{"prompt": "x" * 5000}]
            )
        )
    assert "prompt" in error.value.message and "4096" in error.value.message

    result = await session.client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command="opensesame.predict", arguments=[{"prompt": "cancel the order 7"}]
        )
    )
    assert result["predictions"][0]["api_call"] == "DELETE /store/orders/{orderId}"


async def test_specs_from_configuration_and_workspace_folders(
    lsp: Starter, petstore: str, tmp_path: Path, fixtures: Path
) -> None:
    workspace = tmp_path / "ws"
    hidden = workspace / ".api"  # discovery skips hidden folders: only the setting finds it
    hidden.mkdir(parents=True)
    shutil.copy(petstore, hidden / "petstore.yaml")
    shutil.copy(fixtures / "tasks-3.1.json", workspace / "openapi.json")
    outside = str(fixtures / "library-swagger-2.0.json")
    session = await lsp(
        folders=[workspace],
        init_options={"specs": [outside]},
        configuration={"opensesame": {"specs": [".api/petstore.yaml"]}},
    )

    indexed = await session.wait_indexed()

    # the folder's spec (by its title: the file is `openapi.json`), then the setting's
    assert indexed["specs"] == ["taskboard-api", "petstore"]
    assert indexed["operations"] == 14 + 13
    assert any("outside the workspace" in m.message for m in session.client.messages)


async def test_python_and_typescript_hover_diagnostics_and_fixes(
    lsp: Starter, petstore: str
) -> None:
    session = await lsp(specs=[petstore])
    await session.wait_indexed()
    python = (
        'import httpx\n\nBASE = "http://localhost:8080/v1"\n\n\n'
        "def show(pet_id: str) -> None:\n"
        '    httpx.get(f"{BASE}/pets/{pet_id}")\n'
        '    httpx.get(f"{BASE}/pet/{pet_id}")\n'
    )
    typescript = 'export async function f() {\n  await fetch("/v1/store/order/7");\n}\n'
    py_uri = session.open("show.py", python, "python")
    ts_uri = session.open("order.ts", typescript, "typescript")
    await session.wait_for(
        lambda: py_uri in session.client.diagnostics and ts_uri in session.client.diagnostics
    )

    hover = await session.client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=py_uri),
            position=types.Position(line=6, character=25),
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert hover.contents.value.startswith("**GET /pets/{petId}** — Get a pet")

    (py_warning,) = session.client.diagnostics[py_uri]
    assert py_warning.range.start.line == 7 and "closest: GET /pets/{petId}" in py_warning.message
    (py_fix,) = [a for a in await code_actions(session, py_uri, 7) if a.kind == "quickfix"]
    fixed = apply_edits(python, edits_of(py_fix, py_uri))
    assert fixed.splitlines()[7] == '    httpx.get(f"{BASE}/pets/{pet_id}")'
    ast.parse(fixed)

    (ts_warning,) = session.client.diagnostics[ts_uri]
    assert "closest: GET /store/orders/{orderId}" in ts_warning.message
    (ts_fix,) = [a for a in await code_actions(session, ts_uri, 1) if a.kind == "quickfix"]
    assert apply_edits(typescript, edits_of(ts_fix, ts_uri)).splitlines()[1] == (
        '  await fetch("/v1/store/orders/7");'
    )


async def test_a_spec_edited_to_invalid_keeps_serving_its_last_good_version(
    lsp: Starter, petstore: str, tmp_path: Path
) -> None:
    """A broken edit does not take the spec's operations away; the error shows on the spec
    file where the parser found it, and goes once the file is fixed."""
    spec = tmp_path / "api" / "petstore.yaml"
    spec.parent.mkdir()
    shutil.copy(petstore, spec)
    good = spec.read_text()
    session = await lsp(specs=[str(spec)])
    await session.wait_indexed()
    uri = session.open("search.http", "### find pets\nGET \n", "http")

    def changed() -> None:
        session.client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[types.FileEvent(uri=spec.as_uri(), type=types.FileChangeType.Changed)]
            )
        )

    spec.write_text(good.replace("paths:", "paths: [unclosed", 1))
    changed()
    indexed = await session.wait_indexed(2)
    assert indexed["operations"] == 13 and indexed["errors"] == []
    labels = [i.label for i in (await session.complete(uri, 1, 4)).items]
    assert "/pets/search" in labels
    await session.wait_for(lambda: bool(session.client.diagnostics.get(spec.as_uri())))
    [problem] = session.client.diagnostics[spec.as_uri()]
    assert problem.severity == types.DiagnosticSeverity.Error
    assert "invalid YAML" in problem.message
    line = next(n for n, text in enumerate(spec.read_text().splitlines()) if "[unclosed" in text)
    assert abs(problem.range.start.line - line) <= 2

    spec.write_text(good)
    changed()
    await session.wait_indexed(3)
    await session.wait_for(lambda: list(session.client.diagnostics.get(spec.as_uri(), [0])) == [])
