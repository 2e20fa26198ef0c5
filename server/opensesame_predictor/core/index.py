"""Everything the predictor precomputes for one catalog: the text indexes, each operation's
shape, and which operations consume or yield each resource. Also candidate selection."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import numpy as np

from opensesame_predictor.core.features import (
    CatalogIndex,
    LexicalScores,
    TermIndex,
    path_words,
    stem,
    tokens,
    words,
)
from opensesame_predictor.core.history import (
    HistoryState,
    Shape,
    creates,
    goal_needs,
    makers_of,
    missing,
    shapes_of,
    wanted_new,
)
from opensesame_predictor.core.models import Operation, Parameter
from opensesame_predictor.core.params import PromptValues, fills

NONE = np.array([], dtype=np.int64)
GOALS = 8  # likeliest operations whose missing ids make their producers worth suggesting
EXTRA = 20  # structural candidates added beyond the lexical ones, per kind
MEANING = 10  # candidates closest in meaning, added beyond the lexical ones
MAX_STEPS = 8  # steps of a request read in turn; a 4 KB prompt could list hundreds
DONE = 0.6  # a call that matches a step this well, relative to its best match, did it


def shared_parts(shapes: list[Shape]) -> list[Shape]:
    """The shapes with equal parts held once: most of their sets and tuples are empty or
    repeat across operations (a catalog of 18k operations holds 100k of them, 30 MB)."""
    canonical: dict[object, object] = {}
    for i, shape in enumerate(shapes):
        values = {part.name: getattr(shape, part.name) for part in fields(shape)}
        parts: dict[str, Any] = {
            name: canonical.setdefault(value, value)
            for name, value in values.items()
            if isinstance(value, frozenset | tuple)
        }
        shapes[i] = replace(shape, **parts)
    return shapes


def _path_params(operations: list[Operation]) -> list[list[Parameter]]:
    return [[p for p in op.parameters if p.location == "path"] for op in operations]


class PredictorIndex:
    def __init__(self, operations: list[Operation], about: dict[str, str] | None = None) -> None:
        self.operations = operations
        self.size = len(operations)
        self.text = CatalogIndex(operations)
        # each API as one document: its name, what it says it is for, what its operations do
        self.api_names = list(dict.fromkeys(op.spec for op in operations))
        api_position = {name: k for k, name in enumerate(self.api_names)}
        self.api_of = np.array([api_position[op.spec] for op in operations], dtype=np.int64)
        documents: list[list[str]] = [
            tokens(name) + tokens((about or {}).get(name, "")) for name in self.api_names
        ]
        for op, k in zip(operations, self.api_of, strict=True):
            documents[k] += tokens(" ".join(path_words(op.path)) + " " + op.summary)
            documents[k] += tokens(" ".join(op.tags))
        self.apis = TermIndex(documents, "bm25")
        # each API as the sentence model reads it: the mean of its operations' vectors, so that
        # an operation's cosine summed over its API and scaled gives the API's
        sums = np.zeros((len(self.api_names), self.text.sentences.shape[1]), dtype=np.float64)
        np.add.at(sums, self.api_of, self.text.sentences)
        self.api_scale = 1.0 / np.maximum(np.linalg.norm(sums, axis=1), 1e-9)
        self.shapes: list[Shape] = shared_parts(shapes_of(operations))
        self.position = {op.uid: i for i, op in enumerate(operations)}
        self.specs = np.array([op.spec for op in operations])
        consumers: dict[str, list[int]] = {}
        producers: dict[str, list[int]] = {}
        for i, shape in enumerate(self.shapes):
            for noun in shape.nouns:
                consumers.setdefault(noun, []).append(i)
            for noun in shape.yields if shape.reads else ():  # a made thing is no found one
                producers.setdefault(noun, []).append(i)
        self.consumers = {n: np.array(ids, dtype=np.int64) for n, ids in consumers.items()}
        self.consumable = frozenset(consumers)
        self.producers = {n: np.array(ids, dtype=np.int64) for n, ids in producers.items()}
        self.by_operation_id = {op.operation_id: i for i, op in enumerate(operations)}
        self.makers = {
            noun: np.array(ids, dtype=np.int64)
            for noun, ids in makers_of(operations, self.shapes).items()
        }
        self.path_params = _path_params(operations)
        self.searchers = np.array(
            [i for i, shape in enumerate(self.shapes) if shape.searches], dtype=np.int64
        )

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the operations: the catalog holds them already, and a copy read
        back from the index cache would double a restart's memory. `attach` puts them back."""
        state = self.__dict__.copy()
        state["operations"] = []
        state["path_params"] = []
        return state

    def attach(self, operations: list[Operation]) -> PredictorIndex:
        """This index, read back from the cache, over the catalog's own operations (the
        ones it was built from: the cache's key is their content)."""
        if len(operations) != self.size:
            raise ValueError(f"an index of {self.size} operations, given {len(operations)}")
        self.operations = operations
        self.text.operations = operations
        self.path_params = _path_params(operations)
        return self

    def adds_to(self, goal: int, producer: int) -> bool:
        """Whether the goal adds to the very collection the producer reads (`PUT /me/following`
        and `GET /me/following`): what is already there is no source of things to add."""
        wanted, source = self.operations[goal], self.operations[producer]
        return (
            wanted.method in ("POST", "PUT")
            and source.method == "GET"
            and wanted.path.rstrip("/") == source.path.rstrip("/")
        )

    def to_make(self, prompt: str, called: list[int]) -> frozenset[str]:
        """Things the prompt asks to make ("a new playlist") that no call has made yet."""
        wanted = wanted_new(prompt) & self.makers.keys()
        made = set(called)
        return frozenset(n for n in wanted if made.isdisjoint(self.makers[n].tolist()))

    def lexical(self, prompt: str, request: str | None = None) -> LexicalScores:
        return self.text.lexical(prompt, request)

    def api_sentence(self, sentence: np.ndarray) -> np.ndarray:
        """How far each operation's API is, in the sentence model's reading, from the API
        closest to the request (0 for the closest, and for every operation when one API is
        loaded): the cosine of the request with the mean of each API's operations' vectors."""
        if len(self.api_names) < 2:
            return np.zeros(self.size, dtype=np.float32)
        closeness = np.bincount(self.api_of, weights=sentence, minlength=len(self.api_names))
        closeness *= self.api_scale
        behind: np.ndarray = (closeness - closeness.max())[self.api_of].astype(np.float32)
        return behind

    def api_match(self, prompt_tokens: list[str]) -> np.ndarray:
        """How well each operation's API matches the prompt, relative to the best API (1 for
        every operation when only one API is loaded or none matches)."""
        scores = self.apis.scores(prompt_tokens)
        best = float(scores.max(initial=0.0))
        if len(self.api_names) < 2 or best <= 0:
            return np.ones(self.size, dtype=np.float32)
        relative: np.ndarray = (scores / best)[self.api_of].astype(np.float32)
        return relative

    def focus(
        self, steps: list[str], called: list[int], allowed: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """A request of several steps in turn ("pause playback and turn the volume down"): the
        first step not done yet (no call made matches it nearly as well as its best match
        does), by its number, and how well each operation matches it, relative to the best.
        Nothing (-1) for a request of one step."""
        if len(steps) < 2:
            return np.zeros(self.size, dtype=np.float32), -1
        made = np.array(sorted(set(called)), dtype=np.int64)
        read = steps[:MAX_STEPS]
        for number, step in enumerate(read):
            closeness = np.where(allowed, self.text.closeness(step), 0.0).astype(np.float32)
            if not made.size or float(closeness[made].max()) < DONE:
                return closeness, number
        return closeness, len(read) - 1  # every step done: the last one stays in hand

    def fills_path(self, i: int, values: PromptValues | None) -> float:
        """The share of the operation's path parameters the prompt holds values for."""
        params = self.path_params[i]
        if not params or values is None:
            return 0.0
        return sum(fills(p, values) for p in params) / len(params)

    def allowed(self, spec: str | None) -> np.ndarray:
        if spec is None:
            return np.ones(self.size, dtype=bool)
        return np.asarray(self.specs == spec)

    def creates(self, i: int) -> str:
        """What operation i, a POST on a collection, brings into being, else ''."""
        return creates(self.operations[i], self.shapes[i])

    def candidates(
        self,
        lexical: LexicalScores,
        state: HistoryState,
        values: int,
        allowed: np.ndarray,
        count: int,
        names: int = 0,
    ) -> tuple[np.ndarray, dict[int, dict[str, str]]]:
        """The lexically best operations, plus those the history feeds, those that yield what
        the likeliest goals are missing, and look-ups when the prompt names things (`names`)
        that nothing has looked up yet. Notes say why a structural candidate is there."""
        combined = np.where(allowed, lexical.combined, -np.inf)
        available = int(allowed.sum())
        if available == 0:
            return np.array([], dtype=np.int64), {}
        ordered = np.argsort(-combined, kind="stable")[:available]
        chosen: dict[int, None] = dict.fromkeys(int(i) for i in ordered[:count])
        notes: dict[int, dict[str, str]] = {}
        rank_of = np.full(self.size, available, dtype=np.int64)
        rank_of[ordered] = np.arange(len(ordered))

        def best(indices: np.ndarray) -> list[int]:
            """The lexically best of some operations, as structural candidates."""
            usable = indices[allowed[indices]]
            top: list[int] = usable[np.argsort(rank_of[usable], kind="stable")[:EXTRA]].tolist()
            for i in top:
                chosen.setdefault(i, None)
            return top

        # what the request means in other words than the spec's ('photo' for 'image')
        meaning = np.where(allowed, lexical.meaning, -np.inf)
        for i in np.argsort(-meaning, kind="stable")[: min(MEANING, available)]:
            chosen.setdefault(int(i), None)
        for noun in state.last_yielded:
            best(self.consumers.get(noun, NONE))
        if state.looks_up(names):
            best(self.searchers)
        targets = [self.by_operation_id[t] for t in state.link_targets if t in self.by_operation_id]
        if targets:
            best(np.array(targets, dtype=np.int64))

        top = float(combined[ordered[0]]) if np.isfinite(combined[ordered[0]]) else 0.0
        # what makes a new thing the prompt asks for is a goal as likely as any
        makers = {i: noun for noun in sorted(state.to_make) for i in best(self.makers[noun])}
        goals = [(self.shapes[i], 1.0, i) for i in makers] + [
            (self.shapes[int(i)], float(combined[int(i)]) / top if top > 0 else 0.0, int(i))
            for i in ordered[:GOALS]
            if int(i) not in makers
        ]
        needs = goal_needs(((shape, weight) for shape, weight, _ in goals), state, values)
        goal_of: dict[str, int] = {}
        for shape, _, i in goals:
            for noun in missing(shape, state, values):
                goal_of.setdefault(noun, i)
        for noun, weight in needs.items():
            if noun in state.to_make:
                continue  # a new one is made, not found: its maker is a goal
            for i in best(self.producers.get(noun, NONE)):
                if i == goal_of.get(noun) or self.adds_to(goal_of[noun], i):
                    continue
                callable_now = not missing(self.shapes[i], state, values)
                score = weight * (1.0 if callable_now else 0.3)
                note = notes.setdefault(i, {})
                if score > float(note.get("yields_weight", 0.0)):
                    note["yields_weight"] = f"{score:.4f}"
                    note["yields"] = noun
                    note["for"] = str(goal_of[noun])
                # where one looks such a thing up: an operation whose path names it
                if noun in self.shapes[i].names and score > float(note.get("finds_weight", 0)):
                    note["finds_weight"] = f"{score:.4f}"
        for i, noun in makers.items():
            note = notes.setdefault(i, {})
            note["makes"] = noun
            note["makes_weight"] = "0.3" if missing(self.shapes[i], state, values) else "1.0"
        # ... and what the whole request means, as the sentence model reads it: last, as the
        # model may still be reading (the order of the candidates changes no rank)
        if lexical.sentence.any():
            sentence = np.where(allowed, lexical.sentence, -np.inf)
            for i in np.argsort(-sentence, kind="stable")[: min(MEANING, available)]:
                chosen.setdefault(int(i), None)
        for i in chosen:
            if state.last is not None:
                last_op, last_shape = state.last
                fed = self.shapes[i].nouns & last_shape.brings
                if fed and i != self.position.get(last_op.uid):
                    notes.setdefault(i, {})["after"] = last_op.key
                    notes[i]["fed"] = sorted(fed)[0]
        return np.fromiter(chosen, dtype=np.int64, count=len(chosen)), notes


def param_for(op: Operation, shape: Shape, noun: str) -> str:
    """The parameter through which an operation takes a resource's id, for messages: a path
    parameter, else a query or body id field (`movie_ids`, `ids`)."""
    for name, consumed in shape.consumes:
        if consumed == noun:
            return name
    fields = [p.name for p in op.parameters if p.location in ("query", "body")]
    named = [n for n in fields if noun in {stem(w) for w in words(n)}]
    bare = [n for n in fields if n.lower() in ("id", "ids", "uri", "uris")]
    return (named or bare or [f"{noun} id"])[0]


def readable_notes(index: PredictorIndex, position: int, notes: dict[str, str]) -> dict[str, str]:
    """Notes with operation positions and nouns turned into keys and parameter names."""
    readable = dict(notes)
    if "yields" in notes and "for" in notes:
        goal = int(notes["for"])
        readable["yields"] = param_for(index.operations[goal], index.shapes[goal], notes["yields"])
        readable["for"] = index.operations[goal].key
    if "fed" in notes:
        readable["fed"] = param_for(
            index.operations[position], index.shapes[position], notes["fed"]
        )
    return readable
