"""Builds the core from Settings: store -> loader -> workspace -> catalog -> predictor.

Every surface (CLI, language server, MCP, HTTP) starts from one Runtime.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from opensesame_predictor import __version__
from opensesame_predictor.config import Settings
from opensesame_predictor.core import features, history, models, specs, vectors
from opensesame_predictor.core import index as index_module
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
from opensesame_predictor.core.index import PredictorIndex
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.refine import Refiner
from opensesame_predictor.core.store import IndexCache, SpecStore

log = logging.getLogger(__name__)


@functools.cache
def _index_code() -> str:
    """The code that builds indexes: any change to it must not reuse indexes built before."""
    digest = hashlib.sha256(__version__.encode())
    for module in (features, history, index_module, models, specs, vectors):
        digest.update(Path(module.__file__ or "").read_bytes())
    digest.update(vectors.VECTORS_FILE.read_bytes())
    return digest.hexdigest()


def catalog_fingerprint(catalog: Catalog) -> str | None:
    """What an index depends on: each spec's name and content, in order, and the code."""
    parts = [_index_code()]
    for item in catalog.loaded:
        if item.parsed is None:
            continue
        if not item.parsed.content_hash:
            return None
        parts.append(f"{item.summary.name}={item.parsed.content_hash}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


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
        self.store = store or SpecStore(
            settings.database_path(),
            settings.cache_ttl_seconds,
            max_bytes=settings.store_max_bytes,
            max_age_seconds=settings.store_max_age_seconds,
        )
        self.index_cache = IndexCache(
            self.store.path.parent / "indexes" if self.store.path is not None else None
        )
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
            self.predictor.update(catalog, self.index_for(catalog))
        self.ready.set()
        return catalog

    def index_for(self, catalog: Catalog) -> PredictorIndex:
        """The catalog's index from the cache when its specs are unchanged, else built."""
        key = catalog_fingerprint(catalog)
        if key:
            cached = self.index_cache.get(key)
            if isinstance(cached, PredictorIndex) and cached.size == len(catalog.operations):
                return cached.attach(catalog.operations)
        index = PredictorIndex(catalog.operations, catalog.about())
        if key:
            self.index_cache.put(key, index)
        return index

    def reload_if_changed(self) -> bool:
        with self._reload_lock:
            changed = self.workspace.reload_if_changed()
            if changed:
                catalog = self.workspace.catalog
                self.predictor.update(catalog, self.index_for(catalog))
        return changed

    def add_source(self, source: SpecSource) -> LoadedSpec:
        with self._reload_lock:
            loaded = self.workspace.add_source(source)
            catalog = self.workspace.catalog
            self.predictor.update(catalog, self.index_for(catalog))
        return loaded

    @classmethod
    def from_settings(cls, settings: Settings, progress: ProgressCallback | None = None) -> Runtime:
        runtime = cls(settings)
        runtime.set_sources(settings.specs, settings.workspace or None)
        runtime.load(progress)
        return runtime
