"""API calls in a document that match no operation of the catalog, with the closest operation
and the text that fixes them. Plain functions; the server turns findings into diagnostics."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.models import Operation
from opensesame_predictor.surfaces.lsp.context import ApiCall

MIN_SIMILARITY = 60.0  # below this the URL is probably another API's, not a typo of ours
_VALUE_SEGMENT = re.compile(r"^(?:\{.*\}|\d+|[0-9a-fA-F-]{16,}|\$.*|:\w+)$")


@dataclass(frozen=True)
class Finding:
    call: ApiCall
    message: str
    closest: Operation | None
    path_fix: str | None  # the path that replaces call.path, when it differs
    method_fix: str | None  # the method that replaces call.method (`.http` only)


def _shape(path: str) -> str:
    """`/pets/42` and `/pets/{petId}` both become `/pets/{}`, for comparing shapes."""
    segments = ["{}" if _VALUE_SEGMENT.match(s) else s.lower() for s in path.strip("/").split("/")]
    return "/" + "/".join(segments)


def rewrite(concrete: str, template: str) -> str:
    """The template path with the concrete path's values kept where the segments line up."""
    have = concrete.strip("/").split("/")
    want = template.strip("/").split("/")
    if len(have) != len(want):
        return template
    out = []
    for old, new in zip(have, want, strict=True):
        is_param = new.startswith("{") and new.endswith("}")
        out.append(old if is_param and _VALUE_SEGMENT.match(old) else new)
    return "/" + "/".join(out)


class PathShapes:
    """The catalog's paths by shape, for the closest-operation search."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.shapes: dict[str, list[Operation]] = {}
        for op in catalog.operations:
            self.shapes.setdefault(_shape(op.path), []).append(op)
        self.keys = list(self.shapes)

    def closest(self, path: str, method: str | None) -> tuple[Operation, float] | None:
        if not self.keys:
            return None
        found = process.extractOne(_shape(path), self.keys, scorer=fuzz.ratio)
        if found is None:
            return None
        ops = self.shapes[str(found[0])]
        same = [op for op in ops if op.method == method]
        return (same or ops)[0], float(found[1])


def _server_prefix(path: str, catalog: Catalog) -> str:
    for prefixes in catalog.server_paths.values():
        for prefix in prefixes:
            if prefix and path.startswith(prefix + "/"):
                return prefix
    return ""


def check(calls: list[ApiCall], index: PathShapes, can_fix_method: bool) -> list[Finding]:
    catalog = index.catalog
    if not catalog.operations:
        return []
    findings: list[Finding] = []
    for call in calls:
        if catalog.match(call.path, call.method) is not None:
            continue
        same_path = catalog.match(call.path)
        if same_path is not None and call.method:
            methods = sorted({op.method for op in catalog.on_path(same_path.path)})
            message = (
                f"{call.method} {same_path.path} is not an operation of the catalog; "
                f"the path takes {', '.join(methods)}"
            )
            findings.append(
                Finding(
                    call, message, same_path, None, same_path.method if can_fix_method else None
                )
            )
            continue
        raw = call.raw_path
        prefix = _server_prefix(raw, catalog)  # `/v1` of `servers: [{url: .../v1}]` stays
        closest = index.closest(raw[len(prefix) :], call.method)
        if closest is None or closest[1] < MIN_SIMILARITY:
            continue
        op, _ = closest
        fix = prefix + rewrite(raw[len(prefix) :], op.path)
        method_fix = (
            op.method if can_fix_method and call.method and op.method != call.method else None
        )
        message = (
            f"{call.api_call} matches no operation of the catalog; closest: {op.key} ({op.spec})"
        )
        findings.append(Finding(call, message, op, fix if fix != raw else None, method_fix))
    return findings
