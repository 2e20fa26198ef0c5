"""Spec loading: OpenAPI 3.0 / 3.1 / Swagger 2.0, JSON and YAML, $ref resolution (cyclic,
split over files, refused outside the workspace) and every field of an Operation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from opensesame_predictor.core import yaml12
from opensesame_predictor.core.catalog import SpecLoader, SpecSource
from opensesame_predictor.core.errors import SpecError
from opensesame_predictor.core.fetch import FetchPolicy
from opensesame_predictor.core.models import Link, Operation, Parameter
from opensesame_predictor.core.specs import ParsedSpec, parse_spec, parse_text
from opensesame_predictor.core.store import SpecStore
from support import json_ok, with_id


def load(path: Path, name: str = "spec", root: Path | None = None) -> ParsedSpec:
    path = path.resolve()
    doc = parse_text(path.read_bytes(), str(path))
    return parse_spec(doc, str(path), name, path, (root or path.parent).resolve())


def by_id(parsed: ParsedSpec) -> dict[str, Operation]:
    return {op.operation_id: op for op in parsed.operations}


def param(op: Operation, name: str, location: str | None = None) -> Parameter:
    found = [p for p in op.parameters if p.name == name and location in (None, p.location)]
    assert len(found) == 1, f"{op.key} has {len(found)} parameters named {name}"
    return found[0]


# --- OpenAPI 3.0 (YAML) ---------------------------------------------------------------------


def test_openapi_30_yaml_fills_every_operation_field(fixtures: Path) -> None:
    parsed = load(fixtures / "petstore-3.0.yaml", "petstore")
    assert (parsed.title, parsed.version, parsed.openapi_version) == (
        "Petstore API",
        "1.4.0",
        "3.0.3",
    )
    assert parsed.server_paths == ["/v1"]
    assert len(parsed.operations) == 13
    ops = by_id(parsed)

    create = ops["createPet"]
    assert create.spec == "petstore"
    assert (create.method, create.path, create.key) == ("POST", "/pets", "POST /pets")
    assert create.uid == "petstore:POST /pets"
    assert create.summary == "Create a pet"
    assert create.description.startswith("Add a new pet to the store.")
    assert create.tags == ["pets"]
    assert create.body_content_type == "application/json"
    assert create.body_fields == ["name", "species", "breed", "birthDate", "status", "tags"]
    species = param(create, "species", "body")
    assert (species.type, species.required, species.example) == ("string", True, "dog")
    assert species.enum == ["dog", "cat", "bird", "fish", "reptile"]
    assert param(create, "tags", "body").type == "array"
    assert param(create, "breed", "body").required is False
    # response fields come from an allOf of two schemas, one of them nested (photos)
    assert "id" in create.response_fields and "createdAt" in create.response_fields
    assert "photos.id" in create.response_fields and "photos.url" in create.response_fields
    assert create.response_schemas[:2] == ["Pet", "NewPet"]  # the schema and its allOf part
    assert create.links == [
        Link(
            name="GetPetById", operation_id="getPetById", parameters={"petId": "$response.body#/id"}
        ),
        Link(
            name="UploadPetPhoto",
            operation_id="uploadPetPhoto",
            parameters={"petId": "$response.body#/id"},
        ),
    ]
    assert create.security == ["bearerAuth"]
    assert create.deprecated is False


def test_openapi_30_parameters_from_refs_path_items_and_operations(fixtures: Path) -> None:
    ops = by_id(load(fixtures / "petstore-3.0.yaml"))
    # a path-level parameter from components/parameters
    pet_id = param(ops["getPetById"], "petId")
    assert pet_id.location == "path" and pet_id.required and pet_id.type == "string"
    assert pet_id.description == "Id of the pet, as returned by `createPet` or `listPets`."
    assert pet_id.example == "4f7c2a1e-9b3d-4c55-8f0a-2d6e1b7c9a10"
    assert ops["getPetById"].path_params == ["petId"]
    # query parameters: a $ref with a default, an inline one whose schema is a $ref (enum)
    limit = param(ops["listPets"], "limit")
    assert (limit.location, limit.type, limit.required, limit.default) == (
        "query",
        "integer",
        False,
        20,
    )
    status = param(ops["listPets"], "status")
    assert status.enum == ["available", "pending", "sold"] and status.example == "available"
    assert param(ops["findPetsByTags"], "tags").example == ["friendly", "small"]
    # a multipart body
    upload = ops["uploadPetPhoto"]
    assert upload.body_content_type == "multipart/form-data"
    assert upload.body_fields == ["file", "caption"]
    assert param(upload, "file", "body").required is True
    assert param(upload, "caption", "body").example == "Rex at the beach"


def test_openapi_30_security_deprecated_and_nested_response_fields(fixtures: Path) -> None:
    ops = by_id(load(fixtures / "petstore-3.0.yaml"))
    assert ops["login"].security == []  # `security: []` makes an operation public
    assert ops["getCurrentUser"].security == ["bearerAuth"]
    assert ops["deletePet"].security == ["bearerAuth"]  # inherited from the top level
    assert ops["findPetsByTags"].deprecated is True
    assert ops["login"].response_fields == ["token", "tokenType", "expiresIn", "userId"]
    listing = ops["listPets"]
    # an object's own fields come before what they embed
    assert listing.response_fields[:3] == ["items", "total", "items.name"]
    assert {"items.id", "items.photos.id", "items.photos.petId", "total"} <= set(
        listing.response_fields
    )
    assert listing.response_schemas[:2] == ["PetList", "Pet"]
    order = ops["placeOrder"]
    assert {"id", "petId", "userId"} <= set(order.response_fields)
    assert order.links[0].parameters == {"orderId": "$response.body#/id"}
    assert ops["deletePet"].response_fields == []  # 204 has no body


# --- OpenAPI 3.1 (JSON) ---------------------------------------------------------------------


def test_openapi_31_json_type_lists_examples_and_ref_siblings(fixtures: Path) -> None:
    parsed = load(fixtures / "tasks-3.1.json", "tasks")
    assert parsed.openapi_version == "3.1.0" and parsed.version == "2.0.0"
    assert len(parsed.operations) == 14
    ops = by_id(parsed)
    create = ops["createTask"]
    assert param(create, "assigneeId", "body").type == "string"  # ["string", "null"]
    assert param(create, "dueDate", "body").example == "2024-07-01"  # schema `examples` list
    assert param(create, "title", "body").example == "Fix login redirect"
    priority = param(create, "priority", "body")
    assert priority.description == "How urgent the task is; defaults to normal."  # $ref sibling
    assert priority.enum == ["low", "normal", "high", "urgent"]
    assert param(ops["searchTasks"], "q").example == "login"  # named `examples` of a parameter
    assert param(ops["createProject"], "description", "body").example == (
        "Q3 redesign of the marketing site"
    )
    assert ops["updateProject"].body_content_type == "application/merge-patch+json"
    # oneOf [User, {"type": "null"}] still yields the nested id-like fields
    assert {"assignee.id", "assignee.email", "projectId"} <= set(ops["getTask"].response_fields)
    assert ops["createTask"].links[0].parameters == {
        "projectId": "$response.body#/projectId",
        "taskId": "$response.body#/id",
    }
    assert ops["getMe"].security == ["bearerAuth"]


# --- Swagger 2.0 ----------------------------------------------------------------------------


def test_swagger_20_applies_base_path_and_reads_body_and_form_parameters(fixtures: Path) -> None:
    parsed = load(fixtures / "library-swagger-2.0.json", "library")
    assert parsed.openapi_version == "2.0"
    assert all(op.path.startswith("/api/v2/") for op in parsed.operations)
    assert len(parsed.operations) == 12
    ops = by_id(parsed)
    assert ops["getBook"].key == "GET /api/v2/books/{bookId}"

    create = ops["createBook"]  # an `in: body` parameter with a schema
    assert create.body_content_type == "application/json"
    assert {"title", "authorId", "isbn"} <= set(create.body_fields)
    author = param(create, "authorId", "body")
    assert (author.type, author.required, author.example) == ("integer", True, 17)
    assert not [p for p in create.parameters if p.name == "book"]  # the wrapper is not a field

    loan = ops["createLoan"]  # `in: formData` parameters, operation-level consumes
    assert loan.body_content_type == "application/x-www-form-urlencoded"
    assert loan.body_fields == ["bookId", "memberId", "days"]
    member = param(loan, "memberId", "body")
    assert (member.type, member.required, member.example) == ("string", True, "M004217")
    assert param(loan, "days", "body").default == 21
    assert {"id", "dueAt", "book.id"} <= set(loan.response_fields)

    book_id = param(ops["getBook"], "bookId")  # top-level reusable parameter, x-example
    assert (book_id.location, book_id.type, book_id.required) == ("path", "integer", True)
    assert book_id.example == 1024
    assert param(ops["listBooks"], "page").default == 1
    assert ops["listBooks"].response_schemas[:2] == ["BookList", "Book"]
    assert ops["getBook"].security == ["apiKey"]


def test_swagger_20_body_content_type_follows_consumes(tmp_path: Path) -> None:
    doc = {
        "swagger": "2.0",
        "basePath": "/",
        "consumes": ["application/vnd.api+json"],
        "paths": {
            "/upload": {
                "post": {
                    "consumes": ["multipart/form-data"],
                    "parameters": [{"name": "file", "in": "formData", "type": "file"}],
                }
            },
            "/things": {
                "post": {"parameters": [{"name": "t", "in": "body", "schema": {"type": "object"}}]}
            },
        },
    }
    ops = {op.key: op for op in parse_spec(doc, "mem", "mem").operations}
    assert ops["POST /upload"].body_content_type == "multipart/form-data"
    assert set(ops) == {"POST /upload", "POST /things"}  # basePath "/" adds nothing
    assert ops["POST /things"].body_content_type == "application/vnd.api+json"


# --- $ref resolution ------------------------------------------------------------------------


def test_a_cyclic_ref_loads(fixtures: Path) -> None:
    parsed = load(fixtures / "cyclic.yaml")
    assert [op.operation_id for op in parsed.operations] == [
        "listNodes",
        "createNode",
        "getNode",
        "listNodeChildren",
    ]
    node = by_id(parsed)["getNode"]
    assert node.response_fields[:4] == ["id", "name", "parent", "children"]
    assert {"annotation.b.id", "annotation.b.a"} <= set(node.response_fields)
    assert len(node.response_fields) < 50  # the walk stops at the cycle
    assert node.response_schemas[0] == "Node"
    assert by_id(parsed)["createNode"].links[0].operation_id == "getNode"


def test_a_ref_that_only_points_at_itself_is_an_error() -> None:
    doc = {
        "openapi": "3.0.0",
        "paths": {"/a": {"$ref": "#/paths/~1b"}, "/b": {"$ref": "#/paths/~1a"}},
    }
    with pytest.raises(SpecError, match="cycle with no content"):
        parse_spec(doc, "loop.json", "loop")


def test_a_spec_split_over_files_loads(fixtures: Path) -> None:
    parsed = load(fixtures / "split" / "openapi.yaml", "invoices")
    ops = by_id(parsed)
    assert list(ops) == [
        "listInvoices",
        "createInvoice",
        "getInvoice",
        "voidInvoice",
        "sendInvoice",
    ]
    split = (fixtures / "split").resolve()
    assert sorted(parsed.files) == [
        str(split / "paths" / "invoices.yaml"),
        str(split / "schemas" / "invoice.yaml"),
    ]
    create = ops["createInvoice"]
    assert {"customerId", "lines", "lines.unitPrice"} <= set(create.body_fields)
    assert {"id", "number", "status"} <= set(create.response_fields)
    assert create.response_schemas[0] == "Invoice"  # named by the external ref
    assert param(ops["listInvoices"], "status").example == "open"
    assert param(ops["getInvoice"], "invoiceId").example == "inv_7Kp2Xa"
    assert ops["getInvoice"].security == ["bearerAuth"]


def test_external_refs_are_not_followed_for_documents_without_a_file(fixtures: Path) -> None:
    path = fixtures / "split" / "openapi.yaml"
    doc = parse_text(path.read_bytes(), "https://example.com/openapi.yaml")
    with pytest.raises(SpecError, match="is not followed for this source"):
        parse_spec(doc, "https://example.com/openapi.yaml", "remote")


# --- bad inputs -----------------------------------------------------------------------------


@pytest.fixture
def loader(tmp_path: Path) -> SpecLoader:
    return SpecLoader(SpecStore(tmp_path / "s.json"), FetchPolicy(), max_spec_bytes=1 << 20)


def failure(loader: SpecLoader, path: Path, root: Path | None = None) -> str:
    source = SpecSource(str(path), root or path.parent)
    loaded = loader.load(source, "bad")
    assert loaded.parsed is None and loaded.summary.source == str(path)
    assert loaded.summary.error is not None
    return loaded.summary.error


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not-openapi.yaml", "not an OpenAPI or Swagger document"),
        ("invalid.yaml", "invalid YAML at line 10 column 16: did not find expected ',' or ']'"),
        ("invalid.json", "invalid JSON at line 1 column 286: Unterminated string"),
        ("unresolvable-ref.yaml", "unresolvable $ref '#/components/schemas/DoesNotExist'"),
        ("escaping-ref.yaml", "$ref '../../../etc/passwd#/x' points outside the workspace"),
    ],
)
def test_bad_specs_raise_a_spec_error_naming_source_and_reason(
    fixtures: Path, loader: SpecLoader, name: str, reason: str
) -> None:
    path = (fixtures / "bad" / name).resolve()
    with pytest.raises(SpecError) as info:
        load(path)
    assert info.value.source == str(path)
    assert info.value.reason.startswith(reason)
    assert info.value.message == f"{path}: {info.value.reason}"
    assert info.value.code == "spec_error"
    # the loader turns the same error into the spec's summary instead of raising
    assert failure(loader, path).startswith(reason)


def test_a_missing_file_is_a_spec_error(tmp_path: Path, loader: SpecLoader) -> None:
    assert failure(loader, tmp_path / "nope.yaml") == "file not found"
    assert failure(loader, tmp_path) == "is a directory, not a spec file"


def test_an_escaping_ref_is_refused_even_when_the_target_exists(
    tmp_path: Path, loader: SpecLoader
) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (outside / "secret.yaml").write_text("Secret: {type: object, properties: {password: {}}}\n")
    spec = workspace / "openapi.yaml"
    spec.write_text(
        "openapi: 3.0.0\npaths:\n  /s:\n    get:\n      responses:\n        '200':\n"
        "          description: ok\n          content:\n            application/json:\n"
        "              schema: {$ref: '../outside/secret.yaml#/Secret'}\n"
    )
    with pytest.raises(SpecError, match="points outside the workspace"):
        load(spec, root=workspace)
    assert "outside the workspace" in failure(loader, spec, workspace)
    # the same ref inside a wider workspace root is fine
    assert load(spec, root=tmp_path).operations[0].response_fields == ["password"]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([1, 2], "not an OpenAPI or Swagger document"),
        ("just text", "not an OpenAPI or Swagger document"),
        ({"openapi": "4.0.0"}, "unsupported OpenAPI version '4.0.0'"),
        ({"swagger": "1.2"}, "unsupported OpenAPI version '1.2'"),
        ({"openapi": "3.0.0", "paths": ["/a"]}, "'paths' must be a mapping"),
    ],
)
def test_documents_that_are_not_specs(doc: Any, reason: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(doc, "doc.json", "doc")
    assert info.value.reason.startswith(reason)


def test_a_spec_without_paths_has_no_operations() -> None:
    parsed = parse_spec({"openapi": "3.0.0", "info": {"title": "Empty"}}, "e.json", "e")
    assert parsed.operations == [] and parsed.title == "Empty"


def test_malformed_parts_of_an_operation_are_ignored() -> None:
    doc = {
        "openapi": "3.0.0",
        "info": {"title": ["not", "text"], "version": 3},
        "paths": {
            "/a": {"get": {"operationId": "ok"}},
            "/b": {
                "parameters": "not a list",
                "get": {
                    "operationId": 5,
                    "tags": ["t", 1, None],
                    "parameters": [{"name": "x", "in": ["query"]}, {"in": "query"}, 7],
                    "responses": {
                        "200": {
                            "description": "x",
                            "links": {"L": [], "M": {"operationId": 9, "parameters": {"a": {}}}},
                        }
                    },
                    "deprecated": "yes",
                },
            },
            "no-slash": {"get": {}},
            "/c": ["not", "a", "path", "item"],
        },
    }
    parsed = parse_spec(doc, "m.json", "m")
    assert (parsed.title, parsed.version) == ("", "3")
    assert [op.key for op in parsed.operations] == ["GET /a", "GET /b"]
    odd = parsed.operations[1]
    assert (odd.operation_id, odd.tags, odd.parameters, odd.deprecated) == ("", ["t"], [], False)
    assert odd.links == [Link(name="M", operation_id="9")]


def test_nested_objects_that_carry_an_id_keep_their_schema_name() -> None:
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/me/player": {
                "get": {
                    "responses": json_ok(
                        {
                            "type": "object",
                            "properties": {
                                "item": {"$ref": "#/components/schemas/Track"},
                                "meta": {"$ref": "#/components/schemas/Meta"},
                            },
                        }
                    )
                }
            }
        },
        "components": {
            "schemas": {
                "Track": with_id(),
                "Meta": {"type": "object", "properties": {"count": {"type": "integer"}}},
            }
        },
    }
    operation = parse_spec(doc, "m.json", "m").operations[0]
    assert "item.id" in operation.response_fields
    assert operation.response_kinds == {"item": "Track"}  # Meta carries no id


def test_a_parameter_described_only_in_its_schema_keeps_that_description() -> None:
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/me/tracks": {
                "put": {
                    "parameters": [
                        {"name": "ids", "in": "query", "schema": {"description": "Track IDs."}},
                        {"name": "market", "in": "query", "schema": {"title": "Market code"}},
                        {
                            "name": "x",
                            "in": "query",
                            "description": "Own.",
                            "schema": {"title": "T"},
                        },
                    ]
                }
            }
        },
    }
    operation = parse_spec(doc, "m.json", "m").operations[0]
    assert [p.description for p in operation.parameters] == ["Track IDs.", "Market code", "Own."]


@pytest.mark.parametrize(
    ("written", "required"),
    [(True, True), ("true", True), ("false", False), ("no", False), (1, False), (None, False)],
)
def test_flags_written_as_strings_are_read_as_their_meaning(written: Any, required: bool) -> None:
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/a": {"get": {"parameters": [{"name": "x", "in": "query", "required": written}]}}
        },
    }
    assert parse_spec(doc, "m.json", "m").operations[0].parameters[0].required is required
    # so is `deprecated`
    doc["paths"] = {"/a": {"get": {"deprecated": written}}}
    assert parse_spec(doc, "m.json", "m").operations[0].deprecated is required


# --- the YAML loader ------------------------------------------------------------------------


def test_the_c_accelerated_safe_loader_is_used_when_present(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML was built without libyaml")
    assert issubclass(yaml12.Loader, yaml.CSafeLoader)  # the C parser, 1.2 resolvers
    used: list[type] = []
    real_load = yaml.load

    def spy(stream: Any, Loader: type) -> Any:
        used.append(Loader)
        return real_load(stream, Loader=Loader)

    monkeypatch.setattr(yaml, "load", spy)
    assert parse_text("openapi: 3.0.0\n", "x.yaml") == {"openapi": "3.0.0"}
    assert used == [yaml12.Loader]


def test_yaml_is_loaded_safely() -> None:
    with pytest.raises(SpecError, match="invalid YAML"):
        parse_text("openapi: !!python/object/apply:os.system ['true']\n", "evil.yaml")


def test_json_and_yaml_are_both_read_with_a_bom() -> None:
    assert parse_text(b'\xef\xbb\xbf{"openapi": "3.0.0"}', "bom.json") == {"openapi": "3.0.0"}
    assert parse_text(b"\xef\xbb\xbfopenapi: 3.1.0\n", "bom.yaml") == {"openapi": "3.1.0"}


def test_the_same_spec_as_json_and_yaml_gives_the_same_operations(
    fixtures: Path, tmp_path: Path
) -> None:
    source = fixtures / "tasks-3.1.json"
    as_yaml = tmp_path / "tasks.yaml"
    as_yaml.write_text(yaml.safe_dump(json.loads(source.read_text()), sort_keys=False))
    shutil.copy(source, tmp_path / "tasks.json")
    from_json = load(tmp_path / "tasks.json", "tasks")
    from_yaml = load(as_yaml, "tasks")
    assert from_json.operations == from_yaml.operations


def test_a_parsed_spec_round_trips_through_json(fixtures: Path) -> None:
    parsed = load(fixtures / "petstore-3.0.yaml")
    assert ParsedSpec.model_validate_json(parsed.model_dump_json()) == parsed


def test_names_that_repeat_across_operations_are_held_once() -> None:
    """A big workspace repeats the same field, parameter and tag names thousands of times:
    each is one string in memory, however many operations and specs name it."""
    text = json.dumps(
        {
            "openapi": "3.0.0",
            "info": {"title": "t", "version": "1"},
            "paths": {
                f"/things{k}/{{thingId}}": {
                    "get": {
                        "tags": ["things"],
                        "parameters": [
                            {"name": "thingId", "in": "path", "description": "The thing."}
                        ],
                        "responses": json_ok({"properties": {"created_at": {}}}),
                    }
                }
                for k in range(2)
            },
        }
    )
    # parsed twice: no two strings of the documents are the same object
    first, second = (parse_spec(parse_text(text, "t.json"), "t.json", "t") for _ in range(2))
    a, b = first.operations[0], second.operations[1]
    assert a.parameters[0] == b.parameters[0]
    for shared in (
        lambda op: op.tags[0],
        lambda op: op.parameters[0].name,
        lambda op: op.parameters[0].location,
        lambda op: op.parameters[0].type,
        lambda op: op.parameters[0].description,
        lambda op: op.response_fields[0],
    ):
        assert shared(a) is shared(b)
