"""The one factory of services for tests: over given specs, on the test's own store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service


def make_service(*specs: Path | str, load: bool = True, **settings: Any) -> Service:
    """A service over `specs` (the store comes from OPENSESAME_DATABASE_URL), loaded unless
    `load=False`."""
    service = Service(Settings(specs=[str(s) for s in specs], **settings))
    service.set_sources(service.settings.specs, service.settings.workspace or None)
    if load:
        service.load()
    return service
