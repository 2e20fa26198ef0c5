"""Requests people wrote over APIs of the training corpus, labelled by reading the specs
(`validation/`): the closest thing to real use that training may look at. They are scored by
weights fitted without their APIs, reported beside the synthetic validation, and the softmax
scale is calibrated on them together with the synthetic cases held out of the fit.

A case's `spec` names spec files of the training sources by file name; several names, comma
separated, are loaded together as one workspace.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opensesame_predictor.core.catalog import Catalog, LoadedSpec, split_key
from opensesame_predictor.core.models import HistoryEvent, PredictRequest
from opensesame_predictor.core.predictor import Predictor, feature_matrix
from opensesame_predictor.core.predictor import Ranked as RankedOperation
from opensesame_predictor.core.ranker import Ranker
from opensesame_predictor.offline.evaluate import EvalCase, is_gold, parse_case


@dataclass
class AuthoredFile:
    name: str
    cases: list[EvalCase]
    specs: list[list[LoadedSpec]]  # each case's specs, loaded together

    @property
    def apis(self) -> set[str]:
        return {item.summary.name for specs in self.specs for item in specs}


def authored_cases(path: Path) -> Iterator[tuple[int, EvalCase]]:
    """The cases of a file in the authored format, each with its line number; a line that is
    not a case is an error naming it. The one reader of the format: the validation files, the
    requests people wrote for tuning, and the specs either may not be tuned on."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = parse_case(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not a case: {exc}") from None
        yield number, case


def spec_names(case: EvalCase) -> list[str]:
    """The spec files a case loads together, by file name."""
    return [name.strip() for name in case.spec.split(",")]


def authored_specs(paths: Sequence[Path]) -> set[str]:
    """The spec file names the cases of some authored files use."""
    return {name for path in paths for _, case in authored_cases(path) for name in spec_names(case)}


def read_authored(path: Path, loaded: Sequence[LoadedSpec]) -> AuthoredFile:
    """The cases of one file, each with the training specs it names; an unknown spec name or
    a gold naming no operation is an error naming the line."""
    by_file = {Path(item.summary.source).name: item for item in loaded if item.parsed is not None}
    cases: list[EvalCase] = []
    specs: list[list[LoadedSpec]] = []
    for number, case in authored_cases(path):
        names = spec_names(case)
        unknown = [name for name in names if name not in by_file]
        if unknown:
            raise ValueError(
                f"{path}:{number}: spec {', '.join(unknown)} is not among the training specs"
            )
        chosen = [by_file[name] for name in names]
        operations = [op for item in chosen if item.parsed for op in item.parsed.operations]
        for call in case.gold:
            if not any(is_gold(op.method, op.path, [split_key(call)]) for op in operations):
                raise ValueError(f"{path}:{number}: gold {call!r} names no operation of its specs")
        cases.append(case)
        specs.append(chosen)
    return AuthoredFile(path.name, cases, specs)


def _ranked(
    authored: AuthoredFile, ranker: Ranker
) -> Iterator[tuple[EvalCase, list[RankedOperation]]]:
    """Each case with its candidates in order, ranked among the specs it names (loaded once
    per set of specs)."""
    predictors: dict[tuple[str, ...], Predictor] = {}
    for case, specs in zip(authored.cases, authored.specs, strict=True):
        key = tuple(item.summary.name for item in specs)
        if key not in predictors:
            predictors[key] = Predictor(Catalog(specs), ranker=ranker, enable_guardrails=False)
        request = PredictRequest(
            prompt=case.prompt[:4096],
            history=[HistoryEvent(api_call=call) for call in case.history],
        )
        ranked, _ = predictors[key].rank(request)
        yield case, ranked


def _golds(case: EvalCase, ranked: list[RankedOperation]) -> list[bool]:
    gold = [split_key(g) for g in case.gold]
    return [is_gold(r.operation.method, r.operation.path, gold) for r in ranked]


def case_matrices(authored: AuthoredFile) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each case's candidates as a feature matrix, and which of them are gold (a boolean per
    candidate): what `train --dump` saves, to judge a fit without ranking the cases again."""
    return [
        (feature_matrix(ranked), np.array(_golds(case, ranked), dtype=bool))
        for case, ranked in _ranked(authored, Ranker())
    ]
