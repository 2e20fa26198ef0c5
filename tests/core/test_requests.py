"""Requests and results: the limits of the wire format, the forms of history entries, the shape
of the JSON every surface returns, and what the confidences mean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.errors import CatalogEmpty, GuardrailViolation, InvalidRequest
from opensesame_predictor.core.guardrails import parse_request
from opensesame_predictor.core.models import HTTP_METHODS, HistoryEvent, PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.service import Service

PETSTORE = Path(__file__).resolve().parents[2] / "fixtures" / "petstore-3.0.yaml"
PHOTO = "POST /pets/{petId}/photos"


def calls(result: Any) -> list[str]:
    return [p.api_call for p in result.predictions]


# limits --------------------------------------------------------------------------------------

HUNDRED = ["GET /pets"] * 100


@pytest.mark.parametrize(
    ("body", "field", "limit"),
    [
        ({"prompt": "x" * 4097}, "prompt", "4096"),
        ({"prompt": "pets", "history": [*HUNDRED, "GET /pets"]}, "history", "100"),
        ({"max_predictions": 0}, "max_predictions", "1"),
        ({"max_predictions": 21}, "max_predictions", "20"),
        ({"max_predictions": -3}, "max_predictions", "1"),
        ({"temperature": -0.1}, "temperature", "0"),
        ({"temperature": 2.1}, "temperature", "2"),
        ({"prompt": "list pets", "colour": "red"}, "colour", "not a field of the request"),
        ({"prompt": 42}, "prompt", "string"),
        ({"prompt": "a\x00b"}, "prompt", "NUL"),
        ({"history": "GET /pets"}, "history", "list"),
        (
            {"history": [{"method": "GET"}]},
            "history.0.api_call",
            "api_call must be a non-empty string",
        ),
        ({"history": [""]}, "history.0.api_call", "a history entry is a call already made"),
        ({"max_predictions": "many"}, "max_predictions", "integer"),
    ],
)
def test_out_of_limit_requests_name_the_field_and_the_limit(
    predictor: Predictor, body: dict[str, Any], field: str, limit: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        predictor.predict(body)
    error = caught.value
    assert not isinstance(error, GuardrailViolation)
    assert error.code == "invalid_request"
    assert error.field == field
    assert error.message.startswith(f"{field}:")
    assert limit in error.message


@pytest.mark.parametrize("body", [[], ["prompt"], "list pets", None, 42, b"{}"])
def test_a_body_that_is_not_an_object_is_refused(predictor: Predictor, body: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        predictor.predict(body)
    assert caught.value.field == "request"
    assert "JSON object" in caught.value.message


def test_several_bad_fields_are_counted(predictor: Predictor) -> None:
    with pytest.raises(InvalidRequest) as caught:
        predictor.predict({"max_predictions": 0, "temperature": 9, "extra": 1})
    assert "(and 2 more)" in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "pets", "max_predictions": 1},
        {"prompt": "pets", "max_predictions": 20},
        {"prompt": "pets", "temperature": 0},
        {"prompt": "pets", "temperature": 2},
        {"prompt": "pets", "history": HUNDRED},
        {"prompt": "p" * 4096},
        {},
    ],
)
def test_values_at_the_limits_are_accepted(predictor: Predictor, body: dict[str, Any]) -> None:
    result = predictor.predict(body)
    assert (
        1 <= len(result.predictions) <= min(body.get("max_predictions", 5), len(predictor.catalog))
    )


def test_the_design_example_request_is_accepted(predictor: Predictor) -> None:
    body = {
        "prompt": "show my profile",
        "history": [
            {"api_call": "/auth/login", "method": "POST", "timestamp": "2024-01-01T10:00:00Z"}
        ],
        "max_predictions": 5,
        "temperature": 0.7,
    }
    request = parse_request(body)
    assert request.history[0].method == "POST"
    assert request.history[0].timestamp is not None
    assert 1 <= len(predictor.predict(body).predictions) <= 5


def test_a_spec_filter_must_name_a_loaded_spec(predictor: Predictor) -> None:
    with pytest.raises(InvalidRequest) as caught:
        predictor.predict({"prompt": "pets", "spec": "nope"})
    assert caught.value.field == "spec"
    assert "petstore-3.0" in caught.value.message  # says what is loaded
    result = predictor.predict({"prompt": "pets", "spec": "petstore-3.0"})
    assert {p.spec for p in result.predictions} == {"petstore-3.0"}


# history entries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "api_call", "method"),
    [
        ("POST /pets", "POST /pets", None),
        ({"api_call": "/pets/42", "method": "GET"}, "/pets/42", "GET"),
        (
            "https://petstore.example.com/v1/pets/42?expand=owner",
            "https://petstore.example.com/v1/pets/42?expand=owner",
            None,
        ),
        (
            {"api_call": "/pets", "method": "POST", "response": {"id": "p-1"}, "x-extra": 1},
            "/pets",
            "POST",
        ),
    ],
)
def test_history_entries_in_every_form_parse_and_resolve(
    predictor: Predictor, entry: Any, api_call: str, method: str | None
) -> None:
    request = parse_request({"prompt": "upload a photo of the pet", "history": [entry]})
    [event] = request.history
    assert isinstance(event, HistoryEvent)
    assert event.api_call == api_call
    assert event.method == method
    assert predictor.catalog.match(event.api_call, event.method) is not None
    result = predictor.predict(request)
    assert PHOTO in calls(result)[:3]


def test_a_path_value_from_history_fills_the_next_call(predictor: Predictor) -> None:
    result = predictor.predict(
        {
            "prompt": "upload a photo of the pet",
            "history": [{"api_call": "/pets/42", "method": "GET"}],
        }
    )
    [photo] = [p for p in result.predictions if p.api_call == PHOTO]
    assert photo.parameters["petId"] == "42"
    assert photo.parameter_sources["petId"] == "history"


def test_a_path_value_from_a_full_url_in_history_fills_the_next_call(
    predictor: Predictor,
) -> None:
    result = predictor.predict(
        {
            "prompt": "upload a photo of the pet",
            "history": ["https://petstore.example.com/v1/pets/42"],
        }
    )
    [photo] = [p for p in result.predictions if p.api_call == PHOTO]
    assert photo.parameters["petId"] == "42"


def test_history_calls_outside_the_catalog_are_tolerated(predictor: Predictor) -> None:
    result = predictor.predict(
        {"prompt": "list pets", "history": ["GET /unknown/thing", "https://elsewhere.test/x"]}
    )
    assert result.predictions


# wire format ---------------------------------------------------------------------------------

DESIGN_PREDICTION_KEYS = {"api_call", "method", "description", "parameters", "confidence", "rank"}
DESIGN_TOP_KEYS = {"predictions", "confidence_scores", "processing_time_ms", "metadata"}
DESIGN_METADATA_KEYS = {"model_version", "processing_time_ms", "processing_method"}


def test_the_result_json_has_the_design_shape(predictor: Predictor) -> None:
    result = predictor.predict({"prompt": "upload a photo of the pet", "history": ["POST /pets"]})
    wire = json.loads(result.model_dump_json())
    assert set(wire) >= DESIGN_TOP_KEYS
    assert set(wire["metadata"]) >= DESIGN_METADATA_KEYS
    assert isinstance(wire["metadata"]["model_version"], str) and wire["metadata"]["model_version"]
    assert isinstance(wire["metadata"]["processing_method"], str)
    assert isinstance(wire["metadata"]["processing_time_ms"], int | float)
    assert isinstance(wire["processing_time_ms"], int | float) and wire["processing_time_ms"] >= 0
    assert 3 <= len(wire["predictions"]) <= 5
    for item in wire["predictions"]:
        assert set(item) >= DESIGN_PREDICTION_KEYS
        method, _, path = item["api_call"].partition(" ")
        assert method == item["method"] and method in HTTP_METHODS
        assert path.startswith("/")
        assert isinstance(item["description"], str)
        assert isinstance(item["parameters"], dict)
        assert isinstance(item["confidence"], float)
        assert isinstance(item["rank"], int)
    assert wire["confidence_scores"] == [p["confidence"] for p in wire["predictions"]]
    assert PHOTO in [p["api_call"] for p in wire["predictions"]][:3]


@pytest.mark.parametrize("temperature", [0.0, 0.3, 0.7, 1.0, 2.0])
def test_confidences_are_ordered_probabilities(predictor: Predictor, temperature: float) -> None:
    result = predictor.predict(
        {"prompt": "find a pet", "max_predictions": 20, "temperature": temperature}
    )
    confidences = result.confidence_scores
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert confidences == sorted(confidences, reverse=True)
    assert [p.rank for p in result.predictions] == list(range(1, len(confidences) + 1))
    assert sum(confidences) <= 1.0 + 1e-3  # shares of one probability mass


def test_temperature_zero_is_certain_and_higher_temperatures_flatten(predictor: Predictor) -> None:
    def top(temperature: float) -> tuple[list[str], list[float]]:
        result = predictor.predict(
            {
                "prompt": "upload a photo of the pet",
                "history": ["POST /pets"],
                "max_predictions": 20,
                "temperature": temperature,
            }
        )
        return calls(result), result.confidence_scores

    order, certain = top(0.0)
    assert certain[0] == 1.0
    assert all(c == 0.0 for c in certain[1:])
    tops = []
    for temperature in (0.5, 1.0, 1.5, 2.0):
        same_order, confidences = top(temperature)
        assert same_order == order  # temperature reshapes the confidences, not the ranking
        tops.append(confidences[0])
    assert tops == sorted(tops, reverse=True)
    assert tops[-1] < tops[0]


async def test_apredict_gives_the_same_ranking(predictor: Predictor) -> None:
    body = {"prompt": "upload a photo of the pet", "history": ["POST /pets"]}
    assert calls(await predictor.apredict(body)) == calls(predictor.predict(body))


def test_a_request_object_is_accepted_as_is(predictor: Predictor) -> None:
    request = PredictRequest(prompt="delete the pet", history=[HistoryEvent(api_call="/pets/7")])
    assert predictor.predict(request).predictions


# an empty catalog ----------------------------------------------------------------------------


def test_an_empty_catalog_raises_catalog_empty() -> None:
    with pytest.raises(CatalogEmpty) as caught:
        Predictor(Catalog([])).predict({"prompt": "list pets"})
    assert caught.value.code == "catalog_empty"


def test_only_broken_specs_leave_the_catalog_empty(fixtures: Path) -> None:
    runtime = Service.from_settings(Settings(specs=[str(fixtures / "bad" / "invalid.yaml")]))
    assert len(runtime.catalog) == 0
    with pytest.raises(CatalogEmpty):
        runtime.predictor.predict({"prompt": "list pets"})
    # validation still comes first: a bad request is reported as such
    with pytest.raises(InvalidRequest):
        runtime.predictor.predict({"max_predictions": 0})


def test_an_empty_spec_name_is_refused_not_ignored() -> None:
    from opensesame_predictor.core.errors import InvalidRequest
    from opensesame_predictor.core.guardrails import parse_request

    with pytest.raises(InvalidRequest) as caught:
        parse_request({"prompt": "list pets", "spec": ""})
    assert caught.value.field == "spec"


def test_a_prediction_keeps_its_operation_in_process(predictor: Predictor) -> None:
    result = predictor.predict({"prompt": "upload a photo of my pet"})
    top = result.predictions[0]
    assert top.operation is not None and top.operation.key == top.api_call
    assert "operation" not in top.model_dump()  # never on the wire
    assert top.model_copy(deep=True).operation == top.operation
