"""Helpers of the refinement tests."""

from __future__ import annotations

from typing import Any

from opensesame_predictor.config import Settings
from opensesame_predictor.core.models import Operation, PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.refine import Refiner
from opensesame_predictor.service import build_refiner
from support import Clock


def ollama_refiner(url: str, clock: Clock | None = None, **overrides: Any) -> Refiner:
    settings = Settings(llm_provider="ollama", ollama_host=url, **overrides)
    return build_refiner(settings, clock) if clock else build_refiner(settings)


def candidates(predictor: Predictor, request: PredictRequest, k: int = 10) -> list[Operation]:
    """The ranker's top-k operations, as Predictor.apredict hands them to the refiner."""
    wide = predictor.predict(request.model_copy(update={"max_predictions": k}))
    ops = [predictor.catalog.get(p.api_call, spec=p.spec) for p in wide.predictions]
    return [op for op in ops if op is not None]
