"""`offline.refit`: a dump of `train --dump` refitted scores the authored files as `train` did,
and authored files ranked later into a dump of their own are scored beside them, their APIs
left out of the same refit; a refit that learns from authored files scores each by a fit that
never learned from its APIs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from opensesame_predictor.core.ranker import fit
from opensesame_predictor.offline import dump as dumped
from opensesame_predictor.offline.refit import main, rank, ranks, refitted, score
from opensesame_predictor.offline.train import learnable, load_specs, train

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SPECS = [
    str(FIXTURES / name)
    for name in ("petstore-3.0.yaml", "tasks-3.1.json", "library-swagger-2.0.json")
]
PETS = [
    {"prompt": "show me every animal the shop has", "gold": ["GET /pets"]},
    {"prompt": "put the parrot 4 up for sale", "gold": ["POST /store/orders"]},
    {"prompt": "which pets are there, and add a dog", "gold": ["GET /pets", "POST /pets"]},
]
BOOKS = [
    {"prompt": "which novels can I borrow", "gold": ["GET /api/v2/books"]},
    {"prompt": "I have finished reading it, give the book 3 back", "gold": ["POST /api/v2/loans"]},
]


def _write(path: Path, cases: list[dict[str, object]], spec: str) -> Path:
    path.write_text("".join(json.dumps({**c, "spec": spec}) + "\n" for c in cases))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    folder = tmp_path_factory.mktemp("refit")
    pets = _write(folder / "pets.jsonl", PETS, "petstore-3.0.yaml")
    books = _write(folder / "books.jsonl", BOOKS, "library-swagger-2.0.json")
    _, meta = train(SPECS, seed=13, folds=2, authored=[pets], dump=folder / "run.npz")
    rank([books], SPECS, folder / "books.npz")
    return folder, meta


def test_a_refit_of_the_dump_scores_the_authored_files_as_train_did(
    run: tuple[Path, dict[str, object]],
) -> None:
    folder, meta = run
    scores = score(folder / "run.npz")
    reported = meta["authored"]["pets.jsonl"]  # type: ignore[index]
    assert scores["pets.jsonl"]["n"] == 3
    assert scores["pets.jsonl"]["mrr"] == reported["mrr"]
    assert scores["pets.jsonl"]["top1"] == reported["top1"]
    assert scores["pooled"]["mrr"] == scores["pets.jsonl"]["mrr"]


def test_files_ranked_later_hold_what_train_would_have_dumped(
    run: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    folder, _ = run
    pets = folder / "pets.jsonl"
    rank([pets], SPECS, tmp_path / "pets.npz")
    later = dumped.load(tmp_path / "pets.npz")
    saved = dumped.load(folder / "run.npz")
    assert later.synthetic == [] and later.authored_apis == saved.authored_apis
    for a, b in zip(later.authored["pets.jsonl"], saved.authored["pets.jsonl"], strict=True):
        assert np.array_equal(a.matrix, b.matrix) and np.array_equal(a.gold, b.gold)


def test_files_beside_the_dump_are_scored_with_their_apis_left_out_of_the_fit(
    run: tuple[Path, dict[str, object]],
) -> None:
    folder, _ = run
    scores = score(folder / "run.npz", [folder / "books.npz"])
    assert set(scores) == {"books.jsonl", "pets.jsonl", "pooled"}
    assert scores["pooled"]["n"] == 5
    saved = dumped.load(folder / "run.npz")
    library = {item.summary.name for item in load_specs(SPECS[2:])}
    coef = refitted(saved, saved.authored_apis["pets.jsonl"] | library)
    found = ranks(dumped.load(folder / "books.npz").authored["books.jsonl"], coef)
    assert scores["books.jsonl"]["mrr"] == round(sum(1 / r for r in found if r) / 2, 4)
    # the library's synthetic cases are out of this fit, not of the one without books
    alone = refitted(saved, saved.authored_apis["pets.jsonl"])
    assert not np.allclose(coef, alone)


def test_a_dropped_feature_weighs_nothing_and_an_unknown_one_is_named(
    run: tuple[Path, dict[str, object]],
) -> None:
    folder, _ = run
    saved = dumped.load(folder / "run.npz")
    apis = saved.authored_apis["pets.jsonl"]
    at = saved.features.index("sentence")
    assert refitted(saved, apis)[at] != 0.0
    assert refitted(saved, apis, drop=["sentence"])[at] == 0.0
    with pytest.raises(ValueError, match="unknown feature: no_such"):
        refitted(saved, apis, drop=["no_such"])


def test_the_command_line_prints_every_file_and_names_a_bad_dump(
    run: tuple[Path, dict[str, object]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, _ = run
    assert main(["score", str(folder / "run.npz"), str(folder / "books.npz")]) == 0
    printed = capsys.readouterr().out
    assert "books.jsonl" in printed and "pooled" in printed
    assert main(["score", str(folder / "run.npz"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pets.jsonl"]["n"] == 3
    assert main(["score", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    assert main(["score", str(folder / "run.npz"), "--drop", "no_such"]) == 2
    assert "no_such" in capsys.readouterr().err


def test_a_case_weighed_twice_fits_as_the_case_given_twice() -> None:
    rng = np.random.default_rng(3)
    groups = [(rng.normal(size=(4, 3)), int(rng.integers(4))) for _ in range(12)]
    twice = fit([*groups, groups[0]], 1.0)
    weighed = fit(groups, 1.0, [2.0] + [1.0] * 11)
    assert np.allclose(twice, weighed, atol=1e-4)
    assert not np.allclose(fit(groups, 1.0), weighed, atol=1e-3)


def test_authored_cases_are_learned_only_where_they_share_no_api_with_the_scored_file(
    run: tuple[Path, dict[str, object]],
) -> None:
    folder, _ = run
    saved = dumped.load(folder / "run.npz")
    books = dumped.load(folder / "books.npz")
    files = {**saved.authored, **books.authored}
    library = books.authored_apis["books.jsonl"]
    # the books are learned from when the pets are scored, not when the books are
    assert learnable(files, saved.authored_apis["pets.jsonl"], ["pets.jsonl"]) == [
        *books.authored["books.jsonl"]
    ]
    assert learnable(files, library, ["books.jsonl"]) == [*saved.authored["pets.jsonl"]]
    assert learnable(files, library | saved.authored_apis["pets.jsonl"]) == []
    apis = saved.authored_apis["pets.jsonl"] | library
    learned = refitted(saved, apis, learned=books.authored["books.jsonl"], share=0.5)
    assert not np.allclose(learned, refitted(saved, apis))
    assert np.allclose(
        refitted(saved, apis, learned=books.authored["books.jsonl"]), refitted(saved, apis)
    )


def test_learning_from_authored_files_scores_each_without_its_own(
    run: tuple[Path, dict[str, object]],
) -> None:
    folder, _ = run
    plain = score(folder / "run.npz", [folder / "books.npz"])
    learned = score(folder / "run.npz", [folder / "books.npz"], share=0.5)
    assert learned["pooled"]["n"] == plain["pooled"]["n"] == 5
    # a file never learned from leaves the other scored as without learning
    unread = score(folder / "run.npz", [folder / "books.npz"], share=0.5, unread=["books.jsonl"])
    assert unread["pets.jsonl"] == plain["pets.jsonl"]
