"""Request validation and content rules, shared by every surface.

Limits give errors that name the field and the limit. Injection rules name the rule that matched;
they look for attack shapes, not for words, so "delete the last order" is fine while
"x; rm -rf /" is not.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from pydantic import ValidationError

from opensesame_predictor.core.errors import GuardrailViolation, InvalidRequest
from opensesame_predictor.core.models import PredictRequest

INJECTION_RULES: dict[str, re.Pattern[str]] = {
    "sql_injection": re.compile(
        # `insert into t (a) values (` is SQL; "insert into the cart the values I picked" is not
        r"(\bunion\b\s+(all\s+)?\bselect\b|\bdrop\s+table\b"
        r"|\binsert\s+into\s+[\w.\"`\[\]]+\s*(\([^)]*\)\s*)?values\s*\("
        r"|'\s*or\s+'?\d+'?\s*=\s*'?\d+|\bor\s+1\s*=\s*1\b|;\s*--|\bexec(\s|\()+xp_)",
        re.IGNORECASE,
    ),
    "script_injection": re.compile(
        r"(<\s*/?\s*script\b|javascript\s*:|\bon(error|load|click)\s*=|<\s*iframe\b)",
        re.IGNORECASE,
    ),
    "shell_injection": re.compile(
        r"((;|&&|\|\||\|)\s*(rm|curl|wget|bash|sh|zsh|nc|ncat|chmod|chown|sudo|python\d?|perl)\b"
        # backtick substitution of a harmful command; markdown like `python` alone is fine
        r"|`\s*(rm|curl|wget|nc|ncat|chmod|chown|sudo)\s+[^`]*`"
        r"|\$\([^)]*\))",
        re.IGNORECASE,
    ),
    "path_traversal": re.compile(r"(\.\.[/\\]|%2e%2e(%2f|%5c|/|\\)|/etc/passwd)", re.IGNORECASE),
}

_INVISIBLE = {"Cc", "Cf", "Co", "Cs"}
# Control characters and invisible formatting (zero-width, bidi overrides): in a terminal
# `\x1b]0;…\x07` retitles the window and `\x1b[2J` clears it; bidi overrides hide text.
CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def printable(text: str) -> str:
    """Text for a terminal or a log: control characters shown escaped (`\\x1b`), never
    acted on; newlines and tabs kept."""
    return CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


def strip_invisible(text: str, keep_newlines: bool = True) -> str:
    """Remove control, format (zero-width, bidi) and private-use characters."""
    kept = []
    for char in text:
        if (keep_newlines and char in "\n\t") or unicodedata.category(char) not in _INVISIBLE:
            kept.append(char)
    return "".join(kept)


def prompt_fingerprint(prompt: str) -> str:
    """What logs may say of a prompt: its length and a short hash, never the text."""
    digest = hashlib.sha256(prompt.encode("utf-8", errors="replace")).hexdigest()[:12]
    return f"len={len(prompt)} sha256={digest}"


HISTORY_ENTRY = (
    "a history entry is a call already made: a string ('POST /pets', a path or a full URL) "
    "or an object with api_call (the same) and, optionally, method, timestamp, parameters "
    "and response"
)
# pydantic's wording, as people read it
_WORDING = (
    ("Input should be a valid dictionary", "must be an object"),
    ("Input should be", "must be"),
    ("String should have at least 1 character", "must not be empty"),
    ("Field required", "is required"),
    ("Extra inputs are not permitted", "is not a field of the request"),
)


def _describe(error: Any) -> tuple[str, str]:
    loc = tuple(error.get("loc", ()))
    field = ".".join(str(part) for part in loc) or "request"
    kind = error.get("type", "")
    if loc[:1] == ("history",) and len(loc) == 1 and kind == "list_type":
        return (
            field,
            f"{field}: must be a list of calls already made, oldest first ({HISTORY_ENTRY})",
        )
    if loc[:1] == ("history",) and len(loc) == 2 and kind != "too_long":
        return field, f"{field}: {HISTORY_ENTRY}"
    if loc[:1] == ("history",) and loc[2:] == ("api_call",):
        return field, f"{field}: {HISTORY_ENTRY}; api_call must be a non-empty string"
    message = str(error.get("msg", "invalid value"))
    for theirs, ours in _WORDING:
        if message.startswith(theirs):
            message = ours + message[len(theirs) :]
            break
    return field, f"{field}: {message}"


def parse_request(raw: Any) -> PredictRequest:
    """Validate a request body; the error names the first bad field and its limit."""
    if isinstance(raw, PredictRequest):
        return raw
    if not isinstance(raw, dict):
        raise InvalidRequest("request must be a JSON object", field="request")
    try:
        return PredictRequest.model_validate(raw)
    except ValidationError as exc:
        field, message = describe_errors(exc.errors(include_url=False))
        raise InvalidRequest(message, field=field) from None


def require_something(request: PredictRequest, prefix: str = "") -> None:
    """A prompt, a history or both: with neither there is nothing to go on (the faces that
    take requests from people and agents refuse it; a history alone asks what comes next)."""
    if not request.prompt and not request.history:
        raise InvalidRequest(
            f"{prefix}prompt, {prefix}history: neither is given, so there is nothing to go on: "
            "give a prompt (what to do), a history (the calls made so far), or both",
            field=f"{prefix}prompt",
        )


def describe_errors(errors: list[Any]) -> tuple[str, str]:
    """(field, message) of pydantic's errors in the words every face uses: the first bad
    field named, what it may be, and how many more there are."""
    field, message = _describe(errors[0]) if errors else ("request", "invalid request")
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return field, message


def check_request(
    request: PredictRequest, max_prompt_length: int, enable_guardrails: bool = True
) -> None:
    """The limits that depend on settings, and the injection rules."""
    if len(request.prompt) > max_prompt_length:
        raise InvalidRequest(
            f"prompt: {len(request.prompt)} characters is over the limit of {max_prompt_length}",
            field="prompt",
        )
    if not enable_guardrails:
        return
    # Match on the text as it will be read: a zero-width space inside `<scr\u200bipt>` or
    # full-width `＜script＞` must not slip past the patterns.
    text = unicodedata.normalize("NFKC", strip_invisible(request.prompt))
    for rule, pattern in INJECTION_RULES.items():
        if pattern.search(text):
            raise GuardrailViolation(
                f"prompt refused by guardrail rule {rule!r}", rule=rule, field="prompt"
            )
