"""The catalog: discovery, several specs at once, matching concrete calls, suggestions, reload,
bad specs among good ones, and the workspace boundary."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog, discover, ensure_inside, split_call
from opensesame_predictor.core.errors import InvalidRequest
from opensesame_predictor.core.models import HistoryEvent, PredictRequest
from opensesame_predictor.core.store import SpecStore
from opensesame_predictor.service import Service

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

PETSTORE = "petstore-3.0.yaml"
LIBRARY = "library-swagger-2.0.json"
TASKS = "tasks-3.1.json"


def load(*specs: Path | str, workspace: Path | None = None) -> Service:
    settings = Settings(specs=[str(s) for s in specs], workspace=str(workspace or ""))
    return Service.from_settings(settings)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """Pet store (OpenAPI 3.0, server /v1), library (Swagger 2.0, basePath /api/v2), tasks
    (OpenAPI 3.1) in one catalog, shared by the module: a catalog is immutable."""
    settings = Settings(specs=[str(FIXTURES / name) for name in (PETSTORE, LIBRARY, TASKS)])
    store = SpecStore(tmp_path_factory.mktemp("store") / "store.json", settings.cache_ttl_seconds)
    runtime = Service(settings, store)
    runtime.set_sources(settings.specs)
    return runtime.load()


def touch_later(path: Path) -> None:
    """Move the mtime forward, so a change is visible even on coarse-mtime filesystems."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


# discovery -----------------------------------------------------------------------------------


def test_discovery_finds_the_specs_and_skips_prose_config_vendored_and_hidden(
    fixtures: Path,
) -> None:
    root = fixtures / "workspace"
    found = {p.relative_to(root).as_posix() for p in discover(root)}
    assert found == {"api/openapi.yaml", "specs/billing.json", "swagger.json"}


def test_discovery_reads_a_spec_whatever_the_order_of_its_keys(tmp_path: Path) -> None:
    """A minified JSON spec whose first key is not `openapi` is a spec; a JSON file with an
    `openapi` key only inside another object, or none, is not; a YAML spec whose `openapi`
    key comes after a long `info` is one."""
    spec = {"info": {"title": "Min", "version": "1"}, "paths": {}, "openapi": "3.0.0"}
    (tmp_path / "min.json").write_text(json.dumps(spec, separators=(",", ":")), "utf-8")
    (tmp_path / "nested.json").write_text(json.dumps({"x": {"openapi": "3.0.0"}}), "utf-8")
    (tmp_path / "package.json").write_text(json.dumps({"name": "app"}), "utf-8")
    long_info = "info:\n  title: Long\n  description: |\n" + "    words\n" * 5000
    (tmp_path / "late.yaml").write_text(long_info + "openapi: 3.0.0\npaths: {}\n", "utf-8")
    (tmp_path / "config.yaml").write_text("server:\n  openapi: 3.0.0\n", "utf-8")
    assert sorted(p.name for p in discover(tmp_path)) == ["late.yaml", "min.json"]


def test_discovery_skips_symlinks_that_lead_out(fixtures: Path, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "specs").mkdir(parents=True)
    shutil.copy(fixtures / PETSTORE, root / "specs" / "pets.yaml")
    (root / "openapi.yaml").symlink_to(fixtures / LIBRARY)  # out of the workspace
    (root / "swagger.json").symlink_to(root / "specs" / "pets.yaml")  # stays inside
    found = {p.relative_to(root).as_posix() for p in discover(root)}
    assert found == {"specs/pets.yaml", "swagger.json"}


def test_a_workspace_loads_every_discovered_spec_under_a_unique_name(fixtures: Path) -> None:
    catalog = load(workspace=fixtures / "workspace").catalog
    assert catalog.errors == []
    sources = {Path(s.source).relative_to(fixtures / "workspace").as_posix() for s in catalog.specs}
    assert sources == {"api/openapi.yaml", "specs/billing.json", "swagger.json"}
    names = catalog.spec_names()
    assert len(names) == len(set(names)) == 3
    assert len(catalog) == 3 + 3 + 2
    # Swagger 2.0 basePath is part of the operation path
    assert catalog.match("/v1/weather/lisbon") is not None
    assert all(op.spec in names for op in catalog.operations)


def test_discovered_specs_are_named_by_title_or_file_stem(fixtures: Path, tmp_path: Path) -> None:
    """A file named only `openapi.yaml` (`swagger.json`, ...) takes its spec's title, not its
    folder's name (`api`, `workspace`); other files their stem. Names stay unique and hold
    across reloads, even when the title changes."""
    workspace = fixtures / "workspace"
    catalog = load(workspace=workspace).catalog
    names = {Path(s.source).relative_to(workspace).as_posix(): s.name for s in catalog.specs}
    assert names == {
        "api/openapi.yaml": "notes-api",
        "specs/billing.json": "billing",
        "swagger.json": "weather-api",
    }
    assert {op.spec for op in catalog.operations} == set(names.values())

    for folder in ("one", "two", "three"):
        (tmp_path / folder).mkdir()
    shutil.copy(workspace / "api" / "openapi.yaml", tmp_path / "one" / "openapi.yaml")
    shutil.copy(workspace / "api" / "openapi.yaml", tmp_path / "two" / "openapi.yaml")
    untitled = json.loads((fixtures / TASKS).read_text())
    del untitled["info"]["title"]
    (tmp_path / "three" / "openapi.json").write_text(json.dumps(untitled))
    runtime = load(workspace=tmp_path)

    def named() -> dict[str, str]:
        return {Path(s.source).parent.name: s.name for s in runtime.catalog.specs}

    # sorted discovery: one, three, two
    assert named() == {"one": "notes-api", "three": "openapi", "two": "notes-api-2"}
    retitled = tmp_path / "one" / "openapi.yaml"
    retitled.write_text(retitled.read_text().replace("title: Notes API", "title: Memo API"))
    touch_later(retitled)
    assert runtime.reload_if_changed() is True
    assert runtime.catalog.specs[0].title == "Memo API"
    assert named() == {"one": "notes-api", "three": "openapi", "two": "notes-api-2"}


# several specs -------------------------------------------------------------------------------


def test_operations_are_keyed_by_method_and_path_and_namespaced_by_spec(three: Catalog) -> None:
    assert three.errors == []
    assert len(three.spec_names()) == 3
    for op in three.operations:
        assert op.key == f"{op.method} {op.path}"
        assert op.uid == f"{op.spec}:{op.key}"
        assert three.get(op.uid) is op
    assert len(three.by_uid) == len(three.operations) == 13 + 12 + 14
    assert three.get("GET /pets/{petId}") is not None
    assert three.get("get /api/v2/books/{bookId}") is not None  # method case does not matter
    assert three.get("GET /nowhere") is None


def test_two_specs_with_identical_paths_stay_apart(fixtures: Path, tmp_path: Path) -> None:
    # the same file name in two folders: the names collide and must be made unique
    for folder in ("team-a", "team-b"):
        (tmp_path / folder).mkdir()
        shutil.copy(fixtures / PETSTORE, tmp_path / folder / "petstore.yaml")
    runtime = load(tmp_path / "team-a" / "petstore.yaml", tmp_path / "team-b" / "petstore.yaml")
    catalog = runtime.catalog
    names = catalog.spec_names()
    assert len(names) == len(set(names)) == 2
    assert len(catalog) == 26
    same = catalog.by_key["GET /pets/{petId}"]
    assert {op.spec for op in same} == set(names)
    assert {op.uid for op in same} == {f"{name}:GET /pets/{{petId}}" for name in names}
    for name in names:
        op = catalog.get("GET /pets/{petId}", spec=name)
        assert op is not None and op.spec == name
        assert catalog.match("/pets/42", spec=name) is catalog.by_uid[f"{name}:GET /pets/{{petId}}"]


# matching concrete calls ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "method", "expected"),
    [
        ("/pets/42", None, "petstore-3.0:GET /pets/{petId}"),
        ("/pets/42", "DELETE", "petstore-3.0:DELETE /pets/{petId}"),
        ("/pets/42", "delete", "petstore-3.0:DELETE /pets/{petId}"),
        ("PUT /pets/42", None, "petstore-3.0:PUT /pets/{petId}"),
        ("/pets/42/", None, "petstore-3.0:GET /pets/{petId}"),
        ("/pets/42/photos", None, "petstore-3.0:POST /pets/{petId}/photos"),
        # a full URL: scheme, host, the server's base path and the query are not part of the key
        ("https://petstore.example.com/v1/pets/42?x=1", None, "petstore-3.0:GET /pets/{petId}"),
        ("GET https://petstore.example.com/v1/pets/42#top", None, "petstore-3.0:GET /pets/{petId}"),
        ("/v1/store/orders/7", None, "petstore-3.0:GET /store/orders/{orderId}"),
        # a literal path beats the template that would also match it
        ("/pets/search", None, "petstore-3.0:GET /pets/search"),
        ("/pets/findByTags?tags=a,b", None, "petstore-3.0:GET /pets/findByTags"),
        # the method is chosen before the literal: no DELETE /pets/search, so the template
        ("DELETE /pets/search", None, "petstore-3.0:DELETE /pets/{petId}"),
        # Swagger 2.0: basePath is part of the path
        ("/api/v2/books/12", None, "library-swagger-2.0:GET /api/v2/books/{bookId}"),
        (
            "https://library.example.com/api/v2/books/12",
            "PUT",
            "library-swagger-2.0:PUT /api/v2/books/{bookId}",
        ),
        ("/api/v2/books/search?q=dune", None, "library-swagger-2.0:GET /api/v2/books/search"),
        (
            "/api/v2/authors/3/books",
            None,
            "library-swagger-2.0:GET /api/v2/authors/{authorId}/books",
        ),
        (
            "/projects/p1/tasks/t2/comments",
            "POST",
            "tasks-3.1:POST /projects/{projectId}/tasks/{taskId}/comments",
        ),
    ],
)
def test_match_maps_a_concrete_call_to_its_template(
    three: Catalog, call: str, method: str | None, expected: str
) -> None:
    op = three.match(call, method)
    assert op is not None, call
    assert op.uid == expected


@pytest.mark.parametrize(
    ("call", "method"),
    [("/unknown/1", None), ("/pets/42", "PATCH"), ("/pets/42/photos/9", None), ("", None)],
)
def test_match_gives_none_when_nothing_fits(three: Catalog, call: str, method: str | None) -> None:
    assert three.match(call, method) is None


def test_the_more_literal_template_wins(tmp_path: Path) -> None:
    spec = tmp_path / "items.yaml"
    spec.write_text(
        "openapi: 3.0.3\n"
        "info: {title: Items, version: '1'}\n"
        "paths:\n"
        "  /items/{id}:\n"
        "    get: {operationId: getItem, responses: {'200': {description: ok}}}\n"
        "    delete: {operationId: deleteItem, responses: {'204': {description: gone}}}\n"
        "  /items/{id}/{part}:\n"
        "    get: {operationId: getPart, responses: {'200': {description: ok}}}\n"
        "  /items/latest:\n"
        "    get: {operationId: latestItem, responses: {'200': {description: ok}}}\n"
        "  /items/{id}/owner:\n"
        "    post: {operationId: setOwner, responses: {'200': {description: ok}}}\n"
    )
    catalog = load(spec).catalog
    assert catalog.errors == []

    def key(call: str, method: str | None = None) -> str | None:
        op = catalog.match(call, method)
        return op.key if op else None

    assert key("/items/latest") == "GET /items/latest"
    assert key("/items/7") == "GET /items/{id}"
    assert key("DELETE /items/latest") == "DELETE /items/{id}"
    assert key("/items/7/owner") == "POST /items/{id}/owner"  # more literal, though not a GET
    assert key("/items/7/owner", "GET") == "GET /items/{id}/{part}"
    assert key("/items/7/colour") == "GET /items/{id}/{part}"


@pytest.mark.parametrize(
    ("call", "method", "expected"),
    [
        ("GET /users/42", None, ("GET", "/users/42")),
        ("/users/42", "post", ("POST", "/users/42")),
        ("users/42", None, (None, "/users/42")),
        ("https://api.example.com/v1/users/42?expand=1#x", None, (None, "/v1/users/42")),
        ("  delete   /users/42 ", None, ("DELETE", "/users/42")),
        ("https://api.example.com", "GET", ("GET", "/")),
        ("GET /pets/42#top", None, ("GET", "/pets/42")),
        # query-protocol APIs: the action is part of what the call is
        ("POST /#Action=SendMessage", None, ("POST", "/#Action=SendMessage")),
        (
            "GET /{Account}/{Queue}/#Action=PurgeQueue",
            None,
            ("GET", "/{Account}/{Queue}/#Action=PurgeQueue"),
        ),
        (
            "https://sqs.us-east-1.amazonaws.com/1234/orders?Action=PurgeQueue&Version=2012-11-05",
            None,
            (None, "/1234/orders/#Action=PurgeQueue"),
        ),
    ],
)
def test_split_call(call: str, method: str | None, expected: tuple[str | None, str]) -> None:
    assert split_call(call, method) == expected


# suggestions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("GET /pets/{id}", "GET /pets/{petId}"),
        ("GET /pet/{id}", "GET /pets/{petId}"),
        ("POST /pet", "POST /pets"),
        ("get /pets/{petId}", "GET /pets/{petId}"),
        ("/pets/{petId}/photo", "POST /pets/{petId}/photos"),
        ("GET /orders/{id}", "GET /store/orders/{orderId}"),
        ("GET /books/{id}", "GET /api/v2/books/{bookId}"),
    ],
)
def test_suggest_puts_the_closest_key_first(three: Catalog, typo: str, meant: str) -> None:
    suggestions = three.suggest(typo)
    assert suggestions[0] == meant
    assert len(suggestions) == 3
    assert all(s in three.by_key for s in suggestions)


def test_suggest_respects_the_limit(three: Catalog) -> None:
    assert len(three.suggest("GET /pets", limit=1)) == 1
    assert len(three.suggest("GET /pets", limit=5)) == 5


# reload --------------------------------------------------------------------------------------

COUNT_PETS = (
    "  /pets/count:\n"
    "    get:\n"
    "      operationId: countPets\n"
    "      summary: Count the pets\n"
    "      responses:\n"
    "        '200':\n"
    "          description: ok\n"
)


def test_reload_picks_up_a_changed_spec_and_only_then(fixtures: Path, tmp_path: Path) -> None:
    spec = tmp_path / "pets.yaml"
    shutil.copy(fixtures / PETSTORE, spec)
    other = tmp_path / "library.json"
    shutil.copy(fixtures / LIBRARY, other)
    runtime = load(spec, other)
    before = runtime.catalog
    assert before.get("GET /pets/count") is None
    assert runtime.reload_if_changed() is False
    assert runtime.catalog is before

    text = spec.read_text()
    spec.write_text(text.replace("  /pets/search:\n", COUNT_PETS + "  /pets/search:\n", 1))
    touch_later(spec)
    assert runtime.reload_if_changed() is True
    after = runtime.catalog
    added = after.get("GET /pets/count")
    assert added is not None and added.operation_id == "countPets"
    assert len(after) == len(before) + 1
    assert after.spec_names() == before.spec_names()  # names are kept across reloads
    assert runtime.predictor.catalog is after  # the predictor ranks over the new catalog
    assert runtime.predictor.predict({"prompt": "count the pets"}).predictions

    assert runtime.reload_if_changed() is False


def test_a_broken_spec_is_retried_only_when_it_changes(fixtures: Path, tmp_path: Path) -> None:
    good = tmp_path / "pets.yaml"
    shutil.copy(fixtures / PETSTORE, good)
    broken = tmp_path / "notes.yaml"
    shutil.copy(fixtures / "bad" / "invalid.yaml", broken)
    runtime = load(good, broken)
    assert [Path(s.source).name for s in runtime.catalog.errors] == ["notes.yaml"]
    assert runtime.reload_if_changed() is False  # still broken, unchanged: nothing to redo

    shutil.copy(fixtures / "workspace" / "api" / "openapi.yaml", broken)
    touch_later(broken)
    assert runtime.reload_if_changed() is True
    assert runtime.catalog.errors == []
    assert runtime.catalog.get("GET /notes") is not None
    assert runtime.catalog.get("GET /pets/{petId}") is not None


def test_an_edit_that_breaks_a_spec_keeps_its_last_good_version(
    fixtures: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "pets.yaml"
    shutil.copy(fixtures / PETSTORE, spec)
    good = spec.read_text()
    runtime = load(spec)
    spec.write_text(good.replace("paths:", "paths: [", 1))
    touch_later(spec)
    assert runtime.reload_if_changed() is True
    [summary] = runtime.catalog.specs
    assert runtime.catalog.errors == [] and len(runtime.catalog) == 13
    assert summary.stale_because is not None and "invalid YAML" in summary.stale_because
    assert "serving the last good version" in summary.warnings[0]
    assert runtime.reload_if_changed() is False  # unchanged and still broken: nothing to redo
    spec.write_text(good)
    touch_later(spec)
    assert runtime.reload_if_changed() is True
    assert runtime.catalog.specs[0].stale_because is None


def test_a_deleted_spec_becomes_an_error_and_the_others_stay(
    fixtures: Path, tmp_path: Path
) -> None:
    gone = tmp_path / "pets.yaml"
    shutil.copy(fixtures / PETSTORE, gone)
    runtime = load(gone, fixtures / LIBRARY)
    gone.unlink()
    assert runtime.reload_if_changed() is True
    [error] = runtime.catalog.errors
    assert error.source == str(gone) and error.error == "file not found"
    assert runtime.catalog.get("GET /api/v2/books") is not None
    assert runtime.catalog.get("GET /pets") is None


# bad specs among good ones -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("bad/invalid.yaml", "invalid YAML at line"),
        ("bad/invalid.json", "invalid JSON at line"),
        ("bad/not-openapi.yaml", "not an OpenAPI or Swagger document"),
        ("bad/unresolvable-ref.yaml", "#/components/schemas/DoesNotExist"),
        ("bad/escaping-ref.yaml", "outside the workspace"),
        ("bad/missing.yaml", "file not found"),
        ("bad/huge-number.yaml", "unreadable value"),
    ],
)
def test_a_bad_spec_does_not_stop_the_others(fixtures: Path, bad: str, reason: str) -> None:
    runtime = load(fixtures / PETSTORE, fixtures / bad, fixtures / LIBRARY)
    catalog = runtime.catalog
    [error] = catalog.errors
    assert error.source == str((fixtures / bad).resolve())
    assert error.error is not None and reason in error.error
    assert error.operations == 0
    assert error.name not in catalog.spec_names()
    assert len(catalog.spec_names()) == 2
    assert len(catalog) == 13 + 12
    result = runtime.predictor.predict({"prompt": "upload a photo", "history": ["POST /pets"]})
    assert result.predictions


@pytest.mark.parametrize("failure", [ValueError("bad"), KeyError("x"), TypeError("t")])
def test_no_exception_while_reading_one_spec_escapes_it(
    fixtures: Path, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """Whatever goes wrong inside one spec is that spec's error; the others keep serving."""
    from opensesame_predictor.core import catalog as catalog_module

    real = catalog_module.parse_spec

    def failing(doc: object, source: str, *args: object, **kwargs: object) -> object:
        if source.endswith(LIBRARY):
            raise failure
        return real(doc, source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog_module, "parse_spec", failing)
    catalog = load(fixtures / PETSTORE, fixtures / LIBRARY).catalog
    [error] = catalog.errors
    assert error.source.endswith(LIBRARY) and type(failure).__name__ in (error.error or "")
    assert len(catalog) == 13


def test_the_escaping_ref_never_reads_outside(fixtures: Path) -> None:
    [error] = load(fixtures / "bad" / "escaping-ref.yaml").catalog.errors
    assert error.error is not None
    assert "root:" not in error.error  # nothing of /etc/passwd leaks into the message


# the workspace boundary ----------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "api.yaml").write_text("openapi: 3.0.3\n")
    (tmp_path / "secret.yaml").write_text("openapi: 3.0.3\n")
    (tmp_path / "ws-other").mkdir()
    return root


def test_ensure_inside_accepts_paths_in_the_workspace(workspace: Path) -> None:
    inside = (workspace / "specs" / "api.yaml").resolve()
    assert ensure_inside(str(inside), [workspace]) == inside
    assert ensure_inside("specs/api.yaml", [workspace]) == inside  # relative to the workspace
    assert ensure_inside(str(workspace / "specs" / ".." / "specs" / "api.yaml"), [workspace]) == (
        inside
    )
    other = workspace.parent / "ws-other"
    assert ensure_inside(str(other / "x.yaml"), [workspace, other]) == (other / "x.yaml").resolve()


@pytest.mark.parametrize(
    "escape",
    [
        "../secret.yaml",
        "specs/../../secret.yaml",
        "{ws}/../secret.yaml",
        "{ws}-other/x.yaml",  # a sibling whose name starts with the workspace's
        "/etc/passwd",
        "~/.ssh/id_rsa",
    ],
)
def test_ensure_inside_refuses_paths_that_escape(workspace: Path, escape: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ensure_inside(escape.format(ws=workspace), [workspace])
    assert caught.value.field == "source"
    assert "outside the workspace" in caught.value.message


def test_ensure_inside_refuses_a_symlink_that_leads_out(workspace: Path) -> None:
    (workspace / "link.yaml").symlink_to(workspace.parent / "secret.yaml")
    (workspace / "out").symlink_to(workspace.parent, target_is_directory=True)
    for name in ("link.yaml", "out/secret.yaml", str(workspace / "out" / "secret.yaml")):
        with pytest.raises(InvalidRequest):
            ensure_inside(name, [workspace])


# A query-protocol API as the public API directories describe AWS ones: one path per action.
QUEUES = """
openapi: 3.0.0
info: {title: Queues, version: '2012-11-05'}
paths:
  /#Action=CreateQueue:
    post: {operationId: POST_CreateQueue, responses: {'200': {description: ok}}}
  /#Action=ListQueues:
    post: {operationId: POST_ListQueues, responses: {'200': {description: ok}}}
  /{AccountNumber}/{QueueName}/#Action=PurgeQueue:
    parameters:
      - {name: AccountNumber, in: path, required: true, schema: {type: integer}}
      - {name: QueueName, in: path, required: true, schema: {type: string}}
    get: {operationId: GET_PurgeQueue, responses: {'200': {description: ok}}}
    post: {operationId: POST_PurgeQueue, responses: {'200': {description: ok}}}
  /{AccountNumber}/{QueueName}/#Action=SendMessage:
    parameters:
      - {name: AccountNumber, in: path, required: true, schema: {type: integer}}
      - {name: QueueName, in: path, required: true, schema: {type: string}}
    post: {operationId: POST_SendMessage, responses: {'200': {description: ok}}}
  /search:
    get: {operationId: search, responses: {'200': {description: ok}}}
"""


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("POST /#Action=CreateQueue", "POST /#Action=CreateQueue"),
        ("POST /#Action=ListQueues", "POST /#Action=ListQueues"),
        ("https://sqs.eu-west-1.amazonaws.com/?Action=ListQueues", "POST /#Action=ListQueues"),
        (
            "POST /1234/orders/#Action=SendMessage",
            "POST /{AccountNumber}/{QueueName}/#Action=SendMessage",
        ),
        (
            "https://sqs.eu-west-1.amazonaws.com/1234/orders?Action=PurgeQueue",
            "GET /{AccountNumber}/{QueueName}/#Action=PurgeQueue",
        ),
        ("/search?q=x&Action=Go", "GET /search"),  # an Action query of no operation here
    ],
)
def test_calls_of_a_query_protocol_api_find_their_action(
    tmp_path: Path, call: str, expected: str
) -> None:
    spec = tmp_path / "queues.yaml"
    spec.write_text(QUEUES)
    catalog = load(spec).catalog
    assert catalog.errors == []
    op = catalog.match(call)
    assert op is not None and op.key == expected


def test_a_query_protocol_call_in_the_history_counts_and_fills_the_next(tmp_path: Path) -> None:
    spec = tmp_path / "queues.yaml"
    spec.write_text(QUEUES)
    settings = Settings(specs=[str(spec)], database_url=str(tmp_path / "store.json"))
    predictor = Service.from_settings(settings).predictor
    sent = "https://sqs.eu-west-1.amazonaws.com/1234/orders?Action=SendMessage"
    request = PredictRequest(prompt="now empty that queue", history=[HistoryEvent(api_call=sent)])
    assert predictor.unmatched(request, predictor.catalog) == []
    purge = next(
        p for p in predictor.predict(request).predictions if p.api_call.endswith("PurgeQueue")
    )
    assert purge.parameters == {"AccountNumber": "1234", "QueueName": "orders"}
    assert purge.parameter_sources == {"AccountNumber": "history", "QueueName": "history"}
