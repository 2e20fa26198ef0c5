"""Evaluation on JSON Lines cases: top-1, recall@5, MRR, calibration (ECE) and latency."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from opensesame_predictor.core.catalog import split_key
from opensesame_predictor.core.errors import InvalidRequest
from opensesame_predictor.core.fetch import is_url
from opensesame_predictor.core.models import MAX_PREDICTIONS, HistoryEvent, PredictRequest
from opensesame_predictor.core.predictor import Predictor


class EvalCase(BaseModel):
    id: str = ""
    spec: str
    prompt: str
    history: list[str] = Field(default_factory=list)
    gold: list[str] = Field(min_length=1)


@dataclass
class FileMetrics:
    n: int
    top1: float
    recall_at_5: float
    mrr: float
    ece: float
    p50_ms: float
    p95_ms: float
    by_step: dict[str, FileMetrics] = field(default_factory=dict)  # with `evaluate(by_step=)`

    @classmethod
    def of(cls, ranks: list[int], confidences: list[float], latencies: list[float]) -> FileMetrics:
        return cls(
            **ranking_metrics(ranks, confidences),
            p50_ms=round(float(np.percentile(latencies, 50)), 3) if latencies else 0.0,
            p95_ms=round(float(np.percentile(latencies, 95)), 3) if latencies else 0.0,
        )

    def as_dict(self) -> dict[str, Any]:
        plain = {k: v for k, v in vars(self).items() if k != "by_step"}
        if self.by_step:
            plain["by_step"] = {step: part.as_dict() for step, part in self.by_step.items()}
        return plain


def read_cases(path: Path) -> list[EvalCase]:
    """Parse a JSONL file; a bad line raises an error naming the file and the line number.
    A relative `spec` is relative to the file's folder and comes back absolute."""
    cases: list[EvalCase] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidRequest(f"{path}: {exc.strerror or exc}", field="file") from None
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{path}: not UTF-8 text ({exc.reason})", field="file") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            case = parse_case(line)
        except ValueError as exc:
            raise InvalidRequest(f"{path}:{number}: {exc}", field="file") from None
        if not is_url(case.spec):
            case.spec = str((path.parent / Path(case.spec).expanduser()).resolve())
        cases.append(case)
    return cases


def parse_case(line: str) -> EvalCase:
    """One JSON line as a case; a ValueError says what is wrong with it: the JSON, or the
    first field that is missing or malformed."""
    try:
        return EvalCase.model_validate(json.loads(line))
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "case"  # not an object
        raise ValueError(f"{where}: {first['msg']}") from None


def ranking_metrics(ranks: list[int], confidences: list[float]) -> dict[str, Any]:
    """n, top-1, recall@5, MRR and ECE of ranks (1 = the gold first, 0 = not ranked) and the
    top prediction's confidence of each case."""
    n = len(ranks)
    hits = [r == 1 for r in ranks]
    return {
        "n": n,
        "top1": round(sum(hits) / n, 4) if n else 0.0,
        "recall_at_5": round(sum(1 for r in ranks if 1 <= r <= 5) / n, 4) if n else 0.0,
        "mrr": round(sum(1.0 / r for r in ranks if r) / n, 4) if n else 0.0,
        "ece": round(expected_calibration_error(confidences, hits), 4),
    }


def expected_calibration_error(confidences: list[float], hits: list[bool], bins: int = 10) -> float:
    """Weighted mean |accuracy - confidence| over equal-width confidence bins."""
    if not confidences:
        return 0.0
    conf = np.asarray(confidences)
    correct = np.asarray(hits, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in itertools.pairwise(edges):
        mask = (conf > low) & (conf <= high) if low > 0 else (conf >= low) & (conf <= high)
        if mask.any():
            total += mask.sum() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total / len(conf))


def is_gold(method: str, path: str, gold: list[tuple[str | None, str]]) -> bool:
    """Whether the operation `method path` (its path key as the spec writes it) is among the
    gold calls, each as split_key reads it: so `#Qualifier` and `#List=ALL` on one path stay
    two operations. A gold call without a method (`/users/{id}`) accepts any method on that
    path."""
    return any(path == g_path and g_method in (None, method) for g_method, g_path in gold)


def _method_path(call: str) -> tuple[str, str]:
    method, path = split_key(call)  # a prediction's key: `GET /rides?page={page}` as it is
    return method or "", path


def evaluate(
    cases: list[EvalCase],
    predictor_for: Callable[[str], Predictor],
    on_case: Callable[[], None] | None = None,
    by_step: bool = False,
) -> FileMetrics:
    """Rank of a case = best rank of any gold operation among the top 20 (0 if none).
    `by_step`: the metrics of first calls (nothing called yet: read from the request alone)
    and of later ones (read from the request and what was called) too."""
    ranks: list[int] = []
    confidences: list[float] = []
    latencies: list[float] = []
    for position, case in enumerate(cases, start=1):
        predictor = predictor_for(case.spec)
        label = case.id or f"#{position}"
        try:
            request = PredictRequest(
                prompt=case.prompt,
                history=[HistoryEvent(api_call=call) for call in case.history],
                max_predictions=MAX_PREDICTIONS,
            )
            started = time.perf_counter()
            result = predictor.predict(request)
        except ValidationError as exc:  # e.g. more than 100 history calls
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidRequest(f"case {label}: {where}: {first['msg']}", field="file") from None
        except InvalidRequest as exc:  # a refused prompt: say which case, keep the type
            exc.message = f"case {label}: {exc.message}"
            exc.args = (exc.message,)
            raise
        latencies.append((time.perf_counter() - started) * 1000)
        gold = [split_key(g) for g in case.gold]
        named = {(op.method, op.path) for op in predictor.catalog.operations}
        for call, (g_method, g_path) in zip(case.gold, gold, strict=True):
            if not any(p == g_path and g_method in (None, m) for m, p in named):
                raise InvalidRequest(  # it could never be ranked: a silent miss otherwise
                    f"case {label}: gold {call!r} names no operation of {case.spec}",
                    field="file",
                )
        rank = next(
            (p.rank for p in result.predictions if is_gold(*_method_path(p.api_call), gold)), 0
        )
        ranks.append(rank)
        confidences.append(result.predictions[0].confidence if result.predictions else 0.0)
        if on_case:
            on_case()
    metrics = FileMetrics.of(ranks, confidences, latencies)
    if by_step:
        for step, later in (("first", False), ("later", True)):
            chosen = [i for i, case in enumerate(cases) if bool(case.history) == later]
            metrics.by_step[step] = FileMetrics.of(
                [ranks[i] for i in chosen],
                [confidences[i] for i in chosen],
                [latencies[i] for i in chosen],
            )
    return metrics
