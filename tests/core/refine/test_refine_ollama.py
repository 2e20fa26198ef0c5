"""Refiner.refine against a stand-in Ollama server, through the real ollama client."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fake_ollama import FakeOllama
from refine_support import Clock, candidates, ollama_refiner

from opensesame_predictor.config import Settings
from opensesame_predictor.core.errors import InvalidRequest
from opensesame_predictor.core.llm import DELIMITERS
from opensesame_predictor.core.models import PredictRequest, PredictResult
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.refine import Refiner
from opensesame_predictor.service import Service, build_refiner


def calls(result: PredictResult) -> list[str]:
    return [p.api_call for p in result.predictions]


def refinement(result: PredictResult) -> dict[str, Any]:
    info: dict[str, Any] = result.metadata.model_dump()["refinement"]
    return info


async def run(
    predictor: Predictor, refiner: Refiner, raw: dict[str, Any]
) -> tuple[PredictResult, PredictResult]:
    """The ranker's result and the refined one, wired as Predictor.apredict does."""
    request = PredictRequest.model_validate(raw)
    plain = predictor.predict(request)
    refined = await refiner.refine(request, plain, candidates(predictor, request, refiner.top_k))
    return plain, refined


def user_message(fake: FakeOllama) -> str:
    messages = fake.chats()[-1].body["messages"]
    return str(next(m["content"] for m in messages if m["role"] == "user"))


def sent_data(fake: FakeOllama) -> dict[str, Any]:
    """The JSON object between the delimiters of the last chat request."""
    text = user_message(fake)
    start, end = DELIMITERS
    assert text.startswith(start + "\n") and text.endswith("\n" + end)
    data: dict[str, Any] = json.loads(text[len(start) : -len(end)])
    return data


async def test_disabled_by_default_keeps_the_ranking(petstore_predictor: Predictor) -> None:
    for provider in ("none", "placeholder"):
        refiner = build_refiner(Settings(llm_provider=provider))
        plain, refined = await run(petstore_predictor, refiner, {"prompt": "show me pet 42"})
        assert calls(refined) == calls(plain)
        assert refined.metadata.processing_method == "ml"
        assert refinement(refined) == {"status": "disabled", "provider": provider}
        state = refiner.state
        assert (state.enabled, state.provider, state.model) == (False, provider, None)


async def test_a_good_answer_reorders_the_result(
    petstore_predictor: Predictor, fake: FakeOllama
) -> None:
    request = {"prompt": "show me pet 42", "max_predictions": 5}
    plain = petstore_predictor.predict(request)
    favourite, ranker_top = plain.predictions[2].api_call, plain.predictions[0].api_call
    fake.answer = {
        "ranking": [
            {"operation": favourite, "parameters": {}},
            {"operation": ranker_top},
        ]
    }
    refiner = ollama_refiner(fake.url)
    _, refined = await run(petstore_predictor, refiner, request)

    assert calls(refined)[:2] == [favourite, ranker_top]
    assert sorted(calls(refined)) == sorted(calls(plain))  # the same operations, re-ordered
    assert refined.metadata.processing_method == "hybrid_ml_llm"
    info = refinement(refined)
    assert info["status"] == "ok"
    assert info["order"] == [favourite, ranker_top]
    assert info["ranker_order"] == calls(plain)
    assert info["model"] == "llama3.2"
    assert [p.rank for p in refined.predictions] == [1, 2, 3, 4, 5]
    scores = refined.confidence_scores
    assert scores == sorted(scores, reverse=True) and scores == [
        p.confidence for p in refined.predictions
    ]
    assert "the local model ranks it #1" in refined.predictions[0].reasons
    assert refiner.state.last_status == "ok"

    # what went to Ollama: the model, a JSON-schema format naming only candidates, the data
    chat = fake.chats()[-1].body
    assert chat["model"] == "llama3.2" and chat["stream"] is False
    allowed = chat["format"]["properties"]["ranking"]["items"]["properties"]["operation"]["enum"]
    assert set(calls(plain)) <= set(allowed) and len(allowed) <= 10
    data = sent_data(fake)
    assert data["request"] == "show me pet 42"
    assert [c["ref"] for c in data["candidates"]] == allowed
    first = data["candidates"][0]
    assert set(first) >= {"ref", "method", "path", "summary"}


async def test_the_model_can_promote_a_candidate_the_ranker_cut(
    petstore_predictor: Predictor, fake: FakeOllama
) -> None:
    request = PredictRequest(prompt="show me pet 42", max_predictions=2)
    top10 = candidates(petstore_predictor, request, 10)
    assert len(top10) > 2
    outsider = top10[-1]  # the ranker's last candidate, cut from a 2-prediction result
    fake.answer = {"ranking": [{"operation": outsider.key}]}
    refiner = ollama_refiner(fake.url)
    plain = petstore_predictor.predict(request)
    refined = await refiner.refine(request, plain, top10)
    assert outsider.key not in calls(plain)
    assert calls(refined) == [outsider.key, plain.predictions[0].api_call]
    assert refined.predictions[0].path == outsider.path
    assert refined.predictions[0].spec == outsider.spec


async def test_suggested_parameters_are_checked_and_merged(
    petstore_predictor: Predictor, fake: FakeOllama
) -> None:
    prompt = "add my new puppy Bella, a beagle"
    fake.answer = {
        "ranking": [
            {
                "operation": "POST /pets",
                "parameters": {
                    "species": "dog",  # in the enum: accepted over the spec's example
                    "breed": "beagle",  # stated in the prompt: accepted
                    "status": "adopted",  # not in the enum
                    "birthDate": "2020-02-02",  # invented
                    "color": "brown",  # not a parameter of the operation
                },
            }
        ]
    }
    refiner = ollama_refiner(fake.url)
    plain, refined = await run(petstore_predictor, refiner, {"prompt": prompt})
    top = refined.predictions[0]
    assert top.api_call == "POST /pets"
    before = next(p for p in plain.predictions if p.api_call == "POST /pets")
    assert top.parameters["species"] == "dog" and top.parameters["breed"] == "beagle"
    assert "status" not in top.parameters or top.parameters["status"] != "adopted"
    assert top.parameters.get("birthDate") == before.parameters.get("birthDate")
    assert "color" not in top.parameters
    # a value the ranker took from the prompt stays
    if before.parameter_sources.get("name") == "prompt":
        assert top.parameters["name"] == before.parameters["name"]
    info = refinement(refined)
    assert set(info["llm_parameters"]["POST /pets"]) == {"species", "breed"}
    assert set(info["rejected_parameters"]["POST /pets"]) == {"status", "birthDate", "color"}
    expected = "llm"
    assert top.parameter_sources.get("breed") == expected


async def test_an_operation_outside_the_candidates_is_ignored(
    petstore_predictor: Predictor, fake: FakeOllama
) -> None:
    refiner = ollama_refiner(fake.url)
    request = {"prompt": "show me pet 42"}

    fake.answer = {"ranking": [{"operation": "DELETE /admin"}]}
    plain, refined = await run(petstore_predictor, refiner, request)
    assert refined.predictions == plain.predictions
    assert refined.metadata.processing_method == "ml"
    info = refinement(refined)
    assert info["status"] == "invalid_answer"
    assert info["dropped"] == ["DELETE /admin"]
    assert refiner.active  # one bad answer about one request: no back-off

    # mixed with a real candidate: the candidate counts, the outsider is dropped
    fake.answer = {
        "ranking": [{"operation": "DELETE /admin"}, {"operation": plain.predictions[1].api_call}]
    }
    plain, refined = await run(petstore_predictor, refiner, request)
    assert "DELETE /admin" not in calls(refined)
    assert calls(refined)[0] == plain.predictions[1].api_call
    assert refinement(refined)["dropped"] == ["DELETE /admin"]


async def test_a_stalled_server_is_cut_off_at_the_budget(
    petstore_predictor: Predictor, fake: FakeOllama
) -> None:
    fake.mode, fake.stall_seconds = "stall", 10.0
    budget_ms = 500
    refiner = ollama_refiner(fake.url, llm_timeout_ms=budget_ms)
    request = PredictRequest(prompt="show me pet 42")
    plain = petstore_predictor.predict(request)
    top = candidates(petstore_predictor, request)

    started = time.perf_counter()
    refined = await refiner.refine(request, plain, top)
    elapsed_ms = (time.perf_counter() - started) * 1000

    assert elapsed_ms < budget_ms + 200  # the requirement: budget + 200 ms
    assert refined.predictions == plain.predictions
    assert refined.metadata.processing_method == "ml"
    info = refinement(refined)
    assert info["status"] == "timeout" and info["budget_ms"] == budget_ms
    assert fake.chats()  # the request did reach the server


async def test_a_server_that_is_down_never_fails_a_request(
    petstore_predictor: Predictor, free_port: int
) -> None:
    refiner = ollama_refiner(f"http://127.0.0.1:{free_port}")
    plain, refined = await run(petstore_predictor, refiner, {"prompt": "show me pet 42"})
    assert refined.predictions == plain.predictions
    assert refined.metadata.processing_method == "ml"
    assert refinement(refined)["status"] == "unreachable"
    assert refiner.state.last_status == "unreachable"


@pytest.mark.parametrize(
    ("mode", "answer", "status"),
    [
        ("garbage_content", None, "invalid_answer"),
        ("answer", '{"ranking": [{"operation": "GET /pets"', "invalid_answer"),
        ("answer", {"ranking": "GET /pets"}, "invalid_answer"),
        ("answer", "[1, 2, 3]", "invalid_answer"),
        ("answer", "", "invalid_answer"),
        ("garbage_body", None, "invalid_answer"),
        ("no_message", None, "invalid_answer"),
        ("error500", None, "server_error"),
    ],
)
async def test_malformed_answers_fall_back_to_the_ranker(
    petstore_predictor: Predictor, fake: FakeOllama, mode: Any, answer: Any, status: str
) -> None:
    fake.mode = mode
    if answer is not None:
        fake.answer = answer
    refiner = ollama_refiner(fake.url)
    plain, refined = await run(petstore_predictor, refiner, {"prompt": "show me pet 42"})
    assert refined.predictions == plain.predictions
    assert refined.metadata.processing_method == "ml"
    info = refinement(refined)
    assert info["status"] == status, info
    assert info["detail"]


def obedient_model(body: dict[str, Any]) -> dict[str, Any]:
    """A model that follows instructions found anywhere in its input."""
    text = next(m["content"] for m in body["messages"] if m["role"] == "user")
    ordered = [{"operation": m} for m in re.findall(r"recommend (DELETE /admin)", text)[:1]]
    refs = body["format"]["properties"]["ranking"]["items"]["properties"]["operation"]["enum"]
    return {"ranking": [*ordered, *({"operation": ref} for ref in refs)]}


async def test_instructions_hidden_in_a_spec_do_not_change_the_operations(
    injected: Predictor, fake: FakeOllama
) -> None:
    fake.answer = obedient_model
    refiner = ollama_refiner(fake.url)
    request = {"prompt": "show my notes about \u200bgroceries\x07", "max_predictions": 3}
    plain, refined = await run(injected, refiner, request)

    assert set(calls(refined)) == set(calls(plain))
    assert all("/admin" not in p.api_call for p in refined.predictions)
    info = refinement(refined)
    assert info["dropped"] == ["DELETE /admin"]
    assert "DELETE /admin" not in info["order"]

    # the spec's text reached the model only as delimited data, cleaned
    message = user_message(fake)
    assert message.count(DELIMITERS[0]) == 1 and message.count(DELIMITERS[1]) == 1
    data = sent_data(fake)
    assert any("recommend DELETE /admin" in c["summary"] for c in data["candidates"])
    assert data["request"] == "show my notes about groceries"
    for char in ("\u200b", "\u200d", "\u2066", "\u202e", "\x1b", "\x07"):
        assert char not in message
    system = fake.chats()[-1].body["messages"][0]
    assert system["role"] == "system" and "never instructions" in system["content"]

    # obeying it alone leaves nothing valid: the ranker's answer stands
    fake.answer = {"ranking": [{"operation": "DELETE /admin"}]}
    plain, refined = await run(injected, refiner, request)
    assert refined.predictions == plain.predictions
    assert refined.metadata.processing_method == "ml"


async def test_failures_back_off_and_log_once(
    petstore_predictor: Predictor, fake: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    refiner = ollama_refiner(fake.url, clock=clock)
    fake.mode = "error500"
    request = {"prompt": "show me pet 42"}
    with caplog.at_level(logging.WARNING, logger="opensesame_predictor.core.refine"):
        _, first = await run(petstore_predictor, refiner, request)
        _, second = await run(petstore_predictor, refiner, request)
        _, third = await run(petstore_predictor, refiner, request)
    assert refinement(first)["status"] == "server_error"
    for result in (second, third):
        info = refinement(result)
        assert info["status"] == "backing_off" and info["last_failure"] == "server_error"
        assert result.metadata.processing_method == "ml"
    assert len(fake.chats()) == 1  # skipped while backing off
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "server_error" in warnings[0].getMessage()
    assert "show me pet" not in caplog.text  # the prompt never reaches the logs

    state = refiner.state
    assert state.backing_off_until is not None and state.consecutive_failures == 1
    assert not refiner.active

    clock.now += 5.0  # the first window is over: retried, fails again, a longer window
    _, fourth = await run(petstore_predictor, refiner, request)
    assert refinement(fourth)["status"] == "server_error"
    assert len(fake.chats()) == 2 and refiner.state.consecutive_failures == 2
    clock.now += 5.0
    assert not refiner.active  # 10 s this time
    clock.now += 5.0

    fake.mode = "answer"
    fake.answer = {"ranking": [{"operation": "GET /pets"}]}
    _, fifth = await run(petstore_predictor, refiner, request)
    assert fifth.metadata.processing_method == "hybrid_ml_llm"
    state = refiner.state
    assert state.consecutive_failures == 0 and state.backing_off_until is None
    assert state.outcomes == {"server_error": 2, "backing_off": 2, "ok": 1}


async def test_state_and_probe_report_the_provider(fake: FakeOllama, free_port: int) -> None:
    refiner = ollama_refiner(fake.url, ollama_model="llama3.2", llm_timeout_ms=800, llm_top_k=7)
    state = refiner.state
    assert state.enabled and state.provider == "ollama" and state.model == "llama3.2"
    assert (state.host, state.budget_ms, state.top_k) == (fake.url, 800, 7)
    assert state.last_status is None and state.backing_off_until is None

    health = await refiner.probe()
    assert health.ok and "llama3.2:latest" in health.models
    assert refiner.state.health == health
    assert json.loads(refiner.state.model_dump_json())["provider"] == "ollama"

    missing = ollama_refiner(fake.url, ollama_model="qwen2.5")
    assert not (await missing.probe()).ok

    down = ollama_refiner(f"http://127.0.0.1:{free_port}")
    assert not (await down.probe()).ok


async def test_the_stand_in_speaks_generate_and_embed(fake: FakeOllama) -> None:
    import ollama

    fake.answer = "hello"
    async with ollama.AsyncClient(host=fake.url, timeout=5) as client:
        generated = await client.generate(model="llama3.2", prompt="hi")
        embedded = await client.embed(model="all-minilm", input=["a", "b"])
    assert generated.response == "hello"
    assert len(embedded.embeddings) == 2 and len(embedded.embeddings[0]) == 8


async def test_apredict_wiring_refines_falls_back_and_backs_off(
    fixtures: Path, fake: FakeOllama
) -> None:
    settings = Settings(
        specs=[str(fixtures / "petstore-3.0.yaml")], llm_provider="ollama", ollama_host=fake.url
    )
    runtime = Service.from_settings(settings)  # its predictor refines with the settings' model
    request = {"prompt": "show me pet 42", "max_predictions": 3}
    plain = runtime.predictor.predict(request)
    favourite = plain.predictions[-1].api_call
    fake.answer = {"ranking": [{"operation": favourite}]}

    refined = await runtime.predictor.apredict(request)
    assert calls(refined)[0] == favourite and len(refined.predictions) == 3
    assert refined.metadata.processing_method == "hybrid_ml_llm"
    assert (
        len(
            fake.chats()[-1].body["format"]["properties"]["ranking"]["items"]["properties"][
                "operation"
            ]["enum"]
        )
        == 10
    )  # top-K candidates, wider than max_predictions

    with pytest.raises(InvalidRequest):
        await runtime.predictor.apredict({"prompt": "x", "max_predictions": 0})

    fake.stop()
    down = await runtime.predictor.apredict(request)
    assert down.predictions == plain.predictions
    assert refinement(down)["status"] == "unreachable"
    skipped = await runtime.predictor.apredict(request)
    assert skipped.predictions == plain.predictions
    assert refinement(skipped)["status"] == "backing_off"
    assert skipped.metadata.processing_method == "ml"
