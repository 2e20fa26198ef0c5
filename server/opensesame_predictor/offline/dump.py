"""The cases `train` ranks, saved (`train --dump FILE.npz`), so that a candidate change to the
fit (another penalty, features left out, a second stage) is judged on the same cases in seconds
instead of ranking them all again: every synthetic case with its API, kind, context and fold,
and every authored file's cases with their gold candidates and APIs. Plain numpy arrays, read
back without pickles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opensesame_predictor.core.ranker import FEATURES


@dataclass
class DumpedCase:
    matrix: np.ndarray  # candidates x features
    gold: np.ndarray  # a boolean per candidate
    api: str
    kind: str  # synthetic: the task's kind; authored: the file's name
    context: str  # synthetic: "api" or "workspace"; authored: "authored"
    fold: int  # synthetic: the API's fold; authored: -1
    words: int = 0  # how many words the request has (0 in dumps from before it was saved)


@dataclass
class Dump:
    features: list[str]
    synthetic: list[DumpedCase]
    authored: dict[str, list[DumpedCase]]
    authored_apis: dict[str, set[str]]  # fit without these to score a file


def save(
    path: Path,
    synthetic: Sequence[DumpedCase],
    authored: dict[str, list[DumpedCase]],
    authored_apis: dict[str, set[str]],
) -> None:
    cases = [*synthetic, *(case for file in authored.values() for case in file)]
    sizes = np.array([len(case.matrix) for case in cases], dtype=np.int64)
    empty = np.zeros((0, len(FEATURES)))
    np.savez_compressed(
        path,
        features=np.array(FEATURES),
        matrix=np.vstack([empty, *(case.matrix for case in cases)]).astype(np.float32),
        gold=np.concatenate([np.zeros(0, dtype=bool), *(case.gold for case in cases)]),
        sizes=sizes,
        api=np.array([case.api for case in cases]),
        kind=np.array([case.kind for case in cases]),
        context=np.array([case.context for case in cases]),
        fold=np.array([case.fold for case in cases], dtype=np.int64),
        words=np.array([case.words for case in cases], dtype=np.int64),
        apis=np.array([f"{name}\t{api}" for name, apis in authored_apis.items() for api in apis]),
    )


def load(path: Path) -> Dump:
    with np.load(path, allow_pickle=False) as saved:
        starts = np.concatenate([[0], np.cumsum(saved["sizes"])])
        matrix, gold = saved["matrix"].astype(np.float64), saved["gold"]
        count = len(saved["sizes"])
        words = saved["words"] if "words" in saved.files else np.zeros(count, dtype=np.int64)
        cases = [
            DumpedCase(
                matrix[starts[i] : starts[i + 1]],
                gold[starts[i] : starts[i + 1]],
                str(api),
                str(kind),
                str(context),
                int(fold),
                int(said),
            )
            for i, (api, kind, context, fold, said) in enumerate(
                zip(
                    saved["api"], saved["kind"], saved["context"], saved["fold"], words, strict=True
                )
            )
        ]
        apis: dict[str, set[str]] = {}
        for pair in saved["apis"]:
            name, api = str(pair).split("\t", 1)
            apis.setdefault(name, set()).add(api)
        features = [str(name) for name in saved["features"]]
    authored: dict[str, list[DumpedCase]] = {}
    for case in cases:
        if case.context == "authored":
            authored.setdefault(case.kind, []).append(case)
    synthetic = [case for case in cases if case.context != "authored"]
    return Dump(features, synthetic, authored, apis)
