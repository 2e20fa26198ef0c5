"""Scores from features, and probabilities from scores.

A linear model over named features: transparent, fast (one dot product per candidate) and easy to
refit. The probability of each candidate is a softmax of its score, sharpened or flattened by the
request's temperature relative to the default one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FEATURES = (
    "word",  # TF-IDF cosine, prompt vs everything the operation says
    "char",  # character n-gram cosine, prompt vs path + operationId + summary
    "fuzzy",  # rapidfuzz token-set ratio, prompt vs path + operationId + summary
    "method_match",  # the prompt's verbs ask for this method
    "method_conflict",  # the prompt's verbs ask for another method
    "called",  # already in the history
    "deprecated",
    "missing_id",  # share of path parameters no prompt value or earlier call supplies
)

DEFAULT_WEIGHTS: dict[str, float] = {
    "word": 6.0,
    "char": 1.5,
    "fuzzy": 0.5,
    "method_match": 0.6,
    "method_conflict": -0.4,
    "called": -1.5,
    "deprecated": -0.3,
    "missing_id": -2.0,
}

REFERENCE_TEMPERATURE = 0.7  # the wire format's default: probabilities are calibrated there


@dataclass
class Ranker:
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    scale: float = 1.0  # calibration: logits = scale * score
    version: str = "hand-v1"

    def score(self, features: dict[str, np.ndarray]) -> np.ndarray:
        size = len(next(iter(features.values())))
        total = np.zeros(size, dtype=np.float64)
        for name, weight in self.weights.items():
            if name in features:
                total += weight * features[name]
        return total

    def probabilities(self, scores: np.ndarray, temperature: float) -> np.ndarray:
        """Softmax of the calibrated logits; temperature 0 puts all mass on the best score."""
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
        return normalised
