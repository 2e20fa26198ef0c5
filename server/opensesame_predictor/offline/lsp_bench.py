"""`bench --lsp`: the completion round trip through a real stdio session.

Starts `python -m opensesame_predictor lsp` with the bench's specs, waits for indexing, opens
`.http` documents whose request blocks carry different titles, and times `textDocument/completion`
after `GET ` in each block, as an editor would send it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from opensesame_predictor.config import Settings

BLOCKS_PER_DOCUMENT = 20  # the history grows within a document, as in a real request file
INDEX_TIMEOUT = 600.0
VERBS = ("list", "get", "create", "update", "delete", "search for", "star", "close")
NOUNS = (
    "repositories of the user",
    "issues of a repository",
    "pull requests",
    "the authenticated user",
    "gists",
    "comments on an issue",
    "releases",
    "commits on a branch",
    "team members",
    "webhooks",
    "labels",
    "workflow runs",
)


def _documents(requests: int) -> list[tuple[str, list[int]]]:
    """`.http` texts and, for each, the lines that end in `GET `."""
    titles = [f"{verb} {noun}" for verb, noun in itertools.product(VERBS, NOUNS)]
    documents: list[tuple[str, list[int]]] = []
    lines: list[str] = []
    targets: list[int] = []
    for index in range(requests):
        lines += [f"### {titles[index % len(titles)]} ({index})", "GET ", ""]
        targets.append(len(lines) - 2)
        if len(targets) == BLOCKS_PER_DOCUMENT or index == requests - 1:
            documents.append(("\n".join(lines) + "\n", targets))
            lines, targets = [], []
    return documents


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 2)


async def _drain(stream: asyncio.StreamReader | None) -> None:
    """Reads the server's stderr so a chatty log never blocks it."""
    if stream is None:
        return
    while await stream.readline():
        pass


async def _bench(settings: Settings, requests: int) -> dict[str, Any]:
    command = ["-m", "opensesame_predictor", "lsp"]
    for spec in settings.specs:
        command += ["--spec", spec]
    if settings.workspace:
        command += ["--workspace", settings.workspace]
    env = {**os.environ, "OPENSESAME_LOG_LEVEL": "WARNING"}
    client = LanguageClient("opensesame-bench", "1")
    indexed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_indexed(params: Any) -> None:
        if not indexed.done():
            indexed.set_result(params)

    def ignore(params: Any) -> None:
        return None

    register: Callable[[str], Callable[[Callable[[Any], None]], Any]] = client.feature
    register("opensesame/indexed")(on_indexed)
    for method in (
        types.WINDOW_WORK_DONE_PROGRESS_CREATE,
        types.PROGRESS,
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS,
        types.WINDOW_LOG_MESSAGE,
        types.WINDOW_SHOW_MESSAGE,
    ):
        register(method)(ignore)

    started = time.perf_counter()
    await client.start_io(sys.executable, *command, env=env)
    drain = asyncio.create_task(_drain(client._server.stderr if client._server else None))
    capabilities = types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        text_document=types.TextDocumentClientCapabilities(
            completion=types.CompletionClientCapabilities(
                completion_item=types.ClientCompletionItemOptions(
                    snippet_support=True,
                    documentation_format=[types.MarkupKind.Markdown],
                )
            )
        ),
    )
    root = Path.cwd()
    try:
        await client.initialize_async(
            types.InitializeParams(capabilities=capabilities, process_id=os.getpid(), root_uri=None)
        )
        initialize_ms = (time.perf_counter() - started) * 1000
        client.initialized(types.InitializedParams())
        status = await asyncio.wait_for(indexed, INDEX_TIMEOUT)
        index_ms = (time.perf_counter() - started) * 1000 - initialize_ms
        timings: list[float] = []
        top = ""
        for number, (text, lines) in enumerate(_documents(requests)):
            uri = (root / f"opensesame-bench-{number}.http").as_uri()
            client.text_document_did_open(
                types.DidOpenTextDocumentParams(
                    text_document=types.TextDocumentItem(
                        uri=uri, language_id="http", version=1, text=text
                    )
                )
            )
            for line in lines:
                params = types.CompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=types.Position(line=line, character=4),
                )
                before = time.perf_counter()
                result = await client.text_document_completion_async(params)
                timings.append((time.perf_counter() - before) * 1000)
                if not top and isinstance(result, types.CompletionList) and result.items:
                    top = result.items[0].label
        await client.shutdown_async(None)
        client.exit(None)
    finally:
        with contextlib.suppress(Exception):
            stop: Callable[[], Awaitable[Any]] = client.stop
            await asyncio.wait_for(stop(), 10)
        drain.cancel()
    operations = getattr(status, "operations", None)
    return {
        "surface": "lsp (stdio)",
        "operations": operations,
        "initialize_ms": round(initialize_ms, 1),
        "index_ms": round(index_ms, 1),
        "requests": len(timings),
        "completion_p50_ms": _percentile(timings, 0.50),
        "completion_p95_ms": _percentile(timings, 0.95),
        "completion_mean_ms": round(statistics.fmean(timings), 2) if timings else 0.0,
        "completion_max_ms": round(max(timings), 2) if timings else 0.0,
        "first_top_label": top,
    }


def run_lsp_bench(settings: Settings, requests: int) -> dict[str, Any]:
    return asyncio.run(_bench(settings, max(1, requests)))
