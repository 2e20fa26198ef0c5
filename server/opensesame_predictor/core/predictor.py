"""The Predictor: validate -> candidates -> features -> rank -> parameters -> result
(-> refinement, in `apredict`).

`predict` is synchronous, CPU-only and does no I/O: the catalog and its index are built before.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opensesame_predictor import __version__
from opensesame_predictor.core.catalog import (
    Catalog,
    bare_path,
    query_values,
    split_call,
    without_action,
)
from opensesame_predictor.core.errors import CatalogEmpty, InvalidRequest
from opensesame_predictor.core.features import (
    LexicalScores,
    clauses,
    method_intent,
    through_step,
    verb_objects,
)
from opensesame_predictor.core.guardrails import check_request, parse_request
from opensesame_predictor.core.history import (
    HistoryState,
    asks_again,
    refers_back,
    structure_table,
)
from opensesame_predictor.core.index import PredictorIndex, readable_notes
from opensesame_predictor.core.models import (
    Operation,
    Prediction,
    PredictMetadata,
    PredictRequest,
    PredictResult,
)
from opensesame_predictor.core.params import (
    PromptValues,
    count_values,
    extract_values,
    fill,
    history_values,
    without_values,
)
from opensesame_predictor.core.ranker import BACKED, FEATURES, Ranker
from opensesame_predictor.core.reasons import explain
from opensesame_predictor.core.refine import Refiner

log = logging.getLogger(__name__)

CANDIDATES = 40  # operations that get the full feature set after the lexical pre-selection
ABSTAIN_BELOW = 0.04  # best word similarity under which nothing in the catalog fits


@dataclass
class Ranked:
    """One operation with its score and probability, before it becomes a Prediction."""

    operation: Operation
    score: float
    probability: float
    table: dict[str, np.ndarray]  # every candidate's features; this one is at `row`
    row: int
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> dict[str, float]:
        return {name: float(values[self.row]) for name, values in self.table.items()}


def feature_matrix(ranked: list[Ranked]) -> np.ndarray:
    """The candidates' features, one row each, columns in `FEATURES` order: what training fits
    weights on."""
    if not ranked:
        return np.zeros((0, len(FEATURES)))
    table = ranked[0].table  # every candidate shares one feature table
    columns = np.column_stack([table[name] for name in FEATURES]).astype(np.float64)
    return columns[[item.row for item in ranked]]


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
        refiner: Refiner | None = None,
    ) -> None:
        self.refiner = refiner
        self.ranker = ranker or Ranker.load()
        self.max_prompt_length = max_prompt_length
        self.enable_guardrails = enable_guardrails
        self._lock = threading.Lock()
        self._state = (catalog, PredictorIndex(catalog.operations, catalog.about()))

    @property
    def catalog(self) -> Catalog:
        return self._state[0]

    @property
    def model_version(self) -> str:
        return f"opensesame-{__version__}+{self.ranker.version}"

    def update(self, catalog: Catalog, index: PredictorIndex | None = None) -> None:
        """Index a new catalog (or take its index, built before) and swap it in; requests in
        flight finish on the old one."""
        index = index or PredictorIndex(catalog.operations, catalog.about())
        with self._lock:
            self._state = (catalog, index)

    def validate(self, raw: Any) -> PredictRequest:
        request = parse_request(raw)
        check_request(request, self.max_prompt_length, self.enable_guardrails)
        return request

    def predict(self, raw: PredictRequest | dict[str, Any]) -> PredictResult:
        started = time.perf_counter()
        result, _ = self._predict(self.validate(raw), started)
        return result

    async def apredict(self, raw: PredictRequest | dict[str, Any]) -> PredictResult:
        """The async entry point of the surfaces: the ranking, refined by the optional local
        model within its time budget (the plain ranking when it is off, slow or wrong). The
        request is validated once and ranked once; the refiner gets the ranker's top
        operations themselves."""
        started = time.perf_counter()
        request = self.validate(raw)
        refiner = self.refiner
        if refiner is None:
            return self._predict(request, started)[0]
        if not refiner.enabled:  # the common case: say so on the fresh result, no copy needed
            result, _ = self._predict(request, started)
            result.metadata.refinement = refiner.disabled
            return result
        if not refiner.active:  # backing off: the plain ranking, with the reason
            return await refiner.refine(request, self._predict(request, started)[0], [])
        wide = max(request.max_predictions, refiner.top_k)
        result, operations = self._predict(request, started, wide)
        return await refiner.refine(request, result, operations[: refiner.top_k])

    def _predict(
        self, request: PredictRequest, started: float, count: int | None = None
    ) -> tuple[PredictResult, list[Operation]]:
        """The top `count` (default: the request's max_predictions) as a result, and their
        operations in the same order."""
        catalog, index = self._state
        values = extract_values(request.prompt)
        ranked, abstain = self.rank(request, values)
        top = ranked[: request.max_predictions if count is None else count]
        known = self._known_values(request, catalog, index)
        predictions = []
        for position, item in enumerate(top, start=1):
            op = item.operation
            params, sources = fill(op, values, known, index.shapes[index.position[op.uid]])
            reasons = explain(
                op,
                item.features,
                readable_notes(index, index.position[op.uid], item.notes),
                self.ranker.weights,
                request.prompt,
                values,
            )
            predictions.append(
                Prediction.of(op, round(item.probability, 4), position, params, sources, reasons)
            )
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        result = PredictResult(
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
                unmatched_history=self.unmatched(request, catalog),
            ),
        )
        return result, [item.operation for item in top]

    @staticmethod
    def unmatched(request: PredictRequest, catalog: Catalog) -> list[str]:
        """The history entries, as given, that name no operation (`POST /petz`, a method
        `FETCH`): the ranking ignores them, and the caller should know."""
        return [
            f"{event.method} {event.api_call}" if event.method else event.api_call
            for event in request.history
            if catalog.match(event.api_call, event.method, request.spec) is None
        ]

    def rank(
        self, request: PredictRequest, extracted: PromptValues | None = None
    ) -> tuple[list[Ranked], bool]:
        """All candidates in order, and whether the predictor abstains (nothing fits).
        `extracted`: the prompt's values, when the caller has them already."""
        catalog, index = self._state
        if not catalog.operations:
            raise CatalogEmpty("no spec is loaded: add a spec file, folder or URL")
        if request.spec is not None and request.spec not in catalog.spec_names():
            raise InvalidRequest(
                f"spec: unknown spec {request.spec!r}; loaded: {', '.join(catalog.spec_names())}",
                field="spec",
            )
        # words are matched without the values the prompt carries; values fill parameters.
        # First, as the sentence model reads the request meanwhile, until candidates are drawn
        said = without_values(request.prompt)
        lexical = index.lexical(said, request.prompt)
        called = [
            h.operation
            for h in (
                self._resolve(e.api_call, e.method, catalog, request.spec) for e in request.history
            )
            if h.operation is not None
        ]
        positions = [index.position[op.uid] for op in called]
        state = HistoryState.build(
            called,
            [index.shapes[i] for i in positions],
            index.consumable,
            index.to_make(request.prompt, positions),
        )
        if extracted is None:
            extracted = extract_values(request.prompt)
        allowed = index.allowed(request.spec)
        steps = clauses(said)
        focus, number = index.focus(steps, positions, allowed)
        step = steps[number] if number >= 0 else ""
        # the values the step in hand is given: those said before it and in it
        head = through_step(request.prompt, len(steps), number)
        if head != request.prompt:
            extracted = extract_values(head)
        values = count_values(extracted)
        names = extracted.to_look_up
        candidates, notes = index.candidates(lexical, state, values, allowed, CANDIDATES, names)
        listed = extracted.listed
        features = self._features(
            request,
            index,
            lexical,
            state,
            (values, names, listed),
            candidates,
            notes,
            step,
            said,
            extracted,
        )
        features["in_focus"] = focus[candidates]
        features["relevance_of_steps"] = features["relevance"] * float(bool(step))
        backing = np.maximum(features["relevance"], features["semantic_relative"])
        for name in BACKED:
            features[f"{name}_backed"] = features[name] * backing
        for i in candidates[features["in_focus"] > 0]:
            notes.setdefault(int(i), {})["step"] = step
        scores = self.ranker.score(features)
        # how close in meaning the request is to the best candidate: the calibration reads it
        closeness = float(features["sentence"][int(np.argmax(scores))]) if len(scores) else 0.0
        probabilities = self.ranker.probabilities(scores, request.temperature, closeness)
        order = np.lexsort((candidates, -scores))  # ties broken by catalog order: deterministic
        ranked = [
            Ranked(
                operation=catalog.operations[int(candidates[i])],
                score=float(scores[i]),
                probability=float(probabilities[i]),
                table=features,
                row=int(i),
                notes=notes.get(int(candidates[i]), {}),
            )
            for i in order
        ]
        best = float(lexical.fields["all"].max(initial=0.0))
        abstain = not called and best < ABSTAIN_BELOW
        return ranked, bool(abstain)

    @staticmethod
    def _features(
        request: PredictRequest,
        index: PredictorIndex,
        lexical: LexicalScores,
        state: HistoryState,
        supplied: tuple[int, int, int],
        candidates: np.ndarray,
        notes: dict[int, dict[str, str]],
        step: str = "",
        said: str = "",
        extracted: PromptValues | None = None,
    ) -> dict[str, np.ndarray]:
        values, names, listed = supplied
        features = {name: scores[candidates] for name, scores in lexical.fields.items()}
        combined = lexical.combined[candidates]
        best = float(combined.max(initial=0.0))
        features["relevance"] = (combined / best if best > 0 else combined).astype(np.float32)
        features["char"] = lexical.char[candidates]
        has_prompt = bool(said.strip())
        zeros = np.zeros(len(candidates), dtype=np.float32)
        features["fuzzy"] = index.text.fuzzy(said, candidates) if has_prompt else zeros
        features["path_cover"] = index.text.path_cover(lexical.prompt_tokens, candidates)
        semantic = lexical.meaning[candidates]
        features["semantic"] = semantic
        top_meaning = float(semantic.max(initial=0.0))
        features["semantic_relative"] = (
            semantic / top_meaning if top_meaning > 0 else np.zeros_like(semantic)
        ).astype(np.float32)
        # the whole request as the sentence model reads it, values and all
        features["sentence"] = lexical.sentence[candidates] if has_prompt else zeros
        features["api_sentence"] = index.api_sentence(lexical.sentence)[candidates]
        # how much of the operation the words say, of the step in hand when there are several
        features["soft_cover"] = (
            index.text.soft_cover(step or said, candidates) if has_prompt else zeros
        )
        # what to do now: the verbs of the step in hand when the request says several
        intent = method_intent(step or said)
        methods = index.text.methods[candidates]
        features["method_match"] = np.array([m in intent for m in methods], dtype=np.float32)
        objects = verb_objects(step or said)
        features["acts_on"] = np.array(
            [not objects.isdisjoint(index.text.acted_on[i]) for i in candidates], dtype=np.float32
        )
        features["method_conflict"] = np.array(
            [bool(intent) and m not in intent for m in methods], dtype=np.float32
        )
        features["deprecated"] = index.text.deprecated[candidates]
        features["fills_path"] = np.array(
            [index.fills_path(int(i), extracted) for i in candidates], dtype=np.float32
        )
        api = index.api_match(lexical.prompt_tokens)[candidates]
        features["api_match"] = api
        features["api_best"] = (api >= 1.0).astype(np.float32)
        # a session works in one API: the last call says which, when several are loaded
        last_spec = state.last[0].spec if state.last is not None else None
        features["same_api"] = (
            (index.specs[candidates] == last_spec).astype(np.float32)
            if last_spec is not None and len(index.api_names) > 1
            else zeros
        )
        features.update(
            structure_table(
                [index.operations[i] for i in candidates],
                [index.shapes[i] for i in candidates],
                state,
                values,
                names,
            )
        )

        def noted(weight: str) -> np.ndarray:
            """A weight candidate selection noted for some operations, 0 for the rest."""
            return np.array(
                [float(notes.get(int(i), {}).get(weight, 0.0)) for i in candidates],
                dtype=np.float32,
            )

        features["yields_needed"] = noted("yields_weight")
        features["finds_needed"] = noted("finds_weight")
        features["makes_new"] = noted("makes_weight")
        # "borrow this book" after reading one is about that book, not a new one
        referred = state.last[1].names if state.last is not None and refers_back(said) else ()
        features["makes_referred"] = np.array(
            [bool(referred) and index.creates(int(i)) in referred for i in candidates],
            dtype=np.float32,
        )
        times = np.array(
            [state.times.get(index.operations[i].uid, 0) for i in candidates], dtype=np.float32
        )
        features["repeat_listed"] = ((times > 0) & (times < listed)).astype(np.float32)
        # a message of one step that asks for the same again means the last call (read only
        # when there is one, as `refers_back` above)
        again = float(not step and state.last is not None and asks_again(said))
        features["repeat_asked"] = features["called_last"] * again
        # ids flowing from the last call count as far as the words back the operation: the
        # structure adjusts what the request says, it does not overrule it
        backed = np.sqrt(features["relevance"])
        features["consumes_last"] = features["consumes_last"] * backed
        features["consumes_written"] = features["consumes_written"] * backed
        features["crud_relevant"] = features["crud_next"] * features["relevance"]
        # a look-up by name in the API the request is about, of what a likely goal needs
        features["search_for_name"] *= features["api_match"]
        features["search_needed"] = features["search_for_name"] * features["yields_needed"]
        return features

    @staticmethod
    def _resolve(
        api_call: str, method: str | None, catalog: Catalog, spec: str | None = None
    ) -> _Resolved:
        op = catalog.match(api_call, method, spec)
        if op is None:
            return _Resolved(None, {})
        _, path = split_call(api_call, method)
        matched = bare_path(op.path)  # `#Qualifier`, `?page={page}`: not segments of the path
        if without_action(matched) == matched:  # an `Action` query the match looked past
            path = without_action(path)
        values: dict[str, str] = {}
        template = matched.strip("/").split("/")
        concrete = path.strip("/").split("/")
        # a full URL may still carry the server's base path (/v1/pets/42 for /pets/{petId})
        concrete = (
            concrete[len(concrete) - len(template) :] if len(concrete) > len(template) else concrete
        )
        if len(template) == len(concrete):
            for t, c in zip(template, concrete, strict=True):
                if t.startswith("{") and t.endswith("}") and not c.startswith("{"):
                    values[t[1:-1]] = c
        return _Resolved(op, values)

    def _known_values(
        self, request: PredictRequest, catalog: Catalog, index: PredictorIndex
    ) -> dict[str, Any]:
        """Values the history supplies; later calls override earlier ones."""
        known: dict[str, Any] = {}
        for event in request.history:
            resolved = self._resolve(event.api_call, event.method, catalog)
            op = resolved.operation
            shape = index.shapes[index.position[op.uid]] if op is not None else None
            given = {**query_values(event.api_call), **event.parameters}
            known.update(history_values(resolved.path_values, given, event.response, shape))
        return known
