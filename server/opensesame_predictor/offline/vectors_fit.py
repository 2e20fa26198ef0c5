"""Refine the static word vectors on what API descriptions and requests say (`make vectors`).

A table distilled from a sentence model holds each WordPiece as the model reads it alone; the
model reads it in context. Here each piece's vector is refitted so that the mean of a text's
pieces comes close to the sentence model's vector of the whole text (as model2vec's
"tokenlearn" does), on texts of the training specs: operations' short texts, summaries, first
sentences of descriptions and of parameter descriptions, and synthetic requests. A ridge
penalty keeps each piece near its distilled vector, so pieces seen rarely or never move
little. The specs of the authored validation files are left out, so that what is measured on
them stays a measure of APIs the table has not read.

Three steps, the middle one in the distillation environment (it runs the sentence model):
`texts` (here), `distill.py --encode`, `solve` (here).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from opensesame_predictor.core import phrasing
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.features import short_text, words
from opensesame_predictor.core.phrasing import sentence
from opensesame_predictor.core.vectors import MAX_WORD, Vectors
from opensesame_predictor.offline.authored import authored_specs

MAX_TEXTS = 80_000
MIN_WORDS = 2
RIDGE = 0.05  # pull towards the distilled vector: a piece needs a few texts to move much
TOLERANCE = 1e-4  # of the conjugate gradient, relative to the right-hand side


def training_texts(specs: list[str], excluded: set[str], seed: int = 99) -> list[str]:
    """What the specs' operations say, and synthetic requests for them; each text once, in a
    seeded order."""
    from opensesame_predictor.offline.synthetic import generate
    from opensesame_predictor.offline.train import load_specs

    loaded = [
        item
        for item in load_specs(specs)
        if item.parsed is not None and Path(item.summary.source).name not in excluded
    ]
    texts: list[str] = []
    for item in loaded:
        assert item.parsed is not None
        for op in item.parsed.operations:
            texts += [short_text(op), op.summary, sentence(op.description)]
            texts += [sentence(p.description) for p in op.parameters if p.description]
    # requests worded without rewording: that draws on this very table, which must not
    # shape the texts it is refitted on
    made = generate([Catalog(loaded)], seed=seed, rounds=1, wordings=[phrasing.LITERAL])
    texts += [case.prompt for case in made]
    kept = [t.strip()[:300] for t in texts if len(t.split()) >= MIN_WORDS]
    unique = list(dict.fromkeys(kept))
    random.Random(1).shuffle(unique)
    return unique[:MAX_TEXTS]


def refine(
    base: Vectors, texts: list[str], targets: np.ndarray, ridge: float = RIDGE
) -> dict[str, Any]:
    """The refitted table, in the file format of `core.vectors` (int8 rows, a scale each).

    The targets are brought to the table's dimensions by their own principal directions, the
    distilled table is mapped onto them by least squares (its starting point and prior), and
    the ridge problem (AᵀA + λI) W = AᵀT + λW₀ is solved by conjugate gradients, one column
    per dimension, with a diagonal preconditioner."""
    import scipy.sparse as sparse  # training only

    rows: list[int] = []
    columns: list[int] = []
    values: list[float] = []
    for k, text in enumerate(texts):
        ids = [i for w in words(text) if 1 < len(w) <= MAX_WORD for i in base.pieces(w)]
        for i in ids:
            rows.append(k)
            columns.append(i)
            values.append(1.0 / len(ids))
    size = base.table.shape[0]
    means = sparse.csr_matrix((values, (rows, columns)), shape=(len(texts), size))
    means.sum_duplicates()
    covered = np.asarray(means.sum(axis=1)).ravel() > 0
    means, targets = means[covered], targets[covered]
    _, _, directions = np.linalg.svd(targets, full_matrices=False)
    wanted = targets @ directions[: base.dimensions].T
    distilled = base.table.astype(np.float64) * base.scales.astype(np.float64)[:, None]
    mapping, *_ = np.linalg.lstsq(means @ distilled, wanted, rcond=None)
    prior = distilled @ mapping
    gram = (means.T @ means).tocsr()
    right = means.T @ wanted + ridge * prior
    diagonal = gram.diagonal() + ridge

    def product(x: np.ndarray) -> np.ndarray:
        result: np.ndarray = gram @ x + ridge * x
        return result

    table = prior.copy()
    residual = right - product(table)
    step = residual / diagonal[:, None]
    direction = step.copy()
    energy = (residual * step).sum(axis=0)
    scale = float(np.linalg.norm(right))
    for _ in range(500):
        moved = product(direction)
        alpha = energy / np.maximum((direction * moved).sum(axis=0), 1e-30)
        table += direction * alpha
        residual -= moved * alpha
        if float(np.linalg.norm(residual)) < TOLERANCE * scale:
            break
        step = residual / diagonal[:, None]
        renewed = (residual * step).sum(axis=0)
        direction = step + direction * (renewed / energy)
        energy = renewed
    scales = np.abs(table).max(axis=1, keepdims=True) / 127.0
    quantised = np.round(table / np.maximum(scales, 1e-12)).astype(np.int8)
    return {
        "pieces": np.array(base.pieces_list),
        "vectors": quantised,
        "scales": scales.astype(np.float16).ravel(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Refine the static word vectors.")
    steps = parser.add_subparsers(dest="step", required=True)
    texts = steps.add_parser("texts", help="write the training texts as a JSON list")
    texts.add_argument("--spec", action="append", required=True, help="training specs")
    texts.add_argument("--exclude-authored", action="append", type=Path, default=[])
    texts.add_argument("--output", type=Path, required=True)
    solve = steps.add_parser("solve", help="refit the table on the texts' sentence vectors")
    solve.add_argument("--base", type=Path, required=True, help="the distilled table (.npz)")
    solve.add_argument("--texts", type=Path, required=True)
    solve.add_argument("--targets", type=Path, required=True, help="sentence vectors (.npy)")
    solve.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.step == "texts":
        try:
            excluded = authored_specs(args.exclude_authored)
        except ValueError as error:  # a malformed or unreadable authored file
            parser.error(str(error))
        found = training_texts(args.spec, excluded)
        args.output.write_text(json.dumps(found), encoding="utf-8")
        print(f"wrote {args.output}: {len(found)} texts")
        return 0
    listed = json.loads(args.texts.read_text(encoding="utf-8"))
    refined = refine(Vectors(args.base), listed, np.load(args.targets))
    np.savez_compressed(args.output, **refined)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
