"""Shared fixtures: paths to the spec fixtures and an isolated store for every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(autouse=True)
def isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own store file, so tests never share or touch the user's cache."""
    path = tmp_path / "store" / "store.json"
    monkeypatch.setenv("OPENSESAME_DATABASE_URL", str(path))
    yield path


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def petstore_path() -> Path:
    """The petstore fixture spec (OpenAPI 3.0, YAML, 13 operations)."""
    return FIXTURES / "petstore-3.0.yaml"


@pytest.fixture
def petstore_service(petstore_path: Path) -> Service:
    """A service over the petstore spec, loaded, on the test's own store."""
    return Service.from_settings(Settings(specs=[str(petstore_path)]))
