"""Plain feature results -> lsprotocol types, honouring the client's capabilities.

Columns arrive in code points; `Lines` converts them to the client's position encoding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.workspace import TextDocument
from pygls.workspace.position_codec import ServerTextPosition, ServerTextRange

from opensesame_predictor.core.models import SpecSummary, shown_confidence
from opensesame_predictor.present import plain_text
from opensesame_predictor.surfaces.lsp import render
from opensesame_predictor.surfaces.lsp.diagnostics import Finding
from opensesame_predictor.surfaces.lsp.editor import Completion, Insertion

SOURCE = "opensesame"
UNKNOWN_OPERATION = "unknown-operation"


class Capabilities:
    """The client capabilities the features look at."""

    def __init__(self, caps: types.ClientCapabilities) -> None:
        self.snippets = bool(
            get_capability(caps, "text_document.completion.completion_item.snippet_support", False)
        )
        self.completion_markdown = types.MarkupKind.Markdown in (
            get_capability(
                caps, "text_document.completion.completion_item.documentation_format", []
            )
            or []
        )
        self.hover_markdown = types.MarkupKind.Markdown in (
            get_capability(caps, "text_document.hover.content_format", []) or []
        )
        self.progress = bool(get_capability(caps, "window.work_done_progress", False))
        self.configuration = bool(get_capability(caps, "workspace.configuration", False))
        self.watch_files = bool(
            get_capability(caps, "workspace.did_change_watched_files.dynamic_registration", False)
        )


def position(doc: TextDocument, line: int, character: int) -> types.Position:
    return doc.position_to_client_units(ServerTextPosition(line, character))


def text_range(doc: TextDocument, line: int, start: int, end: int) -> types.Range:
    return doc.range_to_client_units(
        ServerTextRange(ServerTextPosition(line, start), ServerTextPosition(line, end))
    )


def completion_list(
    doc: TextDocument, completion: Completion, caps: Capabilities
) -> types.CompletionList:
    site = completion.site
    edit_range = text_range(doc, completion.line, site.start, site.end)
    # editors show a call as a function and a whole `.http` request as a snippet
    kind = (
        types.CompletionItemKind.Snippet
        if site.mode == "request"
        else types.CompletionItemKind.Function
    )
    items = []
    for rank, entry in enumerate(completion.entries, start=1):
        op, prediction = entry.suggestion.operation, entry.suggestion.prediction
        abstain = entry.suggestion.abstain
        markdown = render.completion_markdown(op, prediction, abstain)
        documentation: str | types.MarkupContent = (
            types.MarkupContent(types.MarkupKind.Markdown, markdown)
            if caps.completion_markdown
            else plain_text(markdown)
        )
        items.append(
            types.CompletionItem(
                label=entry.label,
                kind=kind,
                detail=op.summary or op.key,
                documentation=documentation,
                sort_text=f"{rank:04d}",
                filter_text=entry.filter_text,
                preselect=rank == 1,
                insert_text_format=types.InsertTextFormat.Snippet
                if caps.snippets
                else types.InsertTextFormat.PlainText,
                text_edit=types.TextEdit(range=edit_range, new_text=entry.new_text),
                label_details=types.CompletionItemLabelDetails(
                    description=f"{shown_confidence(prediction.confidence, abstain)} · {op.spec}"
                ),
                data={"uid": op.uid, "rank": rank, "confidence": prediction.confidence},
            )
        )
    return types.CompletionList(is_incomplete=False, items=items)


def insertion_action(doc: TextDocument, insertion: Insertion) -> types.CodeAction:
    at = position(doc, insertion.line, insertion.character)
    edit = types.TextEdit(range=types.Range(start=at, end=at), new_text=insertion.new_text)
    return types.CodeAction(
        title=insertion.title,
        kind=types.CodeActionKind.RefactorRewrite,
        edit=types.WorkspaceEdit(changes={doc.uri: [edit]}),
        data={"uid": insertion.suggestion.operation.uid},
    )


def diagnostic(doc: TextDocument, finding: Finding) -> types.Diagnostic:
    call = finding.call
    return types.Diagnostic(
        range=text_range(doc, call.line, call.start, call.end),
        message=finding.message,
        severity=types.DiagnosticSeverity.Warning,
        source=SOURCE,
        code=UNKNOWN_OPERATION,
        data={"closest": finding.closest.uid if finding.closest else None},
    )


def quick_fix(
    doc: TextDocument, finding: Finding, diagnostics: Sequence[types.Diagnostic]
) -> types.CodeAction | None:
    call = finding.call
    edits = []
    if finding.method_fix and call.method and call.method_start >= 0:
        end = call.method_start + len(call.method)
        edits.append(
            types.TextEdit(
                range=text_range(doc, call.line, call.method_start, end),
                new_text=finding.method_fix,
            )
        )
    if finding.path_fix:
        end = call.path_start + len(call.raw_path)
        edits.append(
            types.TextEdit(
                range=text_range(doc, call.line, call.path_start, end), new_text=finding.path_fix
            )
        )
    if not edits or finding.closest is None:
        return None
    method = finding.method_fix or call.method
    target = f"{method} {finding.path_fix or call.raw_path}" if method else finding.path_fix
    matching = [d for d in diagnostics if d.source == SOURCE and d.range.start.line == call.line]
    return types.CodeAction(
        title=f"Change to {target} ({finding.closest.key})",
        kind=types.CodeActionKind.QuickFix,
        diagnostics=matching or None,
        is_preferred=True,
        edit=types.WorkspaceEdit(changes={doc.uri: edits}),
    )


def hover(
    doc: TextDocument,
    line: int,
    start: int,
    end: int,
    markdown: str,
    caps: Capabilities,
) -> types.Hover:
    contents = (
        types.MarkupContent(types.MarkupKind.Markdown, markdown)
        if caps.hover_markdown
        else types.MarkupContent(types.MarkupKind.PlainText, plain_text(markdown))
    )
    return types.Hover(contents=contents, range=text_range(doc, line, start, end))


def spec_message(spec: SpecSummary) -> str:
    return f"OpenSesame: could not load {spec.source}: {spec.error}. The other specs keep serving."


_WHERE = re.compile(r"line (\d+) column (\d+)")


def spec_problem(reason: str) -> types.Diagnostic:
    """A spec file's load error as a diagnostic: at the line and column the parser named, else
    at the top of the file."""
    found = _WHERE.search(reason)
    line, column = (int(found.group(1)) - 1, int(found.group(2)) - 1) if found else (0, 0)
    start = types.Position(line=max(line, 0), character=max(column, 0))
    end = types.Position(line=max(line, 0), character=max(column, 0) + 1)
    return types.Diagnostic(
        range=types.Range(start=start, end=end),
        message=f"OpenSesame cannot load this spec: {reason}",
        severity=types.DiagnosticSeverity.Error,
        source="opensesame",
    )
