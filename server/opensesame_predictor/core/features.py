"""Text features: tokenisation, and per-field lexical indexes over the operations of a catalog.

Each field (path words, operationId, summary, description, parameters, schema names) has its own
index, so a match in the path counts apart from a match somewhere in a long description. The
indexes are sparse term x operation matrices: a query costs one row lookup per query term.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process

from opensesame_predictor.core.models import Operation

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[A-Za-z]+|\d+")
# A value quoted in a prompt ("Road Trip", 'My R&B'); an apostrophe inside a word is no quote.
QUOTED = re.compile(r"[\"“”]([^\"“”]{1,200})[\"“”]|(?<!\w)'([^']{1,200})'(?!\w)")
STOPWORDS = frozenset(
    """a an the of to in on for by with and or is are be was were it its this that these those
    me my i you your we our us they them their he she his her from at as into about which
    who what when where how do does did can could would should will shall please some any
    all there here then than just also very much many one ones get want need like""".split()
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light stemmer: plural and common verb endings, enough to join 'users'/'user' and
    'movies'/'movie'/'company'/'companies' (a final consonant + y and -ie both end in i)."""
    if len(word) <= 3:
        return word
    for suffix, replacement in (
        ("ies", "i"),
        ("sses", "ss"),
        ("xes", "x"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("ing", ""),
        ("ed", ""),
        ("es", "e"),
        ("s", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            word = word[: -len(suffix)] + replacement
            break
    if word.endswith("ie") and len(word) > 4:
        return word[:-1]
    if word.endswith("y") and len(word) > 3 and word[-2] not in "aeiou":
        return word[:-1] + "i"
    return word


CACHED_TEXT = 80  # texts up to this long are split once and remembered (names, summaries)


def words(text: str) -> list[str]:
    """Split identifiers and prose alike: `getUserById`, `user_id`, `/users/{id}` -> words."""
    return list(_cached_words(text) if len(text) <= CACHED_TEXT else _split(text))


@lru_cache(maxsize=65536)
def _cached_words(text: str) -> tuple[str, ...]:
    # field and parameter names recur across operations and specs: split each once; long
    # texts (descriptions) rarely recur and would hold megabytes in the cache
    return _split(text)


def _words(text: str) -> tuple[str, ...]:
    return _cached_words(text) if len(text) <= CACHED_TEXT else _split(text)


def _split(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for part in _WORD.findall(text):
        if part.islower() or part.isdigit():
            found.append(part)
        else:
            found.extend(w.lower() for w in _CAMEL.split(part) if w)
    return tuple(found)


def tokens(text: str) -> list[str]:
    """Words, lower-cased, stemmed, without stopwords: the unit of lexical matching."""
    return list(_tokens(text))


def _tokens(text: str) -> tuple[str, ...]:
    return _cached_tokens(text) if len(text) <= CACHED_TEXT else _tokenise(text)


@lru_cache(maxsize=8192)
def _cached_tokens(text: str) -> tuple[str, ...]:
    # operation texts recur on every request (reasons, parameters): tokenise them once
    return _tokenise(text)


def _tokenise(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in _words(text) if w not in STOPWORDS and len(w) > 1)


def path_words(path: str) -> list[str]:
    """The literal segments of a path template, split into words (parameters left out)."""
    return words(re.sub(r"\{[^}]*\}", " ", path))


def short_text(op: Operation) -> str:
    """What a person would call the operation, for character and fuzzy matching."""
    return " ".join([" ".join(path_words(op.path)), " ".join(words(op.operation_id)), op.summary])


def meaning_text(op: Operation) -> str:
    """What an operation is about, for its word vectors: its short text and the start of its
    description."""
    return f"{short_text(op)} {op.description[:300]}"


def sentence_text(op: Operation) -> str:
    """What the sentence model reads of an operation: its meaning text and the names of what
    it takes (people ask by what they can give), at most twelve, in words."""
    names = [p.name for p in op.parameters if p.location in ("path", "query")] + op.body_fields
    said = list(dict.fromkeys(" ".join(words(name)) for name in names))[:12]
    text = meaning_text(op)
    return f"{text} Parameters: {' '.join(said)}." if said else text


def word_vectors(texts: list[str], dtype: type = np.float32) -> tuple[np.ndarray, list[np.ndarray]]:
    """One normalised vector per distinct content word of some texts, and each text's rows."""
    from opensesame_predictor.core.vectors import vectors

    row_of: dict[str, int] = {}
    rows = []
    for text in texts:
        found = sorted({w for w in _words(text) if w not in STOPWORDS and len(w) > 1})
        rows.append(np.array([row_of.setdefault(w, len(row_of)) for w in found], dtype=np.int64))
    return vectors().embed_many(list(row_of), dtype), rows


def char_grams(text: str) -> list[str]:
    """Character 3- and 4-grams inside words padded with spaces (like char_wb)."""
    grams: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in (3, 4):
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


# Verbs of a prompt -> the methods they usually mean. Weak evidence, used as one feature.
INTENT_VERBS: dict[str, frozenset[str]] = {}  # as said
INTENT_METHODS: dict[str, frozenset[str]] = {}  # by stem
for _verbs, _methods in (
    ("create add new make post register upload submit place open publish insert", "POST"),
    ("send reserve buy purchase invite", "POST"),
    ("update edit change modify rename replace patch set adjust", "PUT PATCH POST"),
    ("close archive move assign enable disable unlock", "PUT PATCH POST"),
    ("delete remove destroy erase drop revoke unfollow unsubscribe clear", "DELETE"),
    ("rid kick ban wipe discard", "DELETE"),
    ("cancel", "DELETE POST"),
    ("list show find search fetch retrieve read view look lookup give tell count", "GET"),
    ("check browse download export", "GET"),
):
    for _verb in _verbs.split():
        INTENT_METHODS[stem(_verb)] = frozenset(_methods.split())
        INTENT_VERBS[_verb] = frozenset(_methods.split())


# Where one request says several things to do in turn: "pause playback, turn the volume down
# and resume playing". Quoted names are left whole.
_CLAUSE_BREAK = re.compile(r"\s*(?:[,;]|\bthen\b|\band\b)\s*(?:\band\b|\bthen\b)?\s*", re.I)


# Words that start a thing to do: verbs of commands and question words. A break followed by
# anything else goes on with a list ("the name and last update date", "Up and the cast").
STEP_STARTS = frozenset(
    """add append apply approve archive assign attach buy calculate cancel change check clear close
    compare compute convert copy count create decline delete deploy describe disable download
    drop duplicate edit enable erase estimate export fetch find follow generate get give grab
    import insert invite join list load lock log look make mark merge modify move mute notify
    open pause pay place play print publish pull push put read reboot register reject reload
    remove rename reorder repeat replace reply reserve reset resolve restart restore resume
    retrieve revoke run save schedule search see select sell send set share show shuffle skip
    start submit subscribe suggest sync tell transfer translate turn undo unfollow unlike unlock
    unmute unsubscribe update upload validate verify view vote watch write what which who whom
    whose when where why how""".split()
)


def clause_spans(prompt: str) -> list[tuple[int, int]]:
    """Where the things to do a request says in turn begin and end: its parts between commas,
    semicolons, 'and' and 'then', where the part after the break starts like a command ('...
    and set the volume', '... then what is'), not like more of a list ('... and the cast', '...
    and last update date', '..., Ana Ruiz')."""
    shielded = QUOTED.sub(lambda m: "\0" * len(m.group()), prompt)
    spans: list[tuple[int, int]] = []
    start = 0
    for found in _CLAUSE_BREAK.finditer(shielded):
        following = _WORD.match(shielded, found.end())
        if following is None or following.group() not in STEP_STARTS:
            continue
        spans.append((start, found.start()))
        start = found.end()
    spans.append((start, len(prompt)))
    return [(begin, end) for begin, end in spans if tokens(prompt[begin:end])]


def clauses(prompt: str) -> list[str]:
    """The things to do a request says in turn (see `clause_spans`)."""
    return [prompt[begin:end] for begin, end in clause_spans(prompt)]


def through_step(prompt: str, steps: int, number: int) -> str:
    """The prompt up to the end of its step in hand, the `number`th of the `steps` its words
    say: a value given for a later step ('list the projects and then delete the project 4')
    is not one this step is given. The whole prompt when there is no step in hand, or when
    its own steps do not line up with its words' steps."""
    spans = clause_spans(prompt)
    if number < 0 or len(spans) != steps:
        return prompt
    return prompt[: spans[number][1]]


def method_intent(text: str) -> frozenset[str]:
    """The methods the verbs of a request mean, in their plain form only: a command or what
    one wants done ("return the book"), not what one did or is doing ("I am done reading")."""
    wanted: set[str] = set()
    said = [w for w in _words(text) if w not in STOPWORDS]
    for word in said[:12]:  # verbs of intent come early in a request
        wanted |= INTENT_VERBS.get(word, frozenset())
    return frozenset(wanted)


def verb_objects(text: str) -> frozenset[str]:
    """What the request's verbs of intent act on: the stems of the (at most two) content words
    right after each ("add a card to the column" -> card, column; quoted names left out)."""
    said = [w for w in _words(QUOTED.sub(" ", text)) if w not in STOPWORDS]
    found: set[str] = set()
    for k, word in enumerate(said[:12]):
        if word in INTENT_VERBS:
            found.update(stem(w) for w in said[k + 1 : k + 3] if w not in INTENT_VERBS)
    return frozenset(found)


def acted_on(path: str) -> frozenset[str]:
    """The stems of the words of a path's last literal segment: the thing an operation acts on
    (`/boards/{id}/labels` -> label)."""
    literals = [s for s in re.sub(r"\{[^}]*\}", " ", path).split("/") if s.strip()]
    return frozenset(stem(w) for w in words(literals[-1])) if literals else frozenset()


def span_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions of several spans of a flat array, in one pass: each span's start, then
    consecutive offsets (`starts` [4, 9], `lengths` [2, 3] -> [4, 5, 9, 10, 11])."""
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions: np.ndarray = np.repeat(starts, lengths) + offsets
    return positions


class TermIndex:
    """Weights of terms in documents, for cosine TF-IDF or BM25 scoring of a query."""

    def __init__(
        self, documents: Iterable[Sequence[str]], scheme: Literal["tfidf", "bm25"] = "tfidf"
    ) -> None:
        self.scheme = scheme
        self.vocabulary: dict[str, int] = {}
        vocabulary = self.vocabulary
        # one term id per occurrence, read in one pass and kept compact (a big catalog has
        # millions): the pairs below are counted in place, without copies of that size
        occurrences: array[int] = array("i")
        counts: array[int] = array("q")
        for document in documents:
            occurrences.extend(vocabulary.setdefault(term, len(vocabulary)) for term in document)
            counts.append(len(document))
        per_document = np.frombuffer(counts, dtype=np.int64)
        lengths = per_document.astype(np.float64)
        n = len(counts)
        width = max(n, 1)
        # each (term, document) pair as one number, term * n + document: in 32 bits when that
        # fits; sorted in place (by term, then document) and counted in runs
        key = np.dtype(np.int32 if len(vocabulary) * width < 2**31 else np.int64)
        pairs: np.ndarray[tuple[int], np.dtype[np.signedinteger]] = np.frombuffer(
            occurrences, dtype=np.int32
        ).astype(key)
        del occurrences
        pairs *= width
        pairs += np.repeat(np.arange(n, dtype=key), per_document)
        pairs.sort()
        first = np.empty(len(pairs), dtype=bool)
        first[:1] = True
        np.not_equal(pairs[1:], pairs[:-1], out=first[1:])
        unique = pairs[first]
        tf = np.diff(np.flatnonzero(first), append=len(pairs))
        del pairs, first
        row_index = unique // width
        cols = unique % width
        del unique
        tf_values = tf.astype(np.float64)
        del tf
        df = np.bincount(row_index, minlength=len(self.vocabulary))
        if scheme == "bm25":
            k1, b = 1.2, 0.75
            self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            avg = lengths.mean() if n and lengths.mean() > 0 else 1.0
            norm = k1 * (1 - b + b * lengths[cols] / avg)
            norm += tf_values
            weights = self.idf[row_index]
            weights *= tf_values
            weights *= k1 + 1
            weights /= norm
            weights /= k1 + 1
            del norm
        else:
            self.idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
            weights = np.log(tf_values)
            weights += 1.0
            weights *= self.idf[row_index]
            doc_norms = np.sqrt(np.bincount(cols, weights=weights**2, minlength=n))
            weights /= np.maximum(doc_norms[cols], 1e-12)
        del tf_values, row_index
        # compressed rows (CSR) as three arrays: the pairs are in (term, document) order
        # already, so the rows' bounds are the terms' document counts and each term's row is
        # a slice (no sparse library needed at start-up)
        indptr = np.zeros(len(self.vocabulary) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        self.data = weights.astype(np.float32)
        self.indices = cols
        self.indptr = indptr
        self.size = n

    def scores(self, terms: Sequence[str]) -> np.ndarray:
        """Similarity of the query to every document, roughly 0..1."""
        result = np.zeros(self.size, dtype=np.float32)
        counts: dict[int, int] = {}
        for term in terms:
            term_id = self.vocabulary.get(term)
            if term_id is not None:
                counts[term_id] = counts.get(term_id, 0) + 1
        if not counts:
            return result
        ids = np.fromiter(counts, dtype=np.int64, count=len(counts))
        if self.scheme == "bm25":
            query = self.idf[ids]
            total = query.sum()
            query = query / total if total > 0 else query
        else:
            tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            query = (1.0 + np.log(tf)) * self.idf[ids]
            query /= np.linalg.norm(query)
        # every (document, weight) pair of the query's rows, summed per document in one pass
        starts = self.indptr[ids]
        lengths = self.indptr[ids + 1] - starts
        entries = span_positions(starts, lengths)
        weights = np.repeat(query, lengths) * self.data[entries]
        summed = np.bincount(self.indices[entries], weights=weights, minlength=self.size)
        return summed.astype(np.float32)


# The texts an operation is made of; each is tokenised once per catalog.
PIECES: dict[str, Callable[[Operation], str]] = {
    "path": lambda op: " ".join(path_words(op.path)),
    "opid": lambda op: op.operation_id,
    "summary": lambda op: op.summary,
    "description": lambda op: op.description,
    "tags": lambda op: " ".join(op.tags),
    "params": lambda op: " ".join(p.name for p in op.parameters),
    "schema": lambda op: " ".join(
        op.response_schemas[:3] + [f for f in op.response_fields if "." not in f]
    ),
    "response": lambda op: " ".join(
        dict.fromkeys(f.rsplit(".", 1)[-1] for f in op.response_fields[:200])
    ),
}

# Each lexical field: its scoring scheme and the pieces it reads.
FIELDS: dict[str, tuple[Literal["tfidf", "bm25"], tuple[str, ...]]] = {
    "path": ("tfidf", ("path",)),
    "opid": ("tfidf", ("opid",)),
    "summary": ("tfidf", ("summary",)),
    "description": ("bm25", ("description",)),
    "params": ("tfidf", ("params",)),
    "schema": ("tfidf", ("schema",)),
    "response": ("bm25", ("response",)),
    "all": ("bm25", ("path", "opid", "summary", "description", "tags")),
    "short": ("tfidf", ("path", "opid", "summary")),
}


@dataclass
class LexicalScores:
    """Per-field similarity of one prompt to every operation."""

    fields: dict[str, np.ndarray]
    char: np.ndarray
    prompt_tokens: list[str]
    meaning: np.ndarray  # cosine of the prompt's and each operation's word vectors
    read_sentence: Callable[[], np.ndarray]  # ... of the sentence model's, when first wanted

    @cached_property
    def sentence(self) -> np.ndarray:
        """The cosine of the sentence model's vectors of the request as given and of each
        operation. The model reads the request on another core while the words are matched
        (about a third of a prediction's time), so this waits for it when it is not done."""
        return self.read_sentence()

    @property
    def combined(self) -> np.ndarray:
        """One number per operation to preselect candidates by."""
        return combine(self.fields["all"], self.fields["short"], self.char)


def combine(bm25_all: np.ndarray, short: np.ndarray, char: np.ndarray) -> np.ndarray:
    """The lexical evidence in one number: word matches in everything an operation says and
    in its short text, and character n-grams of the short text."""
    combined: np.ndarray = bm25_all + short + 0.5 * char
    return combined


class CatalogIndex:
    """Vectorised text of every operation of a catalog."""

    def __init__(self, operations: list[Operation]) -> None:
        self.operations = operations
        self.size = len(operations)
        self.methods = np.array([op.method for op in operations])
        self.deprecated = np.array([op.deprecated for op in operations], dtype=np.float32)
        self.short_texts = [short_text(op).lower() for op in operations]
        self.path_stems = [frozenset(stem(w) for w in path_words(op.path)) for op in operations]
        self.acted_on = [acted_on(op.path) for op in operations]
        # each field's documents are tokenised as they are indexed: holding every piece of
        # every operation at once costs more memory than tokenising a piece twice costs time
        self.fields = {
            name: TermIndex(
                ([t for part in parts for t in _tokens(PIECES[part](op))] for op in operations),
                scheme,
            )
            for name, (scheme, parts) in FIELDS.items()
        }
        self.chars = TermIndex((char_grams(text) for text in self.short_texts), "tfidf")
        from opensesame_predictor.core.encoder import encoder  # loaded once
        from opensesame_predictor.core.vectors import vectors  # numpy only; loaded once

        # single precision: every request reads them all (BLAS has no half-precision product)
        about = [meaning_text(op) for op in operations]
        self.meanings = vectors().embed_many(about)
        # ... and as the sentence model reads them, word order and all
        self.sentences = encoder().embed_many([sentence_text(op) for op in operations])
        # the words of each operation's short text, as rows of one table of word vectors
        # (half precision: a request reads only its candidates' rows), held flat: operation
        # i's rows are word_ids[word_starts[i] : word_starts[i + 1]]
        self.word_table, rows = word_vectors([short_text(op) for op in operations], np.float16)
        self.word_ids = np.concatenate([*rows, np.zeros(0, dtype=np.int64)]).astype(np.int32)
        self.word_starts = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["operations"] = []  # the catalog's: see PredictorIndex.attach
        return state

    def closeness(self, text: str) -> np.ndarray:
        """How well each operation matches a piece of a prompt, relative to the best, 0..1."""
        terms = tokens(text)
        combined = combine(
            self.fields["all"].scores(terms),
            self.fields["short"].scores(terms),
            self.chars.scores(char_grams(text)),
        )
        top = float(combined.max(initial=0.0))
        relative: np.ndarray = combined / top if top > 0 else combined
        return relative

    def lexical(self, prompt: str, request: str | None = None) -> LexicalScores:
        """The prompt's words (its values left out) against every operation; the sentence
        model reads the `request` as given, values and all, when there is one."""
        from opensesame_predictor.core.encoder import encoder
        from opensesame_predictor.core.vectors import vectors

        read = prompt if request is None else request
        # nothing said, nothing read: an empty request is near some operations, by chance
        reading = encoder().embed_soon(read) if read.strip() else None
        prompt_tokens = tokens(prompt)
        fields = {name: index.scores(prompt_tokens) for name, index in self.fields.items()}
        meaning: np.ndarray = self.meanings @ vectors().embed(prompt)
        chars = self.chars.scores(char_grams(prompt))

        def sentence() -> np.ndarray:
            if reading is None:
                return np.zeros(self.size, dtype=np.float32)
            cosines: np.ndarray = self.sentences @ reading()
            return cosines

        return LexicalScores(fields, chars, prompt_tokens, meaning, sentence)

    def soft_cover(self, prompt: str, candidates: Sequence[int] | np.ndarray) -> np.ndarray:
        """How much of each candidate's short text the prompt says, word by word and in other
        words: the mean, over the operation's words, of the closest prompt word's cosine."""
        said, _ = word_vectors([prompt])
        chosen = np.asarray(candidates, dtype=np.int64)
        cover = np.zeros(len(chosen), dtype=np.float32)
        starts = self.word_starts[chosen]
        sizes = self.word_starts[chosen + 1] - starts
        if not len(said) or not sizes.any():
            return cover
        ids = self.word_ids[span_positions(starts, sizes)]
        # each distinct word once: candidates share most of their words
        distinct, where = np.unique(ids, return_inverse=True)
        own = self.word_table[distinct].astype(np.float32)
        closest = np.clip(own @ said.T, 0.0, 1.0).max(axis=1)[where]
        spoken = sizes > 0
        firsts = (np.cumsum(sizes) - sizes)[spoken]
        cover[spoken] = np.add.reduceat(closest, firsts) / sizes[spoken]
        return cover

    def fuzzy(self, prompt: str, candidates: Sequence[int] | np.ndarray) -> np.ndarray:
        """Token-set similarity of the prompt to each candidate's short text, 0..1."""
        choices = [self.short_texts[i] for i in candidates]
        scores = process.cdist([prompt.lower()], choices, scorer=fuzz.token_set_ratio)
        similarity: np.ndarray = (scores[0] / 100.0).astype(np.float32)
        return similarity

    def path_cover(
        self, prompt_tokens: Sequence[str], candidates: Sequence[int] | np.ndarray
    ) -> np.ndarray:
        """Share of each candidate's path words that the prompt mentions."""
        present = set(prompt_tokens)
        return np.array(
            [
                len(self.path_stems[i] & present) / len(self.path_stems[i])
                if self.path_stems[i]
                else 0.0
                for i in candidates
            ],
            dtype=np.float32,
        )
