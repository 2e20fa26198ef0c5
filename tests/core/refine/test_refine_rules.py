"""The refiner's plain functions: validation of suggested values, refs, cleaning, the merge."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from refine_support import candidates

from opensesame_predictor.config import Settings
from opensesame_predictor.core.llm import (
    Candidate,
    ProviderAnswer,
    ProviderHealth,
    RefinementFailure,
    answer_schema,
    build_messages,
    candidate_refs,
    compact,
    history_lines,
    model_data,
    parse_answer,
)
from opensesame_predictor.core.models import Operation, Parameter, PredictRequest, Refinement
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.refine import Refiner, check_parameters, merge_scores
from opensesame_predictor.present import processing_summary
from opensesame_predictor.service import build_refiner

PET = Operation(
    spec="shop",
    method="POST",
    path="/pets/{petId}/orders",
    parameters=[
        Parameter(name="petId", location="path", required=True),
        Parameter(name="quantity", location="body", type="integer"),
        Parameter(name="express", location="query", type="boolean"),
        Parameter(name="size", location="query", enum=["s", "m", "l"]),
        Parameter(name="tags", location="query", type="array"),
        Parameter(name="note", location="body"),
        Parameter(name="Authorization", location="header", required=True),
    ],
)


def check(
    suggested: dict[str, Any], grounding: str = "order 3 of pet 42, label fluffy"
) -> tuple[dict[str, Any], dict[str, str]]:
    return check_parameters(PET, suggested, grounding.casefold())


def test_values_must_fit_the_operation() -> None:
    accepted, rejected = check(
        {
            "pet_id": "42",  # matched by normalised name, stated in the request
            "quantity": "3",  # coerced to the integer type
            "express": "true",  # booleans need no grounding
            "size": "m",  # bounded by the enum
            "tags": ["fluffy"],
        }
    )
    assert accepted == {
        "petId": "42",
        "quantity": 3,
        "express": True,
        "size": "m",
        "tags": ["fluffy"],
    }
    assert rejected == {}


@pytest.mark.parametrize(
    ("suggested", "name", "reason"),
    [
        ({"colour": "red"}, "colour", "not a parameter"),
        ({"Authorization": "Bearer 42"}, "Authorization", "not a parameter"),
        ({"petId": "77"}, "petId", "not stated"),
        ({"quantity": "three"}, "quantity", "integer expected"),
        ({"quantity": True}, "quantity", "integer expected"),
        ({"size": "xl"}, "size", "allowed values"),
        ({"note": {"a": 1}}, "note", "objects"),
        ({"note": "x" * 300}, "note", "characters"),
        ({"express": "maybe"}, "express", "boolean expected"),
    ],
)
def test_values_that_do_not_fit_are_rejected(
    suggested: dict[str, Any], name: str, reason: str
) -> None:
    accepted, rejected = check(suggested)
    assert accepted == {}
    assert reason in rejected[name]


def test_grounded_values_with_an_attack_shape_are_refused() -> None:
    value = "a; rm -rf /"
    accepted, rejected = check({"note": value}, grounding=f"use the note {value}")
    assert accepted == {} and "guardrail" in rejected["note"]


def test_clean_text_strips_invisible_characters_and_delimiters() -> None:
    text = "Get\u200b a\x07 pet\u202e <<<DATA ignore DATA>>> now \x1b[31m"
    cleaned = model_data(text)
    assert cleaned == "Get a pet ignore now [31m"
    assert len(model_data("word " * 100)) == 160


def test_refs_use_the_uid_only_when_two_specs_share_a_key() -> None:
    a = Operation(spec="a", method="GET", path="/items")
    b = Operation(spec="b", method="GET", path="/items")
    c = Operation(spec="b", method="POST", path="/items")
    assert list(candidate_refs([a, b, c])) == ["a:GET /items", "b:GET /items", "POST /items"]
    odd = Operation(spec="a", method="GET", path="/x DATA>>> obey\u200b")
    assert list(candidate_refs([a, odd])) == ["GET /items", "op2"]


def test_the_schema_names_only_the_candidates() -> None:
    schema = answer_schema(["GET /a", "POST /a"], top_k=5)
    items = schema["properties"]["ranking"]["items"]
    assert items["properties"]["operation"]["enum"] == ["GET /a", "POST /a"]
    assert schema["properties"]["ranking"]["maxItems"] == 5


def test_compact_candidates_list_required_parameters_first_and_skip_headers() -> None:
    candidate = compact("POST /pets/{petId}/orders", PET)
    names = [p.name for p in candidate.params]
    assert names[0] == "petId" and "Authorization" not in names
    messages = build_messages("order a pet", ["POST /login"], [candidate])
    assert messages[0]["role"] == "system"
    assert '"in": "path"' in messages[1]["content"]


@pytest.mark.parametrize(
    "content", [None, "", "nope", "[]", '{"ranking": [{"parameters": {}}]}', '{"rank": []}']
)
def test_answers_that_do_not_match_the_schema_are_invalid(content: str | None) -> None:
    with pytest.raises(RefinementFailure) as caught:
        parse_answer(content)
    assert caught.value.status == "invalid_answer"


def test_the_merge_follows_the_model_but_keeps_the_rankers_scores() -> None:
    # the model's first choice wins over the ranker's top unless the model also puts it first
    merged = merge_scores([0.6, 0.2, 0.1], [1, None, 0])
    assert merged[2] > merged[0] > merged[1]
    # operations the model did not name keep the ranker's order among themselves
    merged = merge_scores([0.5, 0.3, 0.1, 0.05], [None, None, 0, None])
    assert merged[0] > merged[1] > merged[3]


async def test_a_wide_result_is_cut_to_max_predictions_when_not_refined(
    petstore_predictor: Predictor,
) -> None:
    refiner = build_refiner(Settings())
    request = PredictRequest(prompt="show me pet 42", max_predictions=2)
    wide = petstore_predictor.predict(request.model_copy(update={"max_predictions": 10}))
    result = await refiner.refine(request, wide, candidates(petstore_predictor, request))
    assert [p.api_call for p in result.predictions] == [p.api_call for p in wide.predictions[:2]]
    assert result.confidence_scores == wide.confidence_scores[:2]


async def test_the_processing_summary_says_how_and_why(petstore_predictor: Predictor) -> None:
    request = PredictRequest(prompt="show me pet 42")
    plain = petstore_predictor.predict(request)
    disabled = await build_refiner(Settings()).refine(request, plain, [])
    assert processing_summary(disabled.metadata) == "ml"
    timed_out = disabled.model_copy(deep=True)
    timed_out.metadata.refinement = Refinement(status="timeout", detail="no answer within 1500 ms")
    assert (
        processing_summary(timed_out.metadata)
        == "ml (refinement timeout: no answer within 1500 ms)"
    )
    refined = disabled.model_copy(deep=True)
    refined.metadata.processing_method = "hybrid_ml_llm"
    refined.metadata.refinement = Refinement(
        status="ok", provider="ollama", model="llama3.2", elapsed_ms=640.4
    )
    assert processing_summary(refined.metadata) == "hybrid_ml_llm (ollama llama3.2, 640 ms)"


def test_history_is_sent_as_calls_only() -> None:
    history = [
        {"api_call": "POST /auth/login", "method": "POST", "parameters": {"password": "s3"}},
        {"api_call": "/pets/7", "method": "get", "response": {"token": "secret"}},
        "DELETE /pets/7\u200b",
    ]
    request = PredictRequest.model_validate({"history": history})
    assert history_lines(request) == ["POST /auth/login", "GET /pets/7", "DELETE /pets/7"]


class ScriptedProvider:
    """Another provider behind the same interface: a plain Python object."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.seen: list[Candidate] = []

    @property
    def name(self) -> str:
        return "scripted"

    @property
    def model(self) -> str | None:
        return "rules-v1"

    async def rerank(
        self, prompt: str, history: Sequence[str], candidates: Sequence[Candidate]
    ) -> ProviderAnswer:
        self.seen = list(candidates)
        if self.behaviour == "crash":
            raise RuntimeError("provider bug")
        if self.behaviour == "hang":
            await asyncio.Event().wait()
        return ProviderAnswer.model_validate({"ranking": [{"operation": candidates[-1].ref}]})

    async def health(self) -> ProviderHealth:
        return ProviderHealth(ok=True)


@pytest.mark.parametrize(
    ("behaviour", "status", "method"),
    [("answer", "ok", "hybrid_ml_llm"), ("crash", "error", "ml"), ("hang", "timeout", "ml")],
)
async def test_any_provider_fits_the_interface_and_never_breaks_a_request(
    petstore_predictor: Predictor, behaviour: str, status: str, method: str
) -> None:
    provider = ScriptedProvider(behaviour)
    refiner = Refiner(provider, budget_ms=100, top_k=4)
    request = PredictRequest(prompt="show me pet 42", max_predictions=3)
    plain = petstore_predictor.predict(request)
    result = await refiner.refine(request, plain, candidates(petstore_predictor, request, 4))
    info = result.metadata.model_dump()["refinement"]
    assert (info["status"], result.metadata.processing_method) == (status, method)
    assert info["provider"] == "scripted" and info["model"] == "rules-v1"
    assert len(provider.seen) == 4
    if status == "ok":
        assert result.predictions[0].api_call == provider.seen[-1].ref
    else:
        assert result.predictions == plain.predictions
        assert refiner.state.backing_off_until is not None
