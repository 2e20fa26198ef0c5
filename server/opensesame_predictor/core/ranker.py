"""Scores from features, and probabilities from scores.

A linear model over named features: transparent, fast (one dot product per candidate) and easy to
refit. The probability of each candidate is a softmax of its score, sharpened or flattened by the
request's temperature relative to the default one; the top candidate's then goes through a
fitted calibration map, which also reads how close in meaning the request is to that candidate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from opensesame_predictor.core.history import FLOW

log = logging.getLogger(__name__)

# Evidence from the history and the catalog that counts again in proportion to how well the
# words back the candidate (its relevance or its meaning, whichever is higher): how far such
# evidence may lift a call depends on the words. What was called already and what is missing
# are no evidence for a call, and do not count again.
BACKED = (
    *(name for name in FLOW if name not in ("called", "called_last")),
    "yields_needed",
    "finds_needed",
    "search_for_name",
    "makes_new",
    "repeat_listed",
    "same_api",
    "fills_path",
)

# The features of the linear model, in named groups (`train --drop GROUP` leaves one out).
GROUPS: dict[str, tuple[str, ...]] = {
    "lexical": (
        "all",  # BM25 over path, operationId, summary, description and tags
        "short",  # TF-IDF cosine over path, operationId and summary
        "path",
        "opid",
        "summary",
        "description",
        "params",
        "schema",
        "response",  # BM25 over the response's field names
        "char",  # character n-grams of the short text
        "fuzzy",  # rapidfuzz token-set ratio of the short text
        "path_cover",  # share of the path's words the prompt mentions
        "relevance",  # the combined lexical score relative to the best candidate's, 0..1
    ),
    # what the words mean: static word vectors of the prompt and of the operation, as a whole and
    # word by word; and the sentence model's vectors of both, read in context
    "meaning": ("semantic", "semantic_relative", "soft_cover", "sentence"),
    # ... and what the verbs act on: the thing the path ends in ("add a card" -> `POST /cards`)
    "intent": ("method_match", "method_conflict", "deprecated", "acts_on"),
    "history": FLOW,  # id flow, links, CRUD, same resource, repeats: history.structure_table
    # the prompt holds values of the kinds the operation's path parameters take
    "values": ("fills_path",),
    "missing_ids": (
        "missing_id",  # share of path ids that neither the prompt nor an earlier call supplies
        "missing_field",  # ... of ids that required query or body fields take
        "yields_needed",  # yields an id that a likely goal needs and nobody supplied
        "finds_needed",  # ... and its path names that thing: where one looks it up
    ),
    "lookup_by_name": ("search_for_name",),  # the prompt names something without its id
    # makes a new thing the prompt asks for ("a new playlist"); makes a new one of what the
    # request points back at ("borrow this book" after reading one: not a new book)
    "making": ("makes_new", "makes_referred"),
    # matches the first step not yet done of a request of several; and the whole request's
    # relevance there, which may count for less than the step's
    "order": ("in_focus", "relevance_of_steps"),
    # called before, and the prompt lists more values than calls; the last call, and a message
    # of one step asks for the same again
    "repeats": ("repeat_listed", "repeat_asked"),
    # which API the request is about, when several are loaded: its words against each API's,
    # and the API of the last call
    "api": ("api_match", "api_best", "same_api", "api_sentence"),
    # structure that the request's words back: a flow into an operation the prompt describes
    "evidence": ("crud_relevant", "search_needed"),
    "backed": tuple(f"{name}_backed" for name in BACKED),
}
FEATURES = tuple(name for group in GROUPS.values() for name in group)

DEFAULT_WEIGHTS: dict[str, float] = {
    "all": 2.0,
    "short": 2.0,
    "path": 1.0,
    "opid": 0.5,
    "summary": 1.0,
    "description": 0.5,
    "params": 0.3,
    "schema": 0.5,
    "char": 1.0,
    "fuzzy": 0.5,
    "path_cover": 1.0,
    "method_match": 0.5,
    "method_conflict": -0.5,
    "deprecated": -0.3,
    "missing_id": -2.0,
    "consumes_last": 1.5,
    "consumes_written": 1.0,
    "consumes_named": 1.0,
    "consumes_earlier": 0.5,
    "linked": 1.0,
    "crud_next": 0.5,
    "same_resource": 0.3,
    "called": -1.5,
    "called_last": -1.0,
    "yields_needed": 2.0,
    "response": 0.3,
    "search_for_name": 1.0,
    "makes_new": 1.0,
    "makes_referred": -1.0,
    "in_focus": 1.0,
    "relevance_of_steps": 0.0,
    "relevance": 0.0,
    "fills_path": 0.0,
    "semantic": 0.0,
    "semantic_relative": 0.0,
    "finds_needed": 0.0,
    "api_match": 0.0,
    "api_best": 0.0,
    "same_api": 0.0,
    "api_sentence": 0.0,
    "repeat_listed": 0.0,
    "repeat_asked": 0.0,
    "crud_relevant": 0.0,
    "search_needed": 0.0,
    "missing_field": -1.0,
    "soft_cover": 0.0,
    "sentence": 0.0,
    "acts_on": 0.0,
    **{f"{name}_backed": 0.0 for name in BACKED},
}

REFERENCE_TEMPERATURE = 0.7  # the wire format's default: probabilities are calibrated there


WEIGHTS_FILE = Path(__file__).resolve().parent.parent / "data" / "weights.json"


@dataclass
class Ranker:
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    scale: float = 1.0  # calibration: logits = scale * score
    version: str = "hand-v1"
    # calibration of the top candidate's probability p: sigmoid(a * logit(p) + b + c * closeness),
    # closeness the sentence model's cosine of the request and that candidate. Requests from APIs
    # no fit saw are too sure when sure and too unsure when unsure under one scale; and a softmax
    # cannot see how well the best candidate matches at all, only how much better than the rest.
    top_map: tuple[float, float, float] = (1.0, 0.0, 0.0)

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> Ranker:
        """The shipped weights (regenerated by `opensesame-predictor train`), else hand-set.
        A file that is there but unusable says why: a build whose weights lack a new feature
        would otherwise rank by the hand-set weights without a word."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as error:
            log.warning("%s: unreadable weights (%s); ranking by the hand-set weights", path, error)
            return cls()
        try:
            if not isinstance(data, dict) or not isinstance(data.get("weights"), dict):
                raise TypeError('no "weights" object')
            missing = [name for name in FEATURES if name not in data["weights"]]
            if missing:
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                raise KeyError(f"no weight for {', '.join(missing[:3])}{more}")
            weights = {name: float(data["weights"][name]) for name in FEATURES}
            a, b, *c = (float(v) for v in data.get("top_map", [1.0, 0.0]))
            mapped = (a, b, c[0] if c else 0.0)  # files from before the closeness: c = 0
            return cls(weights, float(data["scale"]), str(data["version"]), mapped)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("%s: unusable weights (%s); ranking by the hand-set weights", path, error)
            return cls()

    def save(self, path: Path, meta: dict[str, object]) -> None:
        document = {
            "version": self.version,
            "scale": round(self.scale, 6),
            "top_map": [round(v, 6) for v in self.top_map],
            "weights": {name: round(self.weights.get(name, 0.0), 6) for name in FEATURES},
            **meta,
        }
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    def score(self, features: dict[str, np.ndarray]) -> np.ndarray:
        size = len(next(iter(features.values())))
        total = np.zeros(size, dtype=np.float64)
        for name, weight in self.weights.items():
            if name in features:
                total += weight * features[name]
        return total

    def probabilities(
        self, scores: np.ndarray, temperature: float, closeness: float = 0.0
    ) -> np.ndarray:
        """Softmax of the calibrated logits; temperature 0 puts all mass on the best score.
        `closeness`: the sentence model's cosine of the request and the best-scored candidate."""
        if scores.size == 0:
            return scores
        if temperature <= 1e-6:
            peaked = np.zeros_like(scores)
            peaked[int(np.argmax(scores))] = 1.0
            return peaked
        logits = self.scale * scores * (REFERENCE_TEMPERATURE / temperature)
        logits -= logits.max()
        weights = np.exp(logits)
        normalised: np.ndarray = weights / weights.sum()
        return self._mapped(normalised, closeness)

    def _mapped(self, probabilities: np.ndarray, closeness: float) -> np.ndarray:
        """The top probability through the calibration map, the others scaled to fill the rest."""
        a, b, c = self.top_map
        if (a, b, c) == (1.0, 0.0, 0.0) or probabilities.size < 2:
            return probabilities
        best = int(np.argmax(probabilities))
        p = float(np.clip(probabilities[best], 1e-9, 1 - 1e-9))
        q = 1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b + c * closeness)))
        # never below the runner-up's share after the rescaling: the order stays the scores'
        second = float(np.partition(probabilities, -2)[-2])
        q = max(q, second / (1.0 - p + second))
        mapped: np.ndarray = probabilities * ((1.0 - q) / (1.0 - p))
        mapped[best] = q
        return mapped


Group = tuple[np.ndarray, int]  # one case: features x candidates, and where the gold one is
# one case as scored: its candidates' scores, where the gold one is (-1: none is a candidate),
# and the closeness of the request to the best-scored candidate (`Ranker.probabilities`)
Scored = tuple[np.ndarray, int, float]


def fit(
    groups: Sequence[Group], c: float = 1.0, case_weights: Sequence[float] | None = None
) -> np.ndarray:
    """Weights that maximise the likelihood of each case's gold candidate under the softmax the
    predictor uses (a conditional logit), with an L2 penalty of 1 / (2c). `case_weights`: how
    much each case's likelihood counts (1 each by default)."""
    from scipy.optimize import minimize  # training only: keep it off start-up

    matrix = np.vstack([m for m, _ in groups])
    sizes = np.array([len(m) for m, _ in groups])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    gold_rows = starts + np.array([g for _, g in groups])
    segment = np.repeat(np.arange(len(groups)), sizes)
    counts = np.ones(len(groups)) if case_weights is None else np.asarray(case_weights, float)
    penalty = 1.0 / (2.0 * c)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        scores = matrix @ w
        top = np.maximum.reduceat(scores, starts)
        exp = np.exp(scores - top[segment])
        totals = np.add.reduceat(exp, starts)
        nll = float(counts @ (np.log(totals) + top - scores[gold_rows]))
        probabilities = exp / totals[segment] * counts[segment]
        gradient = matrix.T @ probabilities - counts @ matrix[gold_rows]
        return nll + penalty * float(w @ w), gradient + 2.0 * penalty * w

    result = minimize(loss, np.zeros(matrix.shape[1]), jac=True, method="L-BFGS-B")
    coef: np.ndarray = result.x
    return coef


def calibrate_top(
    cases: Sequence[Scored], weights: Sequence[float], scale: float
) -> tuple[float, float, float]:
    """The map (a, b, c) of the top probability p to sigmoid(a * logit(p) + b + c * closeness)
    that maximises the (weighted) likelihood of whether the top candidate is the gold one
    (Platt scaling, with the closeness as a second input)."""
    from scipy.optimize import minimize  # training only: keep it off start-up

    if not cases:
        return 1.0, 0.0, 0.0
    ranker = Ranker({}, scale)
    tops = np.array([ranker.probabilities(s, REFERENCE_TEMPERATURE).max() for s, _, _ in cases])
    logit = np.log(np.clip(tops, 1e-9, 1 - 1e-9) / np.clip(1 - tops, 1e-9, 1))
    closeness = np.array([x for _, _, x in cases], dtype=np.float64)
    right = np.array([float(g >= 0 and s[g] >= s.max()) for s, g, _ in cases])
    counts = np.asarray(weights, dtype=np.float64)

    def loss(abc: np.ndarray) -> tuple[float, np.ndarray]:
        z = abc[0] * logit + abc[1] + abc[2] * closeness
        q = 1.0 / (1.0 + np.exp(-z))
        nll = -(counts * (right * np.log(q + 1e-12) + (1 - right) * np.log(1 - q + 1e-12))).sum()
        residual = counts * (q - right)
        gradient = [(residual * logit).sum(), residual.sum(), (residual * closeness).sum()]
        return float(nll), np.array(gradient)

    found = minimize(loss, np.array([1.0, 0.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(found.x[0]), float(found.x[1]), float(found.x[2])


def calibrate(
    groups: Sequence[tuple[np.ndarray, int]], weights: Sequence[float] | None = None
) -> float:
    """The scale s minimising the (weighted) negative log-likelihood of gold under
    softmax(s * score): the best of a coarse logarithmic grid (5 % steps), then of a fine one
    around it."""
    if not groups:
        return 1.0
    counts = np.ones(len(groups)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(counts) != len(groups):
        raise ValueError(f"{len(groups)} groups but {len(counts)} weights")
    # one padded table (-inf past a group's end), so that a scale is one vectorised pass
    scores = np.full((len(groups), max(len(s) for s, _ in groups)), -np.inf)
    for row, (group_scores, _) in enumerate(groups):
        scores[row, : len(group_scores)] = group_scores
    golds = scores[np.arange(len(groups)), [gold for _, gold in groups]]
    tops = scores.max(axis=1)

    def loss(scale: float) -> float:
        spread = np.log(np.exp(scale * (scores - tops[:, None])).sum(axis=1))
        return float(counts @ (scale * (tops - golds) + spread))

    coarse = np.exp(np.linspace(np.log(0.05), np.log(20.0), 120))
    best = float(min(coarse, key=loss))
    step = float(coarse[1] / coarse[0])
    return float(min(np.linspace(best / step, best * step, 41), key=loss))
