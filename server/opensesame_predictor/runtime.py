"""Builds the core from Settings: store -> loader -> workspace -> catalog -> predictor.

Every surface (CLI, language server, MCP, HTTP) starts from one Runtime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import (
    Catalog,
    LoadedSpec,
    ProgressCallback,
    SpecLoader,
    SpecSource,
    Workspace,
    resolve_sources,
)
from opensesame_predictor.core.fetch import FetchPolicy
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.refine import Refiner
from opensesame_predictor.core.store import SpecStore

log = logging.getLogger(__name__)


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        timeout_seconds=settings.fetch_timeout_seconds,
        max_bytes=settings.fetch_max_bytes,
        max_redirects=settings.fetch_max_redirects,
        allow_private=settings.allow_private_urls,
    )


class Runtime:
    """The loaded workspace and a predictor over it. `load` may run in a worker thread."""

    def __init__(self, settings: Settings, store: SpecStore | None = None) -> None:
        self.settings = settings
        self.store = store or SpecStore(settings.database_path(), settings.cache_ttl_seconds)
        self.loader = SpecLoader(self.store, fetch_policy(settings), settings.max_spec_bytes)
        self.workspace = Workspace(self.loader)
        self.refiner = Refiner.from_settings(settings)
        self.predictor = Predictor(
            Catalog([]),
            max_prompt_length=settings.max_prompt_length,
            enable_guardrails=settings.enable_guardrails,
            refiner=self.refiner,
        )
        self.ready = threading.Event()
        self._reload_lock = threading.Lock()

    @property
    def catalog(self) -> Catalog:
        return self.predictor.catalog

    def set_sources(self, specs: Iterable[str], workspace: str | Path | None = None) -> None:
        self.workspace.sources = resolve_sources(specs, workspace)

    def load(self, progress: ProgressCallback | None = None) -> Catalog:
        with self._reload_lock:
            catalog = self.workspace.load(progress)
            self.predictor.update(catalog)
        self.ready.set()
        return catalog

    def reload_if_changed(self) -> bool:
        with self._reload_lock:
            changed = self.workspace.reload_if_changed()
            if changed:
                self.predictor.update(self.workspace.catalog)
        return changed

    def add_source(self, source: SpecSource) -> LoadedSpec:
        with self._reload_lock:
            loaded = self.workspace.add_source(source)
            self.predictor.update(self.workspace.catalog)
        return loaded

    @classmethod
    def from_settings(cls, settings: Settings, progress: ProgressCallback | None = None) -> Runtime:
        runtime = cls(settings)
        runtime.set_sources(settings.specs, settings.workspace or None)
        runtime.load(progress)
        return runtime
