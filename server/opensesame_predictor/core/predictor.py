"""The Predictor: validate -> candidates -> features -> rank -> parameters -> result.

`predict` is synchronous, CPU-only and does no I/O: the catalog and its index are built before.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from opensesame_predictor import __version__
from opensesame_predictor.core.catalog import Catalog, split_call
from opensesame_predictor.core.errors import CatalogEmpty, InvalidRequest
from opensesame_predictor.core.features import CatalogIndex, method_intent, tokens
from opensesame_predictor.core.guardrails import check_request, parse_request
from opensesame_predictor.core.models import (
    Operation,
    Prediction,
    PredictMetadata,
    PredictRequest,
    PredictResult,
)
from opensesame_predictor.core.params import extract_values, fill, history_values, normalise
from opensesame_predictor.core.ranker import Ranker

log = logging.getLogger(__name__)

CANDIDATES = 60  # operations that get the full feature set after the lexical pre-selection
ABSTAIN_BELOW = 0.04  # best word similarity under which nothing in the catalog fits


@dataclass
class Ranked:
    """One operation with its score and probability, before it becomes a Prediction."""

    operation: Operation
    score: float
    probability: float
    features: dict[str, float]


@dataclass
class _Resolved:
    """A history event matched to the catalog."""

    operation: Operation | None
    path_values: dict[str, str]


class Predictor:
    """Ranks the operations of a catalog for a request. Thread-safe: the catalog and index are
    swapped as one immutable pair."""

    def __init__(
        self,
        catalog: Catalog,
        ranker: Ranker | None = None,
        max_prompt_length: int = 4096,
        enable_guardrails: bool = True,
    ) -> None:
        self.ranker = ranker or Ranker()
        self.max_prompt_length = max_prompt_length
        self.enable_guardrails = enable_guardrails
        self._lock = threading.Lock()
        self._state = (catalog, CatalogIndex(catalog.operations))

    @property
    def catalog(self) -> Catalog:
        return self._state[0]

    @property
    def model_version(self) -> str:
        return f"opensesame-{__version__}+{self.ranker.version}"

    def update(self, catalog: Catalog) -> None:
        """Index a new catalog and swap it in; requests in flight finish on the old one."""
        index = CatalogIndex(catalog.operations)
        with self._lock:
            self._state = (catalog, index)

    def validate(self, raw: Any) -> PredictRequest:
        request = parse_request(raw)
        check_request(request, self.max_prompt_length, self.enable_guardrails)
        return request

    def predict(self, raw: PredictRequest | dict[str, Any]) -> PredictResult:
        started = time.perf_counter()
        request = self.validate(raw)
        catalog, _ = self._state
        ranked, abstain = self.rank(request)
        top = ranked[: request.max_predictions]
        values = extract_values(request.prompt)
        known = self._known_values(request, catalog)
        predictions = []
        for position, item in enumerate(top, start=1):
            op = item.operation
            params, sources = fill(op, values, known)
            predictions.append(
                Prediction(
                    api_call=op.key,
                    method=op.method,
                    description=op.summary or op.description[:200],
                    parameters=params,
                    confidence=round(item.probability, 4),
                    rank=position,
                    path=op.path,
                    spec=op.spec,
                    operation_id=op.operation_id,
                    summary=op.summary,
                    reasons=self._reasons(request, item),
                    parameter_sources=sources,
                )
            )
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        return PredictResult(
            predictions=predictions,
            confidence_scores=[p.confidence for p in predictions],
            processing_time_ms=elapsed,
            metadata=PredictMetadata(
                model_version=self.model_version,
                processing_time_ms=elapsed,
                processing_method="ml",
                abstain=abstain,
                candidates=len(ranked),
                specs=catalog.spec_names(),
            ),
        )

    async def apredict(self, raw: PredictRequest | dict[str, Any]) -> PredictResult:
        """The async entry point of the surfaces; refinement hooks in here."""
        return self.predict(raw)

    def rank(self, request: PredictRequest) -> tuple[list[Ranked], bool]:
        """All candidates in order, and whether the predictor abstains (nothing fits)."""
        catalog, index = self._state
        if not catalog.operations:
            raise CatalogEmpty("no spec is loaded: add a spec file, folder or URL")
        if request.spec and request.spec not in catalog.spec_names():
            raise InvalidRequest(
                f"spec: unknown spec {request.spec!r}; loaded: {', '.join(catalog.spec_names())}",
                field="spec",
            )
        history = [
            self._resolve(event.api_call, event.method, catalog) for event in request.history
        ]
        called = {h.operation.uid for h in history if h.operation is not None}
        word, char = index.lexical(request.prompt)
        allowed = np.ones(index.size, dtype=bool)
        if request.spec:
            allowed = np.array([op.spec == request.spec for op in catalog.operations])
        preselect = np.where(allowed, word + 0.5 * char, -np.inf)
        count = min(CANDIDATES, int(allowed.sum()))
        candidates = np.argpartition(-preselect, count - 1)[:count] if count else np.array([])
        candidates = np.asarray(candidates, dtype=int)
        values = extract_values(request.prompt)
        supplied = _supplied_names(history)
        prompt_tokens = tokens(request.prompt)
        intent = method_intent(prompt_tokens)
        methods = index.methods[candidates]
        features = {
            "word": word[candidates],
            "char": char[candidates],
            "fuzzy": index.fuzzy(request.prompt, candidates)
            if request.prompt.strip()
            else np.zeros(len(candidates)),
            "method_match": np.array([m in intent for m in methods], dtype=float),
            "method_conflict": np.array([bool(intent) and m not in intent for m in methods], float),
            "called": np.array(
                [catalog.operations[i].uid in called for i in candidates], dtype=float
            ),
            "deprecated": index.deprecated[candidates],
            "missing_id": np.array(
                [_missing_ids(catalog.operations[i], supplied, values.any) for i in candidates],
                dtype=float,
            ),
        }
        scores = self.ranker.score(features)
        probabilities = self.ranker.probabilities(scores, request.temperature)
        order = np.lexsort((candidates, -scores))  # ties broken by catalog order: deterministic
        ranked = [
            Ranked(
                operation=catalog.operations[int(candidates[i])],
                score=float(scores[i]),
                probability=float(probabilities[i]),
                features={name: float(values[i]) for name, values in features.items()},
            )
            for i in order
        ]
        abstain = not history and (word.max(initial=0.0) < ABSTAIN_BELOW)
        return ranked, bool(abstain)

    @staticmethod
    def _resolve(api_call: str, method: str | None, catalog: Catalog) -> _Resolved:
        op = catalog.match(api_call, method)
        if op is None:
            return _Resolved(None, {})
        _, path = split_call(api_call, method)
        values: dict[str, str] = {}
        template = op.path.strip("/").split("/")
        concrete = path.strip("/").split("/")
        if len(template) == len(concrete):
            for t, c in zip(template, concrete, strict=True):
                if t.startswith("{") and t.endswith("}") and not c.startswith("{"):
                    values[t[1:-1]] = c
        return _Resolved(op, values)

    def _known_values(self, request: PredictRequest, catalog: Catalog) -> dict[str, Any]:
        known: dict[str, Any] = {}
        for event in request.history:
            resolved = self._resolve(event.api_call, event.method, catalog)
            known.update(history_values(resolved.path_values, event.parameters, event.response))
        return known

    @staticmethod
    def _reasons(request: PredictRequest, item: Ranked) -> list[str]:
        reasons: list[str] = []
        op = item.operation
        prompt = set(tokens(request.prompt))
        shared = [
            t
            for t in dict.fromkeys(tokens(f"{op.path} {op.operation_id} {op.summary}"))
            if t in prompt
        ]
        if shared:
            quoted = ", ".join(f"'{t}'" for t in shared[:3])
            reasons.append(f"{quoted} match the path and summary")
        if item.features.get("method_match"):
            reasons.append(f"the request asks for a {op.method}")
        if item.features.get("called"):
            reasons.append("already called earlier")
        if op.deprecated:
            reasons.append("deprecated")
        return reasons[:3]


def _supplied_names(history: list[_Resolved]) -> set[str]:
    """Normalised names of the values the history makes available: path parameters of earlier
    calls and the id-like fields of their responses."""
    supplied: set[str] = set()
    for event in history:
        if event.operation is None:
            continue
        supplied.update(normalise(name) for name in event.operation.path_params)
        for field in event.operation.response_fields:
            leaf = normalise(field.rsplit(".", 1)[-1])
            if leaf.endswith("id"):
                supplied.add(leaf)
    return supplied


def _missing_ids(op: Operation, supplied: set[str], prompt_has_values: bool) -> float:
    """Share of the operation's path parameters that nothing has supplied yet."""
    params = op.path_params
    if not params or prompt_has_values:
        return 0.0
    missing = 0
    for name in params:
        key = normalise(name)
        if key in supplied or (key.endswith("id") and "id" in supplied):
            continue
        missing += 1
    return missing / len(params)
