"""An explicit request beats history: what the prompt asks for comes first, even where the
calls made so far point somewhere else. The specs and wordings here are none the weights were
trained on (training reads a corpus of other APIs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.features import acted_on, method_intent, verb_objects
from opensesame_predictor.core.models import HistoryEvent, PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.service import Service
from support import in_path, json_ok

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _object(*fields: str, nested: dict[str, Any] | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {name: {"type": "string"} for name in fields}
    properties.update(nested or {})
    return {"type": "object", "properties": properties}


def _form(*fields: str) -> dict[str, Any]:
    schema = _object(*fields)
    return {"content": {"application/x-www-form-urlencoded": {"schema": schema}}}


# Payments in the style of a large real API: no summaries, HTML descriptions, path parameters
# named after their collection (`{charge}`), and a charge that lists its refunds.
REFUND = _object("id", "amount", "charge", "status")
CHARGE = _object(
    "id",
    "amount",
    "currency",
    "customer",
    nested={
        "refunds": {"type": "object", "properties": {"data": {"type": "array", "items": REFUND}}}
    },
)
PAYMENTS = {
    "openapi": "3.0.0",
    "info": {"title": "Payments", "version": "1"},
    "paths": {
        "/v1/charges": {
            "post": {
                "description": "<p>Use this method to create a charge on a card.</p>",
                "requestBody": _form("amount", "currency", "customer"),
                "responses": json_ok(CHARGE),
            },
            "get": {
                "description": "<p>Returns a list of charges you have created.</p>",
                "responses": json_ok({"type": "array", "items": CHARGE}),
            },
        },
        "/v1/charges/{charge}": {
            "get": {
                "description": "<p>Retrieves the details of a charge.</p>",
                "parameters": [in_path("charge")],
                "responses": json_ok(CHARGE),
            }
        },
        "/v1/charges/{charge}/refund": {
            "post": {
                "description": "<p>Refunds a charge that has not been refunded yet. Funds "
                "are returned to the card that was charged.</p>",
                "parameters": [in_path("charge")],
                "responses": json_ok(CHARGE),
            }
        },
        "/v1/refunds": {
            "post": {
                "description": "<p>Create a refund of a charge.</p>",
                "requestBody": _form("charge", "amount"),
                "responses": json_ok(REFUND),
            }
        },
        "/v1/refunds/{refund}": {
            "get": {
                "description": "<p>Retrieves the details of an existing refund.</p>",
                "parameters": [in_path("refund")],
                "responses": json_ok(REFUND),
            }
        },
        "/v1/customers/{customer}": {
            "delete": {
                "description": "<p>Permanently deletes a customer.</p>",
                "parameters": [in_path("customer")],
                "responses": json_ok(_object("id", "deleted")),
            }
        },
    },
}


@pytest.fixture(scope="module")
def predictors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Predictor]:
    folder = tmp_path_factory.mktemp("payments")
    payments = folder / "payments.json"
    payments.write_text(json.dumps(PAYMENTS), encoding="utf-8")
    sources = {
        "petstore": FIXTURES / "petstore-3.0.yaml",
        "library": FIXTURES / "library-swagger-2.0.json",
        "tasks": FIXTURES / "tasks-3.1.json",
        "payments": payments,
    }
    settings = {"database_url": str(folder / "store.json")}
    return {
        name: Service.from_settings(Settings(specs=[str(path)], **settings)).predictor
        for name, path in sources.items()
    }


class TestAnExplicitRequestBeatsHistory:
    @pytest.mark.parametrize(
        ("spec", "history", "prompt", "wanted"),
        [
            # after making a pet, cancelling order 7 is not deleting the pet
            ("petstore", ["POST /pets"], "cancel the order 7", {"DELETE /store/orders/{orderId}"}),
            ("petstore", ["GET /pets"], "log in first", {"POST /auth/login"}),
            (
                "petstore",
                ["GET /pets/{petId}"],
                "now place an order for it",
                {"POST /store/orders"},
            ),
            # after reading a book, borrowing it is not adding a book
            (
                "library",
                ["GET /api/v2/books/{bookId}"],
                "borrow this book",
                {"POST /api/v2/loans"},
            ),
            (
                "library",
                ["GET /api/v2/books/{bookId}"],
                "who wrote it? show me the author 12",
                {"GET /api/v2/authors/{authorId}"},
            ),
            (
                "library",
                ["POST /api/v2/loans"],
                "I am done reading, return the book",
                {"DELETE /api/v2/loans/{loanId}"},
            ),
            (
                "tasks",
                ["GET /projects"],
                "leave a comment on task 5 of project 3",
                {"POST /projects/{projectId}/tasks/{taskId}/comments"},
            ),
            # after making a charge, refunding it makes a refund; reading one needs its id
            (
                "payments",
                ["POST /v1/charges"],
                "refund it",
                {"POST /v1/charges/{charge}/refund", "POST /v1/refunds"},
            ),
        ],
    )
    def test_the_call_asked_for_comes_first(
        self,
        predictors: dict[str, Predictor],
        spec: str,
        history: list[str],
        prompt: str,
        wanted: set[str],
    ) -> None:
        request = PredictRequest(prompt=prompt, history=[HistoryEvent(api_call=h) for h in history])
        predictions = predictors[spec].predict(request).predictions
        assert predictions[0].api_call in wanted, [p.api_call for p in predictions]

    def test_a_destructive_call_nobody_asked_for_stays_unlikely(
        self, predictors: dict[str, Predictor]
    ) -> None:
        """'Cancel the order 7' right after making a pet: deleting the pet is no answer."""
        request = PredictRequest(
            prompt="cancel the order 7", history=[HistoryEvent(api_call="POST /pets")]
        )
        result = predictors["petstore"].predict(request)
        delete_pet = [p for p in result.predictions if p.api_call == "DELETE /pets/{petId}"]
        assert all(p.confidence < 0.1 for p in delete_pet)


@pytest.mark.parametrize(
    ("prompt", "methods"),
    [
        ("delete the pet 4", {"DELETE"}),
        ("please show me the orders", {"GET"}),
        # what one did or is doing is no command
        ("I am done reading, return the book", set()),
        ("I created a pet by mistake", set()),
    ],
)
def test_verbs_of_intent_are_commands_in_their_plain_form(prompt: str, methods: set[str]) -> None:
    assert method_intent(prompt) == methods


@pytest.mark.parametrize(
    ("prompt", "objects"),
    [
        ("add a card 'Hotfix' to the Urgent column", {"card", "urgent"}),  # quotes left out
        ("please make a yellow label on the board", {"yellow", "label"}),
        ("delete the project 3", {"project", "3"}),
        ("I was reading the book", set()),  # no verb of intent, nothing acted on
    ],
)
def test_what_the_verbs_act_on_are_the_words_right_after_them(
    prompt: str, objects: set[str]
) -> None:
    assert verb_objects(prompt) == objects


def test_an_operation_acts_on_what_its_path_ends_in(predictors: dict[str, Predictor]) -> None:
    assert acted_on("/boards/{idBoard}/labels") == {"label"}
    assert acted_on("/v1/{name}:cancel") == {"cancel"}
    assert acted_on("/usergroups.users.update") == {"usergroup", "user", "update"}
    assert acted_on("/{id}") == frozenset()
    ranked, _ = predictors["tasks"].rank(PredictRequest(prompt="delete the project 3"))
    acts = {item.operation.key: item.table["acts_on"][item.row] for item in ranked}
    assert acts["DELETE /projects/{projectId}"] == 1.0
    assert acts["DELETE /projects/{projectId}/tasks/{taskId}"] == 0.0


@pytest.mark.parametrize(
    ("spec", "prompt", "first"),
    [
        (
            "tasks",
            "delete the project 4 and then list the projects",
            "DELETE /projects/{projectId}",
        ),
        ("tasks", "list the projects and then delete the project 4", "GET /projects"),
        ("library", "add a book and then list the authors", "POST /api/v2/books"),
        ("library", "list the authors, then add a book", "GET /api/v2/authors"),
        ("library", "return the loan 12 and then list the books", "DELETE /api/v2/loans/{loanId}"),
        ("tasks", "show me project 2, then create a task in it", "GET /projects/{projectId}"),
    ],
)
def test_the_step_said_first_comes_first(
    predictors: dict[str, Predictor], spec: str, prompt: str, first: str
) -> None:
    ranked, _ = predictors[spec].rank(PredictRequest(prompt=prompt))
    assert ranked[0].operation.key == first
