"""The factories of services for tests: over given specs, on the test's own store (a module's
own, for module-scoped fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.store import SpecStore
from opensesame_predictor.service import Service


def make_service(*specs: Path | str, load: bool = True, **settings: Any) -> Service:
    """A service over `specs` (the store comes from OPENSESAME_DATABASE_URL), loaded unless
    `load=False`."""
    service = Service(Settings(specs=[str(s) for s in specs], **settings))
    service.set_sources(service.settings.specs, service.settings.workspace or None)
    if load:
        service.load()
    return service


def service_over(spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Service:
    """A service over one spec, loaded, on a store of its own."""
    settings = Settings(specs=[str(spec)])
    store = SpecStore(tmp_path_factory.mktemp("store") / "store.json", settings.cache_ttl_seconds)
    runtime = Service(settings, store)
    runtime.set_sources(settings.specs)
    runtime.load()
    return runtime
