"""The session every surface shares: the core built from Settings (store -> loader ->
workspace -> catalog -> predictor), its load state, and what the surfaces ask of it.

- load state: `loading`, `ready` or `failed` (with why); the first load may run in the
  background (`start_loading`, `wait_loaded`);
- reload of the spec files changed on disk (`reload_changed_files`, at most every few seconds);
- `add_source` of files confined to the workspace roots (`sources_for`), or URLs;
- `predict` (the ranking, refined when a model is configured), `search`, `find_operation`;
- the refiner's health;
- one error table, code -> meaning, that every surface maps to its protocol (`ERRORS`).

The CLI, the language server, MCP and HTTP each start from one Service.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
import anyio.to_thread

from opensesame_predictor import __version__
from opensesame_predictor.config import Settings
from opensesame_predictor.core import encoder, features, history, models, specs, vectors
from opensesame_predictor.core import index as index_module
from opensesame_predictor.core.catalog import (
    Catalog,
    LoadedSpec,
    ProgressCallback,
    SpecLoader,
    SpecSource,
    Workspace,
    discover,
    ensure_inside,
    resolve_sources,
)
from opensesame_predictor.core.errors import (
    CatalogEmpty,
    FetchRefused,
    GuardrailViolation,
    InvalidRequest,
    OpenSesameError,
    SpecError,
    UnknownOperation,
)
from opensesame_predictor.core.fetch import FetchPolicy, is_url
from opensesame_predictor.core.index import PredictorIndex
from opensesame_predictor.core.llm import NoRefinement, OllamaProvider
from opensesame_predictor.core.models import (
    MAX_PREDICTIONS,
    Operation,
    PredictRequest,
    PredictResult,
    SpecSummary,
)
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.refine import Refiner
from opensesame_predictor.core.store import IndexCache, SpecStore, VectorCache

log = logging.getLogger(__name__)

LoadState = Literal["loading", "ready", "failed"]
LOAD_WAIT_SECONDS = 300.0  # how long adding a source waits for the first load
RELOAD_INTERVAL_SECONDS = 2.0  # spec files are checked for changes at most this often


@functools.cache
def _index_code() -> str:
    """The code that builds indexes: any change to it must not reuse indexes built before."""
    digest = hashlib.sha256(__version__.encode())
    for module in (encoder, features, history, index_module, models, specs, vectors):
        digest.update(Path(module.__file__ or "").read_bytes())
    digest.update(vectors.VECTORS_FILE.read_bytes())
    digest.update(encoder.MODEL_FILE.read_bytes())
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


def build_refiner(settings: Settings, clock: Callable[[], float] = time.monotonic) -> Refiner:
    """The refiner the settings ask for: Ollama within its budget, or none."""
    if settings.llm_provider == "ollama":
        provider = OllamaProvider(
            settings.ollama_host,
            settings.ollama_model,
            settings.llm_timeout_ms / 1000,
            settings.llm_top_k,
        )
        return Refiner(
            provider, settings.llm_timeout_ms, settings.llm_top_k, clock, settings.ollama_host
        )
    return Refiner(
        NoRefinement(settings.llm_provider), settings.llm_timeout_ms, settings.llm_top_k, clock
    )


@dataclass(frozen=True)
class Matches:
    """Operations found for a query, best first, and how many matched before the limit."""

    operations: list[Operation]
    total: int


@dataclass(frozen=True)
class RefinerHealth:
    provider: str
    status: Literal["disabled", "reachable", "unreachable"]
    refiner: dict[str, object]


class Service:
    """The loaded workspace, a predictor over it, and the session state every surface shares.
    The loads run in worker threads; the state is safe to read from any thread."""

    def __init__(self, settings: Settings, store: SpecStore | None = None) -> None:
        self.settings = settings
        self.store = store or SpecStore(
            settings.database_path(),
            settings.cache_ttl_seconds,
            max_bytes=settings.store_max_bytes,
            max_age_seconds=settings.store_max_age_seconds,
        )
        indexes = self.store.path.parent / "indexes" if self.store.path is not None else None
        self.index_cache = IndexCache(indexes)
        self.vector_cache = VectorCache(indexes, encoder.model_digest())
        self._vectors_remembered = False
        self.loader = SpecLoader(self.store, fetch_policy(settings), settings.max_spec_bytes)
        self.workspace = Workspace(self.loader)
        self.refiner = build_refiner(settings)
        self.predictor = Predictor(
            Catalog([]),
            max_prompt_length=settings.max_prompt_length,
            enable_guardrails=settings.enable_guardrails,
            refiner=self.refiner,
        )
        self.ready = threading.Event()  # a load succeeded
        self.failure: str | None = None  # why the first load failed, once it has
        self._settled = threading.Event()  # the first load is over, one way or the other
        self._reload_lock = threading.Lock()
        self._first_load_lock = threading.Lock()
        self._last_reload = time.monotonic()

    @classmethod
    def from_settings(cls, settings: Settings, progress: ProgressCallback | None = None) -> Service:
        service = cls(settings)
        service.set_sources(settings.specs, settings.workspace or None)
        service.load(progress)
        return service

    @property
    def catalog(self) -> Catalog:
        return self.predictor.catalog

    # --- loading -------------------------------------------------------------------------------

    @property
    def state(self) -> LoadState:
        if self.ready.is_set():
            return "ready"
        return "failed" if self.failure is not None else "loading"

    def set_sources(self, specs: Iterable[str], workspace: str | Path | None = None) -> None:
        self.workspace.sources = resolve_sources(specs, workspace)

    def load(self, progress: ProgressCallback | None = None) -> Catalog:
        """Load every source (blocking) and swap the new catalog in."""
        with self._reload_lock:
            catalog = self.workspace.load(progress)
            self.predictor.update(catalog, self.index_for(catalog))
        self.ready.set()
        self._settled.set()
        return catalog

    def load_once(self) -> None:
        """The first load, unless it happened already (blocking: run it in a worker thread).
        A failure is recorded in `failure`, never raised: the surfaces stay up and say why."""
        with self._first_load_lock:
            if self._settled.is_set() or self.ready.is_set():
                self._settled.set()
                return
            try:
                catalog = self.load()
            except Exception as exc:  # a bug in a loader must not take a server down
                log.error("loading specs failed: %s", exc)
                self.failure = str(exc) or type(exc).__name__
                return
            finally:
                self._settled.set()
        for spec in catalog.errors:
            log.warning("spec %s failed: %s", spec.source, spec.error)
        log.info("loaded %d specs, %d operations", len(catalog.specs), len(catalog.operations))

    def start_loading(self) -> None:
        """The first load in a background thread; the surfaces answer meanwhile."""
        if not self._settled.is_set():
            threading.Thread(target=self.load_once, name="opensesame-load", daemon=True).start()

    async def wait_loaded(self) -> None:
        """Until the first load is over (it runs here when nothing started it)."""
        if not self._settled.is_set():
            await anyio.to_thread.run_sync(self.load_once)

    def require_ready(self) -> None:
        """Raise LoadFailed or Loading unless the first load succeeded."""
        if self.failure is not None and not self.ready.is_set():
            raise LoadFailed(self.failure)
        if not self.ready.is_set():
            raise Loading("specs are still loading; retry shortly")

    def index_for(self, catalog: Catalog) -> PredictorIndex:
        """The catalog's index from the cache when its specs are unchanged, else built."""
        key = catalog_fingerprint(catalog)
        if key:
            cached = self.index_cache.get(key)
            if isinstance(cached, PredictorIndex) and cached.size == len(catalog.operations):
                return cached.attach(catalog.operations)
        index = self._build_index(catalog)
        if key:
            self.index_cache.put(key, index)
        return index

    def _build_index(self, catalog: Catalog) -> PredictorIndex:
        """A new index; the sentence model reads only the operation texts no earlier run read
        (their vectors are saved beside the index cache)."""
        reader = encoder.encoder()
        if not self._vectors_remembered:
            self._vectors_remembered = True
            saved = self.vector_cache.load()
            if saved is not None:
                try:
                    reader.remember(*saved)
                except ValueError as exc:
                    log.info("sentence vectors not reused: %s", exc)
        before = reader.reads
        index = PredictorIndex(catalog.operations, catalog.about())
        if reader.reads != before:
            self.vector_cache.save(*reader.kept())
        return index

    def reload_if_changed(self) -> bool:
        """Reload the sources that changed (and retry the failed ones); True when any did."""
        with self._reload_lock:
            changed = self.workspace.reload_if_changed()
            if changed:
                catalog = self.workspace.catalog
                self.predictor.update(catalog, self.index_for(catalog))
        return changed

    def reload_changed_files(self) -> None:
        """Blocking. Reload only when a spec file changed on disk: `reload_if_changed` also
        retries failed sources, and a failing URL must not cost every request a fetch."""
        if self.catalog.files_changed():
            self.reload_if_changed()

    async def refresh(self) -> None:
        """`reload_changed_files` in a worker thread, at most every RELOAD_INTERVAL_SECONDS."""
        if time.monotonic() - self._last_reload > RELOAD_INTERVAL_SECONDS:
            self._last_reload = time.monotonic()
            await anyio.to_thread.run_sync(self.reload_changed_files)

    def sync_sources(
        self, names: list[str], full: bool, progress: ProgressCallback | None = None
    ) -> Catalog:
        """Blocking. Load these sources when they differ from the current ones (or `full`),
        else reload only what changed."""
        sources = resolve_sources(names)
        current = [s.location for s in self.workspace.sources]
        if full or [s.location for s in sources] != current or not self.ready.is_set():
            self.workspace.sources = sources
            return self.load(progress)
        if progress:
            progress(0, 1, "")
        self.reload_if_changed()
        if progress:
            progress(1, 1, "")
        return self.catalog

    # --- adding sources, confined ----------------------------------------------------------

    def add_source(self, source: SpecSource) -> LoadedSpec:
        with self._reload_lock:
            loaded = self.workspace.add_source(source)
            catalog = self.workspace.catalog
            self.predictor.update(catalog, self.index_for(catalog))
        return loaded

    def add_sources(self, sources: list[SpecSource]) -> list[SpecSummary]:
        """Blocking: run in a worker thread. Waits for the first load, then adds each."""
        self._settled.wait(LOAD_WAIT_SECONDS)
        return [self.add_source(source).summary for source in sources]

    def add_roots(self, roots: Iterable[Path]) -> None:
        """Blocking. Every spec found in these folders joins the catalog."""
        for root in roots:
            for source in resolve_sources([], root):
                self.add_source(source)

    def workspace_roots(self, client_roots: list[Path], trust_client_roots: bool) -> list[Path]:
        """The folders a caller may load files from (none: URLs only).

        With `--workspace`, files inside it, and a client's roots can only narrow that, never
        widen it. Without one, a trusted client (over stdio the client is the user) gives its
        roots, else the current folder; an untrusted one (any client that passes HTTP's
        Host/Origin checks) no file at all."""
        if self.settings.workspace:
            workspace = Path(self.settings.workspace).expanduser().resolve()
            narrowed = [r for r in client_roots if r.resolve().is_relative_to(workspace)]
            return narrowed or [workspace]
        if trust_client_roots:
            return client_roots or [Path.cwd().resolve()]
        return []

    def sources_for(self, source: str, roots: list[Path]) -> list[SpecSource]:
        """What a caller's `source` may load: a URL, or a file or folder inside the roots."""
        source = source.strip()
        if is_url(source):
            return [SpecSource(source)]
        if not roots:
            raise InvalidRequest(
                "this server loads files only from its workspace, and it has none: start it "
                "with --workspace DIR, or load an http(s) URL",
                field="source",
            )
        try:
            resolved = confined_path(source, roots)
        except InvalidRequest:
            if self.settings.workspace:
                raise
            folders = ", ".join(str(r) for r in roots)
            raise InvalidRequest(
                f"{source!r} is outside the workspace: no workspace is configured "
                f"(--workspace DIR), so it is {folders} (the client's roots, or the folder the "
                "server started in); load a file inside it, or an http(s) URL",
                field="source",
            ) from None
        root = next(r for r in roots if resolved.is_relative_to(r.resolve()))
        if resolved.is_dir():
            inside = [p for p in discover(resolved) if p.resolve().is_relative_to(root.resolve())]
            found = [SpecSource(str(p), root) for p in inside]  # symlinks may not lead out
            if not found:
                raise SpecError(source, "no OpenAPI or Swagger spec found in this folder")
            return found
        return [SpecSource(str(resolved), root)]

    # --- asking the core -------------------------------------------------------------------

    async def predict(self, request: PredictRequest | dict[str, object]) -> PredictResult:
        """The ranking for a request, refined by the local model when one is configured."""
        return await self.predictor.apredict(request)

    def search(
        self,
        query: str,
        limit: int = 10,
        method: str | None = None,
        tag: str | None = None,
        spec: str | None = None,
    ) -> Matches:
        """Rank the catalog for a query with the core, then filter by method, tag and spec."""
        if method is not None and method.strip().upper() not in models.HTTP_METHODS:
            raise InvalidRequest(
                f"method: {method!r} is not an HTTP method: one of "
                f"{', '.join(models.HTTP_METHODS)}",
                field="method",
            )
        request = self.predictor.validate(
            {"prompt": query, "max_predictions": MAX_PREDICTIONS, "spec": spec}
        )
        ranked, _ = self.predictor.rank(request)
        wanted_method = method.strip().upper() if method else None
        wanted_tag = tag.casefold() if tag else None
        found = [
            item.operation
            for item in ranked
            if (not wanted_method or item.operation.method == wanted_method)
            and (not wanted_tag or wanted_tag in {t.casefold() for t in item.operation.tags})
        ]
        return Matches(found[:limit], len(found))

    def find_operation(self, api_call: str, spec: str | None = None) -> Operation:
        """By key, uid or concrete call (`GET /pets/42`); else UnknownOperation with
        suggestions."""
        catalog = self.catalog
        op = catalog.get(api_call.strip(), spec) or catalog.match(api_call, spec=spec)
        if op is None:
            raise UnknownOperation(api_call, catalog.suggest(api_call))
        return op

    async def refiner_health(self) -> RefinerHealth:
        """Whether the refinement model answers (asked now), and the refiner's state."""
        provider = self.settings.llm_provider
        if not self.refiner.enabled:
            status: Literal["disabled", "reachable", "unreachable"] = "disabled"
        else:
            health = await self.refiner.probe()
            status = "reachable" if health.reachable else "unreachable"
        return RefinerHealth(provider, status, self.refiner.state.model_dump(mode="json"))


def confined_path(source: str, roots: list[Path]) -> Path:
    """A file a caller names, resolved inside one of the roots (relative: to the first), or
    InvalidRequest."""
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.is_absolute() and roots:
        path = roots[0] / path
    return ensure_inside(str(path), roots)


# --- the one error table ---------------------------------------------------------------------
# Every face maps from it by the error's code: HTTP to a status, MCP to a tool error that keeps
# the code, the language server to a JSON-RPC error code.

ErrorKind = Literal["invalid", "not_found", "unavailable", "failed"]


@dataclass(frozen=True)
class ErrorMeaning:
    kind: ErrorKind
    meaning: str


ERRORS: dict[str, ErrorMeaning] = {
    InvalidRequest.code: ErrorMeaning(
        "invalid", "a request field is missing, malformed or outside its limit"
    ),
    GuardrailViolation.code: ErrorMeaning("invalid", "a guardrail rule refused the request"),
    UnknownOperation.code: ErrorMeaning("not_found", "the name matches no loaded operation"),
    CatalogEmpty.code: ErrorMeaning("unavailable", "no spec is loaded"),
    "loading": ErrorMeaning("unavailable", "the specs are still loading; retry shortly"),
    "load_failed": ErrorMeaning("unavailable", "loading the specs failed; the reason says why"),
    SpecError.code: ErrorMeaning("failed", "a spec could not be read, parsed or resolved"),
    FetchRefused.code: ErrorMeaning("failed", "a URL was refused before any connection"),
    OpenSesameError.code: ErrorMeaning("failed", "an unexpected error"),
}


def meaning_of(code: str) -> ErrorMeaning:
    """The table's entry for a code; unknown codes mean an unexpected error."""
    return ERRORS.get(code, ERRORS[OpenSesameError.code])


class Loading(OpenSesameError):
    """The first load of the specs has not finished."""

    code = "loading"


class LoadFailed(OpenSesameError):
    """The first load of the specs failed (a bug in a loader, a workspace gone): `reason`."""

    code = "load_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"loading specs failed: {reason}")
        self.reason = reason
