"""`train --dump`: the ranked cases saved as `train` fitted them, so that a change to the fit is
judged on them without ranking them again: a fit on the saved cases gives the shipped weights,
and the authored files score as `train` reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from opensesame_predictor.core.ranker import FEATURES, fit
from opensesame_predictor.offline.dump import DumpedCase, load
from opensesame_predictor.offline.evaluate import ranking_metrics
from opensesame_predictor.offline.train import DEPRECATED_PENALTY, load_specs, train

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SPECS = [
    str(FIXTURES / name)
    for name in ("petstore-3.0.yaml", "tasks-3.1.json", "library-swagger-2.0.json")
]
CASES = [
    {"prompt": "show me every animal the shop has", "gold": ["GET /pets"]},
    {
        "prompt": "sell the cat 12 to me and then remove her from the shop",
        "history": ["POST /store/orders"],
        "gold": ["DELETE /pets/{petId}"],
    },
    {"prompt": "which pets are there, and add a dog", "gold": ["GET /pets", "POST /pets"]},
]


def test_the_dump_holds_the_cases_train_fitted_and_scored(tmp_path: Path) -> None:
    authored = tmp_path / "pets.jsonl"
    authored.write_text(
        "".join(json.dumps({**c, "spec": "petstore-3.0.yaml"}) + "\n" for c in CASES)
    )
    ranker, meta = train(SPECS, seed=13, folds=2, authored=[authored], dump=tmp_path / "d.npz")
    dump = load(tmp_path / "d.npz")
    assert dump.features == list(FEATURES)
    assert len(dump.synthetic) == meta["cases"]
    assert {case.fold for case in dump.synthetic} == {0, 1}
    assert all(
        case.gold.sum() <= 1 and len(case.gold) == len(case.matrix) for case in dump.synthetic
    )
    assert set(dump.authored) == {"pets.jsonl"} and len(dump.authored["pets.jsonl"]) == 3
    petstore = {item.summary.name for item in load_specs(SPECS[:1])}
    assert dump.authored_apis == {"pets.jsonl": petstore}
    # the third case has two golds
    assert dump.authored["pets.jsonl"][2].gold.sum() == 2
    # each request's length in words, for a calibration that reads it
    assert [c.words for c in dump.authored["pets.jsonl"]] == [7, 13, 8]
    assert all(c.words > 0 for c in dump.synthetic if c.gold.any())
    # a dump from before lengths were saved reads them as 0
    with np.load(tmp_path / "d.npz") as saved:
        np.savez(tmp_path / "old.npz", **{k: saved[k] for k in saved.files if k != "words"})
    older = load(tmp_path / "old.npz")
    assert all(c.words == 0 for c in older.synthetic) and len(older.synthetic) == meta["cases"]

    deprecated = FEATURES.index("deprecated")

    def fitted(cases: list[DumpedCase]) -> np.ndarray:
        groups = []
        for case in cases:
            if case.gold.any() and len(case.matrix) > 1:
                matrix = case.matrix.copy()
                matrix[:, deprecated] = 0.0
                groups.append((matrix, int(np.flatnonzero(case.gold)[0])))
        coef = fit(groups)
        coef[deprecated] = DEPRECATED_PENALTY
        return coef

    shipped = np.array([ranker.weights[name] for name in FEATURES])
    assert np.allclose(fitted(dump.synthetic), shipped, atol=1e-3)
    apis = dump.authored_apis["pets.jsonl"]
    coef = fitted([c for c in dump.synthetic if c.api.removesuffix("_part") not in apis])
    ranks = []
    for case in dump.authored["pets.jsonl"]:
        scores = case.matrix @ coef
        ranks.append(1 + int((scores > scores[case.gold].max()).sum()) if case.gold.any() else 0)
    reported = meta["authored"]["pets.jsonl"]
    assert ranking_metrics(ranks, [0.5] * len(ranks))["mrr"] == reported["mrr"]
