"""Fixtures of the refinement tests: a stand-in Ollama server and predictors over fixture specs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_ollama import FakeOllama

from opensesame_predictor.config import Settings
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.service import Service
from support import network

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    server = FakeOllama()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def petstore_predictor(fixtures: Path) -> Predictor:
    return Service.from_settings(Settings(specs=[str(fixtures / "petstore-3.0.yaml")])).predictor


@pytest.fixture
def injected() -> Predictor:
    return Service.from_settings(Settings(specs=[str(DATA / "injected-notes.yaml")])).predictor


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    return network.free_port()
