"""`opensesame-predictor train`: fit the ranker's weights on synthetic cases from specs.

Deterministic: the same specs and seed give the same weights file. The training specs are the
project's fixtures by default, never the evaluation prompts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.models import HistoryEvent, PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.ranker import FEATURES, GROUPS, Group, Ranker, fit_calibrated
from opensesame_predictor.core.synthetic import SyntheticCase, generate
from opensesame_predictor.runtime import Runtime

DEPRECATED_PENALTY = -1.0


def feature_groups(
    cases: list[SyntheticCase], predictor: Predictor
) -> tuple[list[tuple[np.ndarray, int]], int]:
    """For each case the features of every candidate the predictor ranks, and where the gold
    one is: the softmax that is calibrated here runs over all of them when predicting. Cases
    whose gold is not among the candidates cannot teach the ranker and are counted."""
    groups: list[tuple[np.ndarray, int]] = []
    missed = 0
    for case in cases:
        request = PredictRequest(
            prompt=case.prompt[:4096],
            history=[HistoryEvent(api_call=call) for call in case.history],
            max_predictions=20,
            spec=case.spec,
        )
        ranked, _ = predictor.rank(request)
        keys = [item.operation.key for item in ranked]
        if case.gold not in keys:
            missed += 1
            continue
        # every candidate shares one feature table: its rows, in ranked order
        table = ranked[0].table
        columns = np.column_stack([table[name] for name in FEATURES]).astype(np.float64)
        groups.append((columns[[item.row for item in ranked]], keys.index(case.gold)))
    return groups, missed


def train(
    specs: list[str], seed: int = 13, c: float = 1.0, drop: tuple[str, ...] = ()
) -> tuple[Ranker, dict[str, Any]]:
    """Fit weights on synthetic cases from the specs; each case is ranked within its own spec.
    `drop` names features or groups of features to leave out (their weights stay 0)."""
    # Synthetic requests aim at deprecated operations as often as at any other, so the data
    # cannot teach what real callers do (avoid them): that weight is set, not learned.
    dropped = [i for i, name in enumerate(FEATURES) if name in _expand((*drop, "deprecated"))]
    runtime = Runtime(Settings(enable_guardrails=False))
    # The order of a case's candidates follows the ranking: rank with the hand-set weights, so
    # the result depends on the specs, the seed and the code only, never on the shipped file.
    runtime.predictor.ranker = Ranker()
    runtime.set_sources(specs)
    catalog = runtime.load()
    per_spec = [Catalog([item]) for item in catalog.loaded if item.parsed is not None]
    cases = generate([c for c in per_spec if c.operations], seed=seed)
    by_spec: dict[str, list[SyntheticCase]] = {}
    for case in cases:
        by_spec.setdefault(case.spec, []).append(case)
    groups: dict[str, list[Group]] = {}
    missed = 0
    for spec, spec_cases in by_spec.items():
        groups[spec], spec_missed = feature_groups(spec_cases, runtime.predictor)
        for matrix, _ in groups[spec]:
            matrix[:, dropped] = 0.0
        missed += spec_missed
    weights, scale = fit_calibrated(groups, c=c)
    weights["deprecated"] = DEPRECATED_PENALTY
    ranker = Ranker(weights, scale, version=f"learned-s{seed}")
    meta = {
        "trained_on": sorted(
            Path(spec.source).name for spec in catalog.specs if spec.error is None
        ),
        "cases": len(cases),
        "cases_without_gold_candidate": missed,
        "seed": seed,
        "c": c,
        "dropped": sorted(_expand(drop)),
    }
    return ranker, meta


def _expand(names: tuple[str, ...]) -> set[str]:
    unknown = [n for n in names if n not in GROUPS and n not in FEATURES]
    if unknown:
        raise ValueError(f"unknown feature or group: {', '.join(unknown)}")
    return {feature for n in names for feature in GROUPS.get(n, (n,))}
