"""Fixtures of the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensesame_predictor.core.predictor import Predictor
from support.services import service_over

PETSTORE = Path(__file__).resolve().parents[2] / "fixtures" / "petstore-3.0.yaml"


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """One petstore predictor per module (it is stateless between calls), on its own store."""
    return service_over(PETSTORE, tmp_path_factory).predictor
