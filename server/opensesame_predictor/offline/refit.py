"""Judge a change on saved cases (`train --dump`) in a minute instead of a training run: refit
the dump with every authored file's APIs left out of the fit, and score each authored file.

Authored files that the dump does not hold (one written after it, or ranked by other models)
are ranked into a dump of their own first, with the models of the installed package, and
passed beside it; their APIs are left out of the fit too, so the same refit scores every
file out of sample. Both arms of a comparison are then scored the same way:

    python -m opensesame_predictor.offline.refit rank NEW.npz --spec CORPUS FILE.jsonl...
    python -m opensesame_predictor.offline.refit score RUN.npz NEW.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from opensesame_predictor.offline import dump as dumped
from opensesame_predictor.offline.authored import read_authored
from opensesame_predictor.offline.evaluate import ranking_metrics
from opensesame_predictor.offline.train import (
    DEPRECATED_PENALTY,
    PART,
    authored_cases,
    best_gold,
    fit_with,
    learnable,
    load_specs,
)


def rank(paths: Sequence[Path], specs: Sequence[str], output: Path) -> dict[str, int]:
    """Rank authored files with the installed models and save them as a dump with no
    synthetic cases; returns each file's number of cases."""
    loaded = load_specs(list(specs))
    authored: dict[str, list[dumped.DumpedCase]] = {}
    apis: dict[str, set[str]] = {}
    for path in paths:
        written = read_authored(path, loaded)
        authored[written.name] = authored_cases(written)
        apis[written.name] = set(written.apis)
    dumped.save(output, [], authored, apis)
    return {name: len(cases) for name, cases in authored.items()}


def refitted(
    dump: dumped.Dump,
    left_out: set[str],
    c: float = 1.0,
    drop: Sequence[str] = (),
    learned: Sequence[dumped.DumpedCase] = (),
    share: float = 0.0,
) -> np.ndarray:
    """Weights fitted on the dump's synthetic cases of every API but `left_out` (nor the
    small APIs carved out of them), as `train` fits them; the features in `drop` weigh 0.
    `learned`: authored cases learned from beside them, together `share` of the fit."""
    unknown = [name for name in drop if name not in dump.features]
    if unknown:
        raise ValueError(f"unknown feature: {', '.join(unknown)}")
    deprecated = dump.features.index("deprecated")  # the dump's: it may hold new features
    zeroed = [deprecated, *(dump.features.index(name) for name in drop)]
    groups = []
    for case in dump.synthetic:
        if case.api.removesuffix(PART) in left_out or not case.gold.any():
            continue
        if len(case.matrix) > 1:
            matrix = case.matrix.copy()
            matrix[:, zeroed] = 0.0
            groups.append((matrix, int(np.flatnonzero(case.gold)[0])))
    if not groups:
        raise ValueError("the dump holds no synthetic case outside the authored files' APIs")
    coef = fit_with(groups, learned, share, zeroed, c)
    coef[zeroed] = 0.0
    coef[deprecated] = DEPRECATED_PENALTY
    return coef


def ranks(cases: Sequence[dumped.DumpedCase], coef: np.ndarray) -> list[int]:
    """Where each case's best-ranked gold lies under the weights (1 = first, 0 = no gold among
    the candidates); ties go against the gold."""
    return [1 + int((s > s[g]).sum()) if g >= 0 else 0 for s, g, _ in best_gold(cases, coef)]


def score(
    run: Path,
    beside: Sequence[Path] = (),
    c: float = 1.0,
    drop: Sequence[str] = (),
    share: float = 0.0,
    unread: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Every authored file of the run's dump and of the dumps beside it, scored by one refit
    of the run's synthetic cases without any of their APIs; "pooled" is every case at once.
    A file in both is taken from the run. `drop`: features left out of the fit (a dump with
    a new feature is both arms of its comparison). `share` > 0: each file is scored by a fit
    that also learns from the other files' cases that share no API with it (`learnable`), the
    files named in `unread` excepted."""
    dump = dumped.load(run)
    files = dict(dump.authored)
    apis = dict(dump.authored_apis)
    for path in beside:
        other = dumped.load(path)
        if other.features != dump.features:
            raise ValueError(f"{path}: its features are not those of {run}")
        for name, cases in other.authored.items():
            files.setdefault(name, cases)
            apis.setdefault(name, other.authored_apis[name])
    left_out = set().union(set(), *apis.values())
    found: dict[str, list[int]] = {}
    if share > 0.0:
        for name, cases in sorted(files.items()):
            learned = learnable(files, apis[name], [name, *unread])
            found[name] = ranks(cases, refitted(dump, left_out, c, drop, learned, share))
    else:
        coef = refitted(dump, left_out, c, drop)
        found = {name: ranks(cases, coef) for name, cases in sorted(files.items())}
    found["pooled"] = [r for name in sorted(files) for r in found[name]]
    # the dump keeps no confidences: ranks only
    return {
        name: {k: v for k, v in ranking_metrics(r, [0.0] * len(r)).items() if k != "ece"}
        for name, r in found.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opensesame_predictor.offline.refit", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ranking = commands.add_parser("rank", help="rank authored files into a dump of their own")
    ranking.add_argument("output", type=Path, help="the dump to write (.npz)")
    ranking.add_argument("files", type=Path, nargs="+", help="authored files (.jsonl)")
    ranking.add_argument("--spec", action="append", required=True, help="spec file or folder")
    scoring = commands.add_parser("score", help="refit a run's dump and score authored files")
    scoring.add_argument("run", type=Path, help="a dump of `train --dump`")
    scoring.add_argument("beside", type=Path, nargs="*", help="dumps of more authored files")
    scoring.add_argument("-c", type=float, default=1.0, help="inverse L2 penalty (as `train`)")
    scoring.add_argument(
        "--drop", action="append", default=[], metavar="FEATURE", help="leave a feature out"
    )
    scoring.add_argument(
        "--learn-authored",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="learn from the other files' authored cases too, at this share of the fit",
    )
    scoring.add_argument(
        "--unread", action="append", default=[], metavar="FILE", help="a file never learned from"
    )
    scoring.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = parser.parse_args(argv)
    try:
        if args.command == "rank":
            for name, n in rank(args.files, args.spec, args.output).items():
                print(f"{name}: {n} cases")
            return 0
        scores = score(args.run, args.beside, args.c, args.drop, args.learn_authored, args.unread)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    print(f"{'file':34s} {'n':>5s} {'top-1':>6s} {'R@5':>6s} {'MRR':>6s}")
    for name, row in scores.items():
        print(
            f"{name:34s} {row['n']:5d} {row['top1']:6.3f} {row['recall_at_5']:6.3f} "
            f"{row['mrr']:6.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
