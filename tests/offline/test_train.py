"""Training the ranker: deterministic, ablations zero their features, weights files round-trip."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from opensesame_predictor.core.ranker import (
    DEFAULT_WEIGHTS,
    FEATURES,
    GROUPS,
    WEIGHTS_FILE,
    Ranker,
)
from opensesame_predictor.offline.train import scored_case, train

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SPECS = [str(FIXTURES / "petstore-3.0.yaml"), str(FIXTURES / "tasks-3.1.json")]
TrainResult = tuple[Ranker, dict[str, object]]


@pytest.fixture(scope="module")
def trained() -> TrainResult:
    return train(SPECS, seed=13)


def test_training_reports_progress_through_the_validation_too() -> None:
    """The progress bar moves while the specs are read, while cases are built and while the
    folds are fitted (the long part on a real corpus), and ends full."""
    seen: list[tuple[int, int, str]] = []
    train(
        SPECS, seed=13, folds=2, progress=lambda done, total, item: seen.append((done, total, item))
    )
    loading = [s for s in seen if s[2].startswith("loading")]
    assert [item for _, _, item in loading[:2]] == [
        "loading petstore-3.0.yaml",
        "loading tasks-3.1.json",
    ]
    assert loading[-1][0] == loading[-1][1] == 2  # the specs are read before anything else
    building = [s for s in seen if s[2].startswith("workspace") or s[2] == ""]
    fitting = [s for s in seen if s[2].startswith("validation fold")]
    assert building and fitting, seen
    assert fitting[-1][0] == fitting[-1][1]  # full at the end
    assert [d for d, _, _ in fitting] == sorted(d for d, _, _ in fitting)


def test_the_calibration_reads_the_closeness_of_the_best_scored_candidate() -> None:
    """The closeness the top-label map is fitted on is the best-scored candidate's sentence
    cosine, as the predictor passes it."""
    matrix = np.zeros((3, len(FEATURES)))
    matrix[:, FEATURES.index("sentence")] = [0.2, 0.7, 0.4]
    matrix[:, FEATURES.index("relevance")] = [0.1, 0.3, 0.9]
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("relevance")] = 1.0
    scores, gold, closeness = scored_case(matrix, coef, 1)
    assert list(scores) == pytest.approx([0.1, 0.3, 0.9])
    assert (gold, closeness) == (1, pytest.approx(0.4))


def test_training_is_deterministic(trained: TrainResult) -> None:
    again, meta = train(SPECS, seed=13)
    ranker, first_meta = trained
    assert again.weights == ranker.weights
    assert again.scale == ranker.scale
    assert meta == first_meta


def test_trained_ranker_describes_itself(trained: TrainResult) -> None:
    ranker, meta = trained
    assert ranker.version == "learned-s13"
    assert set(ranker.weights) == set(FEATURES)
    assert ranker.scale > 0
    assert any(weight != 0.0 for weight in ranker.weights.values())
    assert meta["trained_on"] == ["petstore-3.0.yaml", "tasks-3.1.json"]
    assert isinstance(meta["cases"], int) and meta["cases"] > 0
    assert meta["seed"] == 13
    assert meta["wording"] == "plain"
    assert meta["dropped"] == []


def test_dropping_a_group_zeroes_its_weights() -> None:
    ranker, meta = train(SPECS, seed=13, drop=("history",))
    assert meta["dropped"] == sorted(GROUPS["history"])
    for name in GROUPS["history"]:
        assert ranker.weights[name] == 0.0, name
    others = [w for name, w in ranker.weights.items() if name not in GROUPS["history"]]
    assert any(weight != 0.0 for weight in others)


def test_unknown_feature_or_group_is_refused() -> None:
    with pytest.raises(ValueError, match="no_such_group"):
        train(SPECS, drop=("history", "no_such_group"))


def test_another_wording_changes_the_cases_and_an_unknown_one_is_refused() -> None:
    hard, meta = train(SPECS, seed=13, folds=1, wording="hard")
    plain, _ = train(SPECS, seed=13, folds=1)
    assert meta["wording"] == "hard"
    assert hard.weights != plain.weights
    with pytest.raises(ValueError, match="unknown wording 'salad'"):
        train(SPECS, wording="salad")


def test_save_then_load_round_trips(tmp_path: Path, trained: TrainResult) -> None:
    ranker, meta = trained
    path = tmp_path / "weights.json"
    ranker.save(path, meta)
    loaded = Ranker.load(path)
    assert loaded.version == ranker.version
    assert loaded.scale == pytest.approx(ranker.scale, abs=1e-6)
    assert loaded.weights == pytest.approx(ranker.weights, abs=1e-6)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["trained_on"] == meta["trained_on"]
    assert list(document["weights"]) == list(FEATURES)


def test_missing_weights_file_falls_back_to_hand_set(tmp_path: Path) -> None:
    ranker = Ranker.load(tmp_path / "nowhere.json")
    assert ranker.version == "hand-v1"
    assert ranker.weights == DEFAULT_WEIGHTS
    assert ranker.scale == 1.0


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        json.dumps({"version": "x", "scale": 1.0}),  # no weights
        json.dumps({"version": "x", "scale": 1.0, "weights": {"all": 1.0}}),  # incomplete
        json.dumps(
            {"version": "x", "scale": "big", "weights": dict.fromkeys(FEATURES, 1.0)}
        ),  # a scale that is no number
        json.dumps({"version": "x", "scale": 1.0, "weights": dict.fromkeys(FEATURES, None)}),
    ],
)
def test_malformed_weights_file_falls_back_to_hand_set(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "weights.json"
    path.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="opensesame_predictor.core.ranker"):
        ranker = Ranker.load(path)
    assert ranker.version == "hand-v1"
    assert ranker.weights == DEFAULT_WEIGHTS
    # said, with the file's name: a stale weights file must not rank by hand weights silently
    assert [
        str(path) in r.getMessage() and "hand-set" in r.getMessage() for r in caplog.records
    ] == [True]


def test_weights_file_lacking_a_feature_names_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    weights = dict.fromkeys(FEATURES, 1.0)
    del weights["repeat_asked"]
    path = tmp_path / "weights.json"
    path.write_text(json.dumps({"version": "x", "scale": 1.0, "weights": weights}), "utf-8")
    with caplog.at_level(logging.WARNING, logger="opensesame_predictor.core.ranker"):
        assert Ranker.load(path).version == "hand-v1"
    assert "no weight for repeat_asked" in caplog.text


def test_shipped_weights_are_learned_and_complete() -> None:
    assert WEIGHTS_FILE.name == "weights.json"
    assert WEIGHTS_FILE.parent.name == "data"
    document = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert set(FEATURES) <= set(document["weights"])
    ranker = Ranker.load()
    assert ranker.version.startswith("learned")
    assert set(ranker.weights) == set(FEATURES)
    assert ranker.scale > 0
