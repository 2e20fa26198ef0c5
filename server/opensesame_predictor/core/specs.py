"""Parse OpenAPI 3.0/3.1 and Swagger 2.0 documents (JSON or YAML) into `Operation`s.

`$ref`s are resolved lazily, only where the walk needs them, and every walk is bounded (depth,
node budget) so that cyclic schemas and YAML alias bombs cost a fixed amount of work.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from sys import intern
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import BaseModel, Field

from opensesame_predictor.core import yaml12
from opensesame_predictor.core.errors import SpecError
from opensesame_predictor.core.guardrails import CONTROL
from opensesame_predictor.core.models import HTTP_METHODS, Link, Operation, Parameter

MAX_SCHEMA_DEPTH = 6
MAX_SCHEMA_NODES = 4000
MAX_FIELDS = 400
MAX_DESCRIPTION = 4000
MAX_OPERATIONS = 20000
MAX_REF_BYTES = 64 * 1024 * 1024  # a file an external $ref reads
# a named schema: #/components/schemas/Name, #/definitions/Name, or other.yaml#/Name
_SCHEMA_REF = re.compile(r"#/(?:(?:components/schemas|definitions)/)?([^/]+)$")


class NotARegularFile(OSError):
    pass


def read_file(path: Path, limit: int, *, head: bool = False) -> bytes:
    """A regular file's bytes, never more than `limit`: a FIFO or a device named `*.yaml`
    neither hangs the read nor fills memory, whatever `stat` says of its size. Too large a
    file raises OSError(EFBIG) unless only its `head` is wanted."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(descriptor, "rb") as handle:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(mode):
            raise NotARegularFile(errno.EINVAL, "not a regular file (a pipe or a device)")
        content = handle.read(limit + 1)
    if len(content) > limit:
        if head:
            return content[:limit]
        raise OSError(errno.EFBIG, f"file is larger than {limit} bytes")
    return content


def parse_text(data: bytes | str, source: str) -> Any:
    """JSON or YAML text to Python data, with errors that name the source and the position."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    stripped = text.lstrip()
    try:
        if stripped.startswith(("{", "[")):
            return json.loads(stripped)
        return yaml12.load(text)
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise SpecError(source, reason) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise SpecError(source, "document is nested too deeply") from None
    except ValueError as exc:  # e.g. a YAML timestamp that is no real date ('2020-01-07T16:21:76Z')
        raise SpecError(source, f"unreadable value: {exc}") from None


def looks_like_openapi(doc: Any) -> bool:
    return isinstance(doc, dict) and ("openapi" in doc or "swagger" in doc)


class ParsedSpec(BaseModel):
    """The normalised content of one spec: what the store keeps and the catalog indexes."""

    title: str
    description: str = ""  # what the API is for (info.description), for telling APIs apart
    version: str
    openapi_version: str
    server_paths: list[str]
    operations: list[Operation]
    warnings: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)  # other local files its $refs read
    content_hash: str = ""  # of the source's bytes (and its $ref files), set by the loader


class _Resolver:
    """Follows `$ref`s inside the document and, for local files, into sibling files."""

    def __init__(self, doc: Any, source: str, path: Path | None, root: Path | None) -> None:
        self.source = source
        self.root = root.resolve() if root else None
        self.docs: dict[str, Any] = {str(path.resolve()) if path else "": doc}
        self.root_key = next(iter(self.docs))
        # (document, $ref) -> (fields, schema names): a schema shared by many operations is
        # walked once, so a spec's cost grows with its size, not operations x schema size
        self.walked: dict[
            tuple[str, str], tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]
        ] = {}

    def resolve(self, node: Any, doc_key: str) -> tuple[Any, str, str | None]:
        """Follow a chain of refs; returns (target, its document, the last ref followed)."""
        last_ref: str | None = None
        chain: set[tuple[str, str]] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if (doc_key, ref) in chain:
                raise SpecError(self.source, f"$ref cycle with no content at {ref!r}")
            chain.add((doc_key, ref))
            node, doc_key = self._follow(ref, doc_key)
            last_ref = ref
        return node, doc_key, last_ref

    def _follow(self, ref: str, doc_key: str) -> tuple[Any, str]:
        location, _, pointer = ref.partition("#")
        if location:
            doc_key = self._load_external(location, doc_key, ref)
        node = self.docs[doc_key]
        for raw in pointer.split("/")[1:] if pointer else []:
            token = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise SpecError(self.source, f"unresolvable $ref {ref!r}")
        return node, doc_key

    def _load_external(self, location: str, doc_key: str, ref: str) -> str:
        if not doc_key or self.root is None or urlsplit(location).scheme:
            raise SpecError(self.source, f"external $ref {ref!r} is not followed for this source")
        target = (Path(doc_key).parent / unquote(location)).resolve()
        if not target.is_relative_to(self.root):
            raise SpecError(self.source, f"$ref {ref!r} points outside the workspace")
        key = str(target)
        if key not in self.docs:
            try:
                self.docs[key] = parse_text(read_file(target, MAX_REF_BYTES), str(target))
            except OSError as exc:
                raise SpecError(self.source, f"$ref {ref!r}: {exc.strerror or exc}") from None
        return key


class _SchemaWalker:
    """Collects dotted field names and schema names of one schema, within fixed budgets."""

    def __init__(self, resolver: _Resolver) -> None:
        self.resolver = resolver
        self.fields: list[str] = []
        self.names: list[str] = []
        # the named schema of each nested object (`item` -> TrackObject): whose id `item.id` is
        self.kinds: dict[str, str] = {}
        self.budget = MAX_SCHEMA_NODES
        self._seen: set[str] = set()

    def add_field(self, dotted: str) -> None:
        dotted = intern(plain(dotted[:300], lines=False))
        if dotted not in self._seen and len(self.fields) < MAX_FIELDS:
            self._seen.add(dotted)
            self.fields.append(dotted)

    def _add_name(self, name: str) -> None:
        name = intern(plain(name, lines=False))
        if name not in self.names:
            self.names.append(name)

    def walk(self, schema: Any, doc_key: str) -> None:
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not isinstance(ref, str):
            self._walk(schema, doc_key, "", 0, frozenset())
            return
        key = (doc_key, ref)
        if key not in self.resolver.walked:
            fresh = _SchemaWalker(self.resolver)
            fresh._walk(schema, doc_key, "", 0, frozenset())
            self.resolver.walked[key] = (
                tuple(fresh.fields),
                tuple(fresh.names),
                tuple(fresh.kinds.items()),
            )
        fields, names, kinds = self.resolver.walked[key]
        if not self.fields and not self.names:  # the usual case: one schema per walker
            self.fields, self.names, self._seen = list(fields), list(names), set(fields)
            self.kinds = dict(kinds)
            return
        for dotted in fields:
            self.add_field(dotted)
        for name in names:
            self._add_name(name)
        for dotted, kind in kinds:
            self.kinds.setdefault(dotted, kind)

    def _walk(
        self, schema: Any, doc_key: str, prefix: str, depth: int, active: frozenset[str]
    ) -> None:
        self.budget -= 1
        if self.budget <= 0 or depth > MAX_SCHEMA_DEPTH or len(self.fields) >= MAX_FIELDS:
            return
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if isinstance(ref, str):
            if ref in active:  # a cycle: the fields above already describe it
                return
            active = active | {ref}
        schema, doc_key, last_ref = self.resolver.resolve(schema, doc_key)
        if not isinstance(schema, dict):
            return
        named = _SCHEMA_REF.search(last_ref) if last_ref else None
        schema_name = intern(unquote(named.group(1))) if named else ""
        if schema_name and prefix and len(self.kinds) < MAX_FIELDS:
            self.kinds.setdefault(intern(prefix[:-1]), schema_name)
        if depth <= 2:  # the response itself or its items: what it is, not what it embeds
            if schema_name:
                self._add_name(schema_name)
            title = schema.get("title")
            if isinstance(title, str) and title and len(title) < 80:
                self._add_name(title)
        for combinator in ("allOf", "oneOf", "anyOf"):
            parts = schema.get(combinator)
            if isinstance(parts, list):
                for part in parts[:20]:
                    self._walk(part, doc_key, prefix, depth + 1, active)
        items = schema.get("items")
        if isinstance(items, dict):
            self._walk(items, doc_key, prefix, depth + 1, active)
        properties = schema.get("properties")
        if isinstance(properties, dict):
            entries = list(properties.items())[:MAX_FIELDS]
            # an object's own fields before what they embed: a budget spent deep inside
            # `application.*` must not leave out the object's own `id`
            for name, _ in entries:
                self.add_field(f"{prefix}{name}")
            for name, sub in entries:
                self._walk(sub, doc_key, f"{prefix}{name}.", depth + 1, active)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            self._walk(additional, doc_key, prefix, depth + 1, active)


_BREAKS = re.compile("[\n\t]")


def plain(value: str, lines: bool = True) -> str:
    """Spec text without control characters (newlines and tabs kept when `lines`): it reaches
    terminals, editors and agents."""
    value = CONTROL.sub("", value)
    return value if lines else _BREAKS.sub(" ", value)


def _text(value: Any, limit: int = MAX_DESCRIPTION) -> str:
    return plain(value.strip()[:limit]) if isinstance(value, str) else ""


def _scalar(value: Any, limit: int = 200) -> str:
    """A scalar as text, anything else as "": never `str()` a container, which may be a YAML
    alias bomb whose text form is gigabytes."""
    if isinstance(value, str):
        return plain(value[:limit], lines=False)
    if isinstance(value, bool | int | float):
        return str(value)[:limit]
    return ""


def _id_holders(kinds: dict[str, str], fields: list[str]) -> dict[str, str]:
    """The named schemas of the nested objects that carry an `id`: all that is needed to tell
    whose id `item.id` is, and a small part of every nested schema name."""
    present = set(fields)
    return {dotted: kind for dotted, kind in kinds.items() if f"{dotted}.id" in present}


def _flag(value: Any) -> bool:
    """A boolean field; some specs write it as a string ("false" must not read as true)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _field(schema: Any, name: str) -> Any:
    return schema.get(name) if isinstance(schema, dict) else None


def _schema_type(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "string"
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1: ["string", "null"]
        kind = next((k for k in kind if k != "null"), "string")
    return kind if isinstance(kind, str) else ("object" if "properties" in schema else "string")


def _small(value: Any) -> Any:
    """Keep scalar values and short lists of them: examples are hints, and a spec's example
    may be an alias bomb that must never be copied or serialised."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return intern(value[:200])
    if (
        isinstance(value, list)
        and len(value) <= 10
        and all(isinstance(v, str | int | float | bool) for v in value)
    ):
        return [intern(v[:200]) if isinstance(v, str) else v for v in value]
    return None


def _example(param: dict[str, Any], schema: Any) -> Any:
    if "example" in param:
        return _small(param["example"])
    if "x-example" in param:  # Swagger 2.0 has no parameter examples; tools use x-example
        return _small(param["x-example"])
    examples = param.get("examples")
    if isinstance(examples, dict):
        for value in examples.values():
            if isinstance(value, dict) and "value" in value:
                return _small(value["value"])
    if isinstance(schema, dict):
        if "example" in schema:
            return _small(schema["example"])
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return _small(schema["examples"][0])
    return None


def _enum(schema: Any) -> list[Any]:
    values = schema.get("enum") if isinstance(schema, dict) else None
    if not isinstance(values, list):
        return []
    return [_small(v) for v in values[:50] if isinstance(v, str | int | float | bool)]


def _json_media(content: Any) -> tuple[str | None, Any]:
    """The schema of the most JSON-like media type of a `content` map."""
    if not isinstance(content, dict) or not content:
        return None, None
    for media, body in content.items():
        if isinstance(media, str) and "json" in media and isinstance(body, dict):
            return media, body.get("schema")
    media, body = next(iter(content.items()))
    return str(media), body.get("schema") if isinstance(body, dict) else None


class _OperationBuilder:
    def __init__(self, doc: dict[str, Any], resolver: _Resolver, spec_name: str) -> None:
        self.doc = doc
        self.resolver = resolver
        self.spec_name = spec_name
        self.swagger2 = "swagger" in doc
        base = doc.get("basePath", "") if self.swagger2 else ""
        self.base_path = base.rstrip("/") if isinstance(base, str) else ""
        security = doc.get("security")
        self.default_security = self._security_names(security)
        self.default_consumes = self._consumes(doc.get("consumes"))
        self.warnings: list[str] = []

    @staticmethod
    def _consumes(raw: Any) -> list[str]:
        return [c for c in raw if isinstance(c, str)][:20] if isinstance(raw, list) else []

    @staticmethod
    def _security_names(security: Any) -> list[str]:
        names: list[str] = []
        if isinstance(security, list):
            for requirement in security:
                if isinstance(requirement, dict):
                    names.extend(intern(str(k)) for k in requirement if str(k) not in names)
        return names

    def operations(self) -> Iterator[Operation]:
        paths = self.doc.get("paths")
        if not isinstance(paths, dict):
            return
        root = self.resolver.root_key
        for raw_path, raw_item in paths.items():
            if not isinstance(raw_path, str) or not raw_path.startswith("/"):
                continue
            raw_path = plain(raw_path, lines=False)
            item, item_doc, _ = self.resolver.resolve(raw_item, root)
            if not isinstance(item, dict):
                continue
            shared = self._parameters(item.get("parameters"), item_doc)
            for method in HTTP_METHODS:
                op = item.get(method.lower())
                if not isinstance(op, dict):
                    continue
                # every value is built to its field's type here, so nothing is validated twice
                yield self._operation(method, self.base_path + raw_path, op, shared, item_doc)

    def _parameters(self, raw: Any, doc_key: str) -> list[tuple[dict[str, Any], str]]:
        resolved: list[tuple[dict[str, Any], str]] = []
        for entry in raw if isinstance(raw, list) else []:
            param, param_doc, _ = self.resolver.resolve(entry, doc_key)
            if isinstance(param, dict) and isinstance(param.get("name"), str):
                if param is not entry and _text(entry.get("description")):
                    # OpenAPI 3.1: a $ref's sibling description overrides the target's
                    param = {**param, "description": entry["description"]}
                resolved.append((param, param_doc))
        return resolved

    def _operation(
        self,
        method: str,
        path: str,
        op: dict[str, Any],
        shared: list[tuple[dict[str, Any], str]],
        doc_key: str,
    ) -> Operation:
        merged: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for param, param_doc in shared + self._parameters(op.get("parameters"), doc_key):
            merged[(_scalar(param.get("in")), param["name"])] = (param, param_doc)
        parameters: list[Parameter] = []
        body = _SchemaWalker(self.resolver)
        body_type: str | None = None
        consumes = self._consumes(op.get("consumes")) or self.default_consumes
        for (location, name), (param, param_doc) in merged.items():
            if location == "body":  # Swagger 2.0 body parameter
                body.walk(param.get("schema"), param_doc)
                parameters.extend(self._body_parameters(param.get("schema"), param_doc))
                body_type = next((c for c in consumes if "json" in c), "application/json")
            elif location == "formData":
                parameters.append(self._parameter(param, param_doc, "body"))
                body.add_field(name)
                body_type = next(
                    (c for c in consumes if "form" in c), "application/x-www-form-urlencoded"
                )
            elif location in ("path", "query", "header", "cookie"):
                parameters.append(self._parameter(param, param_doc, location))
        if not self.swagger2 and "requestBody" in op:
            request, request_doc, _ = self.resolver.resolve(op["requestBody"], doc_key)
            if isinstance(request, dict):
                body_type, schema = _json_media(request.get("content"))
                if schema is not None:
                    body.walk(schema, request_doc)
                    parameters.extend(self._body_parameters(schema, request_doc))
        response = _SchemaWalker(self.resolver)
        links = self._responses(op.get("responses"), doc_key, response)
        security = op.get("security")
        return Operation(
            spec=self.spec_name,
            method=method,
            path=path,
            operation_id=plain(_text(op.get("operationId"), 200), lines=False),
            summary=_text(op.get("summary"), 300),
            description=_text(op.get("description")),
            tags=[
                intern(plain(t[:100], lines=False))
                for t in op.get("tags", [])
                if isinstance(t, str)
            ][:10]
            if isinstance(op.get("tags"), list)
            else [],
            parameters=parameters,
            body_fields=body.fields,
            body_content_type=intern(body_type) if body_type else body_type,
            response_fields=response.fields,
            response_schemas=response.names,
            response_kinds=_id_holders(response.kinds, response.fields),
            links=links,
            deprecated=_flag(op.get("deprecated")),
            security=self._security_names(security)
            if security is not None
            else self.default_security,
        )

    def _parameter(self, param: dict[str, Any], doc_key: str, location: str) -> Parameter:
        schema: Any = param.get("schema", param)  # Swagger 2.0 keeps the type on the parameter
        schema, _, _ = self.resolver.resolve(schema, doc_key)
        return Parameter(
            name=intern(plain(param["name"][:200], lines=False)),
            location=intern(location),  # type: ignore[arg-type]
            type=intern(_schema_type(schema)),
            required=_flag(param.get("required")) or location == "path",
            # many specs describe a parameter in its schema only
            description=intern(
                _text(param.get("description"), 500)
                or _text(_field(schema, "description"), 500)
                or _text(_field(schema, "title"), 500)
            ),
            example=_example(param, schema),
            default=_small(schema.get("default")) if isinstance(schema, dict) else None,
            enum=_enum(schema),
        )

    def _body_parameters(self, schema: Any, doc_key: str) -> list[Parameter]:
        """Top-level body properties as `body` parameters, for parameter filling."""
        schema, doc_key, _ = self.resolver.resolve(schema, doc_key)
        if not isinstance(schema, dict):
            return []
        properties: dict[str, Any] = {}
        required: set[str] = set()
        all_of = schema.get("allOf")
        for part in [schema, *(all_of if isinstance(all_of, list) else [])][:20]:
            part, _, _ = self.resolver.resolve(part, doc_key)
            if isinstance(part, dict) and isinstance(part.get("properties"), dict):
                properties.update(part["properties"])
                if isinstance(part.get("required"), list):
                    required.update(r for r in part["required"][:1000] if isinstance(r, str))
        params = []
        for name, raw in list(properties.items())[:100]:
            sub, _, _ = self.resolver.resolve(raw, doc_key)
            # OpenAPI 3.1 lets a $ref carry its own description, which wins over the target's
            described = [
                d for d in (raw, sub) if isinstance(d, dict) and _text(d.get("description"))
            ]
            params.append(
                Parameter(
                    name=intern(plain(str(name)[:200], lines=False)),
                    location="body",
                    type=intern(_schema_type(sub)),
                    required=name in required,
                    description=intern(_text(described[0]["description"], 500))
                    if described
                    else "",
                    example=_example({}, sub),
                    default=_small(sub.get("default")) if isinstance(sub, dict) else None,
                    enum=_enum(sub),
                )
            )
        return params

    def _responses(self, raw: Any, doc_key: str, walker: _SchemaWalker) -> list[Link]:
        if not isinstance(raw, dict):
            return []
        codes = sorted((str(c) for c in raw), key=lambda c: (not c.startswith("2"), c))
        successful = [c for c in codes if c.startswith("2")] or [c for c in codes if c == "default"]
        links: list[Link] = []
        for code in successful:
            response, response_doc, _ = self.resolver.resolve(raw.get(code), doc_key)
            if not isinstance(response, dict):
                continue
            schema = (
                response.get("schema") if self.swagger2 else _json_media(response.get("content"))[1]
            )
            if schema is not None:
                walker.walk(schema, response_doc)
            raw_links = response.get("links")
            if isinstance(raw_links, dict):
                for name, raw_link in raw_links.items():
                    link, _, _ = self.resolver.resolve(raw_link, response_doc)
                    if isinstance(link, dict):
                        params = link.get("parameters")
                        links.append(
                            Link(
                                name=_scalar(name),
                                operation_id=_scalar(link.get("operationId")) or None,
                                operation_ref=_scalar(link.get("operationRef"), 2000) or None,
                                parameters={
                                    _scalar(k): _scalar(v, 500)
                                    for k, v in list(params.items())[:50]
                                    if _scalar(v, 500)
                                }
                                if isinstance(params, dict)
                                else {},
                            )
                        )
        return links


def _server_paths(doc: dict[str, Any]) -> list[str]:
    """Path prefixes of the servers (OpenAPI 3) or basePath (Swagger 2), to match full URLs."""
    paths: list[str] = []
    servers = doc.get("servers")
    if isinstance(servers, list):
        for server in servers:
            url = server.get("url") if isinstance(server, dict) else None
            if isinstance(url, str):
                prefix = urlsplit(url).path.rstrip("/")
                if prefix and "{" not in prefix and prefix not in paths:
                    paths.append(prefix)
    return paths


def parse_spec(
    doc: Any,
    source: str,
    spec_name: str,
    path: Path | None = None,
    root: Path | None = None,
) -> ParsedSpec:
    """Turn a loaded document into operations. `root` bounds where external refs may point."""
    if not looks_like_openapi(doc):
        raise SpecError(
            source, "not an OpenAPI or Swagger document (no 'openapi' or 'swagger' key)"
        )
    version = _scalar(doc.get("openapi") or doc.get("swagger"), 50)
    if not version.startswith(("2.", "3.")):
        raise SpecError(source, f"unsupported OpenAPI version {version!r}")
    if "paths" in doc and not isinstance(doc["paths"], dict | None):
        raise SpecError(source, "'paths' must be a mapping")
    resolver = _Resolver(doc, source, path, root)
    builder = _OperationBuilder(doc, resolver, spec_name)
    operations: list[Operation] = []
    warnings: list[str] = []
    for operation in builder.operations():
        if len(operations) >= MAX_OPERATIONS:
            warnings.append(f"only the first {MAX_OPERATIONS} operations were loaded")
            break
        operations.append(operation)
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    return ParsedSpec(
        title=_text(info.get("title"), 200),
        description=_text(info.get("description"), 1000),
        version=_scalar(info.get("version"), 50),
        openapi_version=version,
        server_paths=_server_paths(doc),
        operations=operations,
        warnings=builder.warnings[:20] + warnings,
        files=[key for key in resolver.docs if key and key != resolver.root_key],
    )
