"""Fixtures of the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.store import SpecStore
from opensesame_predictor.service import Service

PETSTORE = Path(__file__).resolve().parents[2] / "fixtures" / "petstore-3.0.yaml"


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """One petstore predictor per module (it is stateless between calls), on its own store."""
    settings = Settings(specs=[str(PETSTORE)])
    store = SpecStore(tmp_path_factory.mktemp("store") / "store.json", settings.cache_ttl_seconds)
    runtime = Service(settings, store)
    runtime.set_sources(settings.specs)
    runtime.load()
    return runtime.predictor
