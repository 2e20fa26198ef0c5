"""What the sentence model is tuned on: single-call requests of the specs of the tuning folds
only, never an excluded spec; and the ranker is fitted without the specs the model was tuned on,
in training and in the shipped files."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor.core.features import meaning_text
from opensesame_predictor.core.ranker import WEIGHTS_FILE
from opensesame_predictor.distill import TUNING_BATCH, tuning_batches
from opensesame_predictor.offline import train as train_module
from opensesame_predictor.offline.train import folds_of, load_specs, train
from opensesame_predictor.offline.tuning import (
    FOLDS,
    TUNED_FILE,
    TUNED_FOLDS,
    main,
    tuned_specs,
    tuning_pairs,
)
from opensesame_predictor.offline.vectors_fit import authored_specs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
SPECS = sorted(
    str(path)
    for folder in (FIXTURES, FIXTURES / "training")
    for path in folder.iterdir()
    if path.suffix in (".json", ".yaml") and path.name != "cyclic.yaml"
)


@pytest.fixture(scope="module")
def tuning() -> dict[str, Any]:
    return tuning_pairs(SPECS, excluded={"shop.yaml"})


def test_pairs_come_from_the_tuning_folds_only(tuning: dict[str, Any]) -> None:
    loaded = {
        item.summary.name: item
        for item in load_specs(SPECS)
        if item.parsed is not None and item.parsed.operations
    }
    fold = folds_of(sorted(loaded), FOLDS)
    by_file = {Path(item.summary.source).name: name for name, item in loaded.items()}
    expected = sorted(
        file for file, name in by_file.items() if fold[name] < TUNED_FOLDS and file != "shop.yaml"
    )
    assert tuning["specs"] == expected
    assert expected, "the fixtures give the tuning folds at least one spec"
    tuned_names = {by_file[file] for file in expected}
    assert {api for api, *_ in tuning["pairs"]} == tuned_names
    for api, request, text, key in tuning["pairs"]:
        operation = next(op for op in loaded[api].parsed.operations if op.key == key)  # type: ignore[union-attr]
        assert text == meaning_text(operation)
        assert request.strip()


def test_an_excluded_spec_is_never_read_for_tuning(tuning: dict[str, Any]) -> None:
    assert "shop.yaml" not in tuning["specs"]
    shop = next(item for item in load_specs([str(FIXTURES / "training" / "shop.yaml")]))
    assert all(api != shop.summary.name for api, *_ in tuning["pairs"])


def test_pairs_are_the_same_every_run(tuning: dict[str, Any]) -> None:
    assert tuning_pairs(SPECS, excluded={"shop.yaml"}) == tuning


def test_the_command_writes_pairs_and_the_list_of_tuned_specs(tmp_path: Path) -> None:
    pairs, listed = tmp_path / "pairs.json", tmp_path / "tuned.json"
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(pairs)]
    assert main([*argv, "--tuned", str(listed)]) == 0
    written = json.loads(pairs.read_text(encoding="utf-8"))
    assert written and all(len(pair) == 4 for pair in written)
    assert tuned_specs(listed) == set(json.loads(listed.read_text(encoding="utf-8"))["specs"])
    assert tuned_specs(tmp_path / "absent.json") == set()


def test_training_leaves_the_tuned_specs_out(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = [str(FIXTURES / "petstore-3.0.yaml"), str(FIXTURES / "tasks-3.1.json")]
    monkeypatch.setattr(train_module, "tuned_specs", lambda: {"tasks-3.1.json"})
    _, meta = train(specs, seed=13, folds=1)
    assert meta["trained_on"] == ["petstore-3.0.yaml"]
    assert meta["left_out_as_tuned_on"] == 1


def test_the_shipped_model_and_weights_keep_their_specs_apart() -> None:
    """The shipped weights were fitted on none of the specs the shipped model was tuned on,
    and no authored validation file asks about any of them."""
    tuned = tuned_specs(TUNED_FILE)
    assert len(tuned) >= 30
    weights = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert weights["trained_on"] and tuned.isdisjoint(weights["trained_on"])
    assert weights["left_out_as_tuned_on"] == len(tuned)
    authored = sorted((ROOT / "validation").glob("authored-*.jsonl"))
    assert len(authored) >= 9 and tuned.isdisjoint(authored_specs(authored))


def test_tuning_batches_hold_distinct_operations_of_one_api(tuning: dict[str, Any]) -> None:
    """A request is scored against the other operations of its batch: one API per batch, no
    operation twice (it would count as a wrong answer for its own request), 4 to 32 of them."""
    batches = tuning_batches(tuning["pairs"], random.Random(0))
    api_of = {(request, key): api for api, request, _, key in tuning["pairs"]}
    assert batches
    for batch in batches:
        keys = [key for _, _, key in batch]
        assert len(set(keys)) == len(keys)
        assert 4 <= len(batch) <= TUNING_BATCH
        assert len({api_of[(request, key)] for request, _, key in batch}) == 1
    assert tuning_batches(tuning["pairs"], random.Random(0)) == batches
