"""What the text around the cursor says: the document's kind, the API calls it makes, the prompt
(comment, docstring, `###` title, enclosing function) and the place a completion would go.

Plain functions over strings, no protocol types: columns are code points, lines 0-based.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit

from opensesame_predictor.core.models import HTTP_METHODS

Kind = Literal["http", "python", "js", "shell", "other"]

MAX_PROMPT = 1000  # characters of context sent as the prompt; the core's limit is larger
MAX_HISTORY = 100
MAX_URL = 2000  # the core refuses longer history entries

_LANGUAGE_IDS: dict[str, Kind] = {
    "http": "http",
    "rest": "http",
    "restclient": "http",
    "python": "python",
    "javascript": "js",
    "typescript": "js",
    "javascriptreact": "js",
    "typescriptreact": "js",
    "shellscript": "shell",
    "sh": "shell",
    "bash": "shell",
    "zsh": "shell",
}
_EXTENSIONS: dict[str, Kind] = {
    ".http": "http",
    ".rest": "http",
    ".py": "python",
    ".pyi": "python",
    ".js": "js",
    ".mjs": "js",
    ".cjs": "js",
    ".jsx": "js",
    ".ts": "js",
    ".mts": "js",
    ".cts": "js",
    ".tsx": "js",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
}

_METHODS = "|".join(HTTP_METHODS)
_HTTP_REQUEST = re.compile(rf"^(\s*)({_METHODS})(\s+)(\S+)(?:\s+HTTP/\d(?:\.\d)?)?\s*$")
_HTTP_SEPARATOR = re.compile(r"^\s*###")
_HTTP_VARIABLE = re.compile(r"^\s*@([A-Za-z_][\w.-]*)\s*=\s*(\S.*?)\s*$")
_HTTP_NAME = re.compile(r"^\s*(?:#|//)\s*@name\s+(\S+)")
# A string literal on one line: its quote, an optional Python prefix and its content.
_STRING = re.compile(
    r"""(?P<prefix>\b[fFrRbBuU]{1,2})?(?P<q>["'`])(?P<body>(?:\\.|(?!(?P=q)).)*)(?P=q)"""
)
_PY_CALL = re.compile(
    rf"\b(?:requests|httpx|session|client|self\.\w+|\w+)\.(?P<m>{_METHODS.lower()})\s*\(\s*$"
)
_PY_REQUEST = re.compile(
    rf"\.request\s*\(\s*(?:method\s*=\s*)?[\"'](?P<m>{_METHODS}|{_METHODS.lower()})[\"']\s*,\s*"
    r"(?:url\s*=\s*)?$"
)
_JS_CALL = re.compile(
    rf"\b(?:axios|api|client|http|this\.\w+|\w+)\.(?P<m>{_METHODS.lower()})\s*(?:<[^>]*>)?\s*\(\s*$"
)
_FETCH = re.compile(r"\b(?:fetch|ky|got|\$fetch|useFetch|request)\s*\(\s*$")
_URL_KEY = re.compile(r"\burl\s*[:=]\s*$")
_JS_METHOD_OPTION = re.compile(rf"""\bmethod\s*:\s*["'`]({_METHODS}|{_METHODS.lower()})["'`]""")
_CURL = re.compile(r"\bcurl\b")
_CURL_METHOD = re.compile(rf"(?:-X|--request)\s*[\"']?({_METHODS})\b", re.IGNORECASE)
_CURL_DATA = re.compile(r"\s(?:-d|--data(?:-raw|-binary|-urlencode)?|-F|--form|--json)\b")
_SHELL_URL = re.compile(r"""(?P<q>["']?)(?P<url>(?:https?://|\$\{?\w+\}?/)[^\s"'|;&<>]*)(?P=q)""")
# A leading template variable that stands for the base URL: {{host}}, ${BASE}, {BASE}, $BASE.
_LEADING_VAR = re.compile(r"^(?:\{\{[^}]*\}\}|\$\{[^}]*\}|\{[A-Za-z_][\w.]*\}|\$[A-Za-z_]\w*)")
_INNER_VAR = re.compile(r"\{\{\s*([^}]*?)\s*\}\}|\$\{\s*([^}]*?)\s*\}")
_PY_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(")
_JS_FUNC = re.compile(
    r"^(\s*)(?:export\s+)?(?:default\s+)?(?:async\s+)?(?:function\s*\*?\s*(\w+)\s*\("
    r"|(?:const|let|var)\s+(\w+)\s*=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|\w+\s*=>)"
    r"|(?:public\s+|private\s+|protected\s+|static\s+)*(?:async\s+)?(\w+)\s*\([^)]*\)\s*(?::[^{]+)?\{\s*$)"
)
_SHELL_FUNC = re.compile(r"^(\s*)(?:function\s+(\w+)|(\w+)\s*\(\s*\))")
_KEYWORDS = {"if", "for", "while", "switch", "catch", "return", "function", "else", "with"}
_DIRECTIVE = re.compile(
    r"^(?:!|-\*-|type:|noqa|pragma|eslint|prettier|@ts-|ts-|istanbul|pylint|mypy|fmt:|isort|"
    r"region|endregion|@name|@prompt|@no-|shellcheck)",
    re.IGNORECASE,
)
_TASK_PREFIX = re.compile(r"^(?:TODO|FIXME|XXX|HACK|NOTE)\b\s*(?:\([^)]*\))?\s*[:\-]?\s*", re.I)


def document_kind(language_id: str | None, uri: str) -> Kind:
    """By languageId first, then by the file's extension."""
    if language_id and language_id.lower() in _LANGUAGE_IDS:
        return _LANGUAGE_IDS[language_id.lower()]
    suffix = PurePosixPath(urlsplit(uri).path if "://" in uri else uri).suffix.lower()
    return _EXTENSIONS.get(suffix, "other")


@dataclass(frozen=True)
class ApiCall:
    """One API call written in a document: a `.http` request line or a URL string in code."""

    method: str | None
    url: str  # as written
    path: str  # the path part, template variables kept, query dropped
    line: int
    start: int  # column of the URL's first character
    end: int  # column after the URL's last character
    path_start: int  # column where the path part begins (after scheme+host or a base variable)
    method_start: int = -1  # column of the method word when it is on the same line (.http)

    @property
    def raw_path(self) -> str:
        """The path as written (variables untouched), without the query."""
        return re.split(r"[?#]", self.url[self.path_start - self.start :], maxsplit=1)[0]

    @property
    def api_call(self) -> str:
        return f"{self.method} {self.path}" if self.method else self.path


def url_path(url: str) -> tuple[str, int] | None:
    """The path part of a URL as written and the offset where it starts, or None when the text
    is no URL or path. `{{host}}/users/{{id}}?x=1` -> (`/users/{{id}}`, 8)."""
    text = url.strip()
    if len(text) > MAX_URL:
        return None
    offset = len(url) - len(url.lstrip())
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        start = text.find("/", len(parts.scheme) + 3)
        if start < 0:
            return None
        offset += start
        text = text[start:]
    else:
        leading = _LEADING_VAR.match(text)
        if leading:
            offset += leading.end()
            text = text[leading.end() :]
    if not text.startswith("/") or text.startswith("//"):
        return None
    path = re.split(r"[?#]", text, maxsplit=1)[0]
    if not path or " " in path:
        return None
    return path, offset


def normalise_path(path: str) -> str:
    """A written path in the shape the catalog matches: variables become `{name}` segments."""
    path = _INNER_VAR.sub(lambda m: "{" + (m.group(1) or m.group(2) or "x").strip() + "}", path)
    return unquote(path)


# --- finding calls ---------------------------------------------------------------------------


def _http_calls(lines: list[str]) -> list[ApiCall]:
    calls = []
    for number, line in enumerate(lines):
        match = _HTTP_REQUEST.match(line)
        if not match:
            continue
        call = _api_call(match.group(2), match.group(4), number, match.start(4), match.start(2))
        if call is not None:
            calls.append(call)
    return calls


def _api_call(
    method: str | None, url: str, line: int, start: int, method_start: int = -1
) -> ApiCall | None:
    """The call a URL at `start` of `line` makes, if the URL has a path we can match."""
    found = url_path(url)
    if found is None:
        return None
    path, offset = found
    return ApiCall(
        method=method,
        url=url,
        path=normalise_path(path),
        line=line,
        start=start,
        end=start + len(url),
        path_start=start + offset,
        method_start=method_start,
    )


def _call_arguments(rest: str, following: list[str]) -> str:
    """The text after a URL string up to the parenthesis that closes the call around it."""
    depth = 1
    text = "\n".join([rest, *following])[:2000]
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return text[:index]
    return text


def _code_method(kind: Kind, before: str, window: str) -> tuple[bool, str | None]:
    """Whether the text before a string literal makes it a request URL, and its method."""
    if kind == "python":
        if m := _PY_CALL.search(before):
            return True, m.group("m").upper()
        if m := _PY_REQUEST.search(before):
            return True, m.group("m").upper()
        return bool(_URL_KEY.search(before)), None
    if kind == "js":
        if m := _JS_CALL.search(before):
            return True, m.group("m").upper()
        if _FETCH.search(before) or _URL_KEY.search(before):
            m = _JS_METHOD_OPTION.search(window)
            return True, (m.group(1).upper() if m else "GET")
    return False, None


def _code_calls(lines: list[str], kind: Kind) -> list[ApiCall]:
    calls = []
    for number, line in enumerate(lines):
        if kind == "shell":
            calls.extend(_shell_calls(line, number))
            continue
        for match in _STRING.finditer(line):
            body = match.group("body")
            if url_path(body) is None:
                continue
            window = _call_arguments(line[match.end() :], lines[number + 1 : number + 12])
            is_call, method = _code_method(kind, line[: match.start()], window)
            call = _api_call(method, body, number, match.start("body")) if is_call else None
            if call is not None:
                calls.append(call)
    return calls


def _shell_calls(line: str, number: int) -> list[ApiCall]:
    curl = _CURL.search(line)
    if not curl:
        return []
    rest = line[curl.end() :]
    method_match = _CURL_METHOD.search(rest)
    method = method_match.group(1).upper() if method_match else None
    if method is None:
        method = "POST" if _CURL_DATA.search(" " + rest) else "GET"
    calls = []
    for match in _SHELL_URL.finditer(line, curl.end()):
        call = _api_call(method, match.group("url"), number, match.start("url"))
        if call is not None:
            calls.append(call)
    return calls


def find_calls(text: str, kind: Kind) -> list[ApiCall]:
    """The API calls a document makes, in document order."""
    lines = text.splitlines()
    if kind == "http":
        return _http_calls(lines)
    if kind in ("python", "js", "shell"):
        return _code_calls(lines, kind)
    return []


def call_at(calls: list[ApiCall], line: int, character: int) -> ApiCall | None:
    for call in calls:
        if call.line == line and call.start <= character <= call.end:
            return call
    return None


# --- prompt and history ----------------------------------------------------------------------


def comment_text(line: str, kind: Kind) -> str | None:
    """The text of a whole-line comment, or None when the line is not one."""
    stripped = line.strip()
    markers: tuple[str, ...]
    if kind in ("python", "shell"):
        markers = ("#",)
    elif kind == "js":
        markers = ("//", "/*", "*/", "*")
    elif kind == "http":
        markers = ("#", "//")
    else:
        markers = ("#", "//")
    for marker in markers:
        if stripped.startswith(marker):
            if kind == "http" and stripped.startswith("###"):
                return None
            text = stripped.lstrip("#/* ").rstrip("*/ ").strip()
            return text
    return None


def _clean(text: str) -> str:
    text = _TASK_PREFIX.sub("", text.strip())
    return text.strip()


def intent(line: str, kind: Kind) -> str | None:
    """The intent a comment states (`# TODO: delete the user's last order`), or None."""
    text = comment_text(line, kind)
    if text is None or _DIRECTIVE.match(text):
        return None
    text = _clean(text)
    words = re.findall(r"[A-Za-z]{2,}", text)
    return text if len(words) >= 2 else None


def _split_name(name: str) -> str:
    """`getUserOrders` / `get_user_orders` -> `get user orders`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ")
    return " ".join(spaced.lower().split())


@dataclass(frozen=True)
class Scope:
    """The function around a line: its name and the line where it starts."""

    name: str
    start: int


def enclosing_function(lines: list[str], line: int, kind: Kind) -> Scope | None:
    if kind not in ("python", "js", "shell") or not lines:
        return None
    line = min(line, len(lines) - 1)
    current = lines[line]
    indent = len(current) - len(current.lstrip()) if current.strip() else 10**6
    for number in range(line, -1, -1):
        text = lines[number]
        if not text.strip():
            continue
        if kind == "python":
            match = _PY_DEF.match(text)
            if match and (len(match.group(1)) < indent or number == line):
                return Scope(match.group(2), number)
            level = len(text) - len(text.lstrip())
            # a top-level statement between us and any def: we're outside functions
            if (
                number != line
                and level == 0
                and not text.lstrip().startswith(("#", "@", ")", "]", "}", '"', "'"))
            ):
                return None
            continue
        pattern = _JS_FUNC if kind == "js" else _SHELL_FUNC
        match = pattern.match(text)
        if match:
            name = next((g for g in match.groups()[1:] if g), None)
            if name and name not in _KEYWORDS:
                return Scope(name, number)
    return None


def _comment_block_above(lines: list[str], line: int, kind: Kind) -> list[str]:
    """The comment lines directly above `line` (blank lines inside the block are skipped)."""
    found: list[str] = []
    number = line - 1
    while number >= 0:
        text = lines[number]
        if not text.strip():
            if found:
                break
            number -= 1
            continue
        comment = comment_text(text, kind)
        if comment is None:
            break
        if comment and not _DIRECTIVE.match(comment):
            found.append(_clean(comment))
        number -= 1
    return list(reversed([f for f in found if f]))


def _docstring(lines: list[str], scope: Scope) -> str:
    """The first line(s) of a Python docstring right below a `def`."""
    for number in range(scope.start + 1, min(scope.start + 4, len(lines))):
        text = lines[number].strip()
        if not text:
            continue
        match = re.match(r"^[rRbBuU]?(\"\"\"|''')(.*)", text)
        if not match:
            return ""
        quote, rest = match.groups()
        if quote in rest:
            return rest.split(quote, 1)[0].strip()
        collected = [rest.strip()]
        for follow in lines[number + 1 : number + 6]:
            if quote in follow:
                collected.append(follow.split(quote, 1)[0].strip())
                break
            collected.append(follow.strip())
        return " ".join(c for c in collected if c)
    return ""


def _http_block_start(lines: list[str], line: int) -> int:
    for number in range(min(line, len(lines) - 1), -1, -1):
        if _HTTP_SEPARATOR.match(lines[number]):
            return number
    return 0


def prompt_at(text: str, line: int, kind: Kind) -> str:
    """The words around `line` that say what the next call should do."""
    lines = text.splitlines()
    if not lines:
        return ""
    line = max(0, min(line, len(lines)))
    parts: list[str] = []
    if kind == "http":
        start = _http_block_start(lines, line)
        if start < len(lines) and _HTTP_SEPARATOR.match(lines[start]):
            title = lines[start].strip().lstrip("#").strip()
            if title:
                parts.append(title)
        for number in range(start + 1 if parts else start, min(line + 1, len(lines))):
            candidate = lines[number]
            if name := _HTTP_NAME.match(candidate):
                parts.append(_split_name(name.group(1)))
                continue
            comment = comment_text(candidate, kind)
            if comment and not _DIRECTIVE.match(comment):
                parts.append(_clean(comment))
    else:
        scope = enclosing_function(lines, line, kind)
        parts.extend(_comment_block_above(lines, line, kind))
        if line < len(lines) and (same := intent(lines[line], kind)):
            parts.append(same)
        if not parts:  # the nearest comment above, within the function and a few lines
            floor = scope.start if scope else max(0, line - 15)
            for number in range(line - 1, floor, -1):
                if comment_text(lines[number], kind) is not None:
                    parts.extend(_comment_block_above(lines, number + 1, kind))
                    break
        if scope is not None:
            if kind == "python":
                doc = _docstring(lines, scope)
                if doc:
                    parts.append(doc)
            parts.extend(_comment_block_above(lines, scope.start, kind))
            parts.append(_split_name(scope.name))
    prompt = " ".join(dict.fromkeys(p for p in parts if p))
    return prompt[:MAX_PROMPT]


def history_before(
    text: str, line: int, kind: Kind, calls: list[ApiCall] | None = None
) -> list[str]:
    """The calls made before `line` (in the enclosing function, for code), oldest first, as
    `METHOD /path` strings the core understands."""
    calls = find_calls(text, kind) if calls is None else calls
    start = 0
    if kind in ("python", "js", "shell"):
        scope = enclosing_function(text.splitlines(), line, kind)
        if scope is not None:
            start = scope.start
    earlier = [c for c in calls if start <= c.line < line]
    return [c.api_call for c in earlier][-MAX_HISTORY:]


# --- where a completion goes -----------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """Where and what to complete on one line.

    `request`: a whole `.http` request replaces columns [start, end).
    `path`: a path replaces columns [start, end); `method` is already written (or implied by
    the call around a string), `base` is the scheme+host or variable kept before it.
    """

    mode: Literal["request", "path"]
    start: int
    end: int
    method: str | None = None
    typed: str = ""
    base: str = ""


def _string_before(line: str, character: int) -> tuple[int, str, str] | None:
    """If `character` is inside a string literal: (column of its content, quote, prefix)."""
    quote: str | None = None
    start = 0
    index = 0
    prefix = ""
    while index < character:
        char = line[index]
        if quote is None:
            if char in "\"'`":
                quote, start = char, index + 1
                word = re.search(r"[fFrRbBuU]{1,2}$", line[:index])
                prefix = word.group(0) if word else ""
        elif char == "\\":
            index += 1
        elif char == quote:
            quote = None
        index += 1
    if quote is None:
        return None
    return start, quote, prefix


def _http_in_request_head(lines: list[str], line: int) -> bool:
    """True when `line` is below a request line without a blank line between (headers/body)."""
    for number in range(line - 1, -1, -1):
        text = lines[number]
        if not text.strip() or _HTTP_SEPARATOR.match(text) or _HTTP_VARIABLE.match(text):
            return False
        if comment_text(text, "http") is not None:
            continue
        return True
    return False


def completion_site(text: str, line: int, character: int, kind: Kind) -> Site | None:
    lines = text.splitlines()
    current = lines[line] if line < len(lines) else ""
    character = min(character, len(current))
    before = current[:character]
    if kind == "http":
        match = re.match(rf"^(\s*)({_METHODS})(\s+)(\S*)$", before)
        if match:
            typed = match.group(4)
            found = url_path(typed) if typed else None
            if typed and found is None and not typed.startswith(("{", "$", "http")):
                return None
            base, start = "", match.start(4)
            if found is not None:
                base = typed[: found[1]]
                start += found[1]
            elif typed.startswith(("{{", "http")) and "/" not in typed.split("://")[-1]:
                base, start = typed, match.end(4)  # `GET {{host}}` -> complete right after it
            return Site("path", start, _token_end(current, character), match.group(2), typed, base)
        word = re.match(r"^(\s*)([A-Za-z]*)$", before)
        whole = re.match(r"^\s*[A-Za-z]*\s*$", current)
        if word and whole and not _http_in_request_head(lines, line):
            if comment_text(current, kind) is not None or _HTTP_VARIABLE.match(current):
                return None
            return Site(
                "request", word.start(2), _token_end(current, character), None, word.group(2)
            )
        return None
    if kind not in ("python", "js", "shell"):
        return None
    inside = _string_before(current, character)
    if inside is None:
        if kind == "shell" and _CURL.search(before):
            bare = re.search(r"(\s)(\S*)$", before)
            if bare and (bare.group(2) == "" or bare.group(2).startswith(("/", "http", "$"))):
                return _path_site(current, character, bare.start(2), kind, lines, line)
        return None
    return _path_site(current, character, inside[0], kind, lines, line)


def _path_site(
    current: str, character: int, start: int, kind: Kind, lines: list[str], line: int
) -> Site | None:
    typed = current[start:character]
    if typed:
        found = url_path(typed)
        if found is None:
            if not re.match(r"^(?:https?://[^/\s]*|\{\{?[^}]*\}?\}?|\$\{?[^}/]*\}?)$", typed):
                return None
            base, path_start = typed, character
        else:
            base, path_start = typed[: found[1]], start + found[1]
    else:
        base, path_start = "", start
    method: str | None = None
    if kind == "shell":
        rest = current[:start]
        m = _CURL_METHOD.search(rest)
        method = m.group(1).upper() if m else None
    else:
        window = _call_arguments(current[character:], lines[line + 1 : line + 12])
        _, method = _code_method(kind, current[: max(0, start - 1)].rstrip("fFrRbBuU"), window)
        if kind == "js" and _FETCH.search(current[: max(0, start - 1)]):
            explicit = _JS_METHOD_OPTION.search(window)
            method = explicit.group(1).upper() if explicit else None
    end = _path_end(current, character)
    return Site("path", path_start, end, method, typed, base)


def _token_end(line: str, character: int) -> int:
    match = re.match(r"\S*", line[character:])
    return character + (match.end() if match else 0)


def _path_end(line: str, character: int) -> int:
    """The end of the path being typed: up to a quote, space or query."""
    match = re.match(r"[^\s\"'`?#)]*", line[character:])
    return character + (match.end() if match else 0)


def http_base_variable(text: str) -> str | None:
    """The `.http` file variable that holds a base URL (`@baseUrl = https://...`), if any."""
    for line in text.splitlines():
        match = _HTTP_VARIABLE.match(line)
        if match and match.group(2).startswith(("http://", "https://", "{{")):
            return match.group(1)
    return None


def uses_library(text: str, names: tuple[str, ...]) -> str | None:
    """The first of `names` the document imports, for choosing the call style of a snippet."""
    for name in names:
        if re.search(rf"^\s*(?:import|from)\s+{re.escape(name)}\b", text, re.MULTILINE):
            return name
        if re.search(
            rf"""require\(\s*["']{re.escape(name)}["']\s*\)|from\s+["']{re.escape(name)}["']""",
            text,
        ):
            return name
    return None


def base_of_calls(calls: list[ApiCall], line: int) -> str:
    """The base (scheme+host or variable) the document's nearest earlier call uses."""
    earlier = [c for c in calls if c.line < line] or calls
    for call in reversed(earlier):
        base = call.url[: call.path_start - call.start]
        if base:
            return base
    return ""
