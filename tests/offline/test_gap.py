"""`offline.gap`: where the gold ranks by the words alone and by meaning alone, synthetic cases
against authored ones, read from a dump."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opensesame_predictor.core.ranker import FEATURES
from opensesame_predictor.offline import dump as dumped
from opensesame_predictor.offline.gap import gold_rank, main, rows, shares

RELEVANCE, SENTENCE = FEATURES.index("relevance"), FEATURES.index("sentence")


def case(relevance: list[float], sentence: list[float], gold: int, kind: str) -> dumped.DumpedCase:
    matrix = np.zeros((len(relevance), len(FEATURES)))
    matrix[:, RELEVANCE], matrix[:, SENTENCE] = relevance, sentence
    context = "authored" if kind.endswith(".jsonl") else "api"
    marks = np.arange(len(relevance)) == gold
    return dumped.DumpedCase(
        matrix, marks, "api", kind, context, -1 if context == "authored" else 0
    )


def test_the_gold_rank_counts_the_candidates_placed_above_the_best_gold() -> None:
    easy = case([0.9, 0.1, 0.2], [0.1, 0.5, 0.3], 0, "single")
    assert gold_rank(easy, RELEVANCE) == 1 and gold_rank(easy, SENTENCE) == 3
    two_golds = dumped.DumpedCase(easy.matrix, np.array([False, True, True]), "api", "x", "api", 0)
    assert gold_rank(two_golds, RELEVANCE) == 2  # the better of its golds counts
    none = dumped.DumpedCase(easy.matrix, np.zeros(3, dtype=bool), "api", "x", "api", 0)
    assert gold_rank(none, RELEVANCE) == 0


def test_shares_put_each_rank_in_its_bucket_and_leave_out_cases_without_gold() -> None:
    assert shares([1, 2, 3, 4, 10, 11, 50, 0]) == pytest.approx((1 / 7, 2 / 7, 2 / 7, 2 / 7))
    assert shares([0, 0]) == (0.0, 0.0, 0.0, 0.0)


def test_rows_set_synthetic_kinds_beside_authored_files(tmp_path: Path) -> None:
    far = list(np.linspace(1.0, 0.0, 12))  # the gold last of twelve by both signals
    synthetic = [case([0.9, 0.1], [0.8, 0.2], 0, "single"), case(far, far, 11, "follow")]
    written = {"people.jsonl": [case(far, far, 11, "people.jsonl")]}
    path = tmp_path / "d.npz"
    dumped.save(path, synthetic, written, {"people.jsonl": {"api"}})
    found = {name: (count, by) for name, count, by in rows(dumped.load(path))}
    assert found["synthetic single"] == (
        1,
        {s: (1.0, 0.0, 0.0, 0.0) for s in ("relevance", "sentence")},
    )
    assert found["synthetic, all"][1]["relevance"] == (0.5, 0.0, 0.0, 0.5)
    assert found["people.jsonl"][1]["sentence"] == (0.0, 0.0, 0.0, 1.0)
    assert found["authored, all"][0] == 1


def test_the_command_prints_the_table_and_names_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.npz"
    dumped.save(path, [case([0.9, 0.1], [0.8, 0.2], 0, "single")], {}, {})
    assert main([str(path)]) == 0
    printed = capsys.readouterr().out
    assert "synthetic single" in printed and "1.00 / 0.00 / 0.00 / 0.00" in printed
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a dump")
    with pytest.raises(SystemExit):
        main([str(bad)])
    assert "bad.npz: not a dump" in capsys.readouterr().err
