"""Views of the core's data that every face can use: spec text made safe for people and
agents (`safe_line`), an operation described within a byte budget (`describe`), predictions as a
few lines of text with where each parameter value came from, and the processing summary.

Spec text is untrusted (it may reach an LLM): every string taken from a spec goes through
`safe_line`, which strips control and invisible characters and truncates prose."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opensesame_predictor.core.guardrails import strip_invisible
from opensesame_predictor.core.models import Operation, PredictMetadata, shown_confidence

DESCRIBE_BUDGET = 4096  # bytes of JSON an agent gets for one operation
SUMMARY_CHARS = 200
DESCRIPTION_CHARS = 600
_SPACES = re.compile(r"[ \t\r\n]+")
# HTML as specs embed it in descriptions (Stripe's `<p>…<a href=…>`): tags go, text stays
# (only the tags of prose: `<id>` in "GET /users/<id>" is text)
_TAG = re.compile(
    r"</?(?:a|abbr|b|blockquote|br|code|dd|del|div|dl|dt|em|h[1-6]|hr|i|img|kbd|li|ol|p|pre"
    r"|s|small|span|strong|sub|sup|table|tbody|td|th|thead|tr|tt|u|ul)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
# what an agent must know of a value before it uses it
SOURCE_NOTES = {
    "prompt": "from the prompt",
    "history": "from the history",
    "llm": "filled by the model",
    "example": "the spec's example, not a real value",
    "default": "the spec's default",
    "placeholder": "placeholder: fill in",
}

# ---------------------------------------------------------------- sanitising untrusted text


def plain(text: str) -> str:
    """Spec prose as plain text: HTML tags dropped (their text kept), entities decoded."""
    if "<" not in text and "&" not in text:
        return text
    return html.unescape(_TAG.sub(" ", text)) if _TAG.search(text) or _ENTITY.search(text) else text


def safe_line(text: Any, limit: int | None = SUMMARY_CHARS, markup: bool = True) -> str:
    """Spec text for people and agents: HTML made plain (unless `markup` is False: a value
    stays as it is), no control/invisible characters, one line, at most `limit`."""
    value = plain(str(text)) if markup else str(text)
    value = strip_invisible(_SPACES.sub(" ", value), keep_newlines=False).strip()
    if limit is not None and len(value) > limit:
        value = value[: max(limit - 1, 0)].rstrip() + "…"
    return value


def safe_value(value: Any, limit: int = 200) -> Any:
    """An example, default or parameter value: strings cleaned, large structures dropped."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return safe_line(value, limit, markup=False)
    try:
        encoded = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return safe_line(value, limit)
    if len(encoded) > limit:
        return safe_line(encoded, limit, markup=False)
    if isinstance(value, dict):
        return {safe_line(k, 80): safe_value(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_value(v, limit) for v in value]
    return safe_line(value, limit, markup=False)


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def predict_text(data: dict[str, Any]) -> str:
    """A few lines an agent reads at a glance, from a wire-format result: each call with its
    confidence ("no match" when the answer abstains), its spec when several are loaded, its
    parameters with where each value came from (an example, default or placeholder said to
    be one: never mistaken for a real id), the reasons, and how the result was made when a
    model took part."""
    lines = []
    abstain = bool(data["metadata"].get("abstain"))
    several = len(data["metadata"].get("specs", [])) > 1
    for p in data["predictions"]:
        line = f"{p['rank']}. {p['api_call']}"
        if several and p.get("spec"):
            line += f" [spec {p['spec']}]"
        line += f" ({_confidence(p['confidence'], abstain)})"
        if p.get("description"):
            line += f" — {p['description']}"
        if p.get("parameters"):
            sources = p.get("parameter_sources", {})
            params = "; ".join(
                f"{k}={dumps(v)}"
                + (f" ({SOURCE_NOTES.get(sources[k], sources[k])})" if k in sources else "")
                for k, v in p["parameters"].items()
            )
            line += f"\n   params: {safe_line(params, 400, markup=False)}"
        if p.get("reasons"):
            line += f"\n   why: {'; '.join(p['reasons'])}"
        lines.append(line)
    unmatched = data["metadata"].get("unmatched_history") or []
    if unmatched:
        calls = ", ".join(safe_line(c, 120, markup=False) for c in unmatched)
        lines.append(f"History entries that match no operation (ignored): {calls}.")
    if abstain:
        lines.append(
            "Nothing in the loaded specs fits this well: check list_specs, try "
            "search_endpoints with other words, or load_spec the right API."
        )
    if not lines:
        lines.append("No predictions.")
    summary = processing_summary(PredictMetadata.model_validate(data["metadata"]))
    if summary != data["metadata"].get("processing_method"):  # the model took part, or failed
        lines.append(f"processing: {safe_line(summary, 300)}")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Detail:
    """How much of an operation to show; `describe` walks down these until it fits."""

    description: int
    param_description: int
    examples: bool
    enum: int
    fields: int
    params: int


_DETAILS = (
    _Detail(DESCRIPTION_CHARS, 200, True, 20, 200, 200),
    _Detail(300, 100, True, 10, 60, 100),
    _Detail(200, 60, False, 8, 30, 60),
    _Detail(120, 0, False, 5, 12, 40),
    _Detail(80, 0, False, 3, 0, 30),
    _Detail(0, 0, False, 0, 0, 10),
    _Detail(0, 0, False, 0, 0, 0),
)


def _param_info(param: Any, detail: _Detail) -> dict[str, Any]:
    info: dict[str, Any] = {"type": safe_line(param.type, 40)}
    if param.required:
        info["required"] = True
    if detail.param_description and param.description:
        info["description"] = safe_line(param.description, detail.param_description)
    if detail.enum and param.enum:
        info["enum"] = [safe_value(v, 60) for v in param.enum[: detail.enum]]
    if detail.examples and param.example is not None:
        info["example"] = safe_value(param.example, 120)
    if detail.examples and param.default is not None:
        info["default"] = safe_value(param.default, 120)
    return info


def field_tree(
    names: Iterable[str], limit: int, top: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, Any], int]:
    """Dotted field names (`photos.url`) as a nested tree, shallow names first, at most
    `limit` of them; returns the tree and how many names were left out."""
    ordered = sorted(dict.fromkeys(names), key=lambda n: n.count("."))
    tree: dict[str, Any] = {}
    for name, info in (top or {}).items():
        tree[name] = dict(info)
    kept = 0
    omitted = 0
    for name in ordered:
        parts = [safe_line(p, 80) for p in name.split(".") if p]
        if not parts:
            continue
        if len(parts) == 1 and parts[0] in tree:
            continue
        if kept >= limit:
            omitted += 1
            continue
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            node = child.setdefault("fields", {})
        node.setdefault(parts[-1], {})
        kept += 1
    return tree, omitted


def describe(op: Operation, resource: str, budget: int = DESCRIBE_BUDGET) -> dict[str, Any]:
    """One operation, refs already resolved by the core, trimmed until its JSON fits `budget`."""
    data: dict[str, Any] = {}
    for level, detail in enumerate(_DETAILS):
        data = _describe_at(op, resource, detail)
        data["truncated"] = level > 0 or bool(data.get("omitted"))
        if len(dumps(data).encode()) <= budget:
            return data
    # Only a pathological spec gets here (kilobytes of path or names): keep the identity.
    return {
        "api_call": safe_line(op.key, budget // 4),
        "spec": op.spec,
        "summary": safe_line(op.summary, 100),
        "parameters": [],
        "request_body": None,
        "response": {},
        "resource": resource,
        "truncated": True,
    }


def _describe_at(op: Operation, resource: str, detail: _Detail) -> dict[str, Any]:
    omitted: list[str] = []
    params = [p for p in op.parameters if p.location != "body"]
    body_params = [p for p in op.parameters if p.location == "body"]
    if len(params) > detail.params:
        omitted.append(f"{len(params) - detail.params} parameters")
        params = sorted(params, key=lambda p: not p.required)[: detail.params]
    data: dict[str, Any] = {
        "api_call": safe_line(op.key, None),
        "spec": op.spec,
        "summary": safe_line(op.summary, SUMMARY_CHARS),
    }
    if detail.description and op.description and op.description != op.summary:
        data["description"] = safe_line(op.description, detail.description)
    if op.operation_id:
        data["operation_id"] = safe_line(op.operation_id, 120)
    if op.tags:
        data["tags"] = [safe_line(t, 60) for t in op.tags[:5]]
    if op.deprecated:
        data["deprecated"] = True
    if op.security:
        data["security"] = [safe_line(s, 60) for s in op.security[:5]]
    data["parameters"] = [
        {"name": safe_line(p.name, 80), "in": p.location, **_param_info(p, detail)} for p in params
    ]
    if op.body_content_type or op.body_fields or body_params:
        top = {safe_line(p.name, 80): _param_info(p, detail) for p in body_params[: detail.params]}
        fields, left = field_tree(op.body_fields, detail.fields, top)
        if left or len(body_params) > detail.params:
            omitted.append(f"{left + max(len(body_params) - detail.params, 0)} body fields")
        data["request_body"] = {"content_type": op.body_content_type, "fields": fields}
    else:
        data["request_body"] = None
    fields, left = field_tree(op.response_fields, detail.fields)
    if left:
        omitted.append(f"{left} response fields")
    data["response"] = {
        "schemas": [safe_line(s, 80) for s in op.response_schemas[:10]],
        "fields": fields,
    }
    if op.links:
        data["links"] = [safe_line(link.operation_id or link.name, 80) for link in op.links[:10]]
    data["resource"] = resource
    if omitted:
        data["omitted"] = omitted
    return data


def _tree_text(tree: dict[str, Any]) -> str:
    parts = []
    for name, node in tree.items():
        text = name + ("*" if node.get("required") else "")
        if node.get("type"):
            text += f":{node['type']}"
        if node.get("enum"):
            text += " (" + "|".join(str(v) for v in node["enum"]) + ")"
        if node.get("fields"):
            text += "{" + _tree_text(node["fields"]) + "}"
        parts.append(text)
    return ", ".join(parts)


def describe_text(data: dict[str, Any]) -> str:
    lines = [f"{data['api_call']} [{data['spec']}] — {data.get('summary', '')}"]
    if data.get("description"):
        lines.append(data["description"])
    if data.get("deprecated"):
        lines.append("deprecated")
    if data["parameters"]:
        params = [
            f"{p['name']} ({p['in']}, {p['type']}{', required' if p.get('required') else ''})"
            for p in data["parameters"]
        ]
        lines.append("parameters: " + "; ".join(params))
    body = data.get("request_body")
    if body:
        lines.append(f"body ({body.get('content_type') or '?'}): {_tree_text(body['fields'])}")
    response = data["response"]
    if response["schemas"] or response["fields"]:
        schemas = ", ".join(response["schemas"])
        lines.append(f"response {schemas}: {_tree_text(response['fields'])}".rstrip(": "))
    if data.get("links"):
        lines.append("links to: " + ", ".join(data["links"]))
    if data.get("omitted"):
        lines.append("omitted: " + ", ".join(data["omitted"]) + f" (full: {data['resource']})")
    return "\n".join(lines)


def _confidence(value: float, abstain: bool) -> str:
    shown = shown_confidence(value, abstain)
    return shown if abstain else f"confidence {shown}"


def processing_summary(metadata: PredictMetadata) -> str:
    """One line for people (CLI, MCP text): how the result was made and, when the model was
    not used, why. E.g. `hybrid_ml_llm (ollama llama3.2, 640 ms)` or
    `ml (refinement timeout: no answer within 1500 ms)`."""
    method = metadata.processing_method
    info = metadata.refinement
    if info is None or info.status == "disabled":
        return method
    if info.status == "ok":
        return f"{method} ({info.provider} {info.model}, {info.elapsed_ms or 0:.0f} ms)"
    reason = info.detail or (
        f"retry at {info.retry_at}" if info.status == "backing_off" and info.retry_at else ""
    )
    return f"{method} (refinement {info.status}{': ' + reason if reason else ''})"


def plain_text(markdown: str) -> str:
    """Markdown as plain text, for clients that show no markup: emphasis and code marks go."""
    return markdown.replace("**", "").replace("`", "").replace("*", "")
