"""Synthetic training cases generated from specs, shaped like real use.

Each task is a goal over one API and the calls that reach it; every step becomes one case whose
history is the steps before it, as in the evaluation data. Most real tasks are one call, or the
same call for each thing listed ("holidays in Japan and Germany"), or two things asked in turn;
a share needs an id found first ("the albums of the artist Ana Ruiz": a search, then the
albums). The shares below follow that order, and every step is something the request says or
needs: no step is there only because a rule of the ranker would put it there.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from opensesame_predictor.core import phrasing
from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.history import Shape, makers_of, shapes_of
from opensesame_predictor.core.models import Operation, Parameter

# How often each kind of task is drawn, where it applies to a goal.
KINDS: dict[str, float] = {
    "single": 3.0,  # one call; the values it takes are in the request
    "repeat": 0.6,  # the same call for each of two or three values listed
    "pair": 1.2,  # two things to do, said in turn
    "follow": 2.5,  # ... where the second takes what the first returned
    "lookup": 3.5,  # an id the goal needs is found first, from what the request names
    "chain": 0.5,  # ... through a second call
    "create": 0.5,  # make a thing, then act on it
    "then": 1.0,  # a call was made; the request asks for the next one, pointing back ("this book")
}
# Calls of a task that were made before its request: history only, not cases.
MADE_BEFORE = {"then": 1}
# The share of repeats asked one value per message ('same for Germany'), reported as "again"
AGAIN_SHARE = 0.4
GOALS_PER_SPEC = 30  # a round draws at most this many goals from one spec: big APIs don't dominate


@dataclass
class SyntheticCase:
    spec: str
    prompt: str
    history: list[str]
    gold: str
    kind: str = "single"


@dataclass(eq=False)
class _Api:
    """One spec's operations, shapes and what yields each resource."""

    operations: list[Operation]
    shapes: list[Shape]
    title: str
    producers: dict[str, list[int]]  # resource -> operations that need nothing and yield it
    makers: dict[str, list[int]]
    rare: frozenset[str]  # the API's own terms (`phrasing.own_terms`)
    wording: phrasing.Wording = phrasing.PLAIN

    @classmethod
    def of(cls, operations: list[Operation], title: str) -> _Api:
        shapes = shapes_of(operations)
        producers: dict[str, list[int]] = {}
        for i, shape in enumerate(shapes):
            if not shape.needed and shape.reads:  # one finds what exists; a POST makes it
                for noun in shape.yields:
                    producers.setdefault(noun, []).append(i)
        makers = makers_of(operations, shapes)
        return cls(operations, shapes, title, producers, makers, phrasing.own_terms(operations))

    def opaque_needs(self, i: int) -> list[tuple[str, str]]:
        """(parameter, resource) of the ids the operation needs that people don't know."""
        op, shape = self.operations[i], self.shapes[i]
        params = {p.name: p for p in op.parameters}
        needs = [
            (name, noun)
            for name, noun in shape.consumes
            if name in params and name not in shape.natural
        ]
        needs += [(any_of[0], any_of[0]) for any_of in shape.requires]
        return needs

    def fits(self, i: int, kind: str) -> bool:
        """Whether a task of this kind can have the operation as its goal."""
        needs = self.opaque_needs(i)
        if kind == "repeat":
            return bool(needs or _natural_params(self.operations[i], self.shapes[i]))
        if kind == "pair":
            return len(self.operations) > 1
        if kind == "follow":
            return bool(self.followers(i))
        if kind == "then":
            return bool(self.next_of(i))
        if kind == "lookup":
            return bool(needs) and bool(self.places(needs[0][1], i))
        if kind == "chain":
            return bool(needs)
        if kind == "create":
            return bool(needs) and self.creator(i) is not None
        return True

    def creator(self, i: int) -> int | None:
        """The POST on the collection the operation's item belongs to."""
        collection = self.operations[i].path.rsplit("/{", 1)[0]
        for j, other in enumerate(self.operations):
            if other.method == "POST" and other.path == collection and j != i:
                return j
        return None

    @functools.cache  # noqa: B019 - one per API, alive as long as its tasks are made
    def followers(self, i: int) -> list[int]:
        """Operations that take an id of what this one returns, and nothing else unknown."""
        brought = self.shapes[i].brings
        return [
            j
            for j in range(len(self.operations))
            if j != i
            and self.shapes[j].nouns & brought
            and all(noun in brought for _, noun in self.opaque_needs(j))
        ]

    def at_hand(self, i: int) -> frozenset[str]:
        """What a call leaves at hand: the things it was about and the ids it returned."""
        return self.shapes[i].brings | {noun for _, noun in self.shapes[i].consumes}

    @functools.cache  # noqa: B019 - one per API, alive as long as its tasks are made
    def next_of(self, i: int) -> list[int]:
        """Operations that act on what this one was about or returned ('borrow this book'
        after reading it), and need nothing else unknown."""
        at_hand = self.at_hand(i)
        return [
            j
            for j in range(len(self.operations))
            if j != i
            and self.shapes[j].nouns & at_hand
            and all(noun in at_hand for _, noun in self.opaque_needs(j))
        ]

    def places(self, noun: str, goal: int) -> list[int]:
        """Where a person finds the resource: operations whose path names it (`GET
        /members/search` for a member). One that only happens to carry such ids is no place
        to look."""
        return [
            j for j in self.producers.get(noun, []) if j != goal and noun in self.shapes[j].names
        ]

    def producer(self, noun: str, goal: int, rng: random.Random, named: bool) -> int | None:
        """A place to find the resource: a search when the request names the thing, else a
        listing."""
        sources = self.places(noun, goal)
        searchers = [j for j in sources if self.shapes[j].searches]
        listings = [j for j in sources if not self.shapes[j].searches]
        pool = (searchers or sources) if named else (listings or sources)
        return rng.choice(pool) if pool else None


def _natural_params(op: Operation, shape: Shape) -> list[Parameter]:
    """The values a request states itself: path parameters that are no opaque id, required
    query and body values."""
    return [
        p
        for p in op.parameters
        if (p.location == "path" and p.name in shape.natural)
        or (
            p.location in ("query", "body")
            and p.required
            and not phrasing.is_opaque(p)
            and p.type not in ("boolean", "object")
        )
    ]


def _optional(op: Operation, rng: random.Random) -> list[str]:
    """Now and then one optional filter, said with its value ('in French')."""
    options = [
        p
        for p in op.parameters
        if p.location == "query" and not p.required and p.type not in ("boolean", "object")
    ]
    if not options or rng.random() > 0.3:
        return []
    param = rng.choice(options)
    return phrasing.given(param, phrasing.value_for(param, rng), rng)


def _request(api: _Api, i: int, rng: random.Random, ids: bool = True) -> list[str]:
    """Words asking for one operation with the values it takes; `ids` gives its opaque ids
    too ('pet 4821'), else the caller leaves them to what comes before."""
    op, shape = api.operations[i], api.shapes[i]
    words = phrasing.act(op, shape.is_item, rng, api.rare, api.wording)
    for param in _natural_params(op, shape):
        if param.location == "path" or rng.random() < 0.7:
            words += phrasing.given(param, phrasing.value_for(param, rng), rng)
    if ids:
        params = {p.name: p for p in op.parameters}
        for name, noun in api.opaque_needs(i):
            value = phrasing.value_for(params[name], rng, True) if name in params else "7"
            words += [noun, value] if rng.random() < 0.6 else [value]
    words += _optional(op, rng)
    if rng.random() < 0.2:
        words += phrasing.about_api(api.title, rng)
    if rng.random() < api.wording.distracted:
        other = api.operations[rng.randrange(len(api.operations))]
        words += phrasing.aside(other, rng)
    return words


def _mention(noun: str, named: bool, rng: random.Random) -> list[str]:
    """How a request points at a thing it does not give the id of: by name, or as one's own."""
    if named:
        return [rng.choice(["of the", "for the", "of", "for"]), noun, phrasing.entity(rng)]
    return rng.choice([["of my", noun + "s"], ["for all my", noun + "s"], ["of my latest", noun]])


def tasks_for(
    api: _Api, rng: random.Random, aside: random.Random
) -> Iterator[tuple[str, list[str], list[str]]]:
    """(kind, prompts, call sequence) for tasks over one API: a kind drawn by its share, then
    a goal it fits. One prompt is the whole request, asked at every step; several are one
    message per step. `aside` draws what only some tasks need (how a repeat is asked), so
    that every other task is drawn as without it."""
    count = min(GOALS_PER_SPEC, len(api.operations))
    fitting = {kind: [i for i in range(len(api.operations)) if api.fits(i, kind)] for kind in KINDS}
    kinds = [kind for kind in KINDS if fitting[kind]]
    for _ in range(count):
        kind = rng.choices(kinds, weights=[KINDS[k] for k in kinds])[0]
        i = rng.choice(fitting[kind])
        made = _task(api, i, kind, rng, aside)
        if made is None:  # the shape did not fit this goal after all: ask for it alone
            kind, made = "single", _task(api, i, "single", rng, aside)
        if made is not None:
            prompt, sequence = made
            prompts = [prompt] if isinstance(prompt, str) else prompt
            if len(prompts) > 1:
                kind = "again"
            yield kind, prompts, [api.operations[j].key for j in sequence]


def _task(
    api: _Api, i: int, kind: str, rng: random.Random, aside: random.Random
) -> tuple[str | list[str], list[int]] | None:
    say = phrasing.sentence_of
    if kind == "single":
        return say(_request(api, i, rng), rng), [i]
    if kind == "repeat":
        return _repeat(api, i, rng, aside)
    if kind == "pair":
        j = rng.choice([j for j in range(len(api.operations)) if j != i])
        joint = rng.choice([["and"], ["and then"], [", then"], ["and also"], [". After that,"]])
        return say([*_request(api, i, rng), *joint, *_request(api, j, rng)], rng), [i, j]
    if kind == "follow":
        j = rng.choice(api.followers(i))
        joint = rng.choice([["and"], ["and then"], [", then"], ["and show me"], [". With that,"]])
        words = [*_request(api, i, rng), *joint, *_request(api, j, rng, ids=False)]
        return say(words, rng), [i, j]
    if kind == "then":
        j = rng.choice(api.next_of(i))
        nouns = sorted(api.shapes[j].nouns & api.at_hand(i))
        noun = rng.choice(nouns) if nouns else "it"
        back = rng.choice([["for this", noun], ["for that", noun], ["for it"], ["of the", noun]])
        return say([*_request(api, j, rng, ids=False), *back], rng), [i, j]
    if kind == "lookup":
        noun = api.opaque_needs(i)[0][1]
        named = rng.random() < 0.7
        first = api.producer(noun, i, rng, named)
        if first is None:
            return None
        if rng.random() < 0.3:  # the look-up said first: "find the artist X and list ..."
            words = [*phrasing.act(api.operations[first], False, rng, api.rare, api.wording), noun]
            words += [phrasing.entity(rng)] if named else []
            words += ["and", *_request(api, i, rng, ids=False)]
        else:
            words = [*_request(api, i, rng, ids=False), *_mention(noun, named, rng)]
        return say(words, rng), [first, i]
    if kind == "chain":
        return _chain(api, i, rng)
    creator = api.creator(i)
    if kind == "create" and creator is not None:
        words = [
            *phrasing.act(api.operations[creator], False, rng, api.rare, api.wording),
            "and then",
        ]
        return say([*words, *_request(api, i, rng, ids=False)], rng), [creator, i]
    return None


def _repeat(
    api: _Api, i: int, rng: random.Random, aside: random.Random
) -> tuple[str | list[str], list[int]] | None:
    """The same call for each of the values listed: 'holidays in Japan and Germany'; or, as
    `aside` draws, each value asked in a message of its own: 'holidays in Japan', then 'same
    for Germany'. Both draw the same from `rng`."""
    drawn = _values(api, i, rng)
    if drawn is None:
        return None
    param, values = drawn
    words = phrasing.act(api.operations[i], api.shapes[i].is_item, rng, api.rare, api.wording)
    if aside.random() >= AGAIN_SHARE:
        words += phrasing.given(param, phrasing.listing(values), rng)
        return phrasing.sentence_of(words, rng), [i] * len(values)
    first = phrasing.sentence_of([*words, *phrasing.given(param, values[0], rng)], rng)
    return [first, *(_again(value, aside) for value in values[1:])], [i] * len(values)


# How a message of its own asks for the last call again with another value: each says so
# (`history.asks_again` reads it), before the value, after it or both
_AGAIN: tuple[list[str], ...] = (
    [],
    ["same for"],
    ["and the same for"],
    ["do the same for"],
    ["now the same for"],
    ["also"],
    ["and also"],
    ["again for"],
    ["what about"],
    ["how about"],
)
_AGAIN_AFTER: tuple[list[str], ...] = ([], ["too"], ["as well"], [", same thing"], ["again"])


def _again(value: str, rng: random.Random) -> str:
    """A short follow-up asking for the same with another value: no opener, no circumstance."""
    before = rng.choice(_AGAIN)
    after = rng.choice(_AGAIN_AFTER if before else _AGAIN_AFTER[1:])
    said = [*before, value, *after]
    if rng.random() < 0.3:
        said += [", please"]
    text = " ".join(said).replace(" ,", ",")
    text = text[:1].upper() + text[1:] if rng.random() < 0.5 else text
    return text + rng.choice(["", ".", "?"])


def _values(api: _Api, i: int, rng: random.Random) -> tuple[Parameter, list[str]] | None:
    """A parameter the call varies, and two or three values of it."""
    op = api.operations[i]
    params = {p.name: p for p in op.parameters}
    varied = _natural_params(op, api.shapes[i])
    ids = [params[n] for n, _ in api.opaque_needs(i) if n in params]
    if not varied + ids:
        return None
    param = rng.choice(varied + ids)
    count = rng.choice([2, 2, 3])
    drawn = (phrasing.value_for(param, rng, param in ids) for _ in range(count * 2))
    values = list(dict.fromkeys(drawn))[:count]
    return (param, values) if len(values) >= 2 else None


def _chain(api: _Api, i: int, rng: random.Random) -> tuple[str, list[int]] | None:
    """Three calls: the thing named is found, then what the goal needs through it ('the
    reviews of the books of the author Ana Ruiz')."""
    noun = api.opaque_needs(i)[0][1]
    middles = [
        j
        for j, shape in enumerate(api.shapes)
        if j != i and noun in shape.yields and shape.consumes and shape.consumes[0][1] != noun
    ]
    if not middles:
        return None
    middle = rng.choice(middles)
    inner = api.shapes[middle].consumes[0][1]
    root = api.producer(inner, middle, rng, named=True)
    if root is None or root == i:
        return None
    words = [*_request(api, i, rng, ids=False), "of the", inner, phrasing.entity(rng)]
    return phrasing.sentence_of(words, rng), [root, middle, i]


def generate(
    catalogs: list[Catalog],
    seed: int = 13,
    rounds: int = 2,
    wordings: Sequence[phrasing.Wording] = (phrasing.PLAIN,),
) -> list[SyntheticCase]:
    """Cases from the tasks of every spec of every catalog, each step a case whose history is
    the steps before it; round r is worded as `wordings[r % len(wordings)]` says."""
    rng, aside = random.Random(seed), random.Random(f"{seed}:aside")
    apis = [
        (item.summary.name, _Api.of(item.parsed.operations, item.parsed.title))
        for catalog in catalogs
        for item in catalog.loaded
        if item.parsed is not None and item.parsed.operations
    ]
    cases: list[SyntheticCase] = []
    for number in range(rounds):
        wording = wordings[number % len(wordings)]
        for name, api in apis:
            for kind, prompts, sequence in tasks_for(replace(api, wording=wording), rng, aside):
                for step, gold in enumerate(sequence):
                    if step < MADE_BEFORE.get(kind, 0):
                        continue
                    prompt = prompts[min(step, len(prompts) - 1)]
                    cases.append(SyntheticCase(name, prompt, sequence[:step], gold, kind))
    return cases
