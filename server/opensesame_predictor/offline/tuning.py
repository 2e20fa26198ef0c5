"""What the sentence model is tuned on (`make encoder`): synthetic (request, operation text)
pairs of single-call tasks from the corpus and pairs of requests people wrote about the same
specs (`tuning/`), and which specs those are.

The model as published reads requests and API descriptions as generic English; tuned on pairs
where a request and the text of the operation it asks for belong together, it learns how
requests to an API word what an operation's text says. The shipped model is tuned on every
spec of the corpus. The ranker must not learn from its reading of those specs, though: on
requests it was tuned on the model reads better than on an API nobody tuned for, and the ranker
would trust it more than it deserves. So two more models are tuned, each on the specs of some
folds only (`FOLD_MODELS`), and the ranker learns each fold's cases as read by the model that
was not tuned on that fold (`offline.train`). The specs of the authored validation files are
left out of every tuning, so that what is measured on them stays a measure of APIs no model
and no ranker has read. Which specs tuned which model is shipped (`data/encoder-tuned.json`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

TUNED_FILE = Path(__file__).resolve().parent.parent / "data" / "encoder-tuned.json"
FOLDS = 5
# the models the ranker's cases are read with: each tuned on the specs of its folds only, so
# that every fold has one that never read it
FOLD_MODELS = {"a": (0, 1, 2), "b": (3, 4)}
SEED = 7
ROUNDS = 16  # rounds of tasks per spec: about a hundred requests per spec
# rounds of tasks of several calls, each step a pair: people ask for a goal whose first call is
# a look-up, or for two things in one request
STEP_ROUNDS = 0
STEP_KINDS = frozenset({"pair", "follow", "lookup", "chain", "create", "then"})
# how many times each request people wrote (`--people`) is paired with its calls: a few hundred
# beside the synthetic thousands
PEOPLE_COPIES = 1


def people_requests(paths: list[Path]) -> dict[str, list[tuple[str, list[str]]]]:
    """(request, operations it asks for) of each spec file, from requests people wrote (the
    authored format, one spec per case): what synthetic requests cannot show, how people word
    what they want."""
    from opensesame_predictor.offline.authored import authored_cases, spec_names

    found: dict[str, list[tuple[str, list[str]]]] = {}
    for path in paths:
        for number, case in authored_cases(path):
            names = spec_names(case)
            if len(names) != 1:
                raise ValueError(f"{path}:{number}: one spec per request, not {case.spec!r}")
            if not case.prompt.strip():
                raise ValueError(f"{path}:{number}: no request in words")
            found.setdefault(names[0], []).append((case.prompt, case.gold))
    return found


def tuning_pairs(
    specs: list[str],
    excluded: set[str],
    rounds: int = ROUNDS,
    wording: str = "plain",
    step_rounds: int = STEP_ROUNDS,
    people: dict[str, list[tuple[str, list[str]]]] | None = None,
    people_copies: int = PEOPLE_COPIES,
) -> dict[str, Any]:
    """[api, request, operation text, operation key] for single-call tasks of every spec
    (`rounds` rounds of tasks each, worded as `phrasing.WORDINGS[wording]`), for each step
    of the tasks of several calls of `step_rounds` rounds (the request of a goal against its
    look-up too), and for each request people wrote about a spec (`people_requests`, each
    `people_copies` times); the specs' file names, and each API's file name."""
    from opensesame_predictor.core import phrasing
    from opensesame_predictor.core.catalog import Catalog
    from opensesame_predictor.core.features import sentence_text
    from opensesame_predictor.offline.synthetic import generate
    from opensesame_predictor.offline.train import load_specs

    people = people or {}
    # a request about a spec not tuned on (an authored file's, or one not given) would tune
    # the model on an API that must stay unread, or on nothing; an excluded one is refused
    # before minutes of generating
    refused = sorted(set(people) & excluded)
    if refused:
        raise ValueError(f"requests about specs not tuned on: {', '.join(refused)}")
    pairs: list[list[str]] = []
    files: dict[str, str] = {}
    for item in load_specs(specs):
        if item.parsed is None or not item.parsed.operations:
            continue
        file = Path(item.summary.source).name
        if file in excluded:
            continue
        files[item.summary.name] = file
        # what the sentence model reads of an operation when its spec is indexed
        text = {op.key: sentence_text(op) for op in item.parsed.operations}
        # each spec is generated alone, with the same seed: a fold's pairs are the same
        # whichever other specs are tuned on beside it
        for case in generate(
            [Catalog([item])], seed=SEED, rounds=rounds, wordings=phrasing.WORDINGS[wording]
        ):
            if case.kind == "single" and not case.history and case.gold in text:
                pairs.append([item.summary.name, case.prompt, text[case.gold], case.gold])
        if step_rounds:
            # drawn again with a seed of their own: the one-call pairs stay as they were
            steps = generate(
                [Catalog([item])],
                seed=SEED + 1,
                rounds=step_rounds,
                wordings=phrasing.WORDINGS[wording],
            )
            seen: set[tuple[str, str]] = set()
            for case in steps:
                pair = (case.prompt, case.gold)
                if case.kind in STEP_KINDS and case.gold in text and pair not in seen:
                    seen.add(pair)
                    pairs.append([item.summary.name, case.prompt, text[case.gold], case.gold])
        for request, gold in people.get(file, []):
            for key in gold:
                if key not in text:
                    raise ValueError(f"{file} has no operation {key}")
                pairs += [[item.summary.name, request, text[key], key]] * people_copies
    unread = sorted(set(people) - set(files.values()))
    if unread:
        raise ValueError(f"requests about specs not tuned on: {', '.join(unread)}")
    return {"specs": sorted(files.values()), "pairs": pairs, "files": files}


def of_folds(found: dict[str, Any], folds: Collection[int]) -> dict[str, Any]:
    """The pairs and specs of `tuning_pairs` that belong to the given folds (of `FOLDS`)."""
    from opensesame_predictor.offline.train import folds_of

    fold = folds_of(list(found["files"]), FOLDS)
    files = {name: file for name, file in found["files"].items() if fold[name] in folds}
    pairs = [pair for pair in found["pairs"] if pair[0] in files]
    return {"specs": sorted(files.values()), "pairs": pairs, "files": files}


def tuned_specs(path: Path = TUNED_FILE) -> set[str]:
    """File names of the specs the shipped sentence model was tuned on (none if not tuned)."""
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["specs"]
    except FileNotFoundError:
        return set()
    return {str(name) for name in listed}


def fold_model_specs(path: Path = TUNED_FILE) -> dict[str, set[str]]:
    """Each fold model's name and the file names of the specs it was tuned on."""
    try:
        models = json.loads(path.read_text(encoding="utf-8")).get("fold_models", {})
    except FileNotFoundError:
        return {}
    return {name: {str(spec) for spec in model["specs"]} for name, model in models.items()}


def main(argv: list[str] | None = None) -> int:
    from opensesame_predictor.core import phrasing
    from opensesame_predictor.offline.authored import authored_specs

    parser = argparse.ArgumentParser(description="Write the sentence models' tuning pairs.")
    parser.add_argument("--spec", action="append", required=True, help="corpus specs")
    parser.add_argument("--exclude-authored", action="append", type=Path, default=[])
    parser.add_argument(
        "--output",
        type=Path,
        required=True,
        help="folder: pairs.json for the shipped model, NAME/pairs.json for each fold model",
    )
    parser.add_argument(
        "--tuned", type=Path, default=TUNED_FILE, help="where to list the tuning specs"
    )
    parser.add_argument(
        "--rounds", type=int, default=ROUNDS, help=f"rounds of tasks per spec ({ROUNDS})"
    )
    parser.add_argument(
        "--wording",
        choices=sorted(phrasing.WORDINGS),
        default="plain",
        help="how the requests are worded (plain)",
    )
    parser.add_argument(
        "--step-rounds",
        type=int,
        default=STEP_ROUNDS,
        help=f"rounds of tasks of several calls, each step a pair ({STEP_ROUNDS})",
    )
    parser.add_argument(
        "--people",
        action="append",
        type=Path,
        default=[],
        help="requests people wrote about tuning specs (authored format), paired with their calls",
    )
    parser.add_argument(
        "--people-copies",
        type=int,
        default=PEOPLE_COPIES,
        help=f"times each of those requests is paired ({PEOPLE_COPIES})",
    )
    args = parser.parse_args(argv)
    if args.people_copies < 1:
        parser.error("--people-copies: at least 1")
    if args.step_rounds < 0:
        parser.error("--step-rounds: at least 0")
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
    try:
        excluded = authored_specs(args.exclude_authored)
        people = people_requests(args.people)
        shipped = tuning_pairs(
            args.spec,
            excluded,
            args.rounds,
            args.wording,
            args.step_rounds,
            people,
            args.people_copies,
        )
    except (ValueError, OSError) as error:  # a malformed or unreadable cases file
        parser.error(str(error))
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "pairs.json").write_text(json.dumps(shipped["pairs"]), encoding="utf-8")
    print(f"{len(shipped['pairs'])} pairs from {len(shipped['specs'])} specs")
    models: dict[str, Any] = {}
    for name, folds in FOLD_MODELS.items():
        found = of_folds(shipped, folds)
        (args.output / name).mkdir(exist_ok=True)
        (args.output / name / "pairs.json").write_text(json.dumps(found["pairs"]), "utf-8")
        models[name] = {"folds": list(folds), "pairs": len(found["pairs"]), "specs": found["specs"]}
        print(f"fold model {name}: {len(found['pairs'])} pairs from {len(found['specs'])} specs")
    document = {
        "about": "specs whose synthetic requests tuned the sentence model (data/encoder.onnx), "
        "and the fold models the ranker's cases are read with (each fold by one not tuned on it)",
        "seed": SEED,
        "rounds": args.rounds,
        "step_rounds": args.step_rounds,
        "people": [path.as_posix() for path in args.people],
        "people_copies": args.people_copies if args.people else 0,
        "wording": args.wording,
        "folds": FOLDS,
        "pairs": len(shipped["pairs"]),
        "specs": shipped["specs"],
        "fold_models": models,
    }
    args.tuned.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output} and {args.tuned}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
