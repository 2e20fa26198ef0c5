"""What the predictor precomputes, built compactly: the term indexes checked against the
scoring formulas computed directly, and the shapes with their equal parts held once."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.features import TermIndex
from opensesame_predictor.core.history import shapes_of
from opensesame_predictor.core.index import PredictorIndex
from opensesame_predictor.service import Service

DOCUMENTS = [
    ["pet", "photo", "pet", "upload"],
    [],  # an operation with no text in this field
    ["order", "pet"],
    ["user", "user", "user", "login", "order"],
    ["photo"],
]


def expected(scheme: str) -> dict[tuple[str, int], float]:
    """(term, document) -> weight, straight from the definitions."""
    n = len(DOCUMENTS)
    df = Counter(term for document in DOCUMENTS for term in set(document))
    avg = sum(map(len, DOCUMENTS)) / n
    weights: dict[tuple[str, int], float] = {}
    for k, document in enumerate(DOCUMENTS):
        tf = Counter(document)
        if scheme == "bm25":
            k1, b = 1.2, 0.75
            for term, count in tf.items():
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                norm = k1 * (1 - b + b * len(document) / avg)
                weights[term, k] = idf * count * (k1 + 1) / (count + norm) / (k1 + 1)
        else:
            raw = {
                t: (1 + math.log(c)) * (math.log((1 + n) / (1 + df[t])) + 1) for t, c in tf.items()
            }
            length = math.sqrt(sum(w * w for w in raw.values()))
            weights.update({(t, k): w / length for t, w in raw.items()})
    return weights


def dense(index: TermIndex) -> np.ndarray:
    """The index's compressed rows (data, indices, indptr) as a terms x documents array."""
    matrix = np.zeros((len(index.vocabulary), index.size), dtype=index.data.dtype)
    for row in range(len(index.vocabulary)):
        start, end = index.indptr[row], index.indptr[row + 1]
        columns = index.indices[start:end]
        assert (np.diff(columns) > 0).all()  # sorted, each document once per term
        matrix[row, columns] = index.data[start:end]
    return matrix


@pytest.mark.parametrize("scheme", ["tfidf", "bm25"])
def test_every_weight_is_the_formulas(scheme: str) -> None:
    index = TermIndex(iter(DOCUMENTS), scheme)  # type: ignore[arg-type]
    assert list(index.vocabulary) == ["pet", "photo", "upload", "order", "user", "login"]
    matrix = dense(index)
    assert matrix.dtype == np.float32 and matrix.shape == (6, len(DOCUMENTS))
    want = np.zeros_like(matrix)
    for (term, k), weight in expected(scheme).items():
        want[index.vocabulary[term], k] = weight
    np.testing.assert_allclose(matrix, want, rtol=1e-6)
    assert len(index.data) == len(index.indices) == len(expected(scheme))
    # a query sums the rows of its terms, one per occurrence for BM25's normalised idf
    scores = index.scores(["user", "order", "unknown"])
    assert scores.shape == (len(DOCUMENTS),) and scores[3] == scores.max() and scores[1] == 0


def test_no_documents_and_empty_documents() -> None:
    assert TermIndex(iter([]), "tfidf").scores(["pet"]).shape == (0,)
    empty = TermIndex(iter([[], []]), "bm25")
    assert dense(empty).shape == (0, 2) and not empty.scores(["pet"]).any()


def test_shapes_hold_equal_parts_once(fixtures: Path) -> None:
    """The index keeps one object per distinct set or tuple of its operations' shapes, and
    every shape stays equal to the one computed on its own."""
    catalog = Service.from_settings(Settings(specs=[str(fixtures / "petstore-3.0.yaml")])).catalog
    alone = shapes_of(catalog.operations)
    index = PredictorIndex(catalog.operations, catalog.about())
    assert index.shapes == alone
    parts = [getattr(shape, f.name) for shape in index.shapes for f in fields(shape)]
    distinct = {id(part) for part in parts if isinstance(part, frozenset | tuple)}
    assert len(distinct) == len({part for part in parts if isinstance(part, frozenset | tuple)})
    assert len(distinct) < len([p for p in parts if isinstance(p, frozenset | tuple)]) / 2
