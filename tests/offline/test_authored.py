"""Authored requests in training: read against the training specs, scored by weights that never
saw their APIs, reported, and calibrated on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from opensesame_predictor.core.ranker import FEATURES, calibrate
from opensesame_predictor.offline import train as training
from opensesame_predictor.offline.authored import read_authored
from opensesame_predictor.offline.train import load_specs, train

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SPECS = [str(FIXTURES / "petstore-3.0.yaml"), str(FIXTURES / "tasks-3.1.json")]
CASES = [
    {"prompt": "show me every animal the shop has", "gold": ["GET /pets"]},
    {"prompt": "put a new to-do in project 7", "gold": ["POST /projects/{projectId}/tasks"]},
    {
        "prompt": "sell the cat 12 to me and then remove her from the shop",
        "history": ["POST /store/orders"],
        "gold": ["DELETE /pets/{petId}"],
    },
]


# one more request on the tasks API; and one more spec, so that an API is left to fit on when
# the authored files' APIs are left out
OPEN_TASKS = {
    "prompt": "what is still open in project 3?",
    "gold": ["GET /projects/{projectId}/tasks"],
}
WITH_LIBRARY = [*SPECS, str(FIXTURES / "library-swagger-2.0.json")]


def write_cases(path: Path, cases: list[dict[str, object]], spec: str) -> Path:
    path.write_text("\n".join(json.dumps({**c, "spec": spec}) for c in cases) + "\n")
    return path


def test_a_case_names_its_specs_by_file_name_several_make_a_workspace(tmp_path: Path) -> None:
    loaded = load_specs(SPECS)
    both = write_cases(tmp_path / "a.jsonl", CASES, "petstore-3.0.yaml, tasks-3.1.json")
    authored = read_authored(both, loaded)
    assert [len(specs) for specs in authored.specs] == [2, 2, 2]
    assert authored.apis == {item.summary.name for item in loaded}


@pytest.mark.parametrize(
    ("case", "spec", "message"),
    [
        (CASES[0], "nowhere.json", ":1: spec nowhere.json is not among the training specs"),
        ({"prompt": "x", "gold": ["GET /nothing"]}, "petstore-3.0.yaml", ":1: gold .* names no"),
        ({"prompt": "x", "gold": []}, "petstore-3.0.yaml", ":1: not a case"),
    ],
)
def test_a_bad_case_is_an_error_naming_its_line(
    tmp_path: Path, case: dict[str, object], spec: str, message: str
) -> None:
    path = write_cases(tmp_path / "bad.jsonl", [case], spec)
    with pytest.raises(ValueError, match=message):
        read_authored(path, load_specs(SPECS))


def test_a_gold_may_name_an_operation_whose_path_key_holds_a_query_or_fragment(
    tmp_path: Path,
) -> None:
    spec = Path(__file__).resolve().parents[1] / "data" / "path-conditions.yaml"
    concurrency = "/2017-10-31/functions/{FunctionName}/provisioned-concurrency"
    golds = [
        f"GET {concurrency}#Qualifier",
        f"GET {concurrency}#List=ALL",
        "GET /rides?page={page}&per_page={per_page}",
        "GET /2018-10-31/layers#find=LayerVersion&Arn",
    ]
    cases = [{"prompt": "x", "gold": [gold]} for gold in golds]
    path = write_cases(tmp_path / "conditions.jsonl", cases, spec.name)
    assert [case.gold for case in read_authored(path, load_specs([str(spec)])).cases] == [
        [gold] for gold in golds
    ]
    # the bare path names no one operation
    bare = write_cases(
        tmp_path / "bare.jsonl", [{"prompt": "x", "gold": [f"GET {concurrency}"]}], spec.name
    )
    with pytest.raises(ValueError, match=r":1: gold .* names no"):
        read_authored(bare, load_specs([str(spec)]))


def test_authored_cases_are_reported_beside_the_validation(tmp_path: Path) -> None:
    path = write_cases(tmp_path / "pets.jsonl", [CASES[0], CASES[2]], "petstore-3.0.yaml")
    _, meta = train(SPECS, seed=13, folds=2, authored=[path])
    row = meta["authored"]["pets.jsonl"]  # type: ignore[index]
    assert row["n"] == 2
    assert 0.0 <= row["top1"] <= row["recall_at_5"] <= 1.0
    assert 0.0 <= row["ece"] <= 1.0


def test_a_file_scored_only_is_reported_but_not_calibrated_on(tmp_path: Path) -> None:
    """Two score-only files with other cases on the same API leave the calibration as it is;
    calibrated on, they move it."""
    pets = write_cases(tmp_path / "pets.jsonl", [CASES[0], CASES[2]], "petstore-3.0.yaml")
    tasks = write_cases(tmp_path / "tasks.jsonl", [CASES[1]], "tasks-3.1.json")
    more = write_cases(tmp_path / "more.jsonl", [CASES[1], OPEN_TASKS], "tasks-3.1.json")
    ranker, meta = train(WITH_LIBRARY, seed=13, folds=2, authored=[pets], scored_only=[tasks])
    same, _ = train(WITH_LIBRARY, seed=13, folds=2, authored=[pets], scored_only=[more])
    moved, _ = train(WITH_LIBRARY, seed=13, folds=2, authored=[pets, more])
    assert (ranker.scale, ranker.top_map) == (same.scale, same.top_map)
    assert (ranker.scale, ranker.top_map) != (moved.scale, moved.top_map)
    rows = meta["authored"]
    assert (rows["pets.jsonl"]["calibrated_on"], rows["tasks.jsonl"]["calibrated_on"]) == (
        True,
        False,
    )
    assert rows["tasks.jsonl"]["n"] == 1


def test_a_file_calibrated_on_is_reported_with_a_calibration_fitted_without_it(
    tmp_path: Path,
) -> None:
    """Its ECE is out of sample too: the same as when it is scored only and the others are
    calibrated on."""
    pets = write_cases(tmp_path / "pets.jsonl", [CASES[0], CASES[2]], "petstore-3.0.yaml")
    more = write_cases(tmp_path / "more.jsonl", [CASES[1], OPEN_TASKS], "tasks-3.1.json")
    _, both = train(WITH_LIBRARY, seed=13, folds=2, authored=[pets, more])
    _, apart = train(WITH_LIBRARY, seed=13, folds=2, authored=[more], scored_only=[pets])
    reported = both["authored"]["pets.jsonl"]  # type: ignore[index]
    assert reported["calibrated_on"]
    assert reported == {**apart["authored"]["pets.jsonl"], "calibrated_on": True}  # type: ignore[index]


def test_the_fit_that_scores_authored_cases_never_sees_their_apis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ranked, _, _ = training.build_cases(load_specs(SPECS), 13, 2)
    pets = [r for r in ranked if r.api.removesuffix(training.PART) == "petstore-3.0"]
    assert pets and len(pets) < len(ranked)
    fitted: list[list[training.Group]] = []
    real_fit = training.fit

    def fit(
        groups: list[training.Group], c: float = 1.0, weights: list[float] | None = None
    ) -> np.ndarray:
        fitted.append(groups)
        return real_fit(groups, c, weights)

    monkeypatch.setattr(training, "fit", fit)
    training._score_authored(
        {"pets.jsonl": []}, {"pets.jsonl": {"petstore-3.0"}}, ranked, [], 1.0, 0.0
    )
    others = training._groups([r for r in ranked if all(r is not p for p in pets)], [])
    assert len(fitted) == 1
    assert len(fitted[0]) == len(others)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(fitted[0], others, strict=True))


CASE_A = (np.eye(3, len(FEATURES)), np.array([False, True, False]))


def test_learning_from_authored_files_moves_the_fit_but_never_scores_a_file_by_its_apis(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pets = write_cases(tmp_path / "pets.jsonl", [CASES[0], CASES[2]], "petstore-3.0.yaml")
    tasks = write_cases(tmp_path / "tasks.jsonl", [CASES[1]], "tasks-3.1.json")
    plain, _ = train(WITH_LIBRARY, seed=13, folds=2, authored=[pets], scored_only=[tasks])
    learned, meta = train(
        WITH_LIBRARY, seed=13, folds=2, authored=[pets], scored_only=[tasks], learn_authored=0.5
    )
    assert meta["learned_from_authored"] == 0.5
    assert plain.weights != learned.weights
    # each file is scored by a fit whose authored cases load none of its APIs
    fitted: list[int] = []
    real_fit = training.fit

    def fit(
        groups: list[training.Group], c: float = 1.0, weights: list[float] | None = None
    ) -> np.ndarray:
        fitted.append(len(groups))
        return real_fit(groups, c, weights)

    monkeypatch.setattr(training, "fit", fit)
    ranked, _, _ = training.build_cases(load_specs(WITH_LIBRARY), 13, 2)
    cases = {
        "pets.jsonl": [
            training.dumped.DumpedCase(*CASE_A, "petstore-3.0", "pets.jsonl", "authored", -1)
        ],
        "tasks.jsonl": [
            training.dumped.DumpedCase(*CASE_A, "tasks-3.1", "tasks.jsonl", "authored", -1)
        ],
    }
    apis = {"pets.jsonl": {"petstore-3.0"}, "tasks.jsonl": {"tasks-3.1"}}
    training._score_authored(cases, apis, ranked, [], 1.0, 0.5)
    synthetic = len(
        training._groups(
            [
                r
                for r in ranked
                if r.api.removesuffix(training.PART) not in {"petstore-3.0", "tasks-3.1"}
            ],
            [],
        )
    )
    assert fitted == [synthetic + 1, synthetic + 1]  # the other file's one case, not its own
    with pytest.raises(ValueError, match="learn_authored"):
        train(WITH_LIBRARY, seed=13, folds=2, learn_authored=1.0)


def test_weighted_calibration_equals_repeating_a_case() -> None:
    rng = np.random.default_rng(5)
    groups = [(rng.normal(size=6), int(rng.integers(6))) for _ in range(30)]
    twice = calibrate([*groups, groups[0]])
    weighted = calibrate(groups, [2.0] + [1.0] * 29)
    assert weighted == pytest.approx(twice)
    assert calibrate(groups, [1.0] * 30) == calibrate(groups)


def test_the_shipped_validation_files_name_training_specs_and_real_operations() -> None:
    """The authored files in validation/ are well formed (their specs are the corpus's, which
    is not shipped: only the form is checked here)."""
    folder = Path(__file__).resolve().parents[2] / "validation"
    files = sorted(folder.glob("*.jsonl"))
    assert [p.name for p in files] == [
        "authored-large-apis-10.jsonl",
        "authored-large-apis-11.jsonl",
        "authored-large-apis-12.jsonl",
        "authored-large-apis-2.jsonl",
        "authored-large-apis-3.jsonl",
        "authored-large-apis-4.jsonl",
        "authored-large-apis-5.jsonl",
        "authored-large-apis-6.jsonl",
        "authored-large-apis-7.jsonl",
        "authored-large-apis-8.jsonl",
        "authored-large-apis-9.jsonl",
        "authored-large-apis.jsonl",
        "authored-steps-10.jsonl",
        "authored-steps-11.jsonl",
        "authored-steps-12.jsonl",
        "authored-steps-13.jsonl",
        "authored-steps-14.jsonl",
        "authored-steps-15.jsonl",
        "authored-steps-16.jsonl",
        "authored-steps-17.jsonl",
        "authored-steps-18.jsonl",
        "authored-steps-19.jsonl",
        "authored-steps-2.jsonl",
        "authored-steps-20.jsonl",
        "authored-steps-21.jsonl",
        "authored-steps-22.jsonl",
        "authored-steps-23.jsonl",
        "authored-steps-24.jsonl",
        "authored-steps-3.jsonl",
        "authored-steps-4.jsonl",
        "authored-steps-5.jsonl",
        "authored-steps-6.jsonl",
        "authored-steps-7.jsonl",
        "authored-steps-8.jsonl",
        "authored-steps-9.jsonl",
        "authored-steps.jsonl",
        "authored-workspace.jsonl",
    ]
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            case = json.loads(line)
            assert set(case) == {"id", "prompt", "history", "gold", "spec"}, (path, number)
            assert case["gold"] and all(" /" in g for g in case["gold"]), (path, number)
            assert [h for h in case["history"] if " /" not in h] == [], (path, number)
