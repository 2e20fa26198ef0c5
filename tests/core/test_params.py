"""Parameter values from the prompt and the history, with where each one came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.history import shape_of
from opensesame_predictor.core.models import Operation, Parameter, Prediction
from opensesame_predictor.core.params import (
    extract_values,
    fill,
    fills,
    history_values,
    without_values,
)
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.service import Service

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def predictor_for(spec: Path) -> Predictor:
    return Service.from_settings(Settings(specs=[str(spec)])).predictor


def prediction(
    predictor: Predictor, key: str, prompt: str, history: list[Any] | None = None
) -> Prediction:
    result = predictor.predict({"prompt": prompt, "history": history or [], "max_predictions": 20})
    for item in result.predictions:
        if item.api_call == key:
            return item
    raise AssertionError(f"{key} not predicted: {[p.api_call for p in result.predictions]}")


# --- values in the prompt ----------------------------------------------------------------


def test_quoted_strings_numbers_emails_and_owner_repo() -> None:
    values = extract_values(
        "add \"Blue Horizon\" to acme/widgets for bob@example.com, issue #42 and 7 'Paper Moon'"
    )
    assert values.quoted == ["Blue Horizon", "Paper Moon"]
    assert values.emails == ["bob@example.com"]
    assert values.owner_repo == [("acme", "widgets")]
    assert values.numbers == ["42", "7"]
    assert values.any


def test_dates_like_numbers_over_numbers_are_not_owner_repo() -> None:
    values = extract_values("runs between 2024/2025")
    assert values.owner_repo == []
    assert values.amounts == ["2024", "2025"]


@pytest.mark.parametrize(
    ("prompt", "ids", "amounts"),
    [
        ("cancel the order 7.", ["7"], []),
        ("close 12 and 15, dupes of #9", ["12", "15", "9"], []),
        ("members 4514 and 1566", ["4514", "1566"], []),
        ("sessions of the video during March 2024", [], ["2024"]),
        ("the 14:05 from Leeds on June 12", [], ["14", "05", "12"]),
        ("tip the driver $3, going for 100%", [], ["3", "100"]),
        ("museums within 2 km, a 30 minute slot, the top 10 songs", [], ["2", "30", "10"]),
        ("check CVE-2023-20198", [], ["2023", "20198"]),
    ],
)
def test_dates_times_amounts_and_counts_identify_nothing(
    prompt: str, ids: list[str], amounts: list[str]
) -> None:
    values = extract_values(prompt)
    assert (values.numbers, values.amounts) == (ids, amounts)


def test_id_like_tokens() -> None:
    assert extract_values("show run a1b2c3d4e5").tokens == ["a1b2c3d4e5"]


def test_capitalised_names() -> None:
    assert extract_values("Show films with Ana Ruiz").names == ["Ana Ruiz"]
    assert extract_values("what did Liam say").names == ["Liam"]
    assert extract_values("the newest album of METALLICA").names == ["METALLICA"]  # not an acronym
    assert extract_values("Show Sofia Coppola's films").names == ["Sofia Coppola"]
    assert extract_values("Find Liam").names == ["Liam"]


def test_a_name_given_to_a_new_thing_is_nothing_to_look_up() -> None:
    values = extract_values("make a playlist called 'Road Trip' with songs of Ana Ruiz")
    assert values.quoted == ["Road Trip"]  # still a value for the new playlist's name
    assert values.known == 1
    assert values.to_look_up == 1  # Ana Ruiz only


@pytest.mark.parametrize(
    "prompt",
    [
        "rename my first playlist to 'Road Trip'",
        "clear it and rename it as 'Road Trip'",
        "make a new list and name it Road Trip",
    ],
)
def test_a_new_name_for_a_thing_is_nothing_to_look_up(prompt: str) -> None:
    assert extract_values(prompt).to_look_up == 0
    # "to" alone also names an existing target
    assert extract_values("add it to 'Road Trip'").to_look_up == 1


@pytest.mark.parametrize(
    "prompt", ["play my playlist 'Road Trip'", "add it to my 'Road Trip' list", "our Road Trip"]
)
def test_the_callers_own_things_are_nothing_to_look_up(prompt: str) -> None:
    values = extract_values(prompt)
    assert values.quoted + values.names == ["Road Trip"]
    assert values.to_look_up == 0
    assert extract_values("play the playlist 'Road Trip'").to_look_up == 1  # anyone's


def test_an_apostrophe_is_no_quotation_mark() -> None:
    values = extract_values("add the first song on The Kinks' newest album to my 'Road' list")
    assert values.quoted == ["Road"]
    assert values.names == ["The Kinks"]
    assert extract_values("it's Ana's 'best of' list").quoted == ["best of"]


@pytest.mark.parametrize(
    "prompt",
    [
        "Show the films",  # a capital that only starts a sentence
        "list pets. Then stop",  # ... also after a full stop
        "I want the TV shows",  # the pronoun and an acronym
        "is the API up? Okay",
    ],
)
def test_words_that_are_not_names(prompt: str) -> None:
    assert extract_values(prompt).names == []


def test_two_sentence_starts_are_not_a_name() -> None:
    assert extract_values("Hello. Who is there").names == []


def test_nothing_in_a_plain_prompt() -> None:
    values = extract_values("list all the pets")
    assert not values.any
    assert values.names == []


# --- fill ----------------------------------------------------------------------------------


def operation(*params: Parameter, path: str = "/pets/{petId}") -> Operation:
    return Operation(spec="t", method="GET", path=path, parameters=list(params))


def test_unknown_required_parameters_use_example_then_default_then_placeholder() -> None:
    op = operation(
        Parameter(name="petId", location="path", required=True, example="abc"),
        Parameter(name="limit", location="query", required=True, default=20),
        Parameter(name="species", location="query", required=True),
        Parameter(name="tag", location="query"),  # optional and unknown: left out
        Parameter(name="X-Trace", location="header", required=True),  # not the caller's to fill
    )
    values, sources = fill(op, extract_values("show it"), {}, shape_of(op))
    assert values == {"petId": "abc", "limit": 20, "species": "{species}"}
    assert sources == {"petId": "example", "limit": "default", "species": "placeholder"}


def test_optional_parameters_only_when_known() -> None:
    op = operation(
        Parameter(name="petId", location="path", required=True),
        Parameter(name="q", location="query", type="string"),
        Parameter(name="ownerEmail", location="query"),
        Parameter(name="status", location="query", enum=["sold", "available"]),
        Parameter(name="tag", location="query"),
    )
    prompt = extract_values("find 'sold' pet 42 of ana@example.com")
    values, sources = fill(op, prompt, {}, shape_of(op))
    assert values == {"petId": "42", "q": "sold", "ownerEmail": "ana@example.com", "status": "sold"}
    assert set(sources.values()) == {"prompt"}


def test_integer_ids_from_the_prompt_are_integers() -> None:
    op = operation(Parameter(name="petId", location="path", required=True, type="integer"))
    values, _ = fill(op, extract_values("pet 42"), {}, shape_of(op))
    assert values == {"petId": 42}


def test_owner_and_repo_from_the_prompt() -> None:
    op = operation(
        Parameter(name="owner", location="path", required=True),
        Parameter(name="repo", location="path", required=True),
        path="/repos/{owner}/{repo}",
    )
    values, sources = fill(op, extract_values("issues of acme/widgets"), {}, shape_of(op))
    assert values == {"owner": "acme", "repo": "widgets"}
    assert sources == {"owner": "prompt", "repo": "prompt"}


def test_a_year_fills_a_year_but_not_an_id() -> None:
    op = operation(
        Parameter(name="year", location="path", required=True, type="integer"),
        Parameter(name="orderId", location="query", required=True),
        path="/reports/{year}",
    )
    values, sources = fill(op, extract_values("the sales report of 2024"), {}, shape_of(op))
    assert values == {"year": 2024, "orderId": "{orderId}"}
    assert sources == {"year": "prompt", "orderId": "placeholder"}


def test_a_year_is_taken_for_a_year_before_an_id_said_first() -> None:
    op = operation(
        Parameter(name="year", location="path", required=True, type="integer"),
        path="/reports/{year}",
    )
    values, _ = fill(op, extract_values("store 7's sales report of 2024"), {}, shape_of(op))
    assert values == {"year": 2024}


def test_each_id_takes_the_value_said_of_its_noun() -> None:
    op = operation(
        Parameter(name="projectId", location="path", required=True),
        Parameter(name="taskId", location="path", required=True, type="integer"),
        path="/projects/{projectId}/tasks/{taskId}/comments",
    )
    for prompt in ("add a comment to task 5 of project 3", "comment on project 3's task #5"):
        values, sources = fill(op, extract_values(prompt), {}, shape_of(op))
        assert values == {"projectId": "3", "taskId": 5}, prompt
        assert sources == {"projectId": "prompt", "taskId": "prompt"}
    values, _ = fill(op, extract_values("task 5 of project 5"), {}, shape_of(op))
    assert values == {"projectId": "5", "taskId": 5}


def test_a_path_id_takes_the_value_said_of_the_resource_before_it() -> None:
    op = Operation(
        spec="t",
        method="DELETE",
        path="/orders/{id}",
        parameters=[
            Parameter(name="id", location="path", required=True),
            Parameter(name="userId", location="query"),
        ],
    )
    values, _ = fill(op, extract_values("for user 4, cancel order 7"), {}, shape_of(op))
    assert values == {"id": "7", "userId": "4"}


def test_two_values_said_of_one_noun_go_to_its_parameters_in_turn() -> None:
    op = Operation(
        spec="t",
        method="POST",
        path="/transfers",
        parameters=[
            Parameter(name="fromAccountId", location="body", required=True),
            Parameter(name="toAccountId", location="body", required=True),
            Parameter(name="amount", location="body", required=True, type="number"),
        ],
    )
    prompt = extract_values("move 100 from account 5 to account 9")
    values, _ = fill(op, prompt, {}, shape_of(op))
    assert values["fromAccountId"] == "5"
    assert values["toAccountId"] == "9"


def test_a_value_said_of_another_parameter_is_not_taken() -> None:
    op = operation(
        Parameter(name="projectId", location="path", required=True),
        Parameter(name="taskId", location="path", required=True),
        path="/projects/{projectId}/tasks/{taskId}",
    )
    values, sources = fill(op, extract_values("show task 5"), {}, shape_of(op))
    assert values == {"projectId": "{projectId}", "taskId": "5"}
    assert sources == {"projectId": "placeholder", "taskId": "prompt"}


@pytest.mark.parametrize(
    "prompt", ["say hello in the #general channel", "post to channel #general: hello"]
)
def test_a_handle_fills_the_parameter_it_is_said_of(prompt: str) -> None:
    op = operation(
        Parameter(name="channel", location="body", required=True),
        Parameter(name="user", location="body"),
        path="/chat.postMessage",
    )
    values, sources = fill(op, extract_values(prompt), {}, shape_of(op))
    assert values == {"channel": "general"}
    assert sources == {"channel": "prompt"}


def test_a_handle_alone_fills_the_parameter_its_sign_names() -> None:
    op = operation(
        Parameter(name="username", location="path", required=True),
        Parameter(name="tag", location="query"),
        path="/users/{username}/posts",
    )
    values, sources = fill(op, extract_values("show what @octocat posted as #release"), {})
    assert values == {"username": "octocat", "tag": "release"}
    assert sources == {"username": "prompt", "tag": "prompt"}


def test_handles_are_no_values_the_ranking_counts() -> None:
    values = extract_values("ping @octocat in #general, not ana@example.com")
    assert values.handles == ["@octocat", "#general"]
    assert values.emails == ["ana@example.com"]
    assert values.listed == 1


def test_history_wins_over_a_value_the_prompt_says_of_nothing() -> None:
    op = operation(Parameter(name="petId", location="path", required=True))
    values, sources = fill(op, extract_values("show 42"), {"petid": "7"}, shape_of(op))
    assert values == {"petId": "7"}
    assert sources == {"petId": "history"}


def test_a_value_the_prompt_says_of_the_thing_wins_over_history() -> None:
    op = operation(Parameter(name="petId", location="path", required=True))
    values, sources = fill(op, extract_values("now show pet 42"), {"petid": "7"}, shape_of(op))
    assert values == {"petId": "42"}
    assert sources == {"petId": "prompt"}


# --- history_values -------------------------------------------------------------------------


def test_history_values_from_path_and_parameters() -> None:
    op = Operation(spec="t", method="GET", path="/artists/{id}/albums")
    found = history_values({"id": "a1"}, {"market": "ES", "limit": True}, None, shape_of(op))
    # keyed by normalised name, and the id also by the resource it belongs to
    assert found == {"id": "a1", "artistid": "a1", "market": "ES"}


def test_history_values_from_a_response() -> None:
    op = Operation(
        spec="t", method="GET", path="/search/person", response_fields=["results", "results.id"]
    )
    response = {"results": [{"id": 7, "name": "Ana Ruiz"}, {"id": 8}], "total_pages": 1}
    found = history_values({}, {}, response, shape_of(op))
    assert found["personid"] == 7
    assert found["id"] == 7
    assert found["name"] == "Ana Ruiz"
    assert "totalpages" not in found


def test_history_values_key_container_ids_by_their_noun() -> None:
    response = {"artists": {"items": [{"id": "a1"}]}, "owner_id": 3}
    found = history_values({}, {}, response, None)
    assert found["artistid"] == "a1"
    assert found["ownerid"] == 3


# --- through the predictor ------------------------------------------------------------------


def test_path_value_of_an_earlier_call_fills_the_next_one() -> None:
    predictor = predictor_for(FIXTURES / "petstore-3.0.yaml")
    item = prediction(predictor, "POST /pets/{petId}/photos", "upload a photo", ["GET /pets/42"])
    assert item.parameters["petId"] == "42"
    assert item.parameter_sources["petId"] == "history"
    # the required body field nobody supplied comes from elsewhere
    assert item.parameter_sources["file"] == "placeholder"
    assert "caption" not in item.parameters  # optional and unknown


def test_prompt_value_fills_a_path_parameter() -> None:
    predictor = predictor_for(FIXTURES / "petstore-3.0.yaml")
    item = prediction(predictor, "GET /pets/{petId}", "show pet 42")
    assert item.parameters == {"petId": "42"}
    assert item.parameter_sources == {"petId": "prompt"}


def test_example_when_nothing_is_known() -> None:
    predictor = predictor_for(FIXTURES / "petstore-3.0.yaml")
    item = prediction(predictor, "GET /pets/{petId}", "show the pet")
    assert item.parameter_sources == {"petId": "example"}


def write_spec(directory: Path) -> Path:
    def get(op_id: str, params: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
        content = {"application/json": {"schema": schema}}
        return {
            "get": {
                "operationId": op_id,
                "summary": op_id,
                "parameters": params,
                "responses": {"200": {"description": "ok", "content": content}},
            }
        }

    person = {"type": "object", "properties": {"id": {"type": "integer"}}}
    results = {"type": "object", "properties": {"results": {"type": "array", "items": person}}}
    q = {"name": "query", "in": "query", "required": True, "schema": {"type": "string"}}
    pid = {"name": "person_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    credits = {"type": "object", "properties": {"cast": {"type": "array", "items": person}}}
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Films", "version": "1"},
        "paths": {
            "/search/person": get("searchPerson", [q], results),
            "/person/{person_id}/movie_credits": get("personMovieCredits", [pid], credits),
        },
    }
    path = directory / "films.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def test_response_id_feeds_the_resource_parameter(tmp_path: Path) -> None:
    predictor = predictor_for(write_spec(tmp_path))
    history = [{"api_call": "GET /search/person", "response": {"results": [{"id": 7}]}}]
    item = prediction(
        predictor, "GET /person/{person_id}/movie_credits", "movie credits of Ana Ruiz", history
    )
    assert item.parameters == {"person_id": 7}
    assert item.parameter_sources == {"person_id": "history"}


def test_search_query_from_a_name_in_the_prompt(tmp_path: Path) -> None:
    predictor = predictor_for(write_spec(tmp_path))
    item = prediction(predictor, "GET /search/person", "movies of Ana Ruiz")
    assert item.parameters == {"query": "Ana Ruiz"}
    assert item.parameter_sources == {"query": "prompt"}


def test_words_are_matched_without_the_values_they_carry() -> None:
    said = without_values("list the open issues of octocat/hello-world for ana@example.com")
    assert "octocat" not in said and "ana@" not in said
    assert "open issues" in said
    assert "usr_8f3k2ld9q" not in without_values("show the user usr_8f3k2ld9q at https://x.io/a")


@pytest.mark.parametrize(
    ("prompt", "name", "kind", "filled"),
    [
        ("issues of octocat/hello-world", "owner", "string", True),
        ("holidays in Japan", "country", "string", True),
        ("the price of AAPL", "symbol", "string", True),  # a code, not a name
        ("order 7", "orderId", "integer", True),
        ("the order", "orderId", "integer", False),
        ("holidays in 2024", "year", "integer", True),  # a year for a year
        ("write to ana@example.com", "email", "string", True),
        ("write to Ana", "email", "string", False),
    ],
)
def test_a_prompt_fills_the_parameters_its_values_fit(
    prompt: str, name: str, kind: str, filled: bool
) -> None:
    param = Parameter(name=name, location="path", type=kind, required=True)
    assert fills(param, extract_values(prompt)) is filled


def test_the_predictor_fills_each_id_with_the_value_said_of_it() -> None:
    predictor = predictor_for(Path(__file__).parents[2] / "fixtures" / "tasks-3.1.json")
    key = "POST /projects/{projectId}/tasks/{taskId}/comments"
    item = prediction(predictor, key, "leave a comment on task 5 of project 3")
    ids = {k: item.parameters[k] for k in ("projectId", "taskId")}
    assert ids == {"projectId": "3", "taskId": "5"}
    assert item.parameter_sources["projectId"] == item.parameter_sources["taskId"] == "prompt"
