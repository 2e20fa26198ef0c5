"""Static word vectors: the shipped table loads with numpy alone, splits words as WordPiece
does, and puts words of like meaning closer than unrelated ones."""

from __future__ import annotations

import numpy as np
import pytest

from opensesame_predictor.core.vectors import VECTORS_FILE, Vectors, vectors


@pytest.fixture(scope="module")
def table() -> Vectors:
    return vectors()


def test_the_table_ships_with_its_licence_and_notice() -> None:
    data = VECTORS_FILE.parent
    assert VECTORS_FILE.stat().st_size < 10_000_000
    assert "Apache License" in (data / "vectors-LICENSE").read_text(encoding="utf-8")
    notice = (data / "vectors-NOTICE").read_text(encoding="utf-8")
    assert "all-MiniLM-L6-v2" in notice and "sha256" in notice


def test_words_split_into_pieces_longest_first(table: Vectors) -> None:
    assert len(table.pieces("image")) == 1
    pieces = table.pieces("axolotls")
    assert len(pieces) > 1
    rebuilt = "".join(
        piece.removeprefix("##")
        for i in pieces
        for piece, index in table.index.items()
        if index == i
    )
    assert rebuilt == "axolotls"


def test_texts_of_like_meaning_are_closer(table: Vectors) -> None:
    picture = table.embed("show me a picture of a cat")
    image = table.embed("get an image of a kitten")
    refund = table.embed("refund the payment")
    assert float(picture @ image) > float(picture @ refund) + 0.2
    assert float(np.linalg.norm(picture)) == pytest.approx(1.0, abs=1e-5)


def test_text_without_known_words_has_no_direction(table: Vectors) -> None:
    assert not table.embed("").any()
    assert not table.embed("!!! ??").any()
    assert not table.embed("x" * 500).any()  # no meaning in a run of one letter


def test_neighbours_are_other_words_of_like_meaning(table: Vectors) -> None:
    found = table.neighbours("picture")
    assert found and {"photo", "image"} & set(found)
    assert not any(word.startswith("pictur") for word in found)
    assert table.neighbours("zzqx") == []
