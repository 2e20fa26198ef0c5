"""Text the editor inserts or shows for an operation: paths with tab stops, whole `.http`
requests with a JSON body skeleton, calls in Python / JavaScript / shell, Markdown docs.

Plain functions over core models; `snippet=True` renders LSP snippet syntax (`${1:name}`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from opensesame_predictor.core.models import Operation, Prediction, SpecSummary, shown_confidence

KNOWN = ("prompt", "history")  # values taken from the user's words or earlier calls
MAX_BODY_FIELDS = 8
_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")


def escape_snippet(text: str, in_placeholder: bool = False) -> str:
    """Snippet syntax: `$` and `\\` always need a backslash, `}` only inside a placeholder."""
    text = text.replace("\\", "\\\\").replace("$", "\\$")
    return text.replace("}", "\\}") if in_placeholder else text


@dataclass
class Stops:
    """Numbers tab stops in order while a snippet is built; renders plain text when off."""

    snippet: bool
    next: int = 1
    used: list[str] = field(default_factory=list)

    def literal(self, text: str) -> str:
        return escape_snippet(text) if self.snippet else text

    def stop(self, default: str, plain: str | None = None) -> str:
        if not self.snippet:
            return default if plain is None else plain
        number = self.next
        self.next += 1
        self.used.append(default)
        if not default:
            return f"${{{number}}}"
        return f"${{{number}:{escape_snippet(default, in_placeholder=True)}}}"

    def final(self) -> str:
        return "$0" if self.snippet else ""


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _param_value(prediction: Prediction | None, name: str) -> tuple[Any, bool]:
    """(value, known): known when it comes from the prompt or the history."""
    if prediction is None or name not in prediction.parameters:
        return None, False
    source = prediction.parameter_sources.get(name)
    value = prediction.parameters[name]
    if source == "placeholder":
        return None, False
    return value, source in KNOWN


def path_text(op: Operation, prediction: Prediction | None, stops: Stops) -> str:
    """The operation's path with known values filled and tab stops on the others."""
    out: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(op.path):
        out.append(stops.literal(op.path[last : match.start()]))
        name = match.group(1)
        value, known = _param_value(prediction, name)
        if known:
            out.append(stops.literal(_value_text(value)))
        elif value is not None:  # an example or default: a tab stop that offers it
            out.append(stops.stop(_value_text(value), "{" + name + "}"))
        else:
            out.append(stops.stop(name, "{" + name + "}"))
        last = match.end()
    out.append(stops.literal(op.path[last:]))
    return "".join(out)


def query_text(op: Operation, prediction: Prediction | None, stops: Stops) -> str:
    """`?name=value&...` for the required query parameters and any with a known value."""
    pairs: list[str] = []
    in_path = {
        str(v)
        for p in op.parameters
        if p.location == "path" and (v := _param_value(prediction, p.name)[0]) is not None
    }
    for param in op.parameters:
        if param.location != "query":
            continue
        value, known = _param_value(prediction, param.name)
        # an optional parameter only with a value of its own (not the path's id again)
        if not (param.required or (known and str(value) not in in_path)):
            continue
        if known:
            rendered = stops.literal(_value_text(value))
        else:
            default = _value_text(value) if value is not None else ""
            rendered = stops.stop(default or param.name, default)
        pairs.append(f"{stops.literal(param.name)}={rendered}")
    return ("?" + "&".join(pairs)) if pairs else ""


def _empty(kind: str) -> Any:
    return {"integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}.get(kind, "")


def body_fields(op: Operation) -> list[Any]:
    """The body parameters a skeleton shows: the required ones, or the first few."""
    body = [p for p in op.parameters if p.location == "body"]
    required = [p for p in body if p.required]
    return (required or body)[:MAX_BODY_FIELDS]


def json_body(op: Operation, prediction: Prediction | None, stops: Stops, indent: str) -> str:
    """A JSON object skeleton of the request body, one field a line."""
    fields = body_fields(op)
    if not fields:
        return stops.literal("{}")
    lines = []
    for param in fields:
        value, known = _param_value(prediction, param.name)
        if not known:
            value = param.example if param.example is not None else param.default
        if value is None:
            value = param.enum[0] if param.enum else _empty(param.type)
        encoded = json.dumps(value)
        if known:
            rendered = stops.literal(encoded)
        elif isinstance(value, str):  # a tab stop inside the quotes
            rendered = '"' + stops.stop(value, value) + '"'
        else:
            rendered = stops.stop(encoded, encoded)
        lines.append(f"{indent}  {stops.literal(json.dumps(param.name))}: {rendered}")
    return stops.literal("{") + "\n" + ",\n".join(lines) + "\n" + indent + stops.literal("}")


def body_values(op: Operation, prediction: Prediction | None) -> dict[str, Any]:
    """The body skeleton as values, for code snippets."""
    values: dict[str, Any] = {}
    for param in body_fields(op):
        value, known = _param_value(prediction, param.name)
        if not known:
            value = param.example if param.example is not None else param.default
        if value is None:
            value = param.enum[0] if param.enum else _empty(param.type)
        values[param.name] = value
    return values


def _indented_json(values: dict[str, Any], indent: str) -> str:
    return json.dumps(values, indent=2).replace("\n", "\n" + indent)


def is_json(op: Operation) -> bool:
    return bool(op.body_content_type and "json" in op.body_content_type)


def form_body(op: Operation, prediction: Prediction | None, stops: Stops) -> str:
    pairs = []
    for param in body_fields(op):
        value, known = _param_value(prediction, param.name)
        rendered = stops.literal(_value_text(value)) if known else stops.stop(param.name, "")
        pairs.append(f"{stops.literal(param.name)}={rendered}")
    return "&".join(pairs)


def http_request(
    op: Operation, prediction: Prediction | None, snippet: bool, base: str = ""
) -> str:
    """A whole `.http` request: method line, Content-Type, a body skeleton."""
    stops = Stops(snippet)
    url = stops.literal(base) + path_text(op, prediction, stops) + query_text(op, prediction, stops)
    lines = [f"{op.method} {url}"]
    if op.body_content_type:
        lines.append(stops.literal(f"Content-Type: {op.body_content_type}"))
        lines.append("")
        if is_json(op):
            lines.append(json_body(op, prediction, stops, ""))
        else:
            lines.append(form_body(op, prediction, stops))
    text = "\n".join(lines)
    return text + stops.final()


def url_text(op: Operation, prediction: Prediction | None, snippet: bool) -> str:
    """The path (and required query) that goes into a URL already being typed."""
    stops = Stops(snippet)
    return path_text(op, prediction, stops) + query_text(op, prediction, stops) + stops.final()


def _python_literal(text: str) -> str:
    return json.dumps(text)


def python_call(
    op: Operation, prediction: Prediction | None, indent: str, base: str, library: str
) -> str:
    """`response = httpx.delete("https://host/orders/{id}")` and its keyword arguments."""
    stops = Stops(False)
    path = path_text(op, prediction, stops)
    variable = re.fullmatch(r"\{([A-Za-z_][\w.]*)\}", base)  # an f-string base: `{BASE}`
    url = (
        f"{variable.group(1)} + {_python_literal(path)}"
        if variable
        else _python_literal(base + path)
    )
    args = [url]
    params = {}
    for param in op.parameters:
        if param.location == "query":
            value, known = _param_value(prediction, param.name)
            if param.required or known:
                params[param.name] = value if value is not None else ""
    if params:
        args.append(f"params={params!r}")
    if op.body_content_type:
        values = body_values(op, prediction)
        args.append(("json=" if is_json(op) else "data=") + repr(values))
    call = f"{library}.{op.method.lower()}" if op.method in _PY_METHODS else f"{library}.request"
    if call.endswith(".request"):
        args.insert(0, _python_literal(op.method))
    return f"{indent}response = {call}({', '.join(args)})\n"


_PY_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def js_call(op: Operation, prediction: Prediction | None, indent: str, base: str) -> str:
    """`const response = await fetch(...)` with method, headers and a JSON body."""
    stops = Stops(False)
    url = base + path_text(op, prediction, stops)
    quoted = f"`{url}`" if "${" in url else json.dumps(url)
    if op.method == "GET" and not op.body_content_type:
        return f"{indent}const response = await fetch({quoted});\n"
    inner = indent + "  "
    lines = [f"{indent}const response = await fetch({quoted}, {{", f'{inner}method: "{op.method}",']
    if op.body_content_type:
        content_type = json.dumps(op.body_content_type)
        lines.append(f'{inner}headers: {{ "Content-Type": {content_type} }},')
        if is_json(op):
            body = _indented_json(body_values(op, prediction), inner)
            lines.append(f"{inner}body: JSON.stringify({body}),")
        else:
            form = form_body(op, prediction, stops)
            lines.append(f"{inner}body: {json.dumps(form)},")
    lines.append(f"{indent}}});")
    return "\n".join(lines) + "\n"


def shell_call(op: Operation, prediction: Prediction | None, indent: str, base: str) -> str:
    stops = Stops(False)
    url = base + path_text(op, prediction, stops)
    parts = [f'{indent}curl -X {op.method} "{url}"']
    if op.body_content_type:
        parts.append(f"-H 'Content-Type: {op.body_content_type}'")
        if is_json(op):
            body = json.dumps(body_values(op, prediction))
        else:
            body = form_body(op, prediction, stops)
        parts.append(f"-d '{body}'")
    return " ".join(parts) + "\n"


# --- documentation ---------------------------------------------------------------------------


def _param_lines(op: Operation, limit: int = 12) -> list[str]:
    lines = []
    for param in op.parameters[:limit]:
        flags = ", ".join(x for x in (param.location, param.type, "required" * param.required) if x)
        text = f"- `{param.name}` ({flags})"
        if param.description:
            text += f": {param.description.splitlines()[0][:120]}"
        lines.append(text)
    if len(op.parameters) > limit:
        lines.append(f"- … and {len(op.parameters) - limit} more")
    return lines


def completion_markdown(op: Operation, prediction: Prediction, abstain: bool = False) -> str:
    parts = [f"**{op.key}**" + (f" — {op.summary}" if op.summary else "")]
    if op.description and op.description != op.summary:
        parts.append(op.description[:600])
    if params := _param_lines(op):
        parts.append("Parameters:\n" + "\n".join(params))
    if prediction.parameters:
        filled = ", ".join(
            f"`{k}={v}` ({prediction.parameter_sources.get(k, '?')})"
            for k, v in prediction.parameters.items()
        )
        parts.append(f"Values: {filled}")
    confidence = shown_confidence(prediction.confidence, abstain)
    if abstain:
        confidence += " (nothing in the loaded specs fits the prompt well)"
    parts.append(f"Confidence: {confidence}, rank {prediction.rank}")
    if prediction.reasons:
        parts.append("Why: " + "; ".join(prediction.reasons))
    parts.append(f"Spec: `{op.spec}`")
    return "\n\n".join(parts)


def hover_markdown(op: Operation, spec: SpecSummary | None) -> str:
    parts = [f"**{op.key}**" + (f" — {op.summary}" if op.summary else "")]
    if op.deprecated:
        parts.append("*Deprecated.*")
    if op.description and op.description != op.summary:
        parts.append(op.description[:800])
    if params := _param_lines(op):
        parts.append("Parameters:\n" + "\n".join(params))
    if op.response_fields or op.response_schemas:
        shape = []
        if op.response_schemas:
            shape.append("Response: " + ", ".join(f"`{s}`" for s in op.response_schemas[:5]))
        if op.response_fields:
            fields = ", ".join(f"`{f}`" for f in op.response_fields[:20])
            more = f" … (+{len(op.response_fields) - 20})" if len(op.response_fields) > 20 else ""
            shape.append(f"Fields: {fields}{more}")
        parts.append("\n".join(shape))
    origin = f"`{op.spec}`"
    if spec is not None:
        title = f"{spec.title} {spec.version}".strip()
        origin += f" ({title}, {spec.source})" if title else f" ({spec.source})"
    parts.append(f"Spec: {origin}")
    return "\n\n".join(parts)
