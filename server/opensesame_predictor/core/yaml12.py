"""YAML as OpenAPI asks for it: YAML 1.2 with the JSON-compatible core schema.

PyYAML implements YAML 1.1, which refuses or misreads valid published specs: a plain `=` is the
1.1 "value" tag, `2020-01-07T16:21:76Z` a timestamp that is no date, `yes`/`no` and `012`
booleans and octals; U+2028 breaks a line, and C1 characters are refused even inside a
double-quoted string. The fast path keeps PyYAML's C parser with 1.2 core-schema resolvers,
and hides U+2028, U+2029 and C1 characters from its reader (they come back in the strings);
a document its scanner still refuses (a tab inside a block scalar) is read by ruamel.yaml's
YAML 1.2 parser instead.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

try:  # the C parser is ~10x faster on multi-megabyte specs
    from yaml import CSafeLoader as _Base
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Base  # type: ignore[assignment]


_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


class Loader(_Base):
    """The C parser with the YAML 1.2 core schema's implicit types."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012 - PyYAML's own class table


for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", _BOOL, list("tTfF")),
    ("tag:yaml.org,2002:int", _INT, list("-+0123456789")),
    ("tag:yaml.org,2002:float", _FLOAT, list("-+.0123456789")),
    ("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"]),  # widely used in specs
):
    Loader.add_implicit_resolver(_tag, _pattern, _first)


def _int(loader: Loader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)  # "012" is twelve in 1.2


def _float(loader: Loader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node)).lower()  # type: ignore[arg-type]
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


Loader.add_constructor("tag:yaml.org,2002:int", _int)
Loader.add_constructor("tag:yaml.org,2002:float", _float)

# Characters YAML 1.2 reads as content that PyYAML's reader refuses or takes for line breaks
# (NEL, U+2028, U+2029, C1 controls); each is swapped for a private-use character while
# parsing, from a private-use plane the text does not use itself.
_HIDDEN = [0x2028, 0x2029, *range(0x80, 0xA0)]
_NEEDS_HIDING = re.compile("[\u2028\u2029\x80-\x9f]")
_PLANES = (0xF0000, 0x100000)  # Supplementary Private Use Areas A and B


class _Shelter:
    def __init__(self, start: int) -> None:
        self.hide = {c: start + i for i, c in enumerate(_HIDDEN)}
        self.show = {v: chr(k) for k, v in self.hide.items()}
        self.used = re.compile(f"[{chr(start)}-{chr(start + len(_HIDDEN) - 1)}]")

    def shown(self, node: Any) -> Any:
        """The document with the hidden characters put back into its strings."""
        if isinstance(node, str):
            return node.translate(self.show) if self.used.search(node) else node
        if isinstance(node, dict):
            return {self.shown(key): self.shown(value) for key, value in node.items()}
        if isinstance(node, list):
            return [self.shown(item) for item in node]
        return node


_SHELTERS = [_Shelter(start) for start in _PLANES]


def load(text: str) -> Any:
    """One YAML 1.2 document. Raises yaml.YAMLError (with a position) when it is invalid."""
    shelter = None
    if _NEEDS_HIDING.search(text):
        shelter = next((s for s in _SHELTERS if not s.used.search(text)), None)
    prepared = text.translate(shelter.hide) if shelter else text
    try:
        document = yaml.load(prepared, Loader=Loader)  # a safe loader: no arbitrary objects
    except yaml.scanner.ScannerError as refused:
        document = _ruamel(prepared, refused)
    return shelter.shown(document) if shelter else document


def _ruamel(text: str, refused: yaml.YAMLError) -> Any:
    """A document PyYAML's 1.1 scanner refuses, read by a YAML 1.2 parser; the first error
    stands when this one refuses it too."""
    from ruamel.yaml import YAML  # only for the few documents that need it

    reader = YAML(typ="safe", pure=True)
    reader.version = (1, 2)
    reader.Constructor.add_constructor("tag:yaml.org,2002:value", _value)
    reader.Constructor.add_constructor("tag:yaml.org,2002:timestamp", _value)
    try:
        return reader.load(text)
    except Exception:
        raise refused from None


def _value(constructor: Any, node: Any) -> Any:
    return constructor.construct_scalar(node)
