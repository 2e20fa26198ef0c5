"""Named features for (request, operation) pairs, computed against an index of the catalog.

The index is built once per catalog; per request the cheap lexical features are computed for all
operations at once (sparse matrix products), the rest only for the best candidates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from rapidfuzz import fuzz
from sklearn.feature_extraction.text import TfidfVectorizer

from opensesame_predictor.core.models import Operation

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[A-Za-z]+|\d+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "for",
        "by",
        "with",
        "and",
        "or",
        "is",
        "are",
        "be",
        "was",
        "were",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "me",
        "my",
        "i",
        "you",
        "your",
        "we",
        "our",
        "us",
        "they",
        "them",
        "their",
        "he",
        "she",
        "his",
        "her",
        "from",
        "at",
        "as",
        "into",
        "about",
        "which",
        "who",
        "what",
        "when",
        "where",
        "how",
        "do",
        "does",
        "did",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "please",
        "some",
        "any",
        "all",
        "there",
        "here",
        "then",
        "than",
        "just",
        "also",
        "very",
        "much",
        "many",
        "one",
        "ones",
        "get",
    ]
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light stemmer: plural and common verb endings, enough to join 'users'/'user'."""
    if len(word) <= 3:
        return word
    for suffix, replacement in (
        ("ies", "y"),
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
                return word
            return word[: -len(suffix)] + replacement
    return word


def words(text: str) -> list[str]:
    """Split identifiers and prose alike: `getUserById`, `user_id`, `/users/{id}` -> words."""
    return [w.lower() for part in _WORD.findall(text) for w in _CAMEL.split(part) if w]


def tokens(text: str) -> list[str]:
    """Words, lower-cased, stemmed, without stopwords: the unit of lexical matching."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and len(w) > 1]


def path_words(path: str) -> list[str]:
    """The literal segments of a path template, split into words (parameters left out)."""
    return words(re.sub(r"\{[^}]*\}", " ", path))


def rich_text(op: Operation) -> str:
    """Everything an operation says about itself, for the word-level match."""
    params = " ".join(p.name for p in op.parameters)
    return " ".join(
        [
            " ".join(path_words(op.path)),
            op.operation_id,
            op.summary,
            op.summary,  # the summary is the most precise text: count it twice
            op.description,
            " ".join(op.tags),
            params,
        ]
    )


def short_text(op: Operation) -> str:
    """What a person would call the operation, for character and fuzzy matching."""
    return " ".join([" ".join(path_words(op.path)), " ".join(words(op.operation_id)), op.summary])


# Verbs of a prompt -> the methods they usually mean. Weak evidence, used as one feature.
INTENT_METHODS: dict[str, frozenset[str]] = {}
for _verbs, _methods in (
    ("create add new make post register upload submit place open publish insert", "POST"),
    ("update edit change modify rename replace patch set adjust", "PUT PATCH POST"),
    ("delete remove destroy erase drop revoke unfollow unsubscribe clear", "DELETE"),
    ("list show find search fetch retrieve read view look lookup give tell count", "GET"),
):
    for _verb in _verbs.split():
        INTENT_METHODS[stem(_verb)] = frozenset(_methods.split())


def method_intent(prompt_tokens: Sequence[str]) -> frozenset[str]:
    wanted: set[str] = set()
    for token in prompt_tokens[:12]:  # verbs of intent come early in a request
        wanted |= INTENT_METHODS.get(token, frozenset())
    return frozenset(wanted)


@dataclass
class CatalogIndex:
    """Vectorised text of every operation of a catalog."""

    operations: list[Operation]

    def __post_init__(self) -> None:
        self.size = len(self.operations)
        self.methods = np.array([op.method for op in self.operations])
        self.deprecated = np.array([op.deprecated for op in self.operations], dtype=float)
        self.short_texts = [short_text(op).lower() for op in self.operations]
        self.word_vectorizer = TfidfVectorizer(
            analyzer=tokens, sublinear_tf=True, min_df=1, dtype=np.float32
        )
        self.char_vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True, dtype=np.float32
        )
        if self.size:
            self.word_matrix = self.word_vectorizer.fit_transform(
                [rich_text(op) for op in self.operations]
            ).T.tocsr()
            self.char_matrix = self.char_vectorizer.fit_transform(self.short_texts).T.tocsr()
            self.vocabulary = set(self.word_vectorizer.vocabulary_)

            self._char_analyzer = self.char_vectorizer.build_analyzer()

    def lexical(self, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of the prompt to every operation: (word, character)."""
        if not self.size or not prompt.strip():
            zeros = np.zeros(self.size, dtype=np.float32)
            return zeros, zeros
        word = _similarity(tokens(prompt), self.word_vectorizer, self.word_matrix)
        char = _similarity(
            self._char_analyzer(prompt.lower()), self.char_vectorizer, self.char_matrix
        )
        return word, char

    def fuzzy(self, prompt: str, candidates: Sequence[int] | np.ndarray) -> np.ndarray:
        """Token-set similarity of the prompt to each candidate's short text, 0..1."""
        lowered = prompt.lower()
        return np.array(
            [fuzz.token_set_ratio(lowered, self.short_texts[i]) / 100.0 for i in candidates],
            dtype=np.float32,
        )


def _similarity(terms: Sequence[str], vectorizer: TfidfVectorizer, matrix: Any) -> np.ndarray:
    """Cosine of a query to every document, as TfidfVectorizer.transform would compute it but
    without its per-call validation, which costs more than the product itself."""
    counts: dict[int, int] = {}
    vocabulary = vectorizer.vocabulary_
    for term in terms:
        column = vocabulary.get(term)
        if column is not None:
            counts[column] = counts.get(column, 0) + 1
    result = np.zeros(matrix.shape[1], dtype=np.float32)
    if not counts:
        return result
    columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
    tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
    weights = tf * vectorizer.idf_[columns]
    weights /= np.linalg.norm(weights)
    for column, weight in zip(columns, weights, strict=True):
        start, end = matrix.indptr[column], matrix.indptr[column + 1]
        result[matrix.indices[start:end]] += weight * matrix.data[start:end]
    return result
