"""The language features as plain functions over a document's text: what to complete, which
calls to offer for an intent comment, what a hover shows, what the diagnostics say.

No protocol types here: columns are code points; `convert.py` maps results to lsprotocol.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.errors import CatalogEmpty, InvalidRequest
from opensesame_predictor.core.guardrails import prompt_fingerprint
from opensesame_predictor.core.models import Operation, Prediction, PredictResult
from opensesame_predictor.surfaces.lsp import render
from opensesame_predictor.surfaces.lsp.context import (
    ApiCall,
    Kind,
    Site,
    base_of_calls,
    call_at,
    completion_site,
    find_calls,
    history_before,
    http_base_variable,
    intent,
    prompt_at,
    uses_library,
)
from opensesame_predictor.surfaces.lsp.diagnostics import Finding, PathShapes, check

log = logging.getLogger(__name__)

PredictFn = Callable[[dict[str, Any]], PredictResult]

COMPLETION_PREDICTIONS = 20  # asked of the core; the method filter may drop some
COMPLETION_ITEMS = 15
ACTION_PREDICTIONS = 3


@dataclass(frozen=True)
class Suggestion:
    """One ranked operation and how it is presented."""

    prediction: Prediction
    operation: Operation
    abstain: bool = False  # the answer it belongs to abstains: nothing fits the prompt


def predict(
    predict_fn: PredictFn, catalog: Catalog, prompt: str, history: list[str], count: int
) -> list[Suggestion]:
    """Ranked operations; an empty list when nothing is loaded. A prompt the guardrails refuse
    (a comment may hold a shell line) is dropped and the history alone ranks."""
    request: dict[str, Any] = {"prompt": prompt, "history": history, "max_predictions": count}
    try:
        result = predict_fn(request)
    except CatalogEmpty:
        return []
    except InvalidRequest as exc:
        # a comment may hold a shell line the guardrails refuse, a document an odd URL:
        # drop the part that failed and rank from the rest
        field = exc.field or ""
        if field == "prompt" and prompt:
            log.info("prompt refused (%s): ranking from the history", prompt_fingerprint(prompt))
            result = predict_fn({**request, "prompt": ""})
        elif field.startswith("history") and history:
            log.info("history refused (%s): ranking from the prompt", exc.message)
            result = predict_fn({**request, "history": []})
        else:
            raise
    found = []
    for prediction in result.predictions:
        op = (
            prediction.operation  # made in this process: no look-up
            or catalog.get(f"{prediction.spec}:{prediction.api_call}")
            or catalog.get(prediction.api_call, prediction.spec)
        )
        if op is not None:
            found.append(Suggestion(prediction, op, result.metadata.abstain))
    return found


@dataclass(frozen=True)
class CompletionEntry:
    label: str
    filter_text: str
    new_text: str
    suggestion: Suggestion


@dataclass(frozen=True)
class Completion:
    site: Site
    line: int
    entries: list[CompletionEntry]


def complete(
    predict_fn: PredictFn,
    catalog: Catalog,
    text: str,
    kind: Kind,
    line: int,
    character: int,
    snippet: bool,
) -> Completion | None:
    site = completion_site(text, line, character, kind)
    if site is None:
        return None
    calls = find_calls(text, kind)
    prompt = prompt_at(text, line, kind)
    history = history_before(text, line, kind, calls)
    # a written method filters the ranking, so ask for more than are shown
    count = COMPLETION_PREDICTIONS if site.method else COMPLETION_ITEMS
    suggestions = predict(predict_fn, catalog, prompt, history, count)
    if site.mode == "path" and site.method:
        same = [s for s in suggestions if s.operation.method == site.method]
        method_written = bool(same)
        suggestions = same or suggestions
    else:
        method_written = False
    entries = []
    base = ""
    if site.mode == "request" and (variable := http_base_variable(text)):
        base = "{{" + variable + "}}"
    for suggestion in suggestions[:COMPLETION_ITEMS]:
        op, prediction = suggestion.operation, suggestion.prediction
        if site.mode == "request":
            new_text = render.http_request(op, prediction, snippet, base)
            entries.append(CompletionEntry(op.key, op.key, new_text, suggestion))
        else:
            new_text = render.url_text(op, prediction, snippet)
            label = op.path if method_written else op.key
            entries.append(CompletionEntry(label, op.path, new_text, suggestion))
    return Completion(site, line, entries)


@dataclass(frozen=True)
class Insertion:
    """Text to insert for an intent comment: `title`, at (line, character)."""

    title: str
    line: int
    character: int
    new_text: str
    suggestion: Suggestion


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def call_snippet(
    op: Operation, prediction: Prediction, kind: Kind, indent: str, text: str, base: str
) -> str:
    """A call of `op` in the document's language."""
    if kind == "http":
        return render.http_request(op, prediction, False, base) + "\n"
    if kind == "python":
        library = uses_library(text, ("httpx", "requests")) or "httpx"
        return render.python_call(op, prediction, indent, base, library)
    if kind == "js":
        return render.js_call(op, prediction, indent, base)
    return render.shell_call(op, prediction, indent, base)


def intent_insertions(
    predict_fn: PredictFn, catalog: Catalog, text: str, kind: Kind, line: int
) -> list[Insertion]:
    """'Insert API call: DELETE /orders/{id}' for the top predictions of an intent comment."""
    lines = text.splitlines()
    if kind == "other" or line >= len(lines) or intent(lines[line], kind) is None:
        return []
    calls = find_calls(text, kind)
    prompt = prompt_at(text, line, kind)
    suggestions = predict(
        predict_fn, catalog, prompt, history_before(text, line, kind, calls), ACTION_PREDICTIONS
    )
    base = base_of_calls(calls, line)
    if kind == "http" and not base and (variable := http_base_variable(text)):
        base = "{{" + variable + "}}"
    at_end = line == len(lines) - 1 and not text.endswith("\n")
    insert_line, insert_char = (line, len(lines[line])) if at_end else (line + 1, 0)
    out = []
    for suggestion in suggestions[:ACTION_PREDICTIONS]:
        snippet = call_snippet(
            suggestion.operation, suggestion.prediction, kind, _indent(lines[line]), text, base
        )
        if at_end:
            snippet = "\n" + snippet.rstrip("\n")
        title = f"Insert API call: {suggestion.operation.key}"
        out.append(Insertion(title, insert_line, insert_char, snippet, suggestion))
    return out


def hover(
    catalog: Catalog, text: str, kind: Kind, line: int, character: int
) -> tuple[ApiCall, Operation] | None:
    call = call_at(find_calls(text, kind), line, character)
    if call is None:
        return None
    op = catalog.match(call.path, call.method)
    return (call, op) if op is not None else None


def findings(index: PathShapes, text: str, kind: Kind) -> list[Finding]:
    return check(find_calls(text, kind), index, can_fix_method=kind == "http")
