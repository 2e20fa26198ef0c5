"""What the sentence model is tuned on (`make encoder`): synthetic (request, operation text)
pairs of single-call tasks from part of the corpus, and which specs those are.

The model as published reads requests and API descriptions as generic English; tuned on pairs
where a request and the text of the operation it asks for belong together, it learns how
requests to an API word what an operation's text says. Only the specs of some folds are used,
and their names are shipped (`data/encoder-tuned.json`): the ranker is fitted on the other specs
(`offline.train`), whose requests the model has not read, or it would learn to trust the
model's reading more than it deserves on an API nobody tuned for. The specs of the authored
validation files are left out as well, so that what is measured on them stays a measure of
APIs neither the model nor the ranker has read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

TUNED_FILE = Path(__file__).resolve().parent.parent / "data" / "encoder-tuned.json"
FOLDS = 5
TUNED_FOLDS = 3  # the specs of folds 0..2 of 5 tune the model; the ranker learns on the rest
SEED = 7
ROUNDS = 16  # rounds of tasks per spec: about a hundred requests per spec


def tuning_pairs(specs: list[str], excluded: set[str]) -> dict[str, Any]:
    """[api, request, operation text, operation key] for single-call tasks of the specs of the
    tuning folds, and those specs' file names."""
    from opensesame_predictor.core.catalog import Catalog
    from opensesame_predictor.core.features import meaning_text
    from opensesame_predictor.offline.synthetic import generate
    from opensesame_predictor.offline.train import folds_of, load_specs

    loaded = [
        item
        for item in load_specs(specs)
        if item.parsed is not None
        and item.parsed.operations
        and Path(item.summary.source).name not in excluded
    ]
    fold = folds_of([item.summary.name for item in loaded], FOLDS)
    pairs: list[list[str]] = []
    tuned: list[str] = []
    for item in loaded:
        if fold[item.summary.name] >= TUNED_FOLDS:
            continue
        assert item.parsed is not None
        tuned.append(Path(item.summary.source).name)
        # what the sentence model reads of an operation when its spec is indexed
        text = {op.key: meaning_text(op) for op in item.parsed.operations}
        for case in generate([Catalog([item])], seed=SEED, rounds=ROUNDS):
            if case.kind == "single" and not case.history and case.gold in text:
                pairs.append([item.summary.name, case.prompt, text[case.gold], case.gold])
    return {"specs": sorted(tuned), "pairs": pairs}


def tuned_specs(path: Path = TUNED_FILE) -> set[str]:
    """File names of the specs the shipped sentence model was tuned on (none if not tuned)."""
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["specs"]
    except FileNotFoundError:
        return set()
    return {str(name) for name in listed}


def main(argv: list[str] | None = None) -> int:
    from opensesame_predictor.offline.vectors_fit import authored_specs

    parser = argparse.ArgumentParser(description="Write the sentence model's tuning pairs.")
    parser.add_argument("--spec", action="append", required=True, help="corpus specs")
    parser.add_argument("--exclude-authored", action="append", type=Path, default=[])
    parser.add_argument("--output", type=Path, required=True, help="pairs (.json)")
    parser.add_argument(
        "--tuned", type=Path, default=TUNED_FILE, help="where to list the tuning specs"
    )
    args = parser.parse_args(argv)
    found = tuning_pairs(args.spec, authored_specs(args.exclude_authored))
    args.output.write_text(json.dumps(found["pairs"]), encoding="utf-8")
    document = {
        "about": "specs whose synthetic requests tuned the sentence model (data/encoder.onnx); "
        "the ranker is fitted without them",
        "seed": SEED,
        "rounds": ROUNDS,
        "pairs": len(found["pairs"]),
        "specs": found["specs"],
    }
    args.tuned.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(found['pairs'])} pairs from {len(found['specs'])} specs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
