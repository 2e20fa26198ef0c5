"""Calibration, temperature, abstention and the reasons given for each prediction."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.features import words
from opensesame_predictor.core.models import HistoryEvent, PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.core.ranker import BACKED, WEIGHTS_FILE, Ranker, calibrate, calibrate_top
from opensesame_predictor.offline.evaluate import expected_calibration_error
from opensesame_predictor.service import Service
from support import json_ok

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def predictor_for(*specs: Path) -> Predictor:
    return Service.from_settings(Settings(specs=[str(s) for s in specs])).predictor


@pytest.fixture(scope="module")
def petstore() -> Predictor:
    return predictor_for(FIXTURES / "petstore-3.0.yaml")


# --- calibration ------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    result: np.ndarray = shifted / shifted.sum()
    return result


@pytest.mark.parametrize("true_scale", [0.5, 2.5, 6.0])
def testcalibrate_recovers_a_known_scale(true_scale: float) -> None:
    rng = np.random.default_rng(7)
    groups = []
    for _ in range(600):
        scores = rng.normal(size=8)
        gold = int(rng.choice(8, p=softmax(true_scale * scores)))
        groups.append((scores, gold))
    fitted = calibrate(groups)
    assert abs(fitted - true_scale) / true_scale < 0.25


def test_calibration_finds_the_likelihood_optimum_between_grid_points() -> None:
    rng = np.random.default_rng(3)
    groups = []
    for _ in range(400):
        scores = rng.normal(size=6)
        groups.append((scores, int(rng.choice(6, p=softmax(1.25 * scores)))))

    def loss(scale: float) -> float:
        return -sum(float(np.log(softmax(scale * s)[gold])) for s, gold in groups)

    optimum = min(np.linspace(1.0, 2.0, 1001), key=loss)  # by brute force, 0.1 % apart
    assert abs(calibrate(groups) - optimum) / optimum < 0.005  # the coarse grid is 5 % apart


def test_probabilities_sum_to_one_and_follow_the_scores() -> None:
    ranker = Ranker()
    scores = np.array([2.0, 0.5, 1.0, -1.0])
    probabilities = ranker.probabilities(scores, 0.7)
    assert probabilities.sum() == pytest.approx(1.0)
    assert list(np.argsort(-probabilities)) == list(np.argsort(-scores))
    assert ranker.probabilities(np.array([]), 0.7).size == 0


@pytest.mark.parametrize("top_map", [(0.5, 0.4, 0.0), (1.6, -0.3, 0.0), (0.8, -0.5, 1.2)])
def test_the_top_map_moves_only_the_confidence(top_map: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        scores = rng.normal(scale=2.0, size=6)
        closeness = float(rng.uniform(0.0, 0.9))
        plain = Ranker(scale=1.0).probabilities(scores, 0.7)
        mapped = Ranker(scale=1.0, top_map=top_map).probabilities(scores, 0.7, closeness)
        assert mapped.sum() == pytest.approx(1.0)
        assert np.all(np.diff(mapped[np.argsort(-scores)]) <= 1e-12)  # the scores' order
        others = np.argsort(-scores)[1:]
        assert mapped[others] / mapped[others].sum() == pytest.approx(
            plain[others] / plain[others].sum()
        )


def test_the_closer_the_best_candidate_in_meaning_the_surer_under_a_positive_c() -> None:
    scores = np.array([2.0, 1.2, 0.3, -0.5])
    ranker = Ranker(scale=1.0, top_map=(0.8, -0.5, 1.2))
    tops = [ranker.probabilities(scores, 0.7, x).max() for x in (0.1, 0.4, 0.7)]
    assert tops == sorted(tops) and len(set(tops)) == 3
    # without a closeness term the map ignores it
    flat = Ranker(scale=1.0, top_map=(0.8, -0.5, 0.0))
    assert flat.probabilities(scores, 0.7, 0.1) == pytest.approx(
        flat.probabilities(scores, 0.7, 0.7)
    )


@pytest.mark.parametrize("c", [0.0, 1.5])
def test_calibrate_top_recovers_a_known_map(c: float) -> None:
    """Cases whose top candidate is right with probability sigmoid(0.6 logit p + 0.5 + c x),
    x the closeness of the request to it."""
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(4000):
        scores = rng.normal(scale=1.5, size=6)
        p = float(softmax(scores).max())
        x = float(rng.uniform(-0.5, 1.0))
        right = rng.random() < 1 / (1 + np.exp(-(0.6 * np.log(p / (1 - p)) + 0.5 + c * x)))
        best = int(np.argmax(scores))
        cases.append((scores, best if right else int(np.argmin(scores)), x))
    a, b, fitted_c = calibrate_top(cases, [1.0] * len(cases), scale=1.0)
    assert a == pytest.approx(0.6, abs=0.12)
    assert b == pytest.approx(0.5, abs=0.12)
    assert fitted_c == pytest.approx(c, abs=0.25)


def test_the_predictor_passes_the_best_candidates_closeness_to_the_map(petstore: Predictor) -> None:
    """The same scores under maps that differ only in c: the confidence moves the way the
    best candidate's sentence cosine says (it is positive for a request that says its call)."""
    request = {"prompt": "upload a photo of my pet", "max_predictions": 3}
    shipped = petstore.ranker
    tops = []
    try:
        for c in (-2.0, 0.0, 2.0):
            petstore.ranker = replace(shipped, top_map=(0.8, 0.0, c))
            tops.append(petstore.predict(request).predictions[0].confidence)
    finally:
        petstore.ranker = shipped
    assert tops[0] < tops[1] < tops[2]


def test_weights_from_before_the_closeness_load_with_no_closeness_term(tmp_path: Path) -> None:
    shipped = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    older = tmp_path / "weights.json"
    older.write_text(json.dumps({**shipped, "top_map": [0.8, 0.1]}), encoding="utf-8")
    assert Ranker.load(older).top_map == (0.8, 0.1, 0.0)
    assert Ranker.load().top_map[2] != 0.0  # the shipped map was fitted with the closeness


def test_temperature_zero_is_one_hot() -> None:
    probabilities = Ranker().probabilities(np.array([0.2, 3.0, 1.0]), 0.0)
    assert probabilities.tolist() == [0.0, 1.0, 0.0]


def entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_higher_temperature_flattens() -> None:
    ranker = Ranker()
    scores = np.array([2.0, 1.5, 0.3, -0.4, 1.0])
    entropies = [entropy(ranker.probabilities(scores, t)) for t in (0.2, 0.7, 1.2, 2.0)]
    assert entropies == sorted(entropies)
    assert len(set(entropies)) == len(entropies)
    assert entropies[-1] < np.log(len(scores))


def test_scale_sharpens_like_a_lower_temperature() -> None:
    scores = np.array([1.0, 0.0, -1.0])
    sharp = Ranker(scale=2.0).probabilities(scores, 0.7)
    assert sharp == pytest.approx(Ranker(scale=1.0).probabilities(scores, 0.35))


def test_temperature_reaches_the_request(petstore: Predictor) -> None:
    request = {"prompt": "upload a photo of my pet", "max_predictions": 5}
    cold = petstore.predict({**request, "temperature": 0.0})
    warm = petstore.predict({**request, "temperature": 1.5})
    assert cold.confidence_scores[0] == 1.0
    assert warm.confidence_scores[0] < 1.0
    assert [p.api_call for p in cold.predictions] == [p.api_call for p in warm.predictions]


def test_ece_is_low_when_confidence_equals_hit_rate() -> None:
    confidences = [0.8] * 100 + [0.3] * 50
    hits = [True] * 80 + [False] * 20 + [True] * 15 + [False] * 35
    assert expected_calibration_error(confidences, hits) == pytest.approx(0.0, abs=1e-9)


def test_ece_is_high_when_overconfident() -> None:
    assert expected_calibration_error([0.9] * 10, [True] * 5 + [False] * 5) == pytest.approx(0.4)
    assert expected_calibration_error([], []) == 0.0


# --- abstention --------------------------------------------------------------------------------


def test_abstains_on_an_unrelated_prompt(petstore: Predictor) -> None:
    result = petstore.predict({"prompt": "bake a chocolate cake with cinnamon"})
    assert result.metadata.abstain is True


def test_does_not_abstain_on_a_related_prompt(petstore: Predictor) -> None:
    result = petstore.predict({"prompt": "upload a photo of my pet"})
    assert result.metadata.abstain is False
    assert result.predictions[0].api_call == "POST /pets/{petId}/photos"


def test_history_is_enough_not_to_abstain(petstore: Predictor) -> None:
    result = petstore.predict({"prompt": "bake a chocolate cake", "history": ["POST /pets"]})
    assert result.metadata.abstain is False


# --- reasons -------------------------------------------------------------------------------------

PROMPTS: list[tuple[str, list[str]]] = [
    ("upload a photo of my pet", []),
    ("upload a photo of the pet", ["POST /pets"]),
    ("show the pets of Ana Ruiz", []),
    ("delete order 42", []),
    ("", ["GET /pets"]),
    ("bake a chocolate cake with cinnamon", []),
]


@pytest.mark.parametrize(("prompt", "history"), PROMPTS)
def test_every_prediction_has_one_to_three_reasons(
    petstore: Predictor, prompt: str, history: list[str]
) -> None:
    result = petstore.predict({"prompt": prompt, "history": history, "max_predictions": 5})
    assert result.predictions
    for prediction in result.predictions:
        assert 1 <= len(prediction.reasons) <= 3, prediction
        assert all(reason.strip() for reason in prediction.reasons)


def test_low_ranked_predictions_also_have_a_reason(petstore: Predictor) -> None:
    result = petstore.predict({"prompt": "delete order 42", "max_predictions": 20})
    assert all(prediction.reasons for prediction in result.predictions)


def quoted_words(reason: str) -> list[str]:
    return re.findall(r"'([^']+)'", reason)


def write_movies(directory: Path) -> Path:
    def ok(properties: dict[str, Any]) -> dict[str, Any]:
        schema = {"type": "object", "properties": properties}
        return json_ok(schema)

    movie = {"type": "object", "properties": {"id": {"type": "integer"}, "title": {}}}
    movies = {"results": {"type": "array", "items": movie}}
    movie_id = {"name": "movie_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    body = {"movie_ids": {"type": "array", "items": {"type": "integer"}}}
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Movies", "version": "1"},
        "paths": {
            "/movies": {"get": {"summary": "List movies", "responses": ok(movies)}},
            "/movies/{movie_id}": {
                "get": {
                    "summary": "Get the details of a movie",
                    "parameters": [movie_id],
                    "responses": ok({"id": {"type": "integer"}, "title": {}}),
                }
            },
            "/movies/{movie_id}/reviews": {
                "get": {
                    "summary": "Reviews of a movie",
                    "parameters": [movie_id],
                    "responses": ok({"results": {"type": "array", "items": movie}}),
                }
            },
            "/watchlist": {
                "post": {
                    "summary": "Add to the watchlist",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"type": "object", "properties": body}}
                        }
                    },
                    "responses": ok({}),
                }
            },
        },
    }
    path = directory / "movies.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("prompt", "history"),
    [
        ("show the reviews of the movies", []),
        ("reviews of movie 7", []),
        ("details of the movies", []),
    ],
)
def test_reasons_quote_the_prompt_words_not_stems(
    tmp_path: Path, prompt: str, history: list[str]
) -> None:
    predictor = predictor_for(write_movies(tmp_path))
    result = predictor.predict({"prompt": prompt, "history": history, "max_predictions": 10})
    own = set(words(prompt))
    for prediction in result.predictions:
        text = " ".join(prediction.reasons)
        assert "movi " not in f"{text} " and "movi'" not in text, prediction.reasons
        for reason in prediction.reasons:
            if " match" in reason:
                quoted = quoted_words(reason.split(" match")[0])
                assert quoted and set(quoted) <= own, reason


def test_reason_for_a_body_id_names_the_field_not_a_stem(tmp_path: Path) -> None:
    predictor = predictor_for(write_movies(tmp_path))
    result = predictor.predict(
        {"prompt": "add the movies to my watchlist", "history": ["GET /movies"]}
    )
    watchlist = next(p for p in result.predictions if p.api_call == "POST /watchlist")
    follows = [r for r in watchlist.reasons if r.startswith("follows GET /movies")]
    assert follows
    assert not re.search(r"\bmovi\b", follows[0]), follows[0]


def test_reason_says_what_call_it_follows(petstore: Predictor) -> None:
    result = petstore.predict({"prompt": "upload a photo of the pet", "history": ["POST /pets"]})
    top = result.predictions[0]
    assert top.api_call == "POST /pets/{petId}/photos"
    assert any("follows POST /pets" in reason for reason in top.reasons), top.reasons
    assert any("petId" in reason for reason in top.reasons)


def test_caution_when_an_id_is_missing(petstore: Predictor) -> None:
    result = petstore.predict({"prompt": "upload a photo of my pet", "max_predictions": 10})
    upload = next(p for p in result.predictions if p.api_call == "POST /pets/{petId}/photos")
    assert any("needs an id" in reason for reason in upload.reasons)
    listing = next(p for p in result.predictions if p.api_call == "GET /pets")
    assert any("yields the petId" in reason for reason in listing.reasons), listing.reasons
    # 'my pet' exists already: making a new one is no way to find it
    create = next(p for p in result.predictions if p.api_call == "POST /pets")
    assert not any("yields the petId" in reason for reason in create.reasons), create.reasons


def test_called_operation_says_so(petstore: Predictor) -> None:
    result = petstore.predict(
        {"prompt": "show my account", "history": ["GET /users/me"], "max_predictions": 20}
    )
    me = next(p for p in result.predictions if p.api_call == "GET /users/me")
    assert "already called earlier" in me.reasons


# --- which API a session works in -----------------------------------------------------------


def write_reporting_api(directory: Path, title: str, own_path: str) -> Path:
    """An API with a list of reports (the same words in both) and one operation of its own."""
    spec = {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1"},
        "paths": {
            "/reports": {"get": {"summary": "List reports", "responses": json_ok({})}},
            own_path: {"get": {"summary": f"Get the {title} status", "responses": json_ok({})}},
        },
    }
    path = directory / f"{title.lower()}.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("last_call", "expected_spec"), [("GET /alpha", "alpha"), ("GET /beta", "beta")]
)
def test_the_api_of_the_last_call_wins_a_tie_between_apis(
    tmp_path: Path, last_call: str, expected_spec: str
) -> None:
    predictor = predictor_for(
        write_reporting_api(tmp_path, "Alpha", "/alpha"),
        write_reporting_api(tmp_path, "Beta", "/beta"),
    )
    result = predictor.predict({"prompt": "list the reports", "history": [last_call]})
    top = result.predictions[0]
    assert top.api_call == "GET /reports"
    assert top.spec == expected_spec


def test_same_api_is_zero_without_history_or_with_one_api(tmp_path: Path) -> None:
    alpha = write_reporting_api(tmp_path, "Alpha", "/alpha")
    both = predictor_for(alpha, write_reporting_api(tmp_path, "Beta", "/beta"))

    ranked, _ = both.rank(PredictRequest(prompt="list the reports"))
    assert not ranked[0].table["same_api"].any()
    ranked, _ = both.rank(
        PredictRequest(prompt="list the reports", history=[HistoryEvent(api_call="GET /beta")])
    )
    same = {item.operation.uid: item.table["same_api"][item.row] for item in ranked}
    assert {uid for uid, value in same.items() if value == 1.0} == {
        uid for uid in same if uid.startswith("beta:")
    }
    alone = predictor_for(alpha)
    ranked, _ = alone.rank(
        PredictRequest(prompt="list the reports", history=[HistoryEvent(api_call="GET /alpha")])
    )
    assert not ranked[0].table["same_api"].any()


# --- meaning word by word, and structure backed by the words ----------------------------------


def test_soft_cover_counts_an_operations_words_said_in_other_words(petstore: Predictor) -> None:
    ranked, _ = petstore.rank(PredictRequest(prompt="send a picture of my dog"))
    cover = {item.operation.key: float(item.table["soft_cover"][item.row]) for item in ranked}
    assert all(0.0 <= value <= 1.0 for value in cover.values())
    photo = cover["POST /pets/{petId}/photos"]  # 'Upload a pet photo': picture ~ photo, dog ~ pet
    assert photo > cover["POST /auth/login"] + 0.1
    ranked, _ = petstore.rank(
        PredictRequest(prompt="??? !!!", history=[HistoryEvent(api_call="GET /pets")])
    )
    assert not ranked[0].table["soft_cover"].any()  # no words, nothing covered


def test_backed_structure_is_the_structure_times_the_words_backing(petstore: Predictor) -> None:
    ranked, _ = petstore.rank(
        PredictRequest(
            prompt="upload a photo of the pet", history=[HistoryEvent(api_call="POST /pets")]
        )
    )
    table = ranked[0].table
    backing = np.maximum(table["relevance"], table["semantic_relative"])
    assert backing.min() >= 0.0 and backing.max() == pytest.approx(1.0)
    for name in BACKED:
        assert table[f"{name}_backed"] == pytest.approx(table[name] * backing), name
    photo = next(item for item in ranked if item.operation.key == "POST /pets/{petId}/photos")
    fed = max(table[f"{name}_backed"][photo.row] for name in ("consumes_last", "consumes_written"))
    assert fed > 0.5  # the call asked for, fed by the last call: backed by the words
