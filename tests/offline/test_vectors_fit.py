"""Refining the static word vectors: texts from the training specs (authored ones left out),
and a refit that brings texts' mean vectors closer to the sentence model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from opensesame_predictor.core.vectors import Vectors
from opensesame_predictor.offline.vectors_fit import authored_specs, refine, training_texts

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SPECS = [str(FIXTURES / "petstore-3.0.yaml"), str(FIXTURES / "tasks-3.1.json")]
WORDS = "photo image picture cat dog pet list show add remove task project order store".split()


def tiny_table(path: Path, rng: np.random.Generator, dimensions: int = 8) -> Vectors:
    pieces = ["[PAD]", *WORDS, "unused"]
    vectors = rng.integers(-127, 128, size=(len(pieces), dimensions)).astype(np.int8)
    scales = np.full(len(pieces), 0.01, dtype=np.float16)
    np.savez(path, pieces=np.array(pieces), vectors=vectors, scales=scales)
    return Vectors(path)


def cosines(table: Vectors, texts: list[str], targets: np.ndarray) -> float:
    rows = np.array([table.embed(text) for text in texts])
    # the refit works in its own basis: compare through the best linear map, as it does
    mapped, *_ = np.linalg.lstsq(rows, targets, rcond=None)
    fitted = rows @ mapped
    fitted /= np.linalg.norm(fitted, axis=1, keepdims=True)
    wanted = targets / np.linalg.norm(targets, axis=1, keepdims=True)
    return float((fitted * wanted).sum(axis=1).mean())


def test_refit_brings_text_vectors_closer_to_the_sentence_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = tiny_table(tmp_path / "base.npz", rng)
    # a "sentence model" whose word meanings differ from the table's: photo/image/picture
    # mean one thing, cat/dog/pet another
    truth = {w: rng.normal(size=8) for w in WORDS}
    for same in (("photo", "image", "picture"), ("cat", "dog", "pet")):
        for w in same[1:]:
            truth[w] = truth[same[0]] + 0.05 * rng.normal(size=8)
    texts = [" ".join(rng.choice(WORDS, size=3, replace=False)) for _ in range(400)]
    targets = np.array([np.mean([truth[w] for w in t.split()], axis=0) for t in texts])
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    refined = refine(base, texts, targets.astype(np.float32), ridge=0.01)
    path = tmp_path / "refined.npz"
    np.savez(path, **refined)
    after = Vectors(path)
    assert after.pieces_list == base.pieces_list
    assert refined["vectors"].dtype == np.int8
    assert cosines(after, texts, targets) > cosines(base, texts, targets) + 0.05
    # words of one meaning end up close together
    photo, image, cat = (after.embed(w) for w in ("photo", "image", "cat"))
    assert float(photo @ image) > float(photo @ cat)


def test_texts_leave_out_the_authored_specs_and_come_once_in_a_fixed_order(
    tmp_path: Path,
) -> None:
    both = training_texts(SPECS, set())
    assert both == training_texts(SPECS, set())
    assert len(both) == len(set(both))
    assert all(len(t.split()) >= 2 for t in both)
    authored = tmp_path / "authored.jsonl"
    case = {"prompt": "x", "history": [], "gold": ["GET /pets"], "spec": "petstore-3.0.yaml"}
    authored.write_text(json.dumps(case) + "\n", encoding="utf-8")
    assert authored_specs([authored]) == {"petstore-3.0.yaml"}
    tasks_only = training_texts(SPECS, authored_specs([authored]))
    assert tasks_only and len(tasks_only) < len(both)
    assert not any("pet" in t.lower() for t in tasks_only if "photo" in t.lower())
    assert any(t == "List pets" for t in both)
    assert not any(t == "List pets" for t in tasks_only)


def test_texts_do_not_depend_on_the_table_they_refit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthetic requests reword with the shipped table's neighbours: the texts the table is
    refitted on are worded without it, so `make vectors` gives the same table again."""
    plain = training_texts(SPECS, set())

    class Unread:
        def neighbours(self, word: str) -> list[str]:
            raise AssertionError(f"the table was read for {word!r}")

    monkeypatch.setattr("opensesame_predictor.core.vectors.vectors", lambda: Unread())
    assert training_texts(SPECS, set()) == plain
