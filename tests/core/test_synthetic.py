"""Synthetic training requests: shaped like real ones, reproducible, and always answerable."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.synthetic import SyntheticCase, generate
from opensesame_predictor.runtime import Runtime
from support import in_path, in_query, json_body, json_ok, with_id

SPEC = {
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
    },
    "components": {"schemas": {"Book": with_id()}},
}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    spec = tmp_path_factory.mktemp("spec") / "library.json"
    spec.write_text(json.dumps(SPEC), encoding="utf-8")
    return Runtime.from_settings(Settings(specs=[str(spec)])).catalog


@pytest.fixture(scope="module")
def cases(catalog: Catalog) -> list[SyntheticCase]:
    return generate([catalog], seed=5, rounds=40)


def test_generation_is_reproducible(catalog: Catalog) -> None:
    assert generate([catalog], seed=5, rounds=3) == generate([catalog], seed=5, rounds=3)
    assert generate([catalog], seed=5, rounds=3) != generate([catalog], seed=6, rounds=3)


def test_each_step_is_a_case_whose_history_is_the_steps_before(cases: list[SyntheticCase]) -> None:
    keys = {"GET /books", "POST /books/{bookId}/loans"}
    assert {case.gold for case in cases} == keys
    for case in cases:
        assert set(case.history) <= keys and case.gold not in case.history
    # the borrow needs a book: asked by name, the search comes first
    two_step = [c for c in cases if c.gold == "POST /books/{bookId}/loans" and c.history]
    assert two_step and all(c.history == ["GET /books"] for c in two_step)


def test_prompts_carry_values_or_names_for_what_is_needed(cases: list[SyntheticCase]) -> None:
    borrow = [c.prompt for c in cases if c.gold == "POST /books/{bookId}/loans" and not c.history]
    assert any(any(ch.isdigit() for ch in prompt) for prompt in borrow)  # "book 4821"


def test_some_prompts_use_the_description_words_not_the_summary(
    cases: list[SyntheticCase],
) -> None:
    prompts = " ".join(c.prompt.lower() for c in cases)
    assert "volumes" in prompts or "checks" in prompts or "card" in prompts
    summary_only = [c for c in cases if "borrow" in c.prompt.lower()]
    assert len(summary_only) > len(cases) // 4  # the summary's words stay the common case


SHOP = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "1"},
    "paths": {
        "/carts": {
            "post": {
                "summary": "Create a cart",
                "responses": json_ok({"$ref": "#/components/schemas/Cart"}),
            }
        },
        "/carts/{cartId}/items": {
            "post": {
                "summary": "Add an item to a cart",
                "parameters": [in_path("cartId")],
                "requestBody": json_body("product_id", {"type": "string"}),
                "responses": json_ok({"$ref": "#/components/schemas/Cart"}),
            }
        },
        "/products/search": {
            "get": {
                "summary": "Search products",
                "parameters": [in_query("q")],
                "responses": json_ok(
                    {"type": "array", "items": {"$ref": "#/components/schemas/Product"}}
                ),
            }
        },
    },
    "components": {
        "schemas": {
            "Cart": with_id(),
            "Product": with_id(),
        }
    },
}


def test_things_go_into_a_new_container_in_the_order_the_prompt_says(tmp_path: Path) -> None:
    spec = tmp_path / "shop.json"
    spec.write_text(json.dumps(SHOP), encoding="utf-8")
    catalog = Runtime.from_settings(Settings(specs=[str(spec)])).catalog
    cases = generate([catalog], seed=3, rounds=20)
    add = "POST /carts/{cartId}/items"
    into_new = [c for c in cases if c.gold == add and len(c.history) == 2]
    assert into_new
    orders = {tuple(c.history) for c in into_new}
    assert orders == {
        ("POST /carts", "GET /products/search"),
        ("GET /products/search", "POST /carts"),
    }
    for case in into_new:
        assert re.search(r"\ba (new|fresh) cart\b", case.prompt)
        # "create a new cart and add ...": the cart comes first; "add ... to a new cart": last
        made_first = re.search(r"(create|make|start) a (new|fresh) cart and", case.prompt, re.I)
        assert (case.history[0] == "POST /carts") == bool(made_first)


def _listing(schema: str, query: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    items = {"type": "array", "items": {"$ref": f"#/components/schemas/{schema}"}}
    return {"get": {"parameters": query or [], "responses": json_ok(items)}}


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


def test_a_thing_named_in_a_chain_is_searched_for_not_listed(tmp_path: Path) -> None:
    spec = tmp_path / "authors.json"
    spec.write_text(json.dumps(AUTHORS), encoding="utf-8")
    catalog = Runtime.from_settings(Settings(specs=[str(spec)])).catalog
    cases = generate([catalog], seed=3, rounds=10)
    chains = [c for c in cases if c.gold == "GET /books/{bookId}/reviews" and len(c.history) == 2]
    assert chains
    # "reviews of the author Ana Ruiz": the author is found by name, then their books
    assert {tuple(c.history) for c in chains} == {
        ("GET /authors/search", "GET /authors/{authorId}/books")
    }
