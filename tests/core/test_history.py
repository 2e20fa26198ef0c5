"""Next-call structure: what operations consume and yield, and what the history makes possible."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.features import clauses, stem
from opensesame_predictor.core.history import (
    HistoryState,
    asks_again,
    makers_of,
    missing,
    shape_of,
    shapes_of,
    structure_features,
    wanted_new,
    with_takes,
)
from opensesame_predictor.core.index import MAX_STEPS, PredictorIndex
from opensesame_predictor.core.models import HistoryEvent, Operation, Parameter, PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.service import Service
from support import in_path, in_query, json_body, json_ok, with_id


def op(
    method: str,
    path: str,
    params: list[Parameter] | None = None,
    fields: list[str] | None = None,
    schemas: list[str] | None = None,
    operation_id: str = "",
) -> Operation:
    return Operation(
        spec="t",
        method=method,
        path=path,
        operation_id=operation_id,
        parameters=params or [],
        response_fields=fields or [],
        response_schemas=schemas or [],
    )


def path_param(name: str, enum: list[Any] | None = None) -> Parameter:
    return Parameter(name=name, location="path", required=True, enum=enum or [])


def predictor_for(*specs: Path) -> Predictor:
    return Service.from_settings(Settings(specs=[str(s) for s in specs])).predictor


def features(
    predictor: Predictor, key: str, prompt: str = "", history: list[str] | None = None
) -> dict[str, float]:
    request = PredictRequest(
        prompt=prompt,
        history=[HistoryEvent(api_call=call) for call in history or []],
        max_predictions=20,
    )
    ranked, _ = predictor.rank(request)
    for item in ranked:
        if item.operation.key == key:
            return item.features
    raise AssertionError(f"{key} is not among the candidates")


@pytest.fixture(scope="module")
def petstore() -> Predictor:
    return predictor_for(Path(__file__).resolve().parents[2] / "fixtures" / "petstore-3.0.yaml")


@pytest.fixture(scope="module")
def tasks() -> Predictor:
    return predictor_for(Path(__file__).resolve().parents[2] / "fixtures" / "tasks-3.1.json")


# --- consumes / yields -------------------------------------------------------------------


def test_named_path_parameter_consumes_its_resource() -> None:
    shape = shape_of(op("GET", "/pets/{petId}", [path_param("petId")]))
    assert shape.consumes == (("petId", "pet"),)
    assert shape.is_item


def test_bare_id_consumes_the_noun_of_the_segment_before_it() -> None:
    shape = shape_of(op("GET", "/artists/{id}/albums", [path_param("id")]))
    assert shape.consumes == (("id", stem("artist")),)
    assert not shape.is_item
    assert shape.path_literals == ("artists", "albums")


def test_results_id_yields_what_the_path_names() -> None:
    shape = shape_of(op("GET", "/search/person", fields=["results", "results.id", "results.name"]))
    assert stem("person") in shape.yields


def test_top_level_id_yields_what_path_and_schema_name() -> None:
    shape = shape_of(
        op(
            "GET",
            "/catalog/{slug}",
            [path_param("slug")],
            fields=["id", "title"],
            schemas=["MovieDetails"],
        )
    )
    assert stem("movie") in shape.yields
    assert stem("catalog") in shape.yields


def test_container_of_items_yields_its_noun() -> None:
    shape = shape_of(op("GET", "/search", fields=["artists", "artists.items", "artists.items.id"]))
    assert shape.yields == frozenset({stem("artist")})


def test_owner_id_yields_owner() -> None:
    shape = shape_of(op("GET", "/repos", fields=["name", "owner_id"]))
    assert shape.yields == frozenset({"owner"})


def test_a_write_hands_on_what_it_made_not_what_lists_in_it_will_hold() -> None:
    """A charge just made has no refunds yet: its `refunds.data.id` is no id to use, while a
    read of the charge does return its refunds."""
    fields = ["id", "customer", "customer.id", "refunds", "refunds.data", "refunds.data.id"]
    made = shape_of(op("POST", "/v1/charges", fields=fields))
    assert {stem("charge"), "customer"} <= made.yields
    assert stem("refund") not in made.yields
    read = shape_of(op("GET", "/v1/charges/{charge}", [path_param("charge")], fields=fields))
    assert stem("refund") in read.yields


def test_a_read_or_a_search_finds_things_a_write_makes_them() -> None:
    fields = ["id", "name"]
    assert shape_of(op("GET", "/pets", fields=fields)).reads
    assert not shape_of(op("POST", "/pets", fields=fields)).reads
    searched = op("POST", "/pets", [Parameter(name="q", location="query")], fields=fields)
    assert shape_of(searched).reads  # a search is a read whatever its method
    asked = op("POST", "/pets", [Parameter(name="query", location="body")], fields=fields)
    assert shape_of(asked).reads
    assert shape_of(op("POST", "/pets/search", fields=fields)).reads
    assert not shape_of(op("POST", "/searches", fields=fields)).reads  # saves a search: a write
    changed = op("DELETE", "/pets", [Parameter(name="filter", location="query")], fields=fields)
    assert not shape_of(changed).reads


@pytest.mark.parametrize(
    ("path", "name", "natural"),
    [
        ("/pets/{petId}", "petId", False),
        ("/users/{id}", "id", False),
        ("/v1/charges/{charge}", "charge", False),  # named after its collection: an id
        ("/holidays/{country}", "country", True),
        ("/orgs/{org}", "org", True),  # named after its collection, but a name people say
        ("/repos/{owner}/{repo}", "repo", True),
        ("/repos/{owner}/{repo}/issues/{issue_number}", "issue_number", True),
    ],
)
def test_natural_keys_are_told_from_opaque_ids(path: str, name: str, natural: bool) -> None:
    params = [path_param(n) for n in re.findall(r"\{([^}]+)\}", path)]
    shape = shape_of(op("GET", path, params))
    assert (name in shape.natural) is natural


def test_a_natural_key_is_never_a_missing_id() -> None:
    """'Holidays in Japan' can be asked for at once; 'the pet's photos' needs the pet's id."""
    state = HistoryState.build([], [])
    holidays = shape_of(op("GET", "/holidays/{country}", [path_param("country")]))
    photos = shape_of(op("GET", "/pets/{petId}/photos", [path_param("petId")]))
    assert missing(holidays, state, 0) == []
    assert missing(photos, state, 0) == [stem("pet")]


def test_field_that_is_no_id_yields_nothing() -> None:
    assert shape_of(op("GET", "/status", fields=["name", "idle", "video"])).yields == frozenset()


def test_enum_path_parameters_are_choices_not_ids() -> None:
    shape = shape_of(
        op(
            "GET",
            "/trending/{media_type}/{time_window}",
            [path_param("media_type", ["movie", "tv"]), path_param("time_window", ["day"])],
        )
    )
    assert shape.consumes == ()
    # a choice at the end of the path does not make it one item
    plain = shape_of(op("GET", "/movie/{movie_id}/{kind}", [path_param("movie_id")]))
    assert [noun for _, noun in plain.consumes] == [stem("movie"), "kind"]


def test_ids_parameter_takes_the_resource_its_description_names() -> None:
    ids = Parameter(
        name="ids", location="query", required=True, description="The Spotify IDs for the artists."
    )
    operation = op("GET", "/artists", [ids])
    shape = with_takes(operation, shape_of(operation), frozenset({stem("artist"), "album"}))
    assert shape.takes == frozenset({stem("artist")})
    # a description naming no known resource takes nothing
    unknown = with_takes(operation, shape_of(operation), frozenset({"album"}))
    assert unknown.takes == frozenset()


def test_an_id_inside_a_generic_field_belongs_to_that_fields_named_schema() -> None:
    playing = Operation(
        spec="t",
        method="GET",
        path="/me/player",
        response_fields=["item", "item.id", "item.album", "item.album.id", "id"],
        response_kinds={"item": "TrackObject", "item.album": "SimplifiedAlbumObject"},
    )
    assert shape_of(playing).yields >= {"track", "album"}
    # without the schema name the id is the response's own: what the path names
    unnamed = replace(playing, response_kinds={})
    assert "track" not in shape_of(unnamed).yields


def test_an_id_under_a_named_schema_is_that_schemas_besides_its_fields() -> None:
    queue = Operation(
        spec="t",
        method="GET",
        path="/me/player/queue",
        response_fields=["currently_playing", "currently_playing.id", "owner", "owner.id"],
        response_kinds={"currently_playing": "TrackObject", "owner": "PublicUserObject"},
    )
    # a `currently_playing` is a track; an `owner` is a user and stays an owner
    assert shape_of(queue).yields >= {"track", "user", "owner"}


def test_a_required_id_outside_the_path_is_a_need_any_named_resource_meets() -> None:
    uri = Parameter(
        name="uri",
        location="query",
        required=True,
        description="The uri of the item to add to the queue: a track or an episode.",
    )
    device = Parameter(name="device_id", location="query", description="Target device.")
    queue = op("POST", "/me/player/queue", [uri, device])
    vocabulary = frozenset({"queue", "track", "episode", "device"})
    shape = with_takes(queue, shape_of(queue), vocabulary)
    assert shape.takes == {"queue", "track", "episode", "device"}
    # the optional device is no need; what the operation is about (the queue) comes last
    assert shape.requires == (("track", "episode", "queue"),)
    assert missing(shape, state_of(), 0) == ["track"]
    features = structure_features(queue, shape, state_of(), 0)
    # counted apart from path ids: a field's id is data to fill in, a path's is the address
    assert features["missing_field"] == 1.0 and features["missing_id"] == 0.0
    # any of the named resources meets the need; a value in the prompt does too
    tracks = op("GET", "/me/tracks", fields=["items.track.id"])
    assert missing(shape, state_of(tracks), 0) == []
    assert missing(shape, state_of(), 1) == []


def test_bare_ids_without_a_named_resource_take_what_the_path_names() -> None:
    operation = op("PUT", "/me/tracks", [Parameter(name="ids", location="query")])
    shape = with_takes(operation, shape_of(operation), frozenset({"track", "album"}))
    assert shape.takes == frozenset({"track"})
    # unless the path names no resource the catalog knows
    other = op("PUT", "/me/library", [Parameter(name="ids", location="query")])
    assert with_takes(other, shape_of(other), frozenset({"track"})).takes == frozenset()


def test_named_id_fields_in_query_or_body_are_takes() -> None:
    params = [
        Parameter(name="track_ids", location="body"),
        Parameter(name="petId", location="query"),
        Parameter(name="userId", location="header"),  # headers are not inputs of this kind
    ]
    operation = op("POST", "/playlists", params)
    shape = with_takes(operation, shape_of(operation), frozenset())
    assert shape.takes == frozenset({"track", "pet"})


def test_a_writes_field_named_after_a_resource_takes_its_ids() -> None:
    vocabulary = frozenset({"customer", "track", "playlist", "tag"})
    charge = op("POST", "/charges", [Parameter(name="customer", location="body", required=True)])
    shape = with_takes(charge, shape_of(charge), vocabulary)
    assert shape.takes == frozenset({"customer"})
    # it may hold a new value as well as an id: taking it is no need
    assert shape.requires == ()
    # a read filters by it, a flag or a choice holds no id, nor does a field unknown as a resource
    find = op("GET", "/pets", [Parameter(name="tag", location="query")])
    assert with_takes(find, shape_of(find), vocabulary).takes == frozenset()
    for param in (
        Parameter(name="tag", location="body", type="boolean"),
        Parameter(name="tag", location="body", enum=["a", "b"]),
        Parameter(name="tag", location="body", type="object"),
        Parameter(name="color", location="body"),
    ):
        write = op("POST", "/pets", [param])
        assert with_takes(write, shape_of(write), vocabulary).takes == frozenset()


def test_removing_things_from_one_things_collection_needs_them() -> None:
    tracks = Parameter(name="tracks", location="body", type="array", required=True)
    vocabulary = frozenset({"track", "playlist", "file"})
    remove = op("DELETE", "/playlists/{playlist_id}/tracks", [tracks])
    assert with_takes(remove, shape_of(remove), vocabulary).requires == (("track",),)
    # creating in a top-level collection makes a new one: its `file` is content, not a need
    upload = op("POST", "/files", [Parameter(name="file", location="body", required=True)])
    shape = with_takes(upload, shape_of(upload), vocabulary)
    assert shape.takes == frozenset({"file"})
    assert shape.requires == ()


def test_ids_of_what_no_operation_gives_take_what_their_description_names() -> None:
    context = Parameter(
        name="context_uri",
        location="body",
        description="URI of the context to play. Valid contexts are albums, artists, playlists.",
    )
    play = op("PUT", "/me/player/play", [context])
    vocabulary = frozenset({"album", "artist", "playlist", "play"})
    # what the operation itself is about comes last and drops out of the three
    assert with_takes(play, shape_of(play), vocabulary).takes == {"album", "artist", "playlist"}
    # a description naming nothing known leaves the field's own noun
    bare = replace(context, description="Where to start.")
    play = op("PUT", "/me/player/play", [bare])
    assert with_takes(play, shape_of(play), vocabulary).takes == frozenset({"context"})


@pytest.mark.parametrize("name", ["page", "offset", "cursor", "pageToken", "per_page"])
def test_pagination_parameters_make_an_operation_paginated(name: str) -> None:
    paged = op("GET", "/items", [Parameter(name=name, location="query")])
    assert shape_of(paged).paginated
    assert not shape_of(op("GET", "/items", [Parameter(name="limit", location="query")])).paginated
    assert not shape_of(op("GET", "/items", [Parameter(name=name, location="path")])).paginated


@pytest.mark.parametrize("name", ["q", "query", "search", "term"])
def test_free_text_parameters_make_a_search(name: str) -> None:
    assert shape_of(op("GET", "/things", [Parameter(name=name, location="query")])).searches
    assert not shape_of(op("GET", "/things", [Parameter(name="tag", location="query")])).searches


# --- history state and id flow ------------------------------------------------------------

SEARCH = op("GET", "/search/person", fields=["results", "results.id"])
CREDITS = op("GET", "/person/{person_id}/credits", [path_param("person_id")])
GENRES = op("GET", "/genres", fields=["genres", "genres.id"])


def state_of(*operations: Operation) -> HistoryState:
    return HistoryState.build(list(operations), [shape_of(o) for o in operations])


def test_history_state_collects_what_calls_yield_and_consume() -> None:
    state = state_of(SEARCH, CREDITS)
    assert "person" in state.yielded
    assert "personid" in state.known_params
    assert state.called == {SEARCH.uid: 2, CREDITS.uid: 1}
    assert state.last is not None and state.last[0] is CREDITS


def test_consumer_right_after_producer_gets_consumes_last() -> None:
    row = structure_features(CREDITS, shape_of(CREDITS), state_of(SEARCH), 0)
    assert row["consumes_last"] == 1.0
    assert row["consumes_earlier"] == 0.0
    assert row["missing_id"] == 0.0


def test_consuming_what_the_last_call_was_about_gets_consumes_named() -> None:
    # a search over every kind of thing yields many ids; its path names none of them
    everything = op("GET", "/search", fields=["artists.items.id", "persons.items.id"])
    row = structure_features(CREDITS, shape_of(CREDITS), state_of(everything), 0)
    assert row["consumes_last"] == 1.0
    assert row["consumes_named"] == 0.0
    # and the more kinds of ids it brought that something takes, the less each one says
    state = HistoryState.build(
        [everything], [shape_of(everything)], frozenset({"artist", "person"})
    )
    row = structure_features(CREDITS, shape_of(CREDITS), state, 0)
    assert row["consumes_last"] == pytest.approx(0.5**0.5)
    row = structure_features(CREDITS, shape_of(CREDITS), state_of(SEARCH), 0)
    assert row["consumes_named"] == 1.0


def test_consumer_after_an_earlier_producer_gets_consumes_earlier() -> None:
    row = structure_features(CREDITS, shape_of(CREDITS), state_of(SEARCH, GENRES), 0)
    assert row["consumes_last"] == 0.0
    assert row["consumes_earlier"] == 1.0


def test_an_id_the_last_call_was_given_does_not_flow_from_it() -> None:
    # `GET /collections/{id}` echoes its collection: its siblings are not fed by it, what it
    # brings (the parts) is
    collection = op(
        "GET",
        "/collections/{collection_id}",
        [path_param("collection_id")],
        fields=["id", "parts", "parts.id"],
    )
    sibling = op("GET", "/collections/{collection_id}/images", [path_param("collection_id")])
    part = op("GET", "/parts/{part_id}", [path_param("part_id")])
    state = state_of(SEARCH, collection)
    assert structure_features(sibling, shape_of(sibling), state, 0)["consumes_last"] == 0.0
    assert structure_features(sibling, shape_of(sibling), state, 0)["same_resource"] == 1.0
    assert structure_features(part, shape_of(part), state, 0)["consumes_last"] == 1.0


def test_nested_objects_are_typed_by_the_resource_they_look_like() -> None:
    person = op(
        "GET",
        "/person/{person_id}",
        [path_param("person_id")],
        fields=["id", "name", "gender", "profile_path", "birthday", "biography"],
    )
    credits = op(
        "GET",
        "/movie/{movie_id}/credits",
        [path_param("movie_id")],
        fields=["id", "cast", "cast.id", "cast.name", "cast.gender", "cast.profile_path"],
    )
    # too few fields in common to tell
    notes = op(
        "GET",
        "/movie/{movie_id}/notes",
        [path_param("movie_id")],
        fields=["notes", "notes.id", "notes.name", "notes.text", "notes.author", "notes.date"],
    )
    shapes = shapes_of([person, credits, notes])
    assert "person" in shapes[1].yields
    assert "person" not in shape_of(credits).yields  # alone, `cast` names no resource
    assert "person" not in shapes[2].yields


def test_a_choice_in_a_reads_path_that_names_resources_yields_them() -> None:
    kind = path_param("media_type", ["all", "movie", "tv", "day"])
    trending = Operation(
        spec="t",
        method="GET",
        path="/trending/{media_type}",
        parameters=[kind],
        response_fields=["results", "results.id"],
        response_kinds={"results": "MovieListObject"},
    )
    show = op("GET", "/tv/{tv_id}", [path_param("tv_id")])
    film = op("GET", "/movie/{movie_id}", [path_param("movie_id")])
    shapes = shapes_of([trending, show, film])
    # the schema declares films; the choice says shows come back too ("all" and "day" name none)
    assert shapes[0].yields == {stem("movie"), "tv"}
    assert shape_of(trending).yields == {stem("movie")}
    # a write's choice picks no answer
    assert shapes_of([replace(trending, method="PUT"), show])[0].yields == {stem("movie")}


def test_the_prompt_naming_something_brings_look_ups_into_the_candidates() -> None:
    operations = [op("GET", f"/widgets/part{i}", operation_id=f"widgetPart{i}") for i in range(30)]
    directory = op("GET", "/directory", [Parameter(name="q", location="query")])
    index = PredictorIndex([*operations, directory])
    lexical = index.lexical("widget part of Ana Ruiz")
    allowed = index.allowed(None)
    state = state_of()
    plain, _ = index.candidates(lexical, state, 0, allowed, count=5)
    named, _ = index.candidates(lexical, state, 0, allowed, count=5, names=1)
    assert len(operations) not in plain.tolist()
    assert len(operations) in named.tolist()
    # once something was looked up, the prompt's names are no reason any more
    looked_up, _ = index.candidates(lexical, state_of(directory), 0, allowed, count=5, names=1)
    assert len(operations) not in looked_up.tolist()


def test_the_collection_a_goal_adds_to_is_no_source_of_things_to_add() -> None:
    ids = Parameter(name="ids", location="query", required=True, description="The artist IDs.")
    follow = op("PUT", "/me/following", [ids], operation_id="followArtists")
    unfollow = op("DELETE", "/me/following", [ids], operation_id="unfollowArtists")
    followed = Operation(
        spec="t",
        method="GET",
        path="/me/following",
        operation_id="getFollowed",
        response_fields=["artists", "artists.items", "artists.items.id"],
    )
    search = op("GET", "/search", [Parameter(name="q", location="query")])
    search = replace(search, response_fields=["artists", "artists.items.id"])
    index = PredictorIndex([follow, unfollow, followed, search])
    allowed = index.allowed(None)

    def sources(prompt: str) -> dict[int, float]:
        _, notes = index.candidates(index.lexical(prompt), state_of(), 0, allowed, count=4)
        return {i: float(note["yields_weight"]) for i, note in notes.items() if "yields" in note}

    # following more artists: the ones already followed are no source, a search is
    assert set(sources("follow artists")) == {3}
    # unfollowing: the followed ones are exactly where the ids come from
    assert sources("unfollow artists")[2] == sources("unfollow artists")[3]


def test_unrelated_operation_gets_no_id_flow() -> None:
    row = structure_features(GENRES, shape_of(GENRES), state_of(SEARCH), 0)
    assert row["consumes_last"] == row["consumes_earlier"] == 0.0


def test_id_flow_through_the_predictor(petstore: Predictor) -> None:
    # what a write returned flows too, as its own signal: it says less about the next step
    after = features(petstore, "POST /pets/{petId}/photos", "upload a photo", ["POST /pets"])
    assert after["consumes_written"] == 1.0 and after["consumes_last"] == 0.0
    read = features(petstore, "POST /pets/{petId}/photos", "upload a photo", ["GET /pets"])
    assert read["consumes_last"] == 1.0 and read["consumes_written"] == 0.0
    earlier = features(
        petstore, "POST /pets/{petId}/photos", "upload a photo", ["POST /pets", "GET /users/me"]
    )
    assert earlier["consumes_last"] == 0.0
    assert earlier["consumes_earlier"] == 1.0


def test_openapi_link_marks_the_linked_operation(petstore: Predictor) -> None:
    assert features(petstore, "GET /pets/{petId}", "", ["POST /pets"])["linked"] == 1.0
    assert features(petstore, "DELETE /pets/{petId}", "", ["POST /pets"])["linked"] == 0.0
    assert features(petstore, "GET /pets/{petId}", "", ["GET /pets"])["linked"] == 0.0


# --- CRUD lifecycle and same resource ----------------------------------------------------


@pytest.mark.parametrize("key", ["GET /projects/{projectId}", "PATCH /projects/{projectId}"])
def test_create_continues_to_the_created_item(tasks: Predictor, key: str) -> None:
    assert features(tasks, key, "", ["POST /projects"])["crud_next"] == 1.0


def test_list_continues_to_one_item(tasks: Predictor) -> None:
    assert features(tasks, "GET /projects/{projectId}", "", ["GET /projects"])["crud_next"] == 1.0
    # the sub-collection is no item of the list
    assert (
        features(tasks, "GET /projects/{projectId}/tasks", "", ["GET /projects"])["crud_next"]
        == 0.0
    )
    assert features(tasks, "GET /me", "", ["POST /projects"])["crud_next"] == 0.0


def test_same_resource_continuation(tasks: Predictor) -> None:
    assert (
        features(tasks, "DELETE /projects/{projectId}", "", ["GET /projects"])["same_resource"]
        == 1.0
    )
    assert features(tasks, "GET /search/tasks", "", ["GET /projects"])["same_resource"] == 0.0
    # the call itself is no continuation of itself
    assert features(tasks, "GET /projects", "", ["GET /projects"])["same_resource"] == 0.0


# --- missing ids --------------------------------------------------------------------------


def test_missing_id_without_history_or_values(petstore: Predictor) -> None:
    assert features(petstore, "GET /pets/{petId}", "show the pet")["missing_id"] == 1.0
    assert features(petstore, "GET /pets", "show the pets")["missing_id"] == 0.0


def test_number_in_prompt_supplies_the_id(petstore: Predictor) -> None:
    assert features(petstore, "GET /pets/{petId}", "show pet 42")["missing_id"] == 0.0


def test_history_that_yields_the_id_supplies_it(petstore: Predictor) -> None:
    row = features(petstore, "GET /pets/{petId}", "show the pet", ["POST /pets"])
    assert row["missing_id"] == 0.0


def test_missing_counts_each_prompt_value_once() -> None:
    task = op("GET", "/projects/{projectId}/tasks/{taskId}", [path_param("projectId")])
    shape = shape_of(task)
    empty = state_of()
    assert missing(shape, empty, 0) == ["project", "task"]
    assert missing(shape, empty, 1) == ["task"]
    assert missing(shape, empty, 2) == []
    row = structure_features(task, shape, empty, 1)
    assert row["missing_id"] == 0.5


# --- calls already made --------------------------------------------------------------------


def write_spec(directory: Path, paths: dict[str, Any]) -> Path:
    spec = {"openapi": "3.0.3", "info": {"title": "Tiny", "version": "1"}, "paths": paths}
    path = directory / "tiny.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def ok(*fields: str) -> dict[str, Any]:
    properties = {name: {"type": "string"} for name in fields}
    schema = {"type": "object", "properties": properties}
    return json_ok(schema)


@pytest.fixture
def tiny(tmp_path: Path) -> Predictor:
    page = {"name": "page", "in": "query", "schema": {"type": "integer"}}
    item = in_path("itemId")
    return predictor_for(
        write_spec(
            tmp_path,
            {
                "/items": {
                    "get": {"operationId": "listItems", "parameters": [page], "responses": ok()}
                },
                "/items/{itemId}": {
                    "get": {"operationId": "getItem", "parameters": [item], "responses": ok()}
                },
                "/stats": {"get": {"operationId": "getStats", "responses": ok("count")}},
            },
        )
    )


def test_paginated_list_repeated_last_is_not_demoted(tiny: Predictor) -> None:
    row = features(tiny, "GET /items", "next page of items", ["GET /items"])
    assert row["called"] == 0.0
    assert row["called_last"] == 0.0


def test_call_already_made_is_demoted(tiny: Predictor) -> None:
    row = features(tiny, "GET /stats", "stats", ["GET /stats"])
    assert row["called"] == 1.0
    assert row["called_last"] == 1.0
    earlier = features(tiny, "GET /items", "items", ["GET /items", "GET /stats"])
    assert earlier["called"] == 1.0  # paginated, but something else came after it
    assert earlier["called_last"] == 0.0
    assert features(tiny, "GET /stats", "stats")["called"] == 0.0


# --- lookup by name --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt", ["find the pets of Ana Ruiz", 'find the pet called "Blue Horizon"']
)
def test_search_for_a_named_thing(petstore: Predictor, prompt: str) -> None:
    assert features(petstore, "GET /pets/search", prompt)["search_for_name"] == 1.0
    # only search operations get it
    assert features(petstore, "GET /pets", prompt)["search_for_name"] == 0.0


@pytest.mark.parametrize("prompt", ["find a labrador", "Find pets", "find pets for TV"])
def test_no_search_for_name_without_a_name(petstore: Predictor, prompt: str) -> None:
    assert features(petstore, "GET /pets/search", prompt)["search_for_name"] == 0.0


@pytest.mark.parametrize(
    "prompt", ["add a pet named 'Blue Horizon'", "show photos of my pet 'Blue Horizon'"]
)
def test_a_new_or_own_thing_is_not_looked_up(petstore: Predictor, prompt: str) -> None:
    # a name given to a new thing; one of the caller's own, which its listing finds
    assert features(petstore, "GET /pets/search", prompt)["search_for_name"] == 0.0


def test_no_search_for_name_after_a_search(petstore: Predictor) -> None:
    row = features(petstore, "GET /pets/search", "find the pets of Ana Ruiz", ["GET /pets/search"])
    assert row["search_for_name"] == 0.0


def test_adding_to_a_collection_needs_the_things_even_when_the_parameter_is_optional() -> None:
    # the same optional `uris` in the query and the body: one of them is needed all the same
    uris = [
        Parameter(name="uris", location=where, description="The track URIs to add.")
        for where in ("query", "body")
    ]
    vocabulary = frozenset({"track", "playlist", "play"})
    add = op("POST", "/playlists/{playlist_id}/tracks", uris)
    shape = with_takes(add, shape_of(add), vocabulary)
    assert shape.requires == (("track",),)
    assert missing(shape, state_of(), 0) == ["playlist", "track"]
    # reading the collection needs no tracks; nor does a write to what is no collection of them
    read = op("GET", "/playlists/{playlist_id}/tracks", uris)
    assert with_takes(read, shape_of(read), vocabulary).requires == ()
    play = op("PUT", "/me/player/play", uris)
    assert with_takes(play, shape_of(play), vocabulary).requires == ()


# --- things the prompt asks to make -----------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "noun"),
    [
        ("Add songs of Ana Ruiz to a new album", "album"),
        ("Make me an album of the beach photos", "album"),
        ("create a fresh shared album and name it Summer", "album"),
        ("open an issue about the crash", "issue"),
    ],
)
def test_what_the_prompt_asks_to_make(prompt: str, noun: str) -> None:
    assert noun in wanted_new(prompt)


@pytest.mark.parametrize(
    "prompt", ["Make my first album private", "show the newest album", "add it to the album"]
)
def test_what_exists_already_is_not_to_make(prompt: str) -> None:
    assert "album" not in wanted_new(prompt)


def test_makers_are_posts_on_a_collection_that_answer_with_the_new_id() -> None:
    create = op("POST", "/users/{user_id}/albums", [path_param("user_id")], ["id", "name"])
    add = op("POST", "/albums/{album_id}/photos", [path_param("album_id")], ["snapshot_id"])
    silent = op("POST", "/albums")  # answers with no id: nothing to go on with
    read = op("GET", "/albums", fields=["items", "items.id"])
    operations = [create, add, silent, read]
    assert makers_of(operations, shapes_of(operations)) == {"album": [0]}


def test_a_thing_to_make_is_none_of_those_found() -> None:
    found = op("GET", "/search", fields=["albums.items.id"])
    photos = op("GET", "/albums/{album_id}/photos", [path_param("album_id")])
    state = HistoryState.build([found], [shape_of(found)], to_make=frozenset({"album"}))
    assert missing(shape_of(photos), state, 0) == ["album"]
    row = structure_features(photos, shape_of(photos), state, 0)
    assert row["consumes_last"] == 0.0
    # without "a new album" the album found is the one meant
    assert missing(shape_of(photos), state_of(found), 0) == []


@pytest.fixture(scope="module")
def albums(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    def schema(*fields: str) -> dict[str, Any]:
        return json_ok({"type": "object", "properties": {f: {"type": "string"} for f in fields}})

    photo_ids = json_body("photo_ids", {"type": "array", "items": {"type": "string"}})
    found = {"type": "array", "items": {"$ref": "#/components/schemas/Photo"}}
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Albums", "version": "1"},
        "paths": {
            "/me": {
                "get": {
                    "summary": "Get my profile",
                    "responses": json_ok({"$ref": "#/components/schemas/User"}),
                }
            },
            "/me/albums": {
                "get": {
                    "summary": "List my albums",
                    "responses": json_ok(
                        {"type": "array", "items": {"$ref": "#/components/schemas/Album"}}
                    ),
                }
            },
            "/users/{user_id}/albums": {
                "post": {
                    "summary": "Create an album",
                    "parameters": [in_path("user_id")],
                    "responses": schema("id", "title"),
                }
            },
            "/albums/{album_id}/photos": {
                "post": {
                    "summary": "Add photos to an album",
                    "parameters": [in_path("album_id")],
                    "requestBody": photo_ids,
                    "responses": schema("count"),
                }
            },
            "/photos/search": {
                "get": {
                    "summary": "Search photos",
                    "parameters": [in_query("q")],
                    "responses": json_ok(found),
                }
            },
        },
        "components": {
            "schemas": {
                "User": with_id(),
                "Photo": with_id(),
                "Album": with_id(),
            }
        },
    }
    directory = tmp_path_factory.mktemp("albums")
    (directory / "albums.json").write_text(json.dumps(spec), encoding="utf-8")
    return predictor_for(directory / "albums.json")


def test_what_makes_the_new_thing_waits_for_what_it_needs(albums: Predictor) -> None:
    prompt = "put the beach photos in a new album"
    maker = "POST /users/{user_id}/albums"
    # the maker needs a user first: GET /me yields it, the maker counts only in part
    assert features(albums, "GET /me", prompt)["yields_needed"] == 1.0
    assert features(albums, maker, prompt)["makes_new"] == pytest.approx(0.3)
    # my existing albums are no source of the new one
    assert features(albums, "GET /me/albums", prompt)["yields_needed"] == 0.0
    # with the user at hand the maker is callable; once it ran, nothing is left to make
    assert features(albums, maker, prompt, ["GET /me"])["makes_new"] == 1.0
    made = features(albums, "POST /albums/{album_id}/photos", prompt, ["GET /me", maker])
    assert made["makes_new"] == 0.0
    assert made["consumes_written"] > 0.0 and made["consumes_last"] == 0.0


def test_without_a_new_thing_nothing_is_made(albums: Predictor) -> None:
    prompt = "put the beach photos in my album"
    assert features(albums, "GET /me", prompt)["yields_needed"] < 1.0
    assert features(albums, "POST /users/{user_id}/albums", prompt)["makes_new"] == 0.0


def test_the_reason_names_what_the_maker_needs(albums: Predictor) -> None:
    result = albums.predict(PredictRequest(prompt="put the beach photos in a new album"))
    me = next(p for p in result.predictions if p.api_call == "GET /me")
    assert any("user_id" in r and "POST /users/{user_id}/albums" in r for r in me.reasons)


# --- requests of several steps -------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "parts"),
    [
        ("get the pet", ["get the pet"]),
        (
            "Pause playback, turn the volume down and resume",
            ["Pause playback", "turn the volume down", "resume"],
        ),
        ("create a product and then list orders", ["create a product", "list orders"]),
        ("log in; then list the pets", ["log in", "list the pets"]),
        # a quoted name is one name, whatever it says; an apostrophe is no quote
        ("add 'Rock and Roll' to Ana's list", ["add 'Rock and Roll' to Ana's list"]),
        ('rename "Salt, Pepper" and delete it', ['rename "Salt, Pepper"', "delete it"]),
        # more of a list, not a new thing to do
        ("the director of Up and the cast", ["the director of Up and the cast"]),
        (
            "films of Ana Ruiz and Liam Novak, Noah Reyes",
            ["films of Ana Ruiz and Liam Novak, Noah Reyes"],
        ),
        # a break with nothing after it starts nothing
        ("list pets, and", ["list pets, and"]),
    ],
)
def test_a_request_splits_into_the_steps_it_says_in_turn(prompt: str, parts: list[str]) -> None:
    assert clauses(prompt) == parts


def test_focus_is_on_the_first_step_whose_best_match_is_not_called_yet() -> None:
    login = op("POST", "/auth/login", operation_id="logIn")
    pets = op("GET", "/pets", operation_id="listPets")
    orders = op("GET", "/store/orders", operation_id="listOrders")
    index = PredictorIndex([login, pets, orders])
    everything = index.allowed(None)
    prompt = "log in, list the pets and then list the store orders"

    def best(called: list[int]) -> tuple[int, str]:
        steps = clauses(prompt)
        closeness, number = index.focus(steps, called, everything)
        return int(np.argmax(closeness)), steps[number]

    assert best([]) == (0, "log in")
    assert best([0]) == (1, "list the pets")
    assert best([0, 1]) == (2, "list the store orders")
    # a call that is nobody's best match does not move the focus on
    assert best([2]) == (0, "log in")
    # one step only: no focus at all
    closeness, number = index.focus(clauses("list the pets"), [], everything)
    assert not closeness.any() and number == -1


def test_focus_reads_a_bounded_number_of_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    pets = op("GET", "/pets", operation_id="listPets")
    index = PredictorIndex([pets, op("POST", "/auth/login", operation_id="logIn")])
    read: list[str] = []
    closeness = index.text.closeness

    def counted(text: str) -> np.ndarray:
        read.append(text)
        return closeness(text)

    monkeypatch.setattr(index.text, "closeness", counted)
    # every step's best match is called: without a bound each of the 400 would be read
    index.focus(clauses(", ".join(["list the pets"] * 400)), [0], index.allowed(None))
    assert len(read) == MAX_STEPS


def test_the_step_said_first_is_predicted_first(petstore: Predictor) -> None:
    def first(prompt: str, history: list[str] | None = None) -> str:
        request = PredictRequest(
            prompt=prompt, history=[HistoryEvent(api_call=h) for h in history or []]
        )
        return petstore.predict(request).predictions[0].api_call

    assert first("log in and then list the pets") == "POST /auth/login"
    assert first("list the pets and then log in") == "GET /pets"
    reasons = petstore.predict(PredictRequest(prompt="list the pets, then log in")).predictions
    assert "does what the request says to do now: 'list the pets'" in reasons[0].reasons


def test_an_id_a_field_takes_is_counted_apart_from_an_id_the_path_takes() -> None:
    """A path id is the address of the thing; a field's id is data the call is given. The
    prompt's values go to the path first."""
    member = Parameter(name="memberId", location="body", required=True)
    book = Parameter(name="bookId", location="body", required=True)
    borrow = op("POST", "/branches/{branchId}/loans", [path_param("branchId"), book, member])
    vocabulary = frozenset({"branch", "book", "member", "loan"})
    shape = with_takes(borrow, shape_of(borrow), vocabulary)
    alone = structure_features(borrow, shape, state_of(), 0)
    assert alone["missing_id"] == 1.0 and alone["missing_field"] == 1.0
    one_value = structure_features(borrow, shape, state_of(), 1)  # the branch
    assert one_value["missing_id"] == 0.0 and one_value["missing_field"] == 1.0
    books = op("GET", "/books/{bookId}", [path_param("bookId")], fields=["id", "title"])
    after_a_book = structure_features(borrow, shape, state_of(books), 1)
    assert after_a_book["missing_id"] == 0.0 and after_a_book["missing_field"] == 0.5
    assert missing(shape, state_of(books), 1) == ["member"]


def test_an_id_flows_into_what_a_call_needs_not_into_a_field_it_may_leave() -> None:
    """After reading a book, its author's id flows into a call that needs an author, not into
    an update that may leave the book's author as it is."""
    book = op("GET", "/books/{bookId}", [path_param("bookId")], fields=["id", "authorId"])
    vocabulary = frozenset({"book", "author"})
    may_leave = Parameter(name="authorId", location="body")
    needs = Parameter(name="authorId", location="body", required=True)
    update = op("PUT", "/books/{bookId}", [path_param("bookId"), may_leave])
    award = op("POST", "/awards", [needs])
    state = state_of(book)
    for call, flows in ((update, 0.0), (award, 1.0)):
        shape = with_takes(call, shape_of(call), vocabulary)
        assert "author" in shape.nouns
        assert structure_features(call, shape, state, 0)["consumes_last"] == flows


def test_a_request_pointing_back_at_a_thing_is_not_about_making_one() -> None:
    """'Borrow this book' after reading a book is about that book: adding a book makes a new
    one. Without the pointing back, or the reading, nothing is said against adding one."""
    library = predictor_for(
        Path(__file__).resolve().parents[2] / "fixtures" / "library-swagger-2.0.json"
    )
    read = ["GET /api/v2/books/{bookId}"]
    add = "POST /api/v2/books"
    assert features(library, add, "borrow this book", read)["makes_referred"] == 1.0
    assert features(library, add, "add a book", read)["makes_referred"] == 0.0
    assert features(library, add, "borrow this book", [])["makes_referred"] == 0.0
    assert features(library, "POST /api/v2/loans", "borrow it", read)["makes_referred"] == 0.0


@pytest.mark.parametrize(
    ("message", "again"),
    [
        ("Same for C02FRONTEND, please.", True),
        ("and post 41829014 too", True),
        ("Block 91 as well.", True),
        ("also framasoft@example.org", True),
        ("what about Germany?", True),
        ("show me the pet 7", False),
        ("well, list the orders", False),
    ],
)
def test_a_message_asking_for_the_same_again(message: str, again: bool) -> None:
    assert asks_again(message) is again


def test_asking_again_points_at_the_last_call_only(petstore: Predictor) -> None:
    history = ["GET /pets", "GET /pets/{petId}"]
    last = features(petstore, "GET /pets/{petId}", "same for 8", history)
    assert last["repeat_asked"] == 1.0
    assert features(petstore, "GET /pets", "same for 8", history)["repeat_asked"] == 0.0
    # a request of several steps is no follow-up, nor a message that asks for nothing again
    assert features(petstore, "GET /pets/{petId}", "show me pet 8", history)["repeat_asked"] == 0.0


@pytest.mark.parametrize("message", ["same for 8", "What about pet 12?", "and 31 too, please"])
def test_a_follow_up_asking_for_the_same_again_predicts_the_last_call(
    petstore: Predictor, message: str
) -> None:
    history = [HistoryEvent(api_call=call) for call in ("GET /pets", "GET /pets/{petId}")]
    top = petstore.predict(PredictRequest(prompt=message, history=history)).predictions[0]
    assert top.api_call == "GET /pets/{petId}"
    assert "the request asks for the last call again" in top.reasons
