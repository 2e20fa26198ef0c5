"""Next-call structure: which resources an operation consumes and yields, and what the calls
made so far make possible.

An operation *consumes* the resources its path parameters name (`/movie/{movie_id}/credits`
consumes a movie; `/artists/{id}/albums` an artist) and *yields* the resources whose ids its
response carries (`results.id` of `/search/person` is a person's; `artists.items.id` an
artist's; a top-level `id` belongs to what the path and the response schema name). From that:
ids flow from earlier calls into later paths, OpenAPI links name follow-ups, CRUD lifecycles
continue on the same resource, and an operation whose ids nobody has supplied is not callable yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from opensesame_predictor.core.features import STOPWORDS, stem, words
from opensesame_predictor.core.models import Operation, Parameter

# Words that name containers or shapes, not resources.
GENERIC = frozenset(
    """id ids item items result results data list lists value values content entries entry
    records record object objects response responses paging page paged cursor simplified
    private public full base saved the of me my api v1 v2 v3 get set all by info detail
    details summary new latest current""".split()
)
SCHEMA_WORDS = frozenset({"paging", "model", "schema", "dto", "resource", "type"})
PAGINATION = frozenset({"page", "offset", "cursor", "after", "before", "pagetoken", "perpage"})
SEARCH_PARAMS = frozenset({"q", "query", "search", "term", "keyword", "keywords", "filter"})
SEARCH_PATHS = frozenset({"search", "query", "find", "lookup"})  # `POST /users/search`
# body fields that ask rather than describe (a new thing's `keywords` or `filter` describe it)
SEARCH_FIELDS = frozenset({"q", "query", "search", "searchterm", "searchquery"})
_PARAM = re.compile(r"^\{([^}]+)\}$")
# Last words of a parameter's name that make it an identifier nobody knows by heart (`petId`,
# `{id}`, `file_key`): found by an earlier call. Any other value (`country`, `username`,
# `year`, `symbol`, `issue_number`) is a natural key that people give themselves.
OPAQUE = frozenset({"id", "ids", "uuid", "guid", "gid", "pk", "key", "token", "hash", "sid"})


# Names people give themselves even where a path names its collection after the parameter
# (`/orgs/{org}`, `/repos/{owner}/{repo}`, `/countries/{country}`).
NAMING = frozenset(
    """name username user login owner org organization repo repository slug code country
    language lang locale tag branch ref path symbol currency city region zone domain host email
    year month date day type category kind version""".split()
)


def opaque(name: str, collection: str | None = None) -> bool:
    """Whether a parameter of this name holds an opaque identifier: an id word ends its name,
    or it is named after the collection it picks from (`/charges/{charge}`) and is no name."""
    parts = words(name)
    if not parts:
        return False
    if parts[-1] in OPAQUE:
        return True
    named = words(collection or "")[-1:]
    return bool(named) and stem(named[0]) == stem(parts[-1]) and parts[-1] not in NAMING


def _nouns(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in GENERIC and len(w) > 1}


def _param_noun(name: str, previous_literal: str | None) -> str:
    """`person_id` -> person; `movieId` -> movie; `{id}` after `/artists` -> artist."""
    parts = [w for w in words(name) if w not in {"id", "ids", "key", "uuid", "slug", "name"}]
    if parts:
        return stem(parts[-1]) if len(parts) == 1 else stem("".join(parts))
    if previous_literal:
        literal = [w for w in words(previous_literal) if w not in GENERIC]
        if literal:
            return stem(literal[-1])
    return stem(name.lower())


@dataclass(frozen=True)
class Shape:
    """What an operation needs and gives, precomputed once per catalog."""

    consumes: tuple[tuple[str, str], ...]  # (parameter name, resource noun)
    yields: frozenset[str]  # resource nouns whose ids the response carries
    path_literals: tuple[str, ...]  # literal segments, in order
    is_item: bool  # the path ends in a parameter: one resource, not a collection
    paginated: bool
    searches: bool  # takes free text to look things up by name (q, query, search, term, ...)
    reads: bool = True  # a GET or a POSTed search: where one finds things that exist
    link_targets: frozenset[str] = field(default_factory=frozenset)  # operationIds
    takes: frozenset[str] = frozenset()  # resources whose ids it takes in query or body fields
    nouns: frozenset[str] = frozenset()  # everything it consumes: path resources and takes
    names: frozenset[str] = frozenset()  # resources its path names (`/search/person`: person)
    requires: tuple[tuple[str, ...], ...] = ()  # required query/body ids: any one of each
    natural: frozenset[str] = frozenset()  # path parameters people give themselves

    @property
    def needed(self) -> list[str]:
        """What it cannot be called without, in order: its path's resources, then one of each
        required id field's (the likeliest)."""
        return [noun for _, noun in self.consumes] + [any_of[0] for any_of in self.requires]

    @property
    def brings(self) -> frozenset[str]:
        """The ids its response adds to what it was given (`GET /things/{id}` echoes the
        thing, and brings what the thing refers to)."""
        return self.yields - self.nouns


@lru_cache(maxsize=65536)
def _id_owner(dotted: str) -> str | None:
    """Whose id a response field is: None if it is no id, "" if the response's own (`id`,
    `results.id`), else the noun (`artists.items.id` -> artist, `owner_id` -> owner)."""
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        return None
    leaf_words = words(parts[-1])
    if leaf_words in (["id"], ["ids"]):
        containers = [p for p in parts[:-1] if not set(words(p)) <= GENERIC]
        return stem(words(containers[-1])[-1]) if containers and words(containers[-1]) else ""
    if len(leaf_words) >= 2 and leaf_words[-1] in ("id", "ids"):
        return stem(leaf_words[-2])
    return None


@lru_cache(maxsize=4096)
def _schema_noun(name: str) -> str:
    """`TrackObject` -> track; `SimplifiedAlbumObject` -> album; `Paging` -> ''."""
    named = [w for w in words(name) if w not in GENERIC and w not in SCHEMA_WORDS]
    return stem(named[-1]) if named else ""


def _returned(op: Operation) -> list[str]:
    """The response fields whose ids a call hands on. A write returns the thing it made or
    changed and what that refers to directly (`id`, `customer.id`), not what lists nested in it
    will hold later: a charge just made has no refunds yet, whatever `refunds.data.id` says."""
    if op.method == "GET":
        return op.response_fields
    return [dotted for dotted in op.response_fields if dotted.count(".") <= 1]


def _param_names(op: Operation, location: str) -> set[str]:
    """The names of the operation's parameters in one place, letters only (`search_term`:
    searchterm)."""
    return {re.sub(r"[^a-z]", "", p.name.lower()) for p in op.parameters if p.location == location}


def shape_of(op: Operation) -> Shape:
    segments = [s for s in op.path.split("/") if s]
    consumes: list[tuple[str, str]] = []
    natural: set[str] = set()
    literals: list[str] = []
    previous: str | None = None
    choices = {p.name for p in op.parameters if p.location == "path" and p.enum}
    for segment in segments:
        match = _PARAM.match(segment)
        if match and match.group(1) in choices:
            continue  # `{media_type}` with an enum is a choice the caller makes, not an id
        if match:
            consumes.append((match.group(1), _param_noun(match.group(1), previous)))
            if not opaque(match.group(1), previous):
                natural.add(match.group(1))
        else:
            literals.append(segment)
            previous = segment
    yields: set[str] = set()
    own_id = False
    for dotted in _returned(op):
        noun = _id_owner(dotted)
        if noun is None:
            continue
        if "." in dotted:
            # `item.id` is whose the named schema of `item` says; so is `currently_playing.id`
            # (a `TrackObject`), besides what its field's name says
            kind = _schema_noun(op.response_kinds.get(dotted.rsplit(".", 1)[0], ""))
            if kind:
                yields.add(kind)
                noun = noun or kind
        if noun:
            yields.add(noun)
        else:
            own_id = True
    names = _nouns(" ".join(literals))
    if own_id:  # an id of the response itself or of its generic items: what the path names
        yields |= names | _nouns(" ".join(op.response_schemas[:2]))
    query, asked = _param_names(op, "query"), _param_names(op, "body")
    # a search sent as a POST (`POST /pets/search`, a `query` field) finds things too; a PUT
    # or a DELETE changes what it names, whatever its parameters
    posted_search = bool(query & SEARCH_PARAMS or asked & SEARCH_FIELDS) or (
        bool(literals) and literals[-1].lower() in SEARCH_PATHS
    )
    return Shape(
        consumes=tuple(consumes),
        nouns=frozenset(noun for _, noun in consumes),
        yields=frozenset(yields),
        path_literals=tuple(literals),
        names=frozenset(names),
        is_item=bool(segments) and bool(_PARAM.match(segments[-1])),
        paginated=bool(query & PAGINATION),
        searches=bool(query & SEARCH_PARAMS),
        reads=op.method == "GET" or (op.method == "POST" and posted_search),
        link_targets=frozenset(link.operation_id for link in op.links if link.operation_id),
        natural=frozenset(natural),
    )


@dataclass
class HistoryState:
    """What the calls made so far supply: resources with ids at hand, parameter names known."""

    operations: list[Operation]
    shapes: list[Shape]
    yielded: set[str] = field(default_factory=set)
    last_yielded: set[str] = field(default_factory=set)
    known_params: set[str] = field(default_factory=set)
    link_targets: set[str] = field(default_factory=set)
    called: dict[str, int] = field(default_factory=dict)  # uid -> position from the end
    times: dict[str, int] = field(default_factory=dict)  # uid -> how often it was called
    searched: bool = False  # a search was among the calls
    consumable: frozenset[str] = frozenset()  # resources some operation of the catalog takes
    to_make: frozenset[str] = frozenset()  # things the prompt wants made that nothing made yet

    @classmethod
    def build(
        cls,
        operations: Sequence[Operation],
        shapes: Sequence[Shape],
        consumable: frozenset[str] = frozenset(),
        to_make: frozenset[str] = frozenset(),
    ) -> HistoryState:
        """Things `to_make` ("a new playlist") are none of those found so far: only the call
        that makes one supplies its id (and the caller leaves it out once made)."""
        state = cls(list(operations), list(shapes), consumable=consumable, to_make=to_make)
        for position, (op, shape) in enumerate(zip(operations, shapes, strict=True)):
            state.yielded |= shape.yields - to_make
            state.yielded |= {noun for _, noun in shape.consumes} - to_make
            state.known_params |= {_norm(name) for name, _ in shape.consumes}
            state.link_targets |= shape.link_targets
            state.called[op.uid] = len(operations) - position
            state.times[op.uid] = state.times.get(op.uid, 0) + 1
        state.searched = any(shape.searches for shape in shapes)
        if shapes:
            last = set(shapes[-1].yields) | {n for _, n in shapes[-1].consumes}
            state.last_yielded = last - to_make
        return state

    @property
    def last(self) -> tuple[Operation, Shape] | None:
        return (self.operations[-1], self.shapes[-1]) if self.operations else None

    def looks_up(self, names: int) -> bool:
        """Whether the prompt names things (`names` of them) that no call has looked up yet:
        look-ups come first then."""
        return bool(names) and not self.searched

    def supplies(self, name: str, noun: str) -> bool:
        return noun in self.yielded or (
            noun not in self.to_make and _norm(name) in self.known_params
        )


@lru_cache(maxsize=16384)
def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def missing(shape: Shape, state: HistoryState, prompt_values: int) -> list[str]:
    """Opaque ids the operation needs that neither the history nor the prompt supplies. Each
    concrete value in the prompt (a number, an id, `owner/repo`) supplies one; natural keys
    (`{country}`, `{username}`) are the caller's to give and never missing."""
    in_path, in_fields = missing_apart(shape, state, prompt_values)
    return in_path + in_fields


def missing_apart(
    shape: Shape, state: HistoryState, prompt_values: int
) -> tuple[list[str], list[str]]:
    """`missing`, in two parts: the ids its path needs, and those its required query or body
    fields need (the prompt's values supply the path first)."""
    if not shape.consumes and not shape.requires:
        return [], []
    in_path = [
        noun
        for name, noun in shape.consumes
        if name not in shape.natural and not state.supplies(name, noun)
    ]
    in_fields = [any_of[0] for any_of in shape.requires if state.yielded.isdisjoint(any_of)]
    return in_path[prompt_values:], in_fields[max(0, prompt_values - len(in_path)) :]


def creates(op: Operation, shape: Shape) -> str:
    """What a POST on a collection names as brought into being (`POST /books` a book), else
    ''."""
    if op.method != "POST" or shape.is_item or not shape.path_literals:
        return ""
    named = words(shape.path_literals[-1])
    return stem(named[-1]) if named else ""


def makers_of(operations: Sequence[Operation], shapes: Sequence[Shape]) -> dict[str, list[int]]:
    """What each POST on a collection makes, by position: `POST /users/{id}/playlists` makes
    playlists, when its response carries the new one's id."""
    makers: dict[str, list[int]] = {}
    for i, (op, shape) in enumerate(zip(operations, shapes, strict=True)):
        noun = creates(op, shape)
        if noun and noun in shape.yields - shape.nouns:
            makers.setdefault(noun, []).append(i)
    return makers


NEW = frozenset({"new", "fresh"})
CREATE = frozenset({"create", "make", "open", "start", "build"})


def wanted_new(prompt: str) -> frozenset[str]:
    """Words that may name things the prompt asks to bring into being: what follows "new"
    ("a new playlist", "new private playlist") or an article after a verb of making ("make me
    a playlist", "open an issue"). Whether a word names a thing some operation makes is the
    catalog's to say."""
    tokens = re.findall(r"[a-z]+", prompt.lower())
    found: set[str] = set()
    for k, token in enumerate(tokens):
        if token in NEW:
            found.update(stem(t) for t in tokens[k + 1 : k + 3])
        elif token in CREATE:
            rest = tokens[k + 1 : k + 5]
            if rest[:1] in (["me"], ["us"]):
                rest = rest[1:]
            if rest[:1] in (["a"], ["an"]):
                found.update(stem(t) for t in rest[1:3])
    return frozenset(found)


BACK = frozenset({"this", "these", "those", "it", "its", "them"})


def refers_back(prompt: str) -> bool:
    """Whether the request points at a thing already at hand ("borrow this book", "refund
    it") rather than only naming kinds of things."""
    return not BACK.isdisjoint(words(prompt))


AGAIN = frozenset({"same", "too", "also", "again", "likewise"})
AGAIN_PHRASES = ("as well", "what about", "how about")


def asks_again(prompt: str) -> bool:
    """Whether a message asks for something done once more ("same for C02FRONTEND", "and post
    41 too", "what about Germany?"): said of a call, that is the last one, whatever else the
    message leaves unsaid."""
    said = words(prompt)
    joined = f" {' '.join(said)} "
    return not AGAIN.isdisjoint(said) or any(f" {p} " in joined for p in AGAIN_PHRASES)


# what follows from the calls made so far (the ranker's "history" group)
FLOW = (
    "consumes_last",
    "consumes_written",
    "consumes_named",
    "consumes_earlier",
    "linked",
    "crud_next",
    "same_resource",
    "called",
    "called_last",
)
STRUCTURE = ("search_for_name", "missing_id", "missing_field", *FLOW)


def structure_table(
    ops: Sequence[Operation],
    shapes: Sequence[Shape],
    state: HistoryState,
    prompt_values: int,
    names: int = 0,
) -> dict[str, np.ndarray]:
    """History and id-flow signals for candidates, one array per signal. `names` counts the
    things the prompt names without giving their ids (proper names, quoted titles): they are
    looked up first."""
    count = len(ops)
    table = {name: np.zeros(count, dtype=np.float32) for name in STRUCTURE}
    if state.looks_up(names):
        table["search_for_name"][:] = [shape.searches for shape in shapes]
    # an id the path needs is the address of the thing; one a field needs is data the call is
    # given, which people often leave unsaid (who borrows, whose account): they weigh apart
    for i, shape in enumerate(shapes):
        in_path, in_fields = missing_apart(shape, state, prompt_values)
        addressed = len(shape.consumes) - len(shape.natural)
        table["missing_id"][i] = len(in_path) / addressed if addressed > 0 else 0.0
        table["missing_field"][i] = len(in_fields) / len(shape.requires) if shape.requires else 0.0
    last = state.last
    if last is None:  # no calls yet: nothing flows, follows or repeats
        return table
    last_op, last_shape = last
    last_uid = last_op.uid
    uids = [op.uid for op in ops]
    brought = last_shape.brings - state.to_make
    # what the last call was about, not just any id its response carries (a search over every
    # kind of thing yields them all)
    named = brought & last_shape.names
    # an id fed into what the call needs (its path, a required field), or the things the last
    # call was about into any field (the movies just listed into a watchlist's `movie_ids`);
    # not an id the response merely carries into a field a write may leave as it is (the
    # `authorId` of a book just read into a new book)
    fed = np.array(
        [
            not brought.isdisjoint({n for _, n in s.consumes}.union(*s.requires))
            or not named.isdisjoint(s.nouns)
            for s in shapes
        ],
        dtype=bool,
    )
    fresh = np.array([uid != last_uid for uid in uids], dtype=bool)
    # the more kinds of ids a call brought (a search over everything), the less any one of
    # them says what comes next
    kinds = len(brought & state.consumable) or 1
    # a read is made for what it returns; what a write returns (the thing it made or changed)
    # says less about the next step: a new cart may be filled first or shown first
    flow = "consumes_last" if last_op.method == "GET" else "consumes_written"
    table[flow][:] = (fed & fresh) / np.sqrt(kinds)
    table["consumes_named"][:] = fresh & np.array([not s.nouns.isdisjoint(named) for s in shapes])
    table["consumes_earlier"][:] = ~(fed & fresh) & np.array(
        [
            not s.nouns.isdisjoint(state.yielded) and u not in state.called
            for s, u in zip(shapes, uids, strict=True)
        ],
        dtype=bool,
    )
    if state.link_targets:
        table["linked"][:] = [
            bool(op.operation_id) and op.operation_id in state.link_targets for op in ops
        ]
    base = last_op.path.rstrip("/")
    if last_op.method == "POST" and not last_shape.is_item:
        # create -> read / update / sub-resource of what was created
        table["crud_next"][:] = fresh & np.array([op.path.startswith(base + "/{") for op in ops])
    elif last_op.method == "GET" and not last_shape.is_item:
        # list / search -> one item of it
        table["crud_next"][:] = [
            s.is_item and op.path.rsplit("/", 1)[0] == base
            for op, s in zip(ops, shapes, strict=True)
        ]
    first = last_shape.path_literals[:1]
    if first:
        table["same_resource"][:] = fresh & np.array([s.path_literals[:1] == first for s in shapes])
    for i, uid in enumerate(uids):
        position = state.called.get(uid)
        if position is not None and not (shapes[i].paginated and position == 1):
            table["called"][i] = 1.0  # repeated, unless paging on from the last call
            table["called_last"][i] = 1.0 if position == 1 else 0.0
    return table


def structure_features(
    op: Operation, shape: Shape, state: HistoryState, prompt_values: int, names: int = 0
) -> dict[str, float]:
    """The signals of `structure_table` for one operation."""
    table = structure_table([op], [shape], state, prompt_values, names)
    return {name: float(values[0]) for name, values in table.items()}


def goal_needs(
    ranked: Iterable[tuple[Shape, float]], state: HistoryState, prompt_values: int
) -> dict[str, float]:
    """Resources that the likeliest goals need but nobody supplied, weighted by how likely the
    goal is: the operations that yield them are the natural next step ('search first')."""
    needs: dict[str, float] = {}
    for shape, weight in ranked:
        for noun in missing(shape, state, prompt_values):
            needs[noun] = max(needs.get(noun, 0.0), weight)
    return needs


_ID_WORDS = frozenset({"id", "ids", "uri", "uris", "key", "keys"})


def shapes_of(operations: Sequence[Operation]) -> list[Shape]:
    """Every operation's shape, with the ids it takes outside its path named by the resources
    the catalog knows, and ids of unnamed nested objects typed by what they look like."""
    shapes = [shape_of(op) for op in operations]
    vocabulary = frozenset(
        noun for shape in shapes for noun in (*shape.yields, *(n for _, n in shape.consumes))
    )
    shapes = [
        with_kinds(op, with_takes(op, shape, vocabulary), vocabulary)
        for op, shape in zip(operations, shapes, strict=True)
    ]
    looks = Lookalikes(operations, shapes)
    return [looks.typed(op, shape) for op, shape in zip(operations, shapes, strict=True)]


def with_kinds(op: Operation, shape: Shape, vocabulary: frozenset[str]) -> Shape:
    """A choice in a read's path that names resources picks what comes back:
    `GET /trending/{media_type}` with `movie`, `tv` or `person` yields any of them, whatever
    single schema the response declares."""
    if op.method != "GET" or not shape.yields:
        return shape
    chosen = {
        stem(str(value).lower())
        for param in op.parameters
        if param.location == "path"
        for value in param.enum
    }
    kinds = (chosen & vocabulary) - shape.yields
    return replace(shape, yields=shape.yields | kinds) if kinds else shape


MIN_SHARED_FIELDS = 3
MIN_SHARED_SHARE = 0.4


class Lookalikes:
    """Types nested objects by their fields. The `cast` of a film's credits carries ids, but no
    operation consumes a "cast": its objects have a name, a gender and a profile path, as the
    object `GET /person/{person_id}` returns does, so their ids are a person's. A resource's
    fields are those of the response of the GET on one of it."""

    def __init__(self, operations: Sequence[Operation], shapes: Sequence[Shape]) -> None:
        self.consumed = frozenset(noun for shape in shapes for noun in shape.nouns)
        self.fields: dict[str, frozenset[str]] = {}
        for op, shape in zip(operations, shapes, strict=True):
            if op.method == "GET" and shape.is_item and shape.consumes:
                noun = shape.consumes[-1][1]
                if noun not in self.fields:
                    top = frozenset(f for f in op.response_fields if "." not in f) - {"id"}
                    if len(top) >= MIN_SHARED_FIELDS:
                        self.fields[noun] = top
        self.by_field: dict[str, list[str]] = {}
        for noun, fields in self.fields.items():
            for name in fields:
                self.by_field.setdefault(name, []).append(noun)

    def typed(self, op: Operation, shape: Shape) -> Shape:
        if not self.fields:
            return shape
        # nested objects with an id that names no resource some operation takes
        unnamed = {
            dotted[:-3]
            for dotted in _returned(op)
            if dotted.endswith(".id") and (_id_owner(dotted) or "") not in self.consumed
        }
        if not unnamed:
            return shape
        children: dict[str, set[str]] = {container: set() for container in unnamed}
        for dotted in op.response_fields:
            container, _, leaf = dotted.rpartition(".")
            if container in children and leaf != "id":
                children[container].add(leaf)
        found: set[str] = set()
        for leaves in children.values():
            noun = self.resource_like(leaves)
            if noun and noun not in shape.nouns:
                found.add(noun)
        if not found - shape.yields:
            return shape
        return replace(shape, yields=shape.yields | found)

    def resource_like(self, fields: set[str]) -> str | None:
        shared: dict[str, int] = {}
        for name in fields:
            for noun in self.by_field.get(name, ()):
                shared[noun] = shared.get(noun, 0) + 1
        if not shared:
            return None
        ranked = sorted(shared.items(), key=lambda item: -item[1])
        noun, count = ranked[0]
        if count < MIN_SHARED_FIELDS or count < MIN_SHARED_SHARE * len(fields):
            return None
        if len(ranked) > 1 and ranked[1][1] == count:
            return None  # looks like two things: no guess
        return noun


def with_takes(op: Operation, shape: Shape, vocabulary: frozenset[str]) -> Shape:
    """Add the resources whose ids the operation takes outside its path (`ids=`, `track_uris`,
    a body `pet_id`, a write's `customer`). A required id field is a need, like a path id: any
    of the resources it names will do; so is one that adds things to a collection of them, or
    removes them."""
    takes: set[str] = set()
    requires: list[tuple[str, ...]] = []
    # adding to or removing from one thing's collection of things needs the things, required
    # or not (`POST /playlists/{id}/tracks` with an optional `uris` in the query and the body);
    # creating in a top-level collection (`POST /files`) makes a new one instead
    segments = [s for s in op.path.split("/") if s]
    owned = len(segments) > 1 and bool(_PARAM.match(segments[-2])) and op.method != "GET"
    last = words(segments[-1])[-1:] if owned and not _PARAM.match(segments[-1]) else []
    collected = {stem(w) for w in last if stem(w) != w}  # a plural: tracks, not play
    for param in op.parameters:
        if param.location not in ("query", "body"):
            continue
        known, id_field = _taken(op, shape, param, vocabulary)
        takes.update(known)
        # what the operation itself is about (the queue of `POST /queue`) is the unlikeliest
        options = tuple(sorted(known, key=lambda noun: noun in shape.names))
        # a field named after a resource may hold a name or a new value as well as an id: a
        # need only as the things added to or removed from a collection
        needed = param.required and id_field
        if (needed or collected & set(known)) and options and options not in requires:
            requires.append(options)
    if not takes:
        return shape
    return replace(
        shape, takes=frozenset(takes), nouns=shape.nouns | takes, requires=tuple(requires)
    )


_VALUE_TYPES = frozenset({"string", "array", "integer"})


def _taken(
    op: Operation, shape: Shape, param: Parameter, vocabulary: frozenset[str]
) -> tuple[list[str], bool]:
    """The resources whose ids a query or body field holds, and whether it is an id field
    proper (`track_ids`) rather than a write's field named after a resource (`tracks`)."""
    parts = words(param.name)
    if not parts:
        return [], False
    if parts[-1] not in _ID_WORDS:
        # not a choice, a flag or an object of its own; and a read's `author` filters by name
        itself = stem(parts[0]) if len(parts) == 1 and parts[0] not in GENERIC else ""
        plain = not param.enum and param.type in _VALUE_TYPES and op.method != "GET"
        return ([itself] if plain and itself in vocabulary else []), False
    named = [stem(w) for w in parts[:-1] if w not in GENERIC]
    if named and named[-1] in vocabulary:
        return named[-1:], True
    # a bare `ids`, or ids of something no operation gives (`context_uri`): the description
    # says what they are ('the artist IDs'; 'valid contexts are albums, artists, playlists')
    mentioned = [stem(w) for w in words(param.description) if w not in STOPWORDS]
    known = [n for n in dict.fromkeys(mentioned) if n in vocabulary]
    if known:
        return sorted(known, key=lambda noun: noun in shape.names)[:3], True
    if named:
        return named[-1:], True
    # else the ids are of what the path names: `PUT /me/tracks?ids=` takes tracks
    if shape.path_literals:
        return sorted(n for n in _nouns(shape.path_literals[-1]) if n in vocabulary), True
    return [], True
