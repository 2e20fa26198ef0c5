"""Synthetic training requests: shaped like real use, reproducible, and always answerable."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor.core import phrasing
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.history import asks_again
from opensesame_predictor.core.models import Operation, Parameter
from opensesame_predictor.offline import synthetic
from opensesame_predictor.offline.synthetic import SyntheticCase, generate
from opensesame_predictor.offline.train import load_specs
from support import in_path, in_query, json_ok, with_id


def _listing(schema: str, query: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    items = {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}
    return {"get": {"parameters": query or [], "responses": json_ok(items)}}


LIBRARY = {
    "openapi": "3.0.3",
    "info": {"title": "Library", "version": "1"},
    "paths": {
        "/books": {
            "get": {
                "operationId": "searchBooks",
                "summary": "Search books",
                "description": "Finds volumes in the catalogue by title or author.",
                "parameters": [in_query("q")],
                "responses": json_ok(
                    {"type": "array", "items": {"$ref": "#/components/schemas/Book"}}
                ),
            }
        },
        "/books/{bookId}/loans": {
            "post": {
                "operationId": "borrowBook",
                "summary": "Borrow a book",
                "description": "Checks out a volume to the caller's reading card.",
                "parameters": [in_path("bookId")],
                "responses": {"201": {"description": "created"}},
            }
        },
        "/holidays/{country}": {
            "get": {
                "summary": "Public holidays of a country",
                "parameters": [in_path("country")],
                "responses": json_ok({"type": "array", "items": {"type": "string"}}),
            }
        },
    },
    "components": {"schemas": {"Book": with_id()}},
}

AUTHORS = {
    "openapi": "3.0.3",
    "info": {"title": "Authors", "version": "1"},
    "paths": {
        "/authors": _listing("Author"),
        "/authors/search": _listing("Author", [in_query("q")]),
        "/authors/{authorId}/books": {
            "get": {**_listing("Book")["get"], "parameters": [in_path("authorId")]}
        },
        "/books/{bookId}/reviews": {
            "get": {**_listing("Review")["get"], "parameters": [in_path("bookId")]}
        },
    },
    "components": {"schemas": {name: with_id() for name in ("Author", "Book", "Review")}},
}


def _catalog(tmp_path: Path, name: str, spec: dict[str, Any]) -> Catalog:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return Catalog(load_specs([str(path)]))


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return _catalog(tmp_path_factory.mktemp("spec"), "library", LIBRARY)


@pytest.fixture(scope="module")
def cases(library: Catalog) -> list[SyntheticCase]:
    return generate([library], seed=5, rounds=60)


def test_generation_is_reproducible(library: Catalog) -> None:
    assert generate([library], seed=5, rounds=3) == generate([library], seed=5, rounds=3)
    assert generate([library], seed=5, rounds=3) != generate([library], seed=6, rounds=3)


def test_each_step_is_a_case_whose_history_is_the_steps_before(
    cases: list[SyntheticCase],
) -> None:
    keys = {"GET /books", "POST /books/{bookId}/loans", "GET /holidays/{country}"}
    assert {case.gold for case in cases} == keys
    for case in cases:
        assert set(case.history) <= keys and case.spec == "library"
    # asked by name, the book is searched for before it is borrowed
    looked_up = [c for c in cases if c.kind == "lookup"]
    assert looked_up
    assert {tuple(c.history) for c in looked_up if c.gold == "POST /books/{bookId}/loans"} == {
        ("GET /books",)
    }


def test_a_request_after_a_call_points_back_at_what_it_was_about(
    cases: list[SyntheticCase],
) -> None:
    """Some requests come once a call is made and ask only for the next one, pointing back
    ('borrow this book'): the call made is history, not a case of its own."""
    then = [c for c in cases if c.kind == "then"]
    assert then
    for case in then:
        assert case.history == ["GET /books"] and case.gold == "POST /books/{bookId}/loans"
        said = case.prompt.lower()
        assert any(back in said for back in ("this book", "that book", "for it", "the book"))


def test_a_single_call_carries_the_values_it_takes(cases: list[SyntheticCase]) -> None:
    borrow = [c.prompt for c in cases if c.kind == "single" and c.gold.startswith("POST")]
    assert borrow and all(any(ch.isdigit() or ch.isupper() for ch in p) for p in borrow)


def test_a_natural_key_is_given_not_looked_up(cases: list[SyntheticCase]) -> None:
    """A country is named in the request ('holidays in Japan'): nothing finds it first; and
    a list of countries asks for the same call once for each."""
    holidays = [c for c in cases if c.gold == "GET /holidays/{country}"]
    assert holidays
    assert all(set(c.history) <= {"GET /holidays/{country}"} or c.kind == "pair" for c in holidays)
    repeats = [c for c in holidays if c.kind == "repeat"]
    assert any(len(c.history) >= 1 for c in repeats)
    for case in repeats:
        assert " and " in case.prompt  # the values listed


def test_a_repeat_may_be_asked_one_value_per_message(cases: list[SyntheticCase]) -> None:
    """Some repeats ask each later value in a short follow-up of its own ('same for Germany')
    that says it asks for the last call again."""
    again = [c for c in cases if c.kind == "again"]
    assert again
    for case in again:
        if case.history:
            assert case.history[-1] == case.gold
            assert asks_again(case.prompt) and len(case.prompt.split()) <= 8, case.prompt
    assert any(not c.history for c in again)


def test_asking_repeats_apart_draws_every_other_task_the_same(
    library: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How a repeat is asked is drawn aside: with or without it, the other tasks are alike."""
    repeats = ("repeat", "again")
    drawn = [c for c in generate([library], seed=5, rounds=20) if c.kind not in repeats]
    monkeypatch.setattr(synthetic, "AGAIN_SHARE", 0.0)
    alone = generate([library], seed=5, rounds=20)
    assert not any(c.kind == "again" for c in alone)
    assert drawn == [c for c in alone if c.kind not in repeats]


def test_requests_draw_on_more_than_the_summary(cases: list[SyntheticCase]) -> None:
    prompts = " ".join(c.prompt.lower() for c in cases)
    assert "volume" in prompts or "card" in prompts or "catalogue" in prompts  # description
    summary_words = [c for c in cases if "borrow" in c.prompt.lower()]
    assert 0 < len(summary_words) < len(cases)


def test_prerequisite_steps_are_a_minority(cases: list[SyntheticCase]) -> None:
    """Steps that the request does not describe (a look-up first) come in the share real
    sequences have them, not as the rule."""
    kinds = Counter(c.kind for c in cases if not c.history)
    prerequisites = sum(1 for c in cases if not c.history and c.kind in ("lookup", "chain"))
    assert 0 < prerequisites < 0.4 * sum(kinds.values())


def test_a_thing_named_in_a_chain_is_searched_for_not_listed(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, "authors", AUTHORS)
    cases = generate([catalog], seed=3, rounds=100)
    chains = [c for c in cases if c.kind == "chain" and len(c.history) == 2]
    assert chains
    # "reviews of the books of the author Ana Ruiz": the author is found by name, then books
    assert {tuple(c.history) for c in chains} == {
        ("GET /authors/search", "GET /authors/{authorId}/books")
    }


def test_a_look_up_finds_what_exists_and_never_makes_it(tmp_path: Path) -> None:
    """'Upload a photo of my pet': the pet exists; one lists pets to find it. Creating a pet
    returns a pet id as well, but is no way to find one's own."""
    pets = {
        "openapi": "3.0.3",
        "info": {"title": "Pets", "version": "1"},
        "paths": {
            "/pets": {
                **_listing("Pet"),
                "post": {"summary": "Create a pet", "responses": json_ok(with_id())},
            },
            "/pets/{petId}/photos": {
                "post": {
                    "summary": "Upload a pet photo",
                    "parameters": [in_path("petId")],
                    "responses": {"201": {"description": "created"}},
                }
            },
        },
        "components": {"schemas": {"Pet": with_id()}},
    }
    cases = generate([_catalog(tmp_path, "pets", pets)], seed=4, rounds=100)
    firsts = {c.history[0] for c in cases if c.kind == "lookup" and c.history}
    assert firsts == {"GET /pets"}


@pytest.mark.parametrize(
    ("name", "opaque"),
    [
        ("petId", True),
        ("id", True),
        ("file_key", True),
        ("country", False),
        ("username", False),
        ("issue_number", False),
        ("year", False),
    ],
)
def test_opaque_ids_are_told_from_natural_keys(name: str, opaque: bool) -> None:
    assert phrasing.is_opaque(Parameter(name=name, location="path")) is opaque


def test_values_follow_what_the_parameter_holds() -> None:
    rng = random.Random(1)
    country = Parameter(name="countryCode", location="path")
    assert phrasing.value_for(country, rng) in phrasing.VALUES["country"]
    chosen = Parameter(name="kind", location="query", enum=["cat", "dog"])
    assert {phrasing.value_for(chosen, rng) for _ in range(20)} & {"cat", "dog"}
    pet = Parameter(name="petId", location="path", type="integer")
    assert all(phrasing.value_for(pet, rng).isalnum() for _ in range(20))


def test_some_words_are_said_in_other_words() -> None:
    """People describe what they want without the spec's vocabulary: with rewording on, words
    that have close neighbours in meaning are replaced by one of them, others stay."""
    always = phrasing.Wording(reworded=1.0)
    said = phrasing.reword(["picture", "movie", "zzqx"], random.Random(3), wording=always)
    assert said[0] != "picture" and said[1] != "movie"
    assert said[2] == "zzqx"  # nothing like it: kept
    literal = phrasing.reword(["picture", "movie"], random.Random(3), wording=phrasing.LITERAL)
    assert literal == ["picture", "movie"]


def test_rewording_lowers_the_share_of_words_taken_from_the_operation(library: Catalog) -> None:
    from opensesame_predictor.core.features import PIECES, tokens

    operations = {op.key: op for op in library.operations}

    def literal_share(found: list[SyntheticCase]) -> float:
        shares = []
        for case in found:
            said = set(tokens(case.prompt))
            op = operations[case.gold]
            own = {t for piece in PIECES.values() for t in tokens(piece(op))}
            if said:
                shares.append(len(said & own) / len(said))
        return sum(shares) / len(shares)

    reworded = literal_share(generate([library], seed=5, rounds=30))
    literal = literal_share(generate([library], seed=5, rounds=30, wordings=[phrasing.LITERAL]))
    hard = literal_share(generate([library], seed=5, rounds=30, wordings=[phrasing.HARD]))
    assert hard < reworded < literal


def test_rounds_alternate_between_wordings(library: Catalog) -> None:
    first = generate([library], seed=5, rounds=1)
    both = generate([library], seed=5, rounds=2, wordings=phrasing.WORDINGS["alternate"])
    assert both[: len(first)] == first  # round 0: plain
    assert both != generate([library], seed=5, rounds=2)  # round 1: worded otherwise


def test_an_apis_own_terms_are_said_otherwise_or_left_out() -> None:
    """A newcomer knows the API's own terms least: a word only one operation uses is said in
    other words where one close in meaning is known, else left out now and then; common
    words follow the ordinary chance."""
    terms_only = phrasing.Wording(reworded=0.0, terms_reworded=1.0, terms_dropped=1.0)
    rare = frozenset({"picture", "zzqx"})
    said = phrasing.reword(["picture", "zzqx", "movie", "qqzx"], random.Random(3), rare, terms_only)
    assert said[0] != "picture" and "zzqx" not in said
    assert said[1:] == ["movie", "qqzx"]  # not the API's own terms: at their own chance, 0
    kept = phrasing.Wording(reworded=0.0, terms_reworded=1.0, terms_dropped=0.0)
    assert phrasing.reword(["zzqx"], random.Random(3), rare, kept) == ["zzqx"]


def test_an_apis_own_terms_are_the_words_of_one_operation(library: Catalog) -> None:
    from opensesame_predictor.offline.synthetic import _Api

    api = _Api.of(library.operations, "Library")
    assert {"borrow", "holidays"} <= api.rare  # one operation's words each
    assert "books" not in api.rare  # two operations' paths name books


def test_a_request_may_ask_for_what_the_call_returns() -> None:
    """People ask for the things they want ('the distance and last update of my car'), which
    are the fields the call returns, not the envelope around them."""
    assert phrasing._fields(["data", "data.name", "paging.next", "lastUpdated", "id"]) == [
        "last updated",
        "name",
    ]
    asking = phrasing.Wording(reworded=0.0, terms_reworded=0.0, asked=1e6)
    op = Operation(
        spec="cars",
        method="GET",
        path="/vehicles/{vehicleId}/odometer",
        summary="Vehicle odometer",
        response_fields=["distance", "lastUpdated"],
    )
    said = {" ".join(phrasing.act(op, True, random.Random(s), wording=asking)) for s in range(20)}
    asked = {"distance", "last", "updated"}
    assert all(asked & set(s.split()) for s in said)  # some of what is asked for, each time

    def asking_share(wording: phrasing.Wording) -> float:
        said = [phrasing.act(op, True, random.Random(s), wording=wording) for s in range(60)]
        return sum(bool(asked & set(" ".join(words).split())) for words in said) / len(said)

    # `asked`: the plain wording that also asks for what a call returns, now and then
    assert asking_share(phrasing.PLAIN) == 0.0
    assert 0.0 < asking_share(phrasing.ASKED) < 1.0
