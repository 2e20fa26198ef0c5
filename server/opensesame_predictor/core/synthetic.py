"""Synthetic training cases generated from specs, shaped like real requests.

Real requests paraphrase, drop words, carry values ("run 4821", `acme/widgets`), name things
without giving their ids ("the films of Ana Ruiz"), and state multi-step goals whose first step
is not the operation they describe. Each generated task is a goal operation plus the call
sequence that reaches it; every step becomes one case, as in the evaluation data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from opensesame_predictor.core.catalog import Catalog
from opensesame_predictor.core.features import words
from opensesame_predictor.core.history import GENERIC, Shape, makers_of, shapes_of
from opensesame_predictor.core.models import Operation

# Generic paraphrases of the verbs that summaries start with.
VERBS: dict[str, list[str]] = {
    "GET": ["get", "show me", "find", "what is", "give me", "look up", "tell me", "fetch"],
    "LIST": ["list", "show all", "what are", "give me the", "find all", "which are"],
    "POST": ["create", "add", "make", "start", "set up", "register", "submit", "new"],
    "PUT": ["update", "change", "edit", "set", "modify", "replace"],
    "PATCH": ["update", "change", "edit", "rename", "adjust"],
    "DELETE": ["delete", "remove", "get rid of", "cancel", "drop", "clear"],
}
FILLERS = ["", "", "please", "I want to", "can you", "help me", "I need to", "quickly"]
FIRST = ["Ana", "Liam", "Sofia", "Kenji", "Maya", "Omar", "Elena", "Noah", "Priya", "Jonas"]
LAST = ["Ruiz", "Okafor", "Lindqvist", "Tanaka", "Moreau", "Haddad", "Novak", "Reyes"]
TITLES = ["Blue Horizon", "Night Garden", "Silver Lake", "Paper Moon", "Red Canyon", "Echo Park"]
IN_DESCRIPTION_WORDS = 0.15  # share of descriptions said in the description's words
MAX_WORDS = 5
SUMMARY_STOP = {"a", "an", "the", "of", "for", "by", "to", "in", "on", "with", "and", "or"}


@dataclass
class SyntheticCase:
    spec: str
    prompt: str
    history: list[str]
    gold: str


def _verb(op: Operation, shape: Shape, rng: random.Random) -> str:
    kind = "LIST" if op.method == "GET" and not shape.is_item else op.method
    return rng.choice(VERBS.get(kind, VERBS["GET"]))


def _describe(op: Operation, rng: random.Random) -> list[str]:
    """The content words of what the operation does, as a person might say them."""
    text = op.summary or " ".join(words(op.operation_id)) or " ".join(words(op.path))
    # people also say it in words the summary lacks ("my music library" for "saved tracks"):
    # now and then the words of the description's first sentence
    sentence = (op.description or "").split(". ")[0]
    if sentence and rng.random() < IN_DESCRIPTION_WORDS:
        text = sentence
    content = [w for w in words(text) if w not in SUMMARY_STOP]
    if content and content[0] in {"get", "list", "create", "update", "delete", "retrieve"}:
        content = content[1:]
    if not content:
        content = [w for w in words(op.path) if w not in GENERIC] or ["it"]
    kept = [w for w in content if rng.random() > 0.25] or content[:1]
    if len(kept) > MAX_WORDS:  # a phrase from a long sentence, not all of it
        start = rng.randrange(len(kept) - MAX_WORDS + 1)
        kept = kept[start : start + MAX_WORDS]
    if len(kept) > 2 and rng.random() < 0.3:
        i = rng.randrange(len(kept) - 1)
        kept[i], kept[i + 1] = kept[i + 1], kept[i]
    return kept


def _distractor(operations: list[Operation], rng: random.Random) -> list[str]:
    """Real prompts mention more than the next step: words of some other operation."""
    if rng.random() > 0.4:
        return []
    other = rng.choice(operations)
    content = [w for w in words(other.summary or other.path) if w not in SUMMARY_STOP]
    return rng.sample(content, min(len(content), rng.randint(1, 2)))


def _entity(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    title = rng.choice(TITLES)
    return f'"{title}"' if rng.random() < 0.5 else title


def _value(name: str, rng: random.Random) -> str:
    lowered = name.lower()
    if lowered in {"owner", "org", "username", "user"}:
        return rng.choice(["acme", "octo", "northwind"])
    if lowered in {"repo", "repository"}:
        return rng.choice(["widgets", "api", "site"])
    return str(rng.randint(2, 99999))


def _sentence(parts: list[str], rng: random.Random) -> str:
    filler = rng.choice(FILLERS)
    text = " ".join(p for p in [filler, *parts] if p)
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


def _mention(noun: str, producer: Shape, rng: random.Random) -> list[str]:
    """How a prompt points at a resource it needs: by name when the producer looks things up,
    else as the caller's own ('my playlists', 'for me') or not at all."""
    if producer.searches:
        return [noun, _entity(rng)]
    return rng.choice([["my", noun], ["for me"], []])


def tasks_for(catalog: Catalog, rng: random.Random) -> Iterator[tuple[str, list[str], list[str]]]:
    """(prompt, gold call sequence) for tasks over one catalog; one or more per operation."""
    operations = catalog.operations
    shapes = shapes_of(operations)
    producers: dict[str, list[int]] = {}
    for i, shape in enumerate(shapes):
        if not shape.consumes:
            for noun in shape.yields:
                producers.setdefault(noun, []).append(i)

    makers = makers_of(operations, shapes)

    def producer(noun: str, goal: int) -> int | None:
        sources = [j for j in producers.get(noun, []) if j != goal]
        searchers = [j for j in sources if shapes[j].searches] or sources
        return rng.choice(searchers) if searchers else None

    def into_new(i: int) -> tuple[list[str], list[str]] | None:
        """Things put into a new container: "add Ana Ruiz to a new calendar". The container
        is made first (after what its maker needs), the things looked up before or after it,
        as the prompt orders them."""
        op, shape = operations[i], shapes[i]
        if not shape.consumes:
            return None
        made = shape.consumes[0][1]
        # what is put in: an id in the body of a POST on the container's collection (an item
        # into a cart), or the last path id of a PUT (a contact onto a deal); not a thing that
        # lives inside the container already (a task of a project)
        if op.method == "POST" and len(shape.consumes) == 1 and shape.requires:
            wanted = shape.requires[0][0]
        elif op.method == "PUT" and len(shape.consumes) == 2 and shape.is_item:
            wanted = shape.consumes[1][1]
        else:
            return None
        choices = [j for j in makers.get(made, []) if j != i]
        if not choices:
            return None
        maker = rng.choice(choices)
        used = {i, maker}

        def finder(noun: str) -> int | None:
            """A read that finds the noun, not yet in the sequence."""
            sources = [j for j in producers.get(noun, []) if operations[j].method == "GET"]
            sources = [j for j in sources if j not in used]
            found = rng.choice([j for j in sources if shapes[j].searches] or sources or [-1])
            used.add(found)
            return found if found >= 0 else None

        making: list[int] = []
        said: list[str] = []
        for noun in shapes[maker].needed:  # the new container's own place, if it has one
            source = finder(noun)
            if source is None:
                return None
            making.append(source)
            said += _mention(noun, shapes[source], rng)
        making.append(maker)
        source = finder(wanted)
        if source is None:
            return None
        things, thing = [source], _mention(wanted, shapes[source], rng)
        verb, description = _verb(op, shape, rng), _describe(op, rng)
        new = ["a", rng.choice(["new", "fresh"]), made, *(["in", *said] if said else [])]
        if rng.random() < 0.5:
            spoken = [rng.choice(["create", "make", "start"]), *new, "and", verb, *description]
            spoken += thing
            sequence = making + things + [i]
        else:
            spoken = [verb, *description, *thing, rng.choice(["in", "to", "for"]), *new]
            sequence = things + making + [i]
        prompt = _sentence(spoken, rng)
        return [prompt] * len(sequence), [operations[j].key for j in sequence]

    for i, (op, shape) in enumerate(zip(operations, shapes, strict=True)):
        description = _describe(op, rng)
        verb = _verb(op, shape, rng)
        # what it needs: ids in its path, then required ids in its query or body
        nouns = shape.needed
        if not nouns:
            yield op.spec, [_sentence([verb, *description], rng)], [op.key]
            continue
        # the values are in the prompt: one step
        values = [f"{noun} {_value(name, rng)}" for name, noun in shape.consumes]
        yield op.spec, [_sentence([verb, *description, "of", *values], rng)], [op.key]
        # the prompt names the thing: look it up first, then the goal
        needed = nouns[0]
        noise = _distractor(operations, rng)
        first = producer(needed, i)
        if first is not None:
            mention = _mention(needed, shapes[first], rng)
            prompt = _sentence([verb, *description, "of", *mention, *noise], rng)
            yield op.spec, [prompt, prompt], [operations[first].key, op.key]
        made = into_new(i)
        if made is not None:
            yield op.spec, *made
        # or a longer chain: what feeds the goal needs an id of its own
        feeders = [
            j
            for j, other in enumerate(shapes)
            if j != i
            and needed in other.yields
            and other.consumes
            and other.consumes[0][1] != needed
        ]
        if feeders:
            middle = rng.choice(feeders)
            inner = shapes[middle].consumes[0][1]
            roots = producers.get(inner, [])
            roots = [j for j in roots if shapes[j].searches] or roots  # a thing named is searched
            if roots:
                root = operations[rng.choice(roots)]
                if root.key in (op.key, operations[middle].key):
                    continue
                prompt = _sentence([verb, *description, "of the", inner, _entity(rng), *noise], rng)
                sequence = [root.key, operations[middle].key, op.key]
                yield op.spec, [prompt] * 3, sequence
        # a create followed by a step on what was created
        collection = op.path.rsplit("/{", 1)[0]
        creator = catalog.get(f"POST {collection}", op.spec)
        if creator is not None and creator.key != op.key:
            prompt = _sentence(
                [
                    rng.choice(VERBS["POST"]),
                    *_describe(creator, rng),
                    "and then",
                    verb,
                    *description,
                ],
                rng,
            )
            yield op.spec, [prompt, prompt], [creator.key, op.key]


def generate(catalogs: list[Catalog], seed: int = 13, rounds: int = 8) -> list[SyntheticCase]:
    """Cases from every task, each step a case whose history is the steps before it."""
    rng = random.Random(seed)
    cases: list[SyntheticCase] = []
    for _ in range(rounds):
        for catalog in catalogs:
            for spec, prompts, sequence in tasks_for(catalog, rng):
                for step, gold in enumerate(sequence):
                    cases.append(SyntheticCase(spec, prompts[step], sequence[:step], gold))
    return cases
