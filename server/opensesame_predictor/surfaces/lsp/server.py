"""The language server: pygls handlers that fetch the document, run a feature off the event
loop and map the result to lsprotocol. Indexing runs in the background with `$/progress`.

`run(service)` serves on stdio. stdout carries only the protocol; logs go to stderr and, at
WARNING and above, to `window/logMessage`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote, urlsplit

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from opensesame_predictor import __version__
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.errors import InvalidRequest, OpenSesameError
from opensesame_predictor.core.fetch import is_url
from opensesame_predictor.core.models import PredictResult
from opensesame_predictor.service import ErrorKind, Service, confined_path, meaning_of
from opensesame_predictor.surfaces.lsp import convert, editor, render
from opensesame_predictor.surfaces.lsp.context import Kind, document_kind
from opensesame_predictor.surfaces.lsp.diagnostics import PathShapes
from opensesame_predictor.surfaces.lsp.protocol import UNREADABLE, AnsweringProtocol

log = logging.getLogger(__name__)

T = TypeVar("T")

CONFIG_SECTION = "opensesame"
INDEXED = "opensesame/indexed"  # custom notification after every (re)index
PREDICT_COMMAND = "opensesame.predict"
DIAGNOSTICS_DELAY = 0.3  # seconds of quiet typing before a document is re-checked
REINDEX_DELAY = 0.2
SPEC_SUFFIXES = (".json", ".yaml", ".yml")
TRIGGERS = ["/", " ", '"', "'", "`"]


def _path_of(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme not in ("", "file"):
        return None
    return Path(unquote(parts.path))


class OpenSesameServer(LanguageServer):
    """One Service (store, catalog, predictor) behind the protocol."""

    def __init__(self, service: Service) -> None:
        super().__init__("opensesame-predictor", __version__, protocol_cls=AnsweringProtocol)
        self.settings = service.settings
        self.service = service
        self.shapes = PathShapes(Catalog([]))
        self.caps = convert.Capabilities(types.ClientCapabilities())
        self.client_specs: list[str] = []  # from initializationOptions and configuration
        self.reported: set[tuple[str, str]] = set()
        self.refused: set[str] = set()
        self.spec_problems: set[str] = set()  # spec files that carry a diagnostic
        self.loop: asyncio.AbstractEventLoop | None = None
        self._index_lock: asyncio.Lock | None = None
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self._reindex_handle: asyncio.TimerHandle | None = None
        # One long-lived loop for `apredict` (and the refiner's async I/O), in its own thread:
        # the CPU work stays off the protocol loop, and no loop is built per request.
        self._predict_loop: asyncio.AbstractEventLoop | None = None
        self._predict_lock = threading.Lock()

    def report_server_error(self, error: Exception, source: Any) -> None:
        """A frame that is no JSON still gets an answer (a parse error), then the usual report."""
        if isinstance(error, UNREADABLE) and isinstance(self.protocol, AnsweringProtocol):
            self.protocol.answer_unreadable(error)
        super().report_server_error(error, source)

    # --- helpers ---------------------------------------------------------------------------

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """CPU work in the thread pool, so the loop keeps reading messages."""
        return await asyncio.get_running_loop().run_in_executor(self.thread_pool, fn, *args)

    def predict_blocking(self, request: dict[str, Any]) -> PredictResult:
        """The core's async entry point, run on the prediction loop; called from a worker
        thread, never from the protocol loop."""
        if self._predict_loop is None:
            with self._predict_lock:
                if self._predict_loop is None:
                    loop = asyncio.new_event_loop()
                    threading.Thread(
                        target=loop.run_forever, name="opensesame-predict", daemon=True
                    ).start()
                    self._predict_loop = loop
        coroutine = self.service.predict(request)
        return asyncio.run_coroutine_threadsafe(coroutine, self._predict_loop).result()

    def document(self, uri: str) -> tuple[TextDocument, Kind]:
        doc = self.workspace.get_text_document(uri)
        return doc, document_kind(doc.language_id, doc.uri)

    def roots(self) -> list[Path]:
        roots = [p for f in self.workspace.folders.values() if (p := _path_of(f.uri))]
        if not roots and self.workspace.root_path:
            roots.append(Path(self.workspace.root_path))
        return roots

    def notify_user(self, message: str, kind: types.MessageType) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    # --- sources and indexing --------------------------------------------------------------

    def source_names(self) -> list[str]:
        """The command line's specs and workspace, the editor's folders, and the specs the
        client names (files must stay inside a workspace folder; URLs go through the fetch
        guard)."""
        roots = self.roots()
        names = [*self.settings.specs, *(str(r) for r in roots)]
        if self.settings.workspace:
            names.append(self.settings.workspace)
        for spec in self.client_specs:
            if is_url(spec):
                names.append(spec)
                continue
            try:
                names.append(str(confined_path(spec, roots or [Path.cwd()])))
            except InvalidRequest as exc:
                if spec not in self.refused:  # once per setting, not on every re-index
                    self.refused.add(spec)
                    self.notify_user(f"OpenSesame: {exc.message}", types.MessageType.Warning)
        return names

    def _load(self, names: list[str], full: bool, progress: Callable[[int, int, str], None]) -> int:
        catalog = self.service.sync_sources(names, full, progress)
        self.shapes = PathShapes(catalog)
        return len(catalog.operations)

    async def index(self, full: bool) -> None:
        if self._index_lock is None:
            self._index_lock = asyncio.Lock()
        async with self._index_lock:
            loop = asyncio.get_running_loop()
            token = f"opensesame-index-{uuid.uuid4()}"
            progress = self.work_done_progress
            reporting = False
            if self.caps.progress:
                try:
                    await progress.create_async(token)
                    reporting = True
                except Exception as exc:  # the client refused: index without a progress bar
                    log.info("no progress bar: %s", exc)
            if reporting:
                progress.begin(
                    token,
                    types.WorkDoneProgressBegin(
                        title="OpenSesame: indexing API specs", percentage=0, cancellable=False
                    ),
                )

            def report(done: int, total: int, item: str) -> None:
                if not reporting or not total:
                    return
                name = Path(item).name if item and not is_url(item) else item
                value = types.WorkDoneProgressReport(
                    message=f"{done}/{total} {name}".strip(), percentage=int(100 * done / total)
                )
                loop.call_soon_threadsafe(progress.report, token, value)

            message = "indexing failed"
            try:
                names = self.source_names()
                operations = await self.off_loop(self._load, names, full, report)
                message = f"{operations} operations"
            except OpenSesameError as exc:
                message = exc.message
                self.notify_user(f"OpenSesame: {exc.message}", types.MessageType.Warning)
            except Exception as exc:  # a bug: say so, keep serving the previous catalog
                log.exception("indexing failed")
                self.notify_user(f"OpenSesame: indexing failed: {exc}", types.MessageType.Error)
            finally:
                if reporting:
                    progress.end(token, types.WorkDoneProgressEnd(message=message))
            self.after_index()

    def after_index(self) -> None:
        catalog = self.service.catalog
        failed = {(s.source, s.error or "") for s in catalog.errors}
        for spec in catalog.errors:
            if (spec.source, spec.error or "") not in self.reported:
                log.warning("spec %s failed to load: %s", spec.source, spec.error)
                self.notify_user(convert.spec_message(spec), types.MessageType.Warning)
        self.reported = failed
        for spec in catalog.specs:
            for warning in spec.warnings:
                log.info("spec %s: %s", spec.source, warning)
        self.protocol.notify(
            INDEXED,
            {
                "generation": catalog.generation,
                "operations": len(catalog.operations),
                "specs": catalog.spec_names(),
                "errors": [{"source": s.source, "error": s.error} for s in catalog.errors],
            },
        )
        for uri in list(self.workspace.text_documents):
            self.schedule_diagnostics(uri, delay=0)
        self.publish_spec_problems()

    def publish_spec_problems(self) -> None:
        """A spec file that fails to load gets the error on the file itself, where the parser
        placed it (a broken edit keeps its last good version serving meanwhile); the
        diagnostic goes once the file loads again."""
        problems: dict[str, str] = {}
        for spec in self.service.catalog.specs:
            reason = spec.stale_because or spec.error
            if reason and "://" not in spec.source:
                problems[Path(spec.source).as_uri()] = reason
        for uri in self.spec_problems - problems.keys():
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
            )
        for uri, reason in problems.items():
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=[convert.spec_problem(reason)])
            )
        self.spec_problems = set(problems)

    def schedule_reindex(self) -> None:
        loop = asyncio.get_running_loop()
        if self._reindex_handle is not None:
            self._reindex_handle.cancel()
        self._reindex_handle = loop.call_later(
            REINDEX_DELAY, lambda: asyncio.ensure_future(self.index(full=False))
        )

    # --- diagnostics -----------------------------------------------------------------------

    def schedule_diagnostics(self, uri: str, delay: float = DIAGNOSTICS_DELAY) -> None:
        loop = asyncio.get_running_loop()
        if (handle := self._pending.pop(uri, None)) is not None:
            handle.cancel()
        self._pending[uri] = loop.call_later(
            delay, lambda: asyncio.ensure_future(self.publish_diagnostics(uri))
        )

    async def publish_diagnostics(self, uri: str) -> None:
        self._pending.pop(uri, None)
        if uri not in self.workspace.text_documents or not self.service.ready.is_set():
            return
        doc, kind = self.document(uri)
        if kind == "other":
            return
        found = await self.off_loop(editor.findings, self.shapes, doc.source, kind)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=doc.version,
                diagnostics=[convert.diagnostic(doc, f) for f in found],
            )
        )


class _ClientLogHandler(logging.Handler):
    """Forwards the project's warnings to `window/logMessage` (from any thread)."""

    LEVELS: ClassVar[dict[int, types.MessageType]] = {
        logging.ERROR: types.MessageType.Error,
        logging.WARNING: types.MessageType.Warning,
        logging.INFO: types.MessageType.Info,
    }

    def __init__(self, ls: OpenSesameServer) -> None:
        super().__init__(logging.WARNING)
        self.ls = ls

    def emit(self, record: logging.LogRecord) -> None:
        loop = self.ls.loop
        if loop is None or loop.is_closed():
            return
        kind = self.LEVELS.get(record.levelno, types.MessageType.Log)
        params = types.LogMessageParams(type=kind, message=self.format(record))
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self.ls.window_log_message, params)


def _client_specs(options: Any) -> list[str]:
    """`{"specs": [...]}` from initializationOptions or the `opensesame` configuration."""
    if isinstance(options, dict):
        specs = options.get("specs", [])
        if isinstance(options.get(CONFIG_SECTION), dict):
            specs = options[CONFIG_SECTION].get("specs", specs)
        if isinstance(specs, str):
            specs = [specs]
        if isinstance(specs, list):
            return [s for s in specs if isinstance(s, str) and s.strip()][:100]
    return []


# --- lifecycle -------------------------------------------------------------------------------


def initialize(ls: OpenSesameServer, params: types.InitializeParams) -> None:
    ls.caps = convert.Capabilities(params.capabilities)
    ls.client_specs = _client_specs(params.initialization_options)


async def initialized(ls: OpenSesameServer, params: types.InitializedParams) -> None:
    ls.loop = asyncio.get_running_loop()
    if ls.caps.watch_files:
        await ls.client_register_capability_async(
            types.RegistrationParams(
                registrations=[
                    types.Registration(
                        id="opensesame-specs",
                        method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                        register_options=types.DidChangeWatchedFilesRegistrationOptions(
                            watchers=[types.FileSystemWatcher(glob_pattern="**/*.{json,yaml,yml}")]
                        ),
                    )
                ]
            )
        )
    await read_configuration(ls)
    await ls.index(full=True)


async def read_configuration(ls: OpenSesameServer) -> None:
    if not ls.caps.configuration:
        return
    try:
        values = await asyncio.wait_for(
            ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=CONFIG_SECTION)])
            ),
            timeout=5,
        )
    except Exception as exc:  # no configuration: keep the initializationOptions
        log.info("workspace/configuration failed: %s", exc)
        return
    if values and (specs := _client_specs({"specs": [], **(values[0] or {})})):
        ls.client_specs = list(dict.fromkeys([*ls.client_specs, *specs]))


async def did_change_configuration(
    ls: OpenSesameServer, params: types.DidChangeConfigurationParams
) -> None:
    before = list(ls.client_specs)
    specs = _client_specs(params.settings)
    if specs:
        ls.client_specs = specs
    else:
        await read_configuration(ls)
    if ls.client_specs != before or not ls.service.ready.is_set():
        await ls.index(full=True)


def did_change_watched_files(
    ls: OpenSesameServer, params: types.DidChangeWatchedFilesParams
) -> None:
    if any(change.uri.lower().endswith(SPEC_SUFFIXES) for change in params.changes):
        ls.schedule_reindex()


def did_change_folders(ls: OpenSesameServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
    ls.schedule_reindex()


# --- documents -------------------------------------------------------------------------------


def did_open(ls: OpenSesameServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.schedule_diagnostics(params.text_document.uri, delay=0)


def did_change(ls: OpenSesameServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.schedule_diagnostics(params.text_document.uri)


def did_save(ls: OpenSesameServer, params: types.DidSaveTextDocumentParams) -> None:
    if params.text_document.uri.lower().endswith(SPEC_SUFFIXES):
        ls.schedule_reindex()


def did_close(ls: OpenSesameServer, params: types.DidCloseTextDocumentParams) -> None:
    if (handle := ls._pending.pop(params.text_document.uri, None)) is not None:
        handle.cancel()
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
    )


# --- features --------------------------------------------------------------------------------


async def completion(
    ls: OpenSesameServer, params: types.CompletionParams
) -> types.CompletionList | None:
    doc, kind = ls.document(params.text_document.uri)
    if kind == "other":
        return None
    if not ls.service.ready.is_set():  # still indexing: ask again
        return types.CompletionList(is_incomplete=True, items=[])
    at = doc.position_from_client_units(params.position)
    # As-you-type completions take the ranker's list at once; an explicit request (and code
    # actions, the predict command) may wait for the optional model, within its budget.
    typed = params.context is not None and (
        params.context.trigger_kind != types.CompletionTriggerKind.Invoked
    )
    result = await ls.off_loop(
        editor.complete,
        ls.service.predictor.predict if typed else ls.predict_blocking,
        ls.service.catalog,
        doc.source,
        kind,
        at.line,
        at.character,
        ls.caps.snippets,
    )
    if result is None:
        return None
    return convert.completion_list(doc, result, ls.caps)


async def code_action(
    ls: OpenSesameServer, params: types.CodeActionParams
) -> list[types.CodeAction] | None:
    doc, kind = ls.document(params.text_document.uri)
    if kind == "other" or not ls.service.ready.is_set():
        return None
    span = doc.range_from_client_units(params.range)
    lines = range(span.start.line, span.end.line + 1)
    actions: list[types.CodeAction] = []
    found = await ls.off_loop(editor.findings, ls.shapes, doc.source, kind)
    for finding in found:
        if finding.call.line in lines:
            fix = convert.quick_fix(doc, finding, params.context.diagnostics)
            if fix is not None:
                actions.append(fix)
    only = params.context.only
    if only is None or any(k.startswith("refactor") for k in only):
        for line in list(lines)[:5]:
            insertions = await ls.off_loop(
                editor.intent_insertions,
                ls.predict_blocking,
                ls.service.catalog,
                doc.source,
                kind,
                line,
            )
            actions.extend(convert.insertion_action(doc, i) for i in insertions)
    if only is not None:
        actions = [a for a in actions if a.kind and any(a.kind.startswith(k) for k in only)]
    return actions or None


async def hover(ls: OpenSesameServer, params: types.HoverParams) -> types.Hover | None:
    doc, kind = ls.document(params.text_document.uri)
    if kind == "other" or not ls.service.ready.is_set():
        return None
    at = doc.position_from_client_units(params.position)
    catalog = ls.service.catalog
    found = await ls.off_loop(editor.hover, catalog, doc.source, kind, at.line, at.character)
    if found is None:
        return None
    call, op = found
    spec = next((s for s in catalog.specs if s.name == op.spec), None)
    markdown = render.hover_markdown(op, spec)
    return convert.hover(doc, call.line, call.start, call.end, markdown, ls.caps)


async def predict_command(ls: OpenSesameServer, *args: Any) -> dict[str, Any]:
    """`workspace/executeCommand opensesame.predict {prompt, history, ...}` -> wire format."""
    request = args[0] if args else {}
    if not isinstance(request, dict):
        raise JsonRpcInvalidParams(message="the argument must be a predict request object")
    try:
        result = await ls.off_loop(ls.predict_blocking, request)
    except OpenSesameError as exc:
        raise rpc_error(exc) from None
    return result.model_dump(mode="json")


# The service's error table, by kind: the JSON-RPC error each kind of core error answers with.
RPC_CODE_OF_KIND: dict[ErrorKind, int] = {
    "invalid": types.ErrorCodes.InvalidParams,
    "not_found": types.ErrorCodes.InvalidParams,
    "unavailable": types.LSPErrorCodes.RequestFailed,
    "failed": types.ErrorCodes.InternalError,
}


def rpc_error(exc: OpenSesameError) -> JsonRpcException:
    """A core error as a JSON-RPC error: its code from the table, the error's code as data."""
    code = RPC_CODE_OF_KIND[meaning_of(exc.code).kind]
    return JsonRpcException(message=exc.message, code=int(code), data={"code": exc.code})


def create_server(service: Service) -> OpenSesameServer:
    """A server with every feature registered; logging forwarded to the client."""
    ls = OpenSesameServer(service)
    ls.feature(types.INITIALIZE)(initialize)
    ls.feature(types.INITIALIZED)(initialized)
    ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    ls.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)(did_change_watched_files)
    ls.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)(did_change_folders)
    ls.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    ls.feature(types.TEXT_DOCUMENT_DID_SAVE)(did_save)
    ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
    ls.feature(
        types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=TRIGGERS)
    )(completion)
    ls.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite]
        ),
    )(code_action)
    ls.feature(types.TEXT_DOCUMENT_HOVER)(hover)
    ls.command(PREDICT_COMMAND)(predict_command)
    logging.getLogger("pygls").setLevel(logging.WARNING)
    logging.getLogger("opensesame_predictor").addHandler(_ClientLogHandler(ls))
    return ls


def run(service: Service) -> int:
    """Serve on stdio until the client says exit."""
    create_server(service).start_io()
    return 0
