"""Evaluation: reading JSONL cases (errors name file:line), the ranking metrics and their
consistency, and the calibration error on hand-computed examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import split_key
from opensesame_predictor.core.errors import GuardrailViolation, InvalidRequest
from opensesame_predictor.core.models import PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.offline.evaluate import (
    FileMetrics,
    evaluate,
    expected_calibration_error,
    is_gold,
    read_cases,
)
from opensesame_predictor.service import Service

DATA = Path(__file__).resolve().parents[1] / "data"
PETSTORE = Path(__file__).resolve().parents[2] / "fixtures" / "petstore-3.0.yaml"
CONDITIONS = DATA / "path-conditions.yaml"  # operations told apart by `#Qualifier`, `?page=`
CONCURRENCY = "/2017-10-31/functions/{FunctionName}/provisioned-concurrency"


@pytest.fixture
def predictor_for() -> Callable[[str], Predictor]:
    predictors: dict[str, Predictor] = {}

    def get(location: str) -> Predictor:
        if location not in predictors:
            runtime = Service(Settings())
            runtime.set_sources([location])
            assert runtime.load().errors == []
            predictors[location] = runtime.predictor
        return predictors[location]

    return get


def write_cases(path: Path, cases: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    return path


# reading cases -------------------------------------------------------------------------------


def test_read_cases_resolves_specs_relative_to_the_file() -> None:
    cases = read_cases(DATA / "petstore.jsonl")
    assert len(cases) == 8  # the blank line is skipped
    assert {case.spec for case in cases} == {str(PETSTORE)}
    first = cases[0]
    assert first.id == "photo-after-create"
    assert first.history == ["POST /pets"]
    assert first.gold == ["POST /pets/{petId}/photos"]
    assert cases[-1].history == []  # history is optional


def test_read_cases_keeps_absolute_paths_and_urls(tmp_path: Path) -> None:
    path = write_cases(
        tmp_path / "cases.jsonl",
        [
            {"spec": str(PETSTORE), "prompt": "a", "gold": ["GET /pets"]},
            {"spec": "https://api.example.com/openapi.json", "prompt": "b", "gold": ["GET /x"]},
        ],
    )
    assert [case.spec for case in read_cases(path)] == [
        str(PETSTORE),
        "https://api.example.com/openapi.json",
    ]


GOOD = json.dumps({"spec": "spec.yaml", "prompt": "list pets", "gold": ["GET /pets"]})


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"spec": "spec.yaml", "prompt": "list pets", "gold": ["GET /pets"]', "invalid JSON"),
        ("not json at all", "invalid JSON"),
        (json.dumps({"spec": "spec.yaml", "prompt": "list pets"}), "gold: Field required"),
        (json.dumps({"spec": "spec.yaml", "prompt": "p", "gold": []}), "gold: List should have"),
        (json.dumps({"spec": "spec.yaml", "prompt": "p", "gold": "GET /x"}), "gold: Input should"),
        (json.dumps({"prompt": "p", "gold": ["GET /x"]}), "spec: Field required"),
        (json.dumps(["GET /pets"]), "case: Input should be a valid dictionary"),
    ],
)
def test_a_bad_line_names_the_file_and_the_line(tmp_path: Path, bad: str, reason: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(f"{GOOD}\n\n{bad}\n{GOOD}\n", encoding="utf-8")  # the bad case is line 3
    with pytest.raises(InvalidRequest) as caught:
        read_cases(path)
    assert caught.value.message.startswith(f"{path}:3: ")
    assert reason in caught.value.message


def test_a_missing_or_binary_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as caught:
        read_cases(tmp_path / "nope.jsonl")
    assert str(tmp_path / "nope.jsonl") in caught.value.message
    binary = tmp_path / "cases.jsonl"
    binary.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(InvalidRequest) as caught:
        read_cases(binary)
    assert str(binary) in caught.value.message and "UTF-8" in caught.value.message


# metrics -------------------------------------------------------------------------------------


def check_consistent(metrics: FileMetrics) -> None:
    for name in ("top1", "recall_at_5", "mrr", "ece"):
        assert 0.0 <= getattr(metrics, name) <= 1.0, name
    top1, r5, mrr = metrics.top1, metrics.recall_at_5, metrics.mrr
    assert top1 <= r5
    # rank 1 counts 1, ranks 2-5 count 1/2 to 1/5, ranks 6-20 at most 1/6, misses 0
    eps = 1e-3
    assert top1 + (r5 - top1) / 5 - eps <= mrr <= top1 + (r5 - top1) / 2 + (1 - r5) / 6 + eps
    assert 0.0 <= metrics.p50_ms <= metrics.p95_ms


def test_metrics_on_the_petstore_cases(predictor_for: Callable[[str], Predictor]) -> None:
    metrics = evaluate(read_cases(DATA / "petstore.jsonl"), predictor_for)
    assert metrics.n == 8
    check_consistent(metrics)
    assert metrics.recall_at_5 > 0  # the photo upload after creating a pet is a sure thing
    assert set(metrics.as_dict()) == {"n", "top1", "recall_at_5", "mrr", "ece", "p50_ms", "p95_ms"}


def test_metrics_at_the_extremes(tmp_path: Path, predictor_for: Callable[[str], Predictor]) -> None:
    every_key = [op.key for op in predictor_for(str(PETSTORE)).catalog.operations]
    every_path = sorted({op.path for op in predictor_for(str(PETSTORE)).catalog.operations})
    spec = str(PETSTORE)
    cases = [
        {"spec": spec, "prompt": "list pets", "gold": every_key},
        {"spec": spec, "prompt": "upload a photo", "history": ["POST /pets"], "gold": every_key},
        {"spec": spec, "prompt": "delete an order", "gold": every_path},  # gold without methods
    ]
    perfect = evaluate(read_cases(write_cases(tmp_path / "all.jsonl", cases)), predictor_for)
    assert (perfect.n, perfect.top1, perfect.recall_at_5, perfect.mrr) == (3, 1.0, 1.0, 1.0)

    check_consistent(perfect)


def test_by_step_splits_first_calls_from_later_ones(
    tmp_path: Path, predictor_for: Callable[[str], Predictor]
) -> None:
    """A first call (no history) is read from the request alone; a later one from what was
    called too. Here every first call's gold is every operation (a sure hit) and the later
    call's gold is an operation the request does not ask for (a sure miss, though ranked)."""
    every_key = [op.key for op in predictor_for(str(PETSTORE)).catalog.operations]
    spec = str(PETSTORE)
    cases = [
        {"spec": spec, "prompt": "list pets", "gold": every_key},
        {"spec": spec, "prompt": "show the inventory", "gold": every_key},
        {
            "spec": spec,
            "prompt": "upload a photo of it",
            "history": ["POST /pets"],
            "gold": ["DELETE /store/orders/{orderId}"],
        },
    ]
    read = read_cases(write_cases(tmp_path / "steps.jsonl", cases))
    plain = evaluate(read, predictor_for)
    metrics = evaluate(read, predictor_for, by_step=True)
    assert plain.by_step == {} and "by_step" not in plain.as_dict()
    assert (metrics.n, metrics.top1) == (plain.n, plain.top1) == (3, pytest.approx(2 / 3, abs=1e-3))
    first, later = metrics.by_step["first"], metrics.by_step["later"]
    assert (first.n, first.top1, first.mrr) == (2, 1.0, 1.0)
    assert (later.n, later.top1) == (1, 0.0) and later.mrr < 1.0
    document = metrics.as_dict()
    assert set(document["by_step"]) == {"first", "later"}
    assert document["by_step"]["first"]["n"] + document["by_step"]["later"]["n"] == document["n"]


def test_a_gold_call_that_names_no_operation_is_an_error_naming_the_case(
    tmp_path: Path, predictor_for: Callable[[str], Predictor]
) -> None:
    """It could never be ranked: a silent miss would only lower the scores."""
    spec = str(PETSTORE)
    cases = [
        {"spec": spec, "prompt": "list pets", "gold": ["GET /pets"]},
        {"id": "typo", "spec": spec, "prompt": "list pets", "gold": ["GET /does/not/exist"]},
    ]
    with pytest.raises(InvalidRequest, match=r"case typo: gold 'GET /does/not/exist' names no"):
        evaluate(read_cases(write_cases(tmp_path / "none.jsonl", cases)), predictor_for)


def test_a_gold_written_as_the_spec_key_names_that_operation_only() -> None:
    gold = [
        split_key(f"GET {CONCURRENCY}#Qualifier"),
        split_key("GET /rides?page={page}&per_page={per_page}"),
        split_key("/2018-10-31/layers#find=LayerVersion&Arn"),  # any method
    ]
    assert is_gold("GET", f"{CONCURRENCY}#Qualifier", gold)
    assert not is_gold("GET", f"{CONCURRENCY}#List=ALL", gold)  # the same bare path
    assert not is_gold("DELETE", f"{CONCURRENCY}#Qualifier", gold)
    assert is_gold("GET", "/rides?page={page}&per_page={per_page}", gold)
    assert not is_gold("GET", "/rides/{id}", gold)
    assert is_gold("GET", "/2018-10-31/layers#find=LayerVersion&Arn", gold)
    assert not is_gold("GET", "/2018-10-31/layers", gold)


def test_golds_whose_path_key_holds_a_query_or_fragment_are_ranked(
    tmp_path: Path, predictor_for: Callable[[str], Predictor]
) -> None:
    predictor = predictor_for(str(CONDITIONS))
    every_key = [op.key for op in predictor.catalog.operations]
    spec = str(CONDITIONS)
    prompt = "list all the provisioned concurrency configurations of my function"
    perfect = evaluate(
        read_cases(
            write_cases(
                tmp_path / "all.jsonl", [{"spec": spec, "prompt": prompt, "gold": every_key}]
            )
        ),
        predictor_for,
    )
    assert (perfect.n, perfect.top1) == (1, 1.0)
    # `#Qualifier` is not `#List=ALL`: the gold's own rank counts, not its bare path's
    ranked = [p.api_call for p in predictor.predict(PredictRequest(prompt=prompt)).predictions]
    assert ranked[0] == f"GET {CONCURRENCY}#List=ALL"
    qualifier = f"GET {CONCURRENCY}#Qualifier"
    case = {"spec": spec, "prompt": prompt, "gold": [qualifier]}
    metrics = evaluate(read_cases(write_cases(tmp_path / "one.jsonl", [case])), predictor_for)
    assert metrics.top1 == 0.0
    assert metrics.mrr == round(1 / (ranked.index(qualifier) + 1), 4)


def test_no_cases_give_zeros(predictor_for: Callable[[str], Predictor]) -> None:
    metrics = evaluate([], predictor_for)
    assert metrics.as_dict() == {
        "n": 0,
        "top1": 0.0,
        "recall_at_5": 0.0,
        "mrr": 0.0,
        "ece": 0.0,
        "p50_ms": 0.0,
        "p95_ms": 0.0,
    }


def test_on_case_is_called_once_per_case(predictor_for: Callable[[str], Predictor]) -> None:
    seen: list[int] = []
    evaluate(read_cases(DATA / "petstore.jsonl"), predictor_for, lambda: seen.append(1))
    assert len(seen) == 8


# calibration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidences", "hits", "expected"),
    [
        ([1.0, 1.0, 1.0], [True, True, True], 0.0),  # confident and right
        ([0.9, 0.9, 0.9, 0.9], [False] * 4, 0.9),  # confident and always wrong
        ([0.8] * 5, [True, True, True, True, False], 0.0),  # 80 % sure, 80 % right
        ([0.2, 0.9], [True, False], (0.8 + 0.9) / 2),  # two bins, each off
        ([0.6, 0.6, 0.95, 0.95], [True, False, True, True], (2 * 0.1 + 2 * 0.05) / 4),
        ([0.0], [False], 0.0),  # zero confidence falls in the first bin
        ([0.0], [True], 1.0),
        ([], [], 0.0),
    ],
)
def test_expected_calibration_error_by_hand(
    confidences: list[float], hits: list[bool], expected: float
) -> None:
    assert expected_calibration_error(confidences, hits) == pytest.approx(expected, abs=1e-9)


def test_a_refused_case_names_the_case(
    tmp_path: Path, predictor_for: Callable[[str], Predictor]
) -> None:
    spec = str(PETSTORE)
    cases = [
        {"id": "fine", "spec": spec, "prompt": "list pets", "gold": ["GET /pets"]},
        {"id": "hostile", "spec": spec, "prompt": "<script>alert(1)</script>", "gold": ["GET /x"]},
    ]
    with pytest.raises(GuardrailViolation) as caught:
        evaluate(read_cases(write_cases(tmp_path / "cases.jsonl", cases)), predictor_for)
    assert caught.value.message.startswith("case hostile: ")
    assert caught.value.rule == "script_injection"

    cases = [{"spec": spec, "prompt": "list pets", "history": ["GET /pets"] * 101, "gold": ["x"]}]
    with pytest.raises(InvalidRequest) as caught_limit:
        evaluate(read_cases(write_cases(tmp_path / "long.jsonl", cases)), predictor_for)
    assert caught_limit.value.message.startswith("case #1: history: ")
