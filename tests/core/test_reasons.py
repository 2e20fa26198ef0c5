"""Reasons name what pushed a prediction up: the request's words (literal or in meaning) and
the history's evidence, with its share backed by the words."""

from __future__ import annotations

from opensesame_predictor.core.models import Operation
from opensesame_predictor.core.params import PromptValues
from opensesame_predictor.core.reasons import WORDS, explain

PHOTO = Operation(
    spec="pets", method="POST", path="/pets/{petId}/photos", summary="Upload a pet photo"
)


def test_the_words_reason_counts_what_the_words_mean_as_well() -> None:
    weights = {name: 1.0 for name in WORDS}
    meaning_only = {"semantic_relative": 0.9, "soft_cover": 0.8}  # no literal match scored
    reasons = explain(PHOTO, meaning_only, {}, weights, "upload a photo", PromptValues())
    assert reasons[0] == "'upload', 'photo' match 'Upload a pet photo'"
    silent = explain(PHOTO, {}, {}, weights, "upload a photo", PromptValues())
    assert not any("match" in reason for reason in silent)


def test_evidence_counts_with_its_share_backed_by_the_words() -> None:
    notes = {"after": "POST /pets", "fed": "petId"}
    features = {"consumes_written": 1.0, "consumes_written_backed": 0.6}
    backed = {"consumes_written": -0.2, "consumes_written_backed": 1.0}  # -0.2 + 0.6 > 0
    reasons = explain(PHOTO, features, notes, backed, "do it", PromptValues())
    assert "follows POST /pets, which yields petId" in reasons
    unbacked = {"consumes_written": -0.2, "consumes_written_backed": 0.0}
    reasons = explain(PHOTO, features, notes, unbacked, "do it", PromptValues())
    assert not any("follows" in reason for reason in reasons)


def test_what_the_verb_acts_on_is_a_reason() -> None:
    features = {"acts_on": 1.0}
    reasons = explain(PHOTO, features, {}, {"acts_on": 0.7}, "upload photos now", PromptValues())
    assert "its path ends in the 'photos' the request acts on" in reasons
    reasons = explain(PHOTO, features, {}, {"acts_on": 0.7}, "show the pet", PromptValues())
    assert not any("acts on" in reason for reason in reasons)  # the path ends in photos
