"""Optional refinement of a ranking by a local model (Ollama), under a strict time budget.

The refiner only ever re-orders what the ranker proposed: the model sees the top-K candidate
operations as delimited data, answers JSON constrained by a schema, and its answer is validated
(operations outside the candidates are dropped, suggested parameters are checked against the
operation and must be grounded in the request). A slow, absent or wrong model never fails a
request: the ranker's result comes back with `processing_method` "ml" and the reason in
`metadata.refinement`. After a failure the provider is skipped for a back-off period.
The providers and what they are sent live in `llm.py`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import anyio
from pydantic import BaseModel, Field

from opensesame_predictor.core.guardrails import INJECTION_RULES
from opensesame_predictor.core.models import (
    Operation,
    Parameter,
    Prediction,
    PredictRequest,
    PredictResult,
    Refinement,
    RefinementStatus,
)
from opensesame_predictor.core.params import extract_values, fill, normalise

if TYPE_CHECKING:
    pass


from opensesame_predictor.core.llm import (
    NoRefinement,
    ProviderHealth,
    RefinementFailure,
    RefinementProvider,
    candidate_refs,
    compact,
    history_lines,
    model_data,
    short_reason,
)

log = logging.getLogger(__name__)

FAILURES: frozenset[str] = frozenset(
    {"timeout", "unreachable", "server_error", "invalid_answer", "error"}
)

LLM_WEIGHT = 0.7  # share of the merged score that comes from the model's ordering
BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 120.0
MAX_VALUE = 200  # characters of a suggested parameter value


# ---------------------------------------------------------------- parameter checks and merging


def _grounding(request: PredictRequest) -> str:
    """The text a suggested free-form value must appear in: the prompt and the history."""
    parts = [request.prompt]
    for event in request.history:
        parts.append(event.api_call)
        parts.extend(_scalars(event.parameters))
        parts.extend(_scalars(event.response or {}))
    return "\n".join(parts).casefold()


def _scalars(value: Any, depth: int = 0) -> list[str]:
    if depth > 4:
        return []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v, depth + 1)]
    if isinstance(value, list):
        return [s for v in value[:100] for s in _scalars(v, depth + 1)]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def _coerce(param: Parameter, value: Any) -> Any:
    """The value in the parameter's type, or raise ValueError with the reason."""
    if isinstance(value, dict):
        raise ValueError("objects are not accepted")
    kind = param.type
    if kind == "array":
        items = value if isinstance(value, list) else [value]
        if not items or len(items) > 20:
            raise ValueError("array of 1..20 items expected")
        return [_coerce_scalar(param, item, "string") for item in items]
    return _coerce_scalar(param, value, kind)


def _coerce_scalar(param: Parameter, value: Any, kind: str) -> Any:
    if isinstance(value, list | dict) or value is None:
        raise ValueError(f"{kind} expected")
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true"
        raise ValueError("boolean expected")
    if kind == "integer":
        if isinstance(value, bool):
            raise ValueError("integer expected")
        if isinstance(value, int):
            return value
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        raise ValueError("integer expected")
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError("number expected")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("number expected") from None
        if not math.isfinite(number):
            raise ValueError("number expected")
        return value if isinstance(value, int | float) else number
    if isinstance(value, bool):
        raise ValueError("string expected")
    text = model_data(str(value), MAX_VALUE + 1).strip()
    if not text or len(text) > MAX_VALUE:
        raise ValueError(f"string of 1..{MAX_VALUE} characters expected")
    return text


def check_parameters(
    op: Operation, suggested: dict[str, Any], grounding: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Suggested values that fit the operation: a known parameter (not a header or cookie), the
    right type, inside its enum, free of injection shapes, and, unless the enum or the boolean
    type bounds it, stated in the prompt or the history. Returns (accepted, rejected reasons)."""
    by_name = {
        normalise(p.name): p for p in op.parameters if p.location not in ("header", "cookie")
    }
    accepted: dict[str, Any] = {}
    rejected: dict[str, str] = {}
    for raw_name, value in list(suggested.items())[:50]:
        name = model_data(str(raw_name), 64)
        param = by_name.get(normalise(name))
        if param is None:
            rejected[name] = "not a parameter of the operation"
            continue
        try:
            coerced = _coerce(param, value)
        except ValueError as exc:
            rejected[param.name] = str(exc)
            continue
        items = coerced if isinstance(coerced, list) else [coerced]
        if param.enum:
            allowed = {str(v) for v in param.enum}
            if any(str(item) not in allowed for item in items):
                rejected[param.name] = "not one of the allowed values"
                continue
        elif param.type != "boolean" and any(
            str(item).casefold() not in grounding for item in items
        ):
            rejected[param.name] = "not stated in the request or the history"
            continue
        if any(
            isinstance(item, str) and pattern.search(item)
            for item in items
            for pattern in INJECTION_RULES.values()
        ):
            rejected[param.name] = "refused by a guardrail rule"
            continue
        accepted[param.name] = coerced
    return accepted, rejected


def merge_scores(
    ranker: Sequence[float], model_positions: Sequence[int | None], weight: float = LLM_WEIGHT
) -> list[float]:
    """Blend the ranker's probabilities (scaled to the best one) with the model's ordering
    (1 for its first choice, 1/2 for the second, ...; 0 when not named)."""
    best = max(ranker, default=0.0) or 1.0
    merged = []
    for probability, position in zip(ranker, model_positions, strict=True):
        model = 0.0 if position is None else 1.0 / (position + 1)
        merged.append(weight * model + (1.0 - weight) * probability / best)
    return merged


# ---------------------------------------------------------------- the refiner


class RefinerState(BaseModel):
    """What /health and `--json` report about the refiner."""

    enabled: bool
    provider: str
    model: str | None = None
    host: str | None = None
    budget_ms: int
    top_k: int
    last_status: RefinementStatus | None = None
    last_detail: str | None = None
    last_elapsed_ms: float | None = None
    last_at: datetime | None = None
    consecutive_failures: int = 0
    backing_off_until: datetime | None = None
    outcomes: dict[str, int] = Field(default_factory=dict)
    health: ProviderHealth | None = None


class Refiner:
    """Wraps a provider with the budget, the validation, the merge and the back-off."""

    def __init__(
        self,
        provider: RefinementProvider,
        budget_ms: int = 1500,
        top_k: int = 10,
        clock: Callable[[], float] = time.monotonic,
        host: str | None = None,
    ) -> None:
        self.provider = provider
        self.budget_ms = budget_ms
        self.top_k = top_k
        self.host = host
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._until = 0.0  # monotonic deadline of the current back-off
        self._last: tuple[RefinementStatus, str, float, datetime] | None = None
        self._outcomes: dict[str, int] = {}
        self._health: ProviderHealth | None = None

    @property
    def enabled(self) -> bool:
        return not isinstance(self.provider, NoRefinement)

    @property
    def disabled(self) -> Refinement:
        """What a result says when refinement is off."""
        return Refinement(status="disabled", provider=self.provider.name)

    @property
    def active(self) -> bool:
        """Whether the next request would consult the provider (enabled, not backing off)."""
        return self.enabled and self._clock() >= self._until

    @property
    def state(self) -> RefinerState:
        with self._lock:
            last = self._last
            remaining = self._until - self._clock()
            return RefinerState(
                enabled=self.enabled,
                provider=self.provider.name,
                model=self.provider.model,
                host=self.host,
                budget_ms=self.budget_ms,
                top_k=self.top_k,
                last_status=last[0] if last else None,
                last_detail=last[1] if last else None,
                last_elapsed_ms=last[2] if last else None,
                last_at=last[3] if last else None,
                consecutive_failures=self._failures,
                backing_off_until=_wall(remaining) if remaining > 0 else None,
                outcomes=dict(self._outcomes),
                health=self._health,
            )

    async def probe(self) -> ProviderHealth:
        """Ask the provider whether it is up (for startup logs and deep health checks)."""
        try:
            with anyio.fail_after(self.budget_ms / 1000):
                health = await self.provider.health()
        except TimeoutError:
            health = ProviderHealth(ok=False, detail=f"no answer within {self.budget_ms} ms")
        self._health = health
        return health

    async def refine(
        self, request: PredictRequest, result: PredictResult, candidates: list[Operation]
    ) -> PredictResult:
        """The refined result, or the ranker's (cut to `max_predictions`) with the reason.
        Never raises: a failure of the provider or of this code falls back to the ranker."""
        started = time.perf_counter()
        if not self.enabled:
            return _fallback(request, result, self.disabled)
        provider = {
            "provider": self.provider.name,
            "model": self.provider.model,
            "budget_ms": self.budget_ms,
        }
        now = self._clock()
        if now < self._until:
            with self._lock:
                self._outcomes["backing_off"] = self._outcomes.get("backing_off", 0) + 1
            backing_off = Refinement(
                provider=self.provider.name,
                model=self.provider.model,
                budget_ms=self.budget_ms,
                status="backing_off",
                retry_at=_wall(self._until - now).isoformat().replace("+00:00", "Z"),
                last_failure=self._last[0] if self._last else None,
            )
            return _fallback(request, result, backing_off)
        try:
            refined, details = await self._refine(request, result, candidates)
        except RefinementFailure as exc:
            refined, details = None, {"status": exc.status, "detail": exc.detail}
        except TimeoutError:
            refined = None
            details = {"status": "timeout", "detail": f"no answer within {self.budget_ms} ms"}
        except Exception as exc:  # the refiner must never break a request
            log.exception("refinement failed unexpectedly")
            refined, details = None, {"status": "error", "detail": short_reason(exc)}
        elapsed = round((time.perf_counter() - started) * 1000, 3)
        info = Refinement.model_validate({**provider, **details, "elapsed_ms": elapsed})
        self._record(info.status, info.detail or "", elapsed)
        if refined is None:
            out = _fallback(request, result, info)
        else:
            out = refined
            out.metadata.processing_method = "hybrid_ml_llm"
            out.metadata.refinement = info
        total = round(result.processing_time_ms + elapsed, 3)
        out.processing_time_ms = total
        out.metadata.processing_time_ms = total
        return out

    async def _refine(
        self, request: PredictRequest, result: PredictResult, candidates: list[Operation]
    ) -> tuple[PredictResult | None, dict[str, Any]]:
        pool = _pool(request, result, candidates[: self.top_k])
        ops = [op for op, _ in pool if op is not None]
        if not ops:
            return None, {"status": "skipped", "detail": "no candidates"}
        refs = candidate_refs(ops)
        by_op = {op.uid: ref for ref, op in refs.items()}
        sent = [compact(ref, op) for ref, op in refs.items()]
        prompt = model_data(request.prompt, len(request.prompt) + 1)
        with anyio.fail_after(self.budget_ms / 1000):
            answer = await self.provider.rerank(prompt, history_lines(request), sent)

        offered = {c.ref for c in sent}
        lookup = {_canonical(ref): ref for ref in offered}
        positions: dict[str, int] = {}
        suggestions: dict[str, dict[str, Any]] = {}
        dropped: list[str] = []
        for choice in answer.ranking[: 3 * self.top_k]:
            ref = lookup.get(_canonical(choice.operation))
            if ref is None:
                dropped.append(model_data(choice.operation, 120))
                continue
            if ref not in positions:
                positions[ref] = len(positions)
                suggestions[ref] = choice.parameters
        if not positions:
            detail = "no candidate operation in the answer" if dropped else "empty ranking"
            return None, {"status": "invalid_answer", "detail": detail, "dropped": dropped}

        probabilities = [prediction.confidence for _, prediction in pool]
        merged = merge_scores(
            probabilities,
            [None if op is None else positions.get(by_op[op.uid]) for op, _ in pool],
            LLM_WEIGHT,
        )
        order = sorted(range(len(pool)), key=lambda i: (-merged[i], i))
        mass = sum(probabilities) or 1.0
        total = sum(merged) or 1.0
        grounding = _grounding(request)
        predictions: list[Prediction] = []
        llm_parameters: dict[str, list[str]] = {}
        rejected_parameters: dict[str, dict[str, str]] = {}
        for rank, index in enumerate(order[: request.max_predictions], start=1):
            op, prediction = pool[index]
            ref = by_op[op.uid] if op is not None else ""
            prediction = prediction.model_copy(deep=True)
            if op is not None and ref in suggestions:
                accepted, rejected = check_parameters(op, suggestions[ref], grounding)
                used = _apply(prediction, accepted)
                if used:
                    llm_parameters[prediction.api_call] = used
                if rejected:
                    rejected_parameters[prediction.api_call] = rejected
            prediction.rank = rank
            prediction.confidence = round(mass * merged[index] / total, 4)
            if ref in positions:
                note = f"the local model ranks it #{positions[ref] + 1}"
                prediction.reasons = [*prediction.reasons, note]
            predictions.append(prediction)

        refined = result.model_copy(deep=True)
        refined.predictions = predictions
        refined.confidence_scores = [p.confidence for p in predictions]
        details: dict[str, Any] = {
            "status": "ok",
            "order": [refs[ref].key for ref in sorted(positions, key=positions.__getitem__)],
            "ranker_order": [p.api_call for _, p in pool][: request.max_predictions],
            "dropped": dropped,
            "llm_parameters": llm_parameters,
            "rejected_parameters": rejected_parameters,
        }
        return refined, details

    def _record(self, status: str, detail: str, elapsed_ms: float) -> None:
        with self._lock:
            self._outcomes[status] = self._outcomes.get(status, 0) + 1
            self._last = (cast(RefinementStatus, status), detail, elapsed_ms, datetime.now(UTC))
            if status not in FAILURES:
                if self._failures:
                    log.info("LLM refinement by %s answers again", self.provider.name)
                self._failures = 0
                return
            # "no candidate in the answer" is about one request, not the provider's health
            if status == "invalid_answer" and detail.startswith(("no candidate", "empty ranking")):
                return
            now = self._clock()
            if now < self._until:
                return  # a concurrent request already opened this back-off window
            self._failures += 1
            delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (self._failures - 1))
            self._until = now + delay
        log.warning(
            "LLM refinement by %s failed (%s: %s); using the ranker alone for %.0f s",
            self.provider.name,
            status,
            detail,
            delay,
        )


def _canonical(ref: str) -> str:
    text = " ".join(str(ref).split())
    head, _, tail = text.partition(" ")
    if ":" in head and not tail.startswith("/"):
        return text  # not a `METHOD /path` shape; compared as is
    if ":" in head:  # `spec:METHOD /path`
        spec, _, method = head.rpartition(":")
        return f"{spec}:{method.upper()} {tail}"
    return f"{head.upper()} {tail}"


def _wall(seconds_from_now: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=max(0.0, seconds_from_now))


def _pool(
    request: PredictRequest, result: PredictResult, candidates: list[Operation]
) -> list[tuple[Operation | None, Prediction]]:
    """The ranker's predictions in ranker order (with their operation when it is a candidate),
    then the candidates the ranker did not return (probability 0)."""
    by_uid = {op.uid: op for op in candidates}
    pool: list[tuple[Operation | None, Prediction]] = []
    seen: set[str] = set()
    for prediction in result.predictions:
        uid = f"{prediction.spec}:{prediction.api_call}"
        if uid in seen:
            continue
        pool.append((by_uid.get(uid), prediction))
        seen.add(uid)
    missing = [op for op in candidates if op.uid not in seen]
    values = extract_values(request.prompt) if missing else None  # only a caller's own list
    for op in missing:
        if op.uid in seen or values is None:
            continue
        params, sources = fill(op, values, {})
        pool.append((op, Prediction.of(op, 0.0, 0, params, sources)))
        seen.add(op.uid)
    return pool


def _apply(prediction: Prediction, accepted: dict[str, Any]) -> list[str]:
    """Put the model's values where the ranker had nothing better: missing values and
    placeholder/example/default ones. Values from the prompt or the history stay."""
    used = []
    for name, value in accepted.items():
        source = prediction.parameter_sources.get(name)
        if name in prediction.parameters and source in ("prompt", "history"):
            continue
        prediction.parameters[name] = value
        prediction.parameter_sources[name] = "llm"
        used.append(name)
    return used


def _fallback(request: PredictRequest, result: PredictResult, info: Refinement) -> PredictResult:
    """The ranker's result as it is (cut to `max_predictions`), saying why."""
    out = result.model_copy(deep=True)
    if len(out.predictions) > request.max_predictions:
        out.predictions = out.predictions[: request.max_predictions]
        out.confidence_scores = [p.confidence for p in out.predictions]
    out.metadata.processing_method = "ml"
    out.metadata.refinement = info
    return out
