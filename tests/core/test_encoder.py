"""The sentence model: the shipped int8 graph runs on onnxruntime, reads requests of like meaning
as closer than unrelated ones, reads a bounded number of pieces, and gives a text the same vector
whatever it is read beside."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from opensesame_predictor.core import encoder as encoder_module
from opensesame_predictor.core.encoder import (
    DIMENSIONS,
    MODEL_FILE,
    OPERATION_PIECES,
    REQUEST_PIECES,
    Encoder,
    encoder,
)
from opensesame_predictor.core.features import meaning_text, sentence_text
from opensesame_predictor.core.history import HistoryState
from opensesame_predictor.core.index import PredictorIndex
from opensesame_predictor.core.models import Operation, Parameter, PredictRequest
from opensesame_predictor.core.predictor import Predictor
from support import count_reads


@pytest.fixture(scope="module")
def model() -> Encoder:
    return encoder()


def test_the_model_ships_with_its_licence_and_notice() -> None:
    data = MODEL_FILE.parent
    assert MODEL_FILE.stat().st_size < 25_000_000
    assert "Apache License" in (data / "vectors-LICENSE").read_text(encoding="utf-8")
    notice = (data / "encoder-NOTICE").read_text(encoding="utf-8")
    assert "all-MiniLM-L6-v2" in notice and "sha256" in notice and "tuned" in notice


def test_requests_of_like_meaning_are_closer(model: Encoder) -> None:
    request = model.embed("get rid of the file I uploaded yesterday")
    assert request.shape == (DIMENSIONS,)
    assert np.linalg.norm(request) == pytest.approx(1.0, abs=1e-3)
    near, far = model.embed_many(["delete a document", "weather forecast for a city"])
    assert float(request @ near) > float(request @ far) + 0.2


def test_word_order_counts(model: Encoder) -> None:
    """What static word vectors cannot tell apart: the same words, another meaning."""
    one = model.embed("transfer money from savings to checking")
    other = model.embed("transfer money from checking to savings")
    assert float(one @ other) < 0.999


def test_a_request_is_read_up_to_a_bound(model: Encoder) -> None:
    start = "find flights from Lisbon to Oslo next Friday " * 20  # beyond the bound already
    assert len(start.split()) > REQUEST_PIECES
    assert np.array_equal(model.embed(start), model.embed(start + "and book a hotel " * 200))
    assert not np.array_equal(model.embed(start, 4096), model.embed(start + "book a hotel", 4096))


def test_a_text_has_one_vector_whatever_it_is_read_with() -> None:
    texts = ["list the pets", "add a new pet to the store", "delete an order", "list the pets"]
    together = Encoder().embed_many(texts)
    alone = np.stack([Encoder().embed_many([text])[0] for text in texts])
    assert np.array_equal(together, alone)
    assert np.array_equal(together[0], together[3])


def test_many_texts_read_side_by_side_get_the_vectors_each_gets_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spec's operations are read on several threads; each text's vector is the one it has
    read alone, in its own row, and each distinct text is read once."""
    monkeypatch.setattr(encoder_module, "READERS", 3)
    texts = [
        f"list the {thing} of the account {n}" for n in range(20) for thing in ("pets", "orders")
    ]
    texts += texts[:5]  # repeated: read once
    fresh = Encoder()
    threads: set[str] = set()
    original = fresh._read

    def watched(text: str, pieces: int) -> np.ndarray:
        threads.add(threading.current_thread().name)
        return original(text, pieces)

    monkeypatch.setattr(fresh, "_read", watched)
    together = fresh.embed_many(texts)
    assert len(threads) > 1  # more than one reader took part
    alone = Encoder()
    assert np.array_equal(
        together, np.stack([alone.embed(text, OPERATION_PIECES) for text in texts])
    )


def test_a_request_read_meanwhile_gets_the_vector_read_at_once(
    model: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ranking has the request read on another core while it matches the words; the
    vector is the one `embed` gives, whether a reader thread reads it or, every reader being
    busy, the caller does when it wants it (no waiting behind other requests)."""
    monkeypatch.setattr(encoder_module, "READERS", 2)
    encoder_module._request_readers.cache_clear()
    try:
        pool = encoder_module._request_readers()
        assert pool is not None
        texts = ["list the pets", "cancel the order 7", "upload a photo of my dog"]
        threads: list[str] = []
        original = model._run

        def watched(ids: list[int]) -> np.ndarray:
            threads.append(threading.current_thread().name)
            return original(ids)

        monkeypatch.setattr(model, "_run", watched)
        busy = threading.Event()
        blockers = [pool.submit(busy.wait, 10) for _ in range(2)]
        for text in texts:  # every reader busy: read in the caller's thread
            assert np.array_equal(model.embed_soon(text)(), model.embed(text))
        assert set(threads) == {threading.current_thread().name}
        busy.set()
        for blocker in blockers:
            blocker.result()
        threads.clear()
        pending = [model.embed_soon(text) for text in texts]
        assert all(
            np.array_equal(vector(), model.embed(text))
            for vector, text in zip(pending, texts, strict=True)
        )
        assert any(name.startswith("request") for name in threads)
    finally:
        encoder_module._request_readers.cache_clear()


def test_operation_texts_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = Encoder()
    read = count_reads(monkeypatch, fresh)
    fresh.embed_many(["list the pets", "delete an order"])
    fresh.embed_many(["delete an order", "list the pets", "update a pet"])
    assert read == ["list the pets", "delete an order", "update a pet"]


def test_the_ranking_reads_the_whole_request_in_context(predictor: Predictor) -> None:
    ranked, _ = predictor.rank(PredictRequest(prompt="I no longer want the order 7, call it off"))
    by_key = {item.operation.key: item.table["sentence"][item.row] for item in ranked}
    assert by_key["DELETE /store/orders/{orderId}"] > by_key["GET /pets"]


def test_an_empty_text_is_read_without_error(model: Encoder, tmp_path: Path) -> None:
    assert model.embed("").shape == (DIMENSIONS,)
    with pytest.raises(Exception, match=r"encoder\.onnx|NO_SUCHFILE|No such file"):
        Encoder(tmp_path / "encoder.onnx")


def _operation(spec: str, method: str, path: str, summary: str) -> Operation:
    return Operation(spec=spec, method=method, path=path, operation_id="", summary=summary)


def test_an_operation_close_in_context_is_a_candidate_without_a_word_in_common() -> None:
    """Forty operations share words with the request and none means it; the loan shares none,
    and only the sentence model's reading can make it a candidate (five by the words)."""
    crowd = [
        _operation("lib", "GET", f"/shelves/{k}/library/take", f"Library shelf {k} take out")
        for k in range(40)
    ]
    loan = _operation("lib", "POST", "/loans", "Borrow a book")
    index = PredictorIndex([*crowd, loan])
    prompt = "I want to take a novel home from the library for a week"
    lexical = index.lexical(prompt)
    assert lexical.fields["all"][40] == 0.0  # no word of the request is the loan's
    closer = int((lexical.sentence > lexical.sentence[40]).sum())
    assert closer < 3  # among the few closest in context, though nearly all share its words
    candidates, _ = index.candidates(lexical, HistoryState.build([], []), 0, index.allowed(None), 5)
    assert 40 in candidates.tolist()


def test_an_empty_request_has_no_reading_and_adds_no_candidates() -> None:
    ops = [_operation("a", "GET", f"/things{k}", f"Thing {k}") for k in range(30)]
    index = PredictorIndex(ops)
    lexical = index.lexical("")
    assert not lexical.sentence.any()
    assert not index.api_sentence(lexical.sentence).any()


def test_the_api_a_request_is_about_in_context() -> None:
    pets = [
        _operation("pets", "GET", "/pets", "List the pets in the store"),
        _operation("pets", "POST", "/pets", "Add a pet to the store"),
    ]
    weather = [
        _operation("weather", "GET", "/forecast", "Forecast for a city"),
        _operation("weather", "GET", "/alerts", "Storm warnings in force"),
    ]
    index = PredictorIndex([*pets, *weather])
    behind = index.api_sentence(index.lexical("will it rain in Oslo tomorrow?").sentence)
    assert behind[2] == behind[3] == 0.0  # the weather API is the closest
    assert behind[0] == behind[1] < 0.0
    alone = PredictorIndex(weather)
    assert not alone.api_sentence(alone.lexical("will it rain?").sentence).any()


def test_the_sentence_model_reads_what_an_operation_takes() -> None:
    """Its text, then the names of its path, query and body inputs in words (headers are no
    thing a person asks by), each once, at most twelve; an operation that takes nothing is
    read as its meaning text."""
    loan = Operation(
        spec="lib",
        method="POST",
        path="/members/{memberId}/loans",
        summary="Borrow a book",
        parameters=[
            Parameter("memberId", "path"),
            Parameter("dueDate", "query"),
            Parameter("X-Request-Id", "header"),
        ],
        body_fields=["bookIsbn", "dueDate", *(f"note{k}" for k in range(20))],
    )
    text = sentence_text(loan)
    assert text.startswith(meaning_text(loan))
    said = text.removeprefix(meaning_text(loan)).strip()
    assert said.startswith("Parameters: member id due date book isbn note 0 ")
    assert "request" not in said and said.count("due date") == 1
    assert said.split().count("note") == 9  # twelve names in all
    bare = _operation("lib", "GET", "/books", "List the books")
    assert sentence_text(bare) == meaning_text(bare)
    index = PredictorIndex([loan, bare])
    assert np.allclose(index.text.sentences, encoder().embed_many([text, meaning_text(bare)]))


def test_another_model_reads_meanwhile_and_the_shipped_one_after(tmp_path: Path) -> None:
    """Training reads a fold's requests with a model not tuned on it (`model_in`): the shared
    encoder is that folder's model meanwhile, the shipped one again after; a folder without a
    model is named."""
    shipped = encoder()
    other = tmp_path / "fold"
    other.mkdir()
    for name in ("encoder.onnx", "encoder-tokenizer.json"):
        (other / name).symlink_to(MODEL_FILE.parent / name)
    with encoder_module.model_in(other):
        inside = encoder()
        assert inside is not shipped
        assert np.allclose(inside.embed("list the pets"), shipped.embed("list the pets"))
        assert encoder_module.model_digest() == encoder_module._digest(MODEL_FILE.parent)
    assert encoder() is shipped
    with (
        encoder_module.model_in(tmp_path / "absent"),
        pytest.raises(FileNotFoundError, match="absent"),
    ):
        encoder()
    with encoder_module.model_in(None):
        assert encoder() is shipped
