"""The workspace's specs as one searchable catalog: discovery, loading through the store,
namespacing, matching concrete calls to operations, and reloading when a source changes."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from rapidfuzz import fuzz, process

from opensesame_predictor.core.errors import InvalidRequest, SpecError
from opensesame_predictor.core.fetch import FetchPolicy, fetch, is_url
from opensesame_predictor.core.models import HTTP_METHODS, Operation, SpecSummary
from opensesame_predictor.core.specs import ParsedSpec, parse_spec, parse_text, read_file
from opensesame_predictor.core.store import SpecStore, StoredSpec

log = logging.getLogger(__name__)

SPEC_SUFFIXES = (".json", ".yaml", ".yml")
SKIPPED_DIRS = {"node_modules", "__pycache__", "venv", "site-packages", "dist", "build", "target"}
MAX_DISCOVERED_FILES = 5000
MAX_DISCOVERY_DEPTH = 8
_HEAD_BYTES = 1 << 20  # how much of a file discovery reads to tell a spec
# a top-level `openapi:`/`swagger:` key of a block YAML document: at the start of a line
_YAML_MARKER = re.compile(rb"""^["']?(?:openapi|swagger)["']?[ \t]*:""", re.MULTILINE)
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]')


def looks_like_spec(head: bytes) -> bool:
    """Whether the start of a file shows a top-level `openapi` or `swagger` key: anywhere
    among a JSON object's own keys (minified or not, in any order), or at the start of a line
    of YAML."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"{"):
        return bool(_YAML_MARKER.search(text))
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        value = token.group()
        if value in (b"{", b"["):
            depth += 1
        elif value in (b"}", b"]"):
            depth -= 1
            if depth <= 0:
                return False
        elif depth == 1 and value in (b'"openapi"', b'"swagger"'):
            following = text[token.end() : token.end() + 16].lstrip()
            if following.startswith(b":"):
                return True
    return False


ProgressCallback = Callable[[int, int, str], None]


def discover(directory: Path) -> list[Path]:
    """Spec files under `directory`: `openapi*`/`swagger*` files, and any JSON/YAML file whose
    first bytes show a top-level `openapi` or `swagger` key. Hidden and vendored folders are
    skipped, and so are symlinks that lead out of `directory`."""
    found: list[Path] = []
    scanned = 0
    root_depth = len(directory.parts)
    real_root = directory.resolve()
    for current, dirs, files in os.walk(directory):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED_DIRS
            and len(Path(current).parts) - root_depth < MAX_DISCOVERY_DEPTH
        )
        for name in sorted(files):
            path = Path(current) / name
            if not name.lower().endswith(SPEC_SUFFIXES) or name.startswith("."):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                continue  # a link out of the workspace: its $refs could not be read either
            scanned += 1
            if scanned > MAX_DISCOVERED_FILES:
                log.warning(
                    "stopped discovery after %d files in %s", MAX_DISCOVERED_FILES, directory
                )
                return found
            if name.lower().startswith(("openapi", "swagger")):
                found.append(path)
                continue
            try:
                head = read_file(path, _HEAD_BYTES, head=True)
            except OSError:
                continue  # unreadable, or no regular file (a FIFO, a device)
            if looks_like_spec(head):
                found.append(path)
    return found


@dataclass(frozen=True)
class SpecSource:
    """Where one spec comes from: a local file (with the folder its $refs may not leave)
    or a URL."""

    location: str
    root: Path | None = None

    @property
    def is_url(self) -> bool:
        return is_url(self.location)

    @property
    def name_hint(self) -> str:
        if self.is_url:
            parts = urlsplit(self.location)
            stem = Path(parts.path).stem or parts.hostname or "remote"
            generic = stem.lower() in {"openapi", "swagger", "api", "spec", "v1", "v2", "v3"}
            return (parts.hostname or stem) if generic else stem
        return Path(self.location).stem

    @property
    def generic_file(self) -> bool:
        """A local file whose name says nothing of its API (`openapi.yaml`, `swagger.json`):
        the spec's title names it instead."""
        return not self.is_url and Path(self.location).stem.lower() in _GENERIC_STEMS


def resolve_sources(specs: Iterable[str], workspace: str | Path | None = None) -> list[SpecSource]:
    """Files, folders and URLs named by the user, plus what a workspace folder holds."""
    sources: list[SpecSource] = []
    seen: set[str] = set()

    def add(source: SpecSource) -> None:
        if source.location not in seen:
            seen.add(source.location)
            sources.append(source)

    for spec in specs:
        if is_url(spec):
            add(SpecSource(spec))
            continue
        path = Path(spec.removeprefix("file://")).expanduser().resolve()
        if path.is_dir():
            for found in discover(path):
                add(SpecSource(str(found), path))
        else:
            add(SpecSource(str(path), path.parent))
    if workspace:
        root = Path(workspace).expanduser().resolve()
        if not root.is_dir():
            raise SpecError(str(workspace), "workspace is not a directory")
        for found in discover(root):
            add(SpecSource(str(found), root))
    return sources


_GENERIC_STEMS = {"openapi", "swagger", "api", "spec", "index"}
MAX_TITLE_NAME = 40


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()
    return slug or "spec"


def _title_name(title: str) -> str:
    """`Notes API` -> `notes-api`, cut at a word within MAX_TITLE_NAME; "" for no title."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.").lower()
    if len(slug) > MAX_TITLE_NAME:
        cut = slug[: MAX_TITLE_NAME + 1]
        slug = cut[: cut.rfind("-")] if "-" in cut else cut[:MAX_TITLE_NAME]
    return slug.strip("-.")


@dataclass
class LoadedSpec:
    summary: SpecSummary
    parsed: ParsedSpec | None
    signature: tuple[tuple[str, int, int], ...] = ()  # (file, mtime_ns, size) of local files

    def files_changed(self) -> bool:
        """Whether a local file behind this spec changed (or went) since it was read."""
        return _file_signature(name for name, _, _ in self.signature) != self.signature


def _file_signature(paths: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    signature = []
    for name in paths:
        try:
            stat = os.stat(name)
            signature.append((name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            signature.append((name, -1, -1))
    return tuple(signature)


class SpecLoader:
    """Loads one source through the store: parse on a miss, revalidate URLs, serve stale
    entries when a refetch fails."""

    def __init__(self, store: SpecStore, policy: FetchPolicy, max_spec_bytes: int) -> None:
        self.store = store
        self.policy = policy
        self.max_spec_bytes = max_spec_bytes

    def load(self, source: SpecSource, name: str) -> LoadedSpec:
        summary = SpecSummary(name=name, source=source.location)
        try:
            if source.is_url:
                parsed = self._load_url(source, name, summary)
                signature: tuple[tuple[str, int, int], ...] = ()
            else:
                parsed, signature = self._load_file(source, name)
        except Exception as exc:  # nothing that fails in one spec may reach the others
            reason = exc.reason if isinstance(exc, SpecError) else f"could not be read: {exc!r}"
            summary.error = reason
            log.info("spec %s failed to load: %s", source.location, reason)
            # Remember the file's state so a reload retries it only once it changes.
            signature = () if source.is_url else _file_signature([source.location])
            return LoadedSpec(summary, None, signature)
        summary.title = parsed.title
        summary.version = parsed.version
        summary.operations = len(parsed.operations)
        summary.warnings.extend(parsed.warnings)
        return LoadedSpec(summary, parsed, signature)

    def _read(self, location: str) -> bytes:
        path = Path(location)
        try:
            return read_file(path, self.max_spec_bytes)
        except FileNotFoundError:
            raise SpecError(location, "file not found") from None
        except IsADirectoryError:
            raise SpecError(location, "is a directory, not a spec file") from None
        except OSError as exc:
            raise SpecError(location, exc.strerror or str(exc)) from None

    def _file_hash(self, content: bytes, files: Iterable[str]) -> str:
        digest = hashlib.sha256(content)
        for name in files:
            digest.update(name.encode())
            try:
                digest.update(read_file(Path(name), self.max_spec_bytes))
            except OSError:
                digest.update(b"<missing>")
        return digest.hexdigest()

    def _load_file(
        self, source: SpecSource, name: str
    ) -> tuple[ParsedSpec, tuple[tuple[str, int, int], ...]]:
        content = self._read(source.location)
        cached = self.store.get(source.location)
        if cached is not None:
            content_hash = self._file_hash(content, cached.parsed.files)
            if content_hash == cached.content_hash and self.store.is_fresh(cached):
                parsed = self._renamed(cached.parsed, name)
                return parsed, _file_signature([source.location, *parsed.files])
        doc = parse_text(content, source.location)
        parsed = parse_spec(doc, source.location, name, Path(source.location), source.root)
        content_hash = self._file_hash(content, parsed.files)
        parsed = parsed.model_copy(update={"content_hash": content_hash})
        self.store.put(
            StoredSpec(
                source=source.location,
                content_hash=content_hash,
                stored_at=self.store.clock(),
                parsed=parsed,
            )
        )
        return parsed, _file_signature([source.location, *parsed.files])

    def _load_url(self, source: SpecSource, name: str, summary: SpecSummary) -> ParsedSpec:
        cached = self.store.get(source.location)
        if cached is not None and self.store.is_fresh(cached):
            return self._renamed(cached.parsed, name)
        try:
            result = fetch(
                source.location,
                self.policy,
                etag=cached.etag if cached else None,
                last_modified=cached.last_modified if cached else None,
            )
            if result.content is None:
                if cached is None:  # a 304 for something we never had
                    raise SpecError(source.location, "server answered 304 to a first request")
                return self._renamed(self.store.touch(cached).parsed, name)
            content_hash = hashlib.sha256(result.content).hexdigest()
            if cached is not None and cached.content_hash == content_hash:
                return self._renamed(self.store.touch(cached).parsed, name)
            parsed = parse_spec(parse_text(result.content, source.location), source.location, name)
            parsed = parsed.model_copy(update={"content_hash": content_hash})
        except SpecError as exc:
            if cached is None:
                raise
            self.store.stats.stale_served += 1
            warning = f"serving the stored copy: refetch failed ({exc.reason})"
            summary.warnings.append(warning)
            log.warning("spec %s: %s", source.location, warning)
            return self._renamed(cached.parsed, name)
        self.store.put(
            StoredSpec(
                source=source.location,
                content_hash=content_hash,
                stored_at=self.store.clock(),
                etag=result.etag,
                last_modified=result.last_modified,
                parsed=parsed,
            )
        )
        return parsed

    @staticmethod
    def _renamed(parsed: ParsedSpec, name: str) -> ParsedSpec:
        if all(op.spec == name for op in parsed.operations):
            return parsed
        operations = [replace(op, spec=name) for op in parsed.operations]
        return parsed.model_copy(update={"operations": operations})


@dataclass(frozen=True)
class Pieces:
    """A segment with parameters inside it (`{year}-{month}.json`): its literal pieces, each
    parameter between two of them standing for one or more characters."""

    literals: tuple[str, ...]

    def fits(self, segment: str) -> bool:
        """Linear in the segment, whatever the template says: the first and last pieces at the
        ends, each middle piece at its leftmost place after at least one character (for
        one-or-more wildcards the leftmost placement is the one that leaves most room)."""
        first, *middle, last = self.literals
        if len(segment) < sum(map(len, self.literals)) + len(self.literals) - 1:
            return False
        if not segment.startswith(first) or not segment.endswith(last):
            return False
        position = len(first)
        end = len(segment) - len(last)
        for literal in middle:
            found = segment.find(literal, position + 1, end - 1)
            if found < 0:
                return False
            position = found + len(literal)
        return position < end


Segment = str | Pieces | None  # a literal, a partly templated segment, a parameter
_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")


def _template(path: str) -> tuple[Segment, ...]:
    """A path template as segments."""
    segments: list[Segment] = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1:
            segments.append(None)
        elif "{" in segment:
            segments.append(Pieces(tuple(_PLACEHOLDER.split(segment))))
        else:
            segments.append(segment)
    return tuple(segments)


def _fits(template: tuple[Segment, ...], concrete: list[str]) -> bool:
    if len(template) != len(concrete):
        return False
    for want, have in zip(template, concrete, strict=True):
        if want is None:
            if not have:
                return False
        elif isinstance(want, str):
            if want != have:
                return False
        elif not want.fits(have):
            return False
    return True


# Query-protocol APIs (AWS SQS, SNS, EC2 ...) are described with the action in a fragment, one
# path per action (`POST /#Action=SendMessage`, as the public API directories publish them);
# the call itself names it in the query (`https://sqs.../?Action=SendMessage`).
_ACTION_FRAGMENT = re.compile(r"Action=[A-Za-z][A-Za-z0-9]*")
_ACTION_QUERY = re.compile(r"(?:^|&)(Action=[A-Za-z][A-Za-z0-9]*)(?:&|$)")


def _split(api_call: str, method: str | None) -> tuple[str | None, str, str, str]:
    """A call -> (method, path, query, fragment), the path as split_call gives it."""
    text = api_call.strip()
    head, _, rest = text.partition(" ")
    if head.upper() in HTTP_METHODS and rest.strip():
        method = method or head.upper()
        text = rest.strip()
    if "://" in text:
        parts = urlsplit(text)
        text, query, fragment = parts.path or "/", parts.query, parts.fragment
    else:
        text, _, fragment = text.partition("#")
        text, _, query = text.partition("?")
    if not text.startswith("/"):
        text = "/" + text
    action = fragment if _ACTION_FRAGMENT.fullmatch(fragment) else ""
    if not action and (found := _ACTION_QUERY.search(query)):
        action = found.group(1)
    if action:
        text = text.rstrip("/") + "/#" + action
    return (method.upper() if method else None), text, query, fragment


def split_call(api_call: str, method: str | None = None) -> tuple[str | None, str]:
    """`GET /users/42`, `/users/42` or `https://host/v1/users/42?x=1` -> (method, path). A
    query-protocol action stays, as a last segment (`/123/orders/#Action=PurgeQueue`)."""
    method, path, _, _ = _split(api_call, method)
    return method, path


def query_values(api_call: str) -> dict[str, str]:
    """The values a call's query gives (`GET /pricing/fr?currency=EUR`): the caller supplied
    them, as it does a call's parameters. A templated value (`?page={page}`) gives none."""
    _, _, query, _ = _split(api_call, None)
    return {
        name: value
        for name, value in _pieces(query).items()
        if value and not (value.startswith("{") and value.endswith("}"))
    }


def split_key(key: str) -> tuple[str | None, str]:
    """An operation's key as written (`GET /rides?page={page}`) -> (method, path): as
    split_call, but keeping the query or fragment a spec writes into a path key, which tells
    operations on one path apart (`#Qualifier`, `#List=ALL`)."""
    method, path, query, fragment = _split(key, None)
    if without_action(path) != path:
        return method, path  # the action is what split_call keeps already
    return method, path + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")


def without_action(path: str) -> str:
    """The path of a call without its query-protocol action (`/1234/orders/#Action=X`)."""
    return path.split("/#", 1)[0] or "/"


# Some descriptions tell operations on one path apart by a query or fragment written into the
# path key (AWS REST: `/functions/{F}/provisioned-concurrency#Qualifier` beside `...#List=ALL`;
# others `/rides?page={page}&per_page={per_page}`). A call names them by its query, so such a
# key is matched on its bare path and its pieces are conditions on the call's query.
Conditions = dict[str, str | None]  # name -> the value wanted, None for any


def bare_path(path: str) -> str:
    """An operation's path key without the query or fragment that tells it apart
    (a query-protocol action stays: it is matched as a segment)."""
    if _ACTION_FRAGMENT.fullmatch(path.partition("/#")[2]):
        return path
    return re.split(r"[?#]", path, maxsplit=1)[0] or "/"


def _pieces(text: str) -> dict[str, str]:
    """`find=LayerVersion&Arn` -> {"find": "LayerVersion", "Arn": ""}."""
    pieces: dict[str, str] = {}
    for piece in text.split("&"):
        name, _, value = piece.partition("=")
        if name:
            pieces[unquote(name)] = unquote(value)
    return pieces


def _conditions(path: str) -> Conditions:
    """What a path key asks of a call's query: `#Qualifier` its presence, `#List=ALL` that
    value, `?page={page}` the name with any value. A templated name (`?{field}=1`) cannot be
    checked and asks nothing."""
    rest = path[len(bare_path(path)) + 1 :]
    return {
        name: None if not value or "{" in value else value
        for name, value in _pieces(rest.replace("#", "&").replace("?", "&")).items()
        if "{" not in name
    }


def _fit(conditions: Conditions, query: dict[str, str]) -> tuple[int, int]:
    """(conditions the query misses, minus those it meets): lower is the better fit, so an
    operation without conditions is the fallback of those whose conditions a call misses."""
    met = sum(
        1 for name, value in conditions.items() if name in query and value in (None, query[name])
    )
    return len(conditions) - met, -met


def _suggest_form(key: str) -> str:
    method, path = split_call(key)
    path = re.sub(r"\{[^}/]*\}", "{}", path).lower()
    return f"{method} {path}" if method else path


class Catalog:
    """An immutable snapshot of the loaded specs and their operations."""

    def __init__(self, loaded: list[LoadedSpec], generation: int = 0) -> None:
        self.generation = generation
        self.loaded = loaded
        self.specs = [item.summary for item in loaded]
        self.server_paths: dict[str, list[str]] = {}
        self.operations: list[Operation] = []
        for item in loaded:
            if item.parsed is not None:
                self.server_paths[item.summary.name] = item.parsed.server_paths
                self.operations.extend(item.parsed.operations)
        self.by_uid = {op.uid: op for op in self.operations}
        self.by_key: dict[str, list[Operation]] = {}
        for op in self.operations:
            self.by_key.setdefault(op.key, []).append(op)
        self._by_bare: dict[str, list[Operation]] = {}  # in by_key_path's order of methods
        order = {method: rank for rank, method in enumerate(HTTP_METHODS)}
        for op in sorted(self.operations, key=lambda op: order.get(op.method, len(order))):
            self._by_bare.setdefault(bare_path(op.path), []).append(op)
        self._conditions = {op.uid: _conditions(op.path) for op in self.operations}
        self._templates = [(op, _template(bare_path(op.path))) for op in self.operations]
        self._literal_counts = {
            op.uid: sum(1 for s in bare_path(op.path).split("/") if s and "{" not in s)
            for op in self.operations
        }
        self.errors = [spec for spec in self.specs if spec.error]

    def __len__(self) -> int:
        return len(self.operations)

    def about(self) -> dict[str, str]:
        """What each loaded spec says it is for: its title and description."""
        return {
            item.summary.name: f"{item.parsed.title}\n{item.parsed.description}"
            for item in self.loaded
            if item.parsed is not None
        }

    def spec_names(self) -> list[str]:
        return [spec.name for spec in self.specs if spec.error is None]

    def get(self, key: str, spec: str | None = None) -> Operation | None:
        """By uid (`spec:METHOD /path`) or key (`METHOD /path`), optionally within a spec."""
        if key in self.by_uid:
            return self.by_uid[key]
        # the key as written first (`GET /rides?page={page}` is an operation's own key)
        method, path = split_key(key)
        candidates = self.by_key.get(f"{method} {path}", [])
        if not candidates:
            method, path = split_call(key)
            candidates = self.by_key.get(f"{method} {path}", [])
        if spec:
            candidates = [op for op in candidates if op.spec == spec]
        return candidates[0] if candidates else None

    def suggest(self, key: str, limit: int = 3) -> list[str]:
        """The closest operation keys, for 'did you mean' messages."""
        # Compare with parameter names blanked out: `GET /pets/{id}` is `GET /pets/{petId}`.
        # WRatio's partial matching ranked unrelated long paths above the obvious one.
        choices = {k: _suggest_form(k) for k in self.by_key}
        matches = process.extract(_suggest_form(key), choices, scorer=fuzz.ratio, limit=limit)
        return [str(match[2]) for match in matches]

    def match(
        self, api_call: str, method: str | None = None, spec: str | None = None
    ) -> Operation | None:
        """The operation a concrete call refers to (`/users/42` -> `/users/{id}`,
        `/functions/f1/provisioned-concurrency?Qualifier=3` -> `...#Qualifier`)."""
        method, path, query, fragment = _split(api_call, method)
        # a call written as the spec lists it names its conditions in the fragment
        given = _pieces(query) | _pieces(fragment)
        candidates = self._match_path(path, method, spec, given)
        if not candidates and (bare := without_action(path)) != path:
            # an action of no operation here
            candidates = self._match_path(bare, method, spec, given)
            path = bare
        if not candidates:
            for prefixes in self.server_paths.values():
                for prefix in prefixes:
                    if path.startswith(prefix + "/"):
                        candidates = self._match_path(path[len(prefix) :], method, spec, given)
                        if candidates:
                            break
                if candidates:
                    break
        return candidates[0] if candidates else None

    def _match_path(
        self, path: str, method: str | None, spec: str | None, query: dict[str, str]
    ) -> list[Operation]:
        """Literal paths first, then templates with more literal segments; the method filters
        before the choice, so `DELETE /pets/search` can still reach `DELETE /pets/{petId}`.
        On one path, the operation whose conditions the query meets best; then, without a
        method, GET wins among equally specific paths."""

        def wanted(op: Operation) -> bool:
            return (spec is None or op.spec == spec) and (method is None or op.method == method)

        def fit(op: Operation) -> tuple[int, int]:
            return _fit(self._conditions[op.uid], query)

        exact = [op for op in self._by_bare.get(path, []) if wanted(op)]
        if exact:
            exact.sort(key=lambda op: (*fit(op), op.method != "GET"))
            return exact
        concrete = path.strip("/").split("/")
        matches = [
            op for op, template in self._templates if wanted(op) and _fits(template, concrete)
        ]
        matches.sort(key=lambda op: (-self._literal_counts[op.uid], *fit(op), op.method != "GET"))
        return matches

    def files_changed(self) -> bool:
        """Whether a local file behind a loaded spec changed since it was read."""
        return any(item.files_changed() for item in self.loaded)

    def by_key_path(self, path: str) -> list[Operation]:
        return [op for method in HTTP_METHODS for op in self.by_key.get(f"{method} {path}", [])]

    def on_path(self, path: str) -> list[Operation]:
        """The operations on one path, those told apart by a query or fragment in their key
        included (`...#Qualifier` beside `...#List=ALL`)."""
        return list(self._by_bare.get(bare_path(path), []))


def _last_good(previous: LoadedSpec, failed: LoadedSpec) -> LoadedSpec:
    """An edit that breaks a spec file: the last version that loaded keeps serving, and the
    summary says why the current one does not (the editor shows it on the file)."""
    reason = failed.summary.error or "unreadable"
    summary = previous.summary.model_copy(
        update={
            "stale_because": reason,
            "warnings": [f"serving the last good version: {reason}"],
        }
    )
    # the failed content's signature: it is retried once the file changes again
    return LoadedSpec(summary, previous.parsed, failed.signature)


@dataclass
class Workspace:
    """The sources of a workspace and the current catalog built from them."""

    loader: SpecLoader
    sources: list[SpecSource] = field(default_factory=list)
    catalog: Catalog = field(default_factory=lambda: Catalog([]))

    def load(self, progress: ProgressCallback | None = None) -> Catalog:
        loaded: list[LoadedSpec] = []
        names: set[str] = set()
        for index, source in enumerate(self.sources):
            if progress:
                progress(index, len(self.sources), source.location)
            loaded.append(self._load_new(source, names))
        if progress:
            progress(len(self.sources), len(self.sources), "")
        self.catalog = Catalog(loaded, self.catalog.generation + 1)
        return self.catalog

    def add_source(self, source: SpecSource) -> LoadedSpec:
        """Add one source and rebuild the catalog; the other specs are untouched."""
        if source.location not in {s.location for s in self.sources}:
            self.sources.append(source)
        loaded = [item for item in self.catalog.loaded if item.summary.source != source.location]
        names = {item.summary.name for item in loaded}
        new = self._load_new(source, names)
        self.catalog = Catalog([*loaded, new], self.catalog.generation + 1)
        return new

    def reload_if_changed(self) -> bool:
        """Reload the file sources whose content changed; True when the catalog changed."""
        changed = False
        fresh: list[LoadedSpec] = []
        by_source = {item.summary.source: item for item in self.catalog.loaded}
        locations = {source.location for source in self.sources}
        # a spec keeps its name; a new one gets a name none of the others has
        names = {
            item.summary.name for item in self.catalog.loaded if item.summary.source in locations
        }
        for source in self.sources:
            item = by_source.get(source.location)
            if item is None:
                fresh.append(self._load_new(source, names))
                changed = True
                continue
            name = item.summary.name
            stale = (source.is_url and item.parsed is None) or (
                not source.is_url and item.files_changed()
            )
            if stale:
                previous = item
                item = self.loader.load(source, name)
                changed = True
                kept = previous.parsed is not None
                if item.parsed is None and kept and os.path.isfile(source.location):
                    item = _last_good(previous, item)  # broken by an edit, not deleted
            fresh.append(item)
        if changed or len(fresh) != len(self.catalog.loaded):
            self.catalog = Catalog(fresh, self.catalog.generation + 1)
            return True
        return False

    def _load_new(self, source: SpecSource, names: set[str]) -> LoadedSpec:
        """Load a source the catalog does not hold yet, under a name none of `names` has: its
        file's stem (`petstore`), or for a file named only `openapi.yaml` and the like, the
        spec's title (`notes-api`, not the folder it lies in)."""
        if not source.generic_file:
            return self.loader.load(source, self._unique_name(source.name_hint, names))
        item = self.loader.load(source, _slug(source.name_hint))
        name = self._unique_name(_title_name(item.summary.title) or source.name_hint, names)
        if name == item.summary.name:
            return item
        parsed = SpecLoader._renamed(item.parsed, name) if item.parsed is not None else None
        return LoadedSpec(item.summary.model_copy(update={"name": name}), parsed, item.signature)

    @staticmethod
    def _unique_name(hint: str, names: set[str]) -> str:
        base = _slug(hint)
        name, counter = base, 2
        while name in names:
            name, counter = f"{base}-{counter}", counter + 1
        names.add(name)
        return name


def ensure_inside(path: str, roots: Iterable[Path]) -> Path:
    """For sources named by untrusted callers: the path must stay inside a workspace root."""
    given = Path(path).expanduser()
    for root in roots:
        base = root.resolve()
        # A relative path is relative to the workspace, not to the server's working directory.
        resolved = (given if given.is_absolute() else base / given).resolve()
        if resolved.is_relative_to(base):
            return resolved
    raise InvalidRequest(f"{path!r} is outside the workspace", field="source")
