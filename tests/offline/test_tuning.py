"""What the sentence models are tuned on: single-call requests (and, if asked, each step of tasks
of several calls, and requests people wrote), never of an excluded spec, each fold model on its
folds only; and the ranker learns each fold as read by a model that was not tuned on it, in
training and in the shipped files."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from opensesame_predictor import distill
from opensesame_predictor.core.features import sentence_text
from opensesame_predictor.core.ranker import WEIGHTS_FILE
from opensesame_predictor.distill import TUNING_BATCH, tuning_batches
from opensesame_predictor.offline import train as train_module
from opensesame_predictor.offline.authored import authored_specs
from opensesame_predictor.offline.train import folds_of, load_specs, sentence_readers, train
from opensesame_predictor.offline.tuning import (
    FOLD_MODELS,
    FOLDS,
    TUNED_FILE,
    fold_model_specs,
    main,
    of_folds,
    people_requests,
    tuned_specs,
    tuning_pairs,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
SPECS = sorted(
    str(path)
    for folder in (FIXTURES, FIXTURES / "training")
    for path in folder.iterdir()
    if path.suffix in (".json", ".yaml") and path.name != "cyclic.yaml"
)


TASK = "PATCH /projects/{projectId}/tasks/{taskId}"


@pytest.fixture(scope="module")
def tuning() -> dict[str, Any]:
    return tuning_pairs(SPECS, excluded={"shop.yaml"})


def test_pairs_of_a_fold_model_come_from_its_folds_only(tuning: dict[str, Any]) -> None:
    loaded = {
        item.summary.name: item
        for item in load_specs(SPECS)
        if item.parsed is not None and item.parsed.operations
    }
    fold = folds_of(sorted(loaded), FOLDS)
    by_file = {Path(item.summary.source).name: name for name, item in loaded.items()}
    assert tuning["specs"] == sorted(file for file in by_file if file != "shop.yaml")
    for folds in FOLD_MODELS.values():
        found = of_folds(tuning, folds)
        expected = sorted(
            file for file, name in by_file.items() if fold[name] in folds and file != "shop.yaml"
        )
        assert found["specs"] == expected
        assert {api for api, *_ in found["pairs"]} == {by_file[file] for file in expected}
        # the same pairs as in the whole corpus's, in the same order
        assert found["pairs"] == [
            p for p in tuning["pairs"] if by_file_of(p[0], by_file) in expected
        ]
    assert {api for api, *_ in tuning["pairs"]} == {by_file[f] for f in tuning["specs"]}
    for api, request, text, key in tuning["pairs"]:
        operation = next(op for op in loaded[api].parsed.operations if op.key == key)  # type: ignore[union-attr]
        assert text == sentence_text(operation)  # what the model reads at load
        assert request.strip()


def by_file_of(api: str, by_file: dict[str, str]) -> str:
    return next(file for file, name in by_file.items() if name == api)


def test_an_excluded_spec_is_never_read_for_tuning(tuning: dict[str, Any]) -> None:
    assert "shop.yaml" not in tuning["specs"]
    shop = next(item for item in load_specs([str(FIXTURES / "training" / "shop.yaml")]))
    assert all(api != shop.summary.name for api, *_ in tuning["pairs"])


def test_pairs_are_the_same_every_run(tuning: dict[str, Any]) -> None:
    assert tuning_pairs(SPECS, excluded={"shop.yaml"}) == tuning


def test_the_command_writes_pairs_and_the_list_of_tuned_specs(tmp_path: Path) -> None:
    out, listed = tmp_path / "tuning", tmp_path / "tuned.json"
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(out)]
    assert main([*argv, "--tuned", str(listed)]) == 0
    written = json.loads((out / "pairs.json").read_text(encoding="utf-8"))
    assert written and all(len(pair) == 4 for pair in written)
    document = json.loads(listed.read_text(encoding="utf-8"))
    assert tuned_specs(listed) == set(document["specs"])
    models = fold_model_specs(listed)
    assert set(models) == set(FOLD_MODELS)
    for name in models:
        pairs = json.loads((out / name / "pairs.json").read_text(encoding="utf-8"))
        assert len(pairs) == document["fold_models"][name]["pairs"]
        assert {tuple(p) for p in pairs} <= {tuple(p) for p in written}
    # the fold models split the shipped model's specs between them
    assert set().union(*models.values()) == tuned_specs(listed)
    assert sum(len(specs) for specs in models.values()) == len(tuned_specs(listed))
    assert tuned_specs(tmp_path / "absent.json") == set()
    assert fold_model_specs(tmp_path / "absent.json") == {}


def test_rounds_set_how_many_pairs_each_spec_gives(tuning: dict[str, Any], tmp_path: Path) -> None:
    """`--rounds`: how many tasks each spec gives; the listing says how many."""
    fewer = tuning_pairs(SPECS, excluded={"shop.yaml"}, rounds=4)
    assert 0 < len(fewer["pairs"]) < len(tuning["pairs"])
    assert fewer["specs"] == tuning["specs"]
    listed = tmp_path / "tuned.json"
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(tmp_path)]
    assert main([*argv, "--tuned", str(listed), "--rounds", "4"]) == 0
    assert json.loads(listed.read_text(encoding="utf-8"))["rounds"] == 4
    with pytest.raises(SystemExit):
        main([*argv, "--tuned", str(listed), "--rounds", "0"])


def test_wording_sets_how_the_tuning_requests_are_worded(
    tuning: dict[str, Any], tmp_path: Path
) -> None:
    """`--wording hard`: the same operations, asked for in fewer of their own words."""
    hard = tuning_pairs(SPECS, excluded={"shop.yaml"}, wording="hard")
    assert hard["specs"] == tuning["specs"]
    assert {key for *_, key in hard["pairs"]} & {key for *_, key in tuning["pairs"]}

    def shared(pairs: list[list[str]]) -> float:
        words = [(set(q.lower().split()), set(t.lower().split())) for _, q, t, _ in pairs]
        return sum(len(q & t) / max(len(q), 1) for q, t in words) / len(words)

    assert shared(hard["pairs"]) < shared(tuning["pairs"])
    listed = tmp_path / "tuned.json"
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(tmp_path)]
    assert main([*argv, "--tuned", str(listed), "--wording", "hard"]) == 0
    assert json.loads(listed.read_text(encoding="utf-8"))["wording"] == "hard"
    with pytest.raises(SystemExit):
        main([*argv, "--tuned", str(listed), "--wording", "shouty"])


def test_each_fold_is_read_by_a_model_not_tuned_on_it() -> None:
    files = {0: {"x.json", "y.json"}, 1: {"z.json"}, 2: {"w.json"}}
    models = {"a": {"x.json", "y.json"}, "b": {"z.json"}}
    readers, left_out = sentence_readers(files, {"x.json", "y.json", "z.json"}, models)
    # fold 2: the shipped model was not tuned on it
    assert readers == {0: "b", 1: "a", 2: None} and left_out == set()
    # no fold model free of fold 0: its tuned specs are left out, the shipped model reads it
    readers, left_out = sentence_readers(files, {"x.json", "z.json"}, {"a": {"x.json", "z.json"}})
    assert readers == {0: None, 1: None, 2: None} and left_out == {"x.json", "z.json"}


def test_training_leaves_the_tuned_specs_out_without_fold_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    specs = [str(FIXTURES / "petstore-3.0.yaml"), str(FIXTURES / "tasks-3.1.json")]
    monkeypatch.setattr(train_module, "tuned_specs", lambda: {"tasks-3.1.json"})
    _, meta = train(specs, seed=13, folds=1)
    assert meta["trained_on"] == ["petstore-3.0.yaml"]
    assert meta["left_out_as_tuned_on"] == 1
    assert meta["sentence_model_read"] == {"shipped": ["petstore-3.0.yaml"]}


def test_training_reads_a_tuned_fold_with_a_fold_model(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    specs = [str(FIXTURES / "petstore-3.0.yaml"), str(FIXTURES / "tasks-3.1.json")]
    monkeypatch.setattr(train_module, "tuned_specs", lambda: {"tasks-3.1.json"})
    monkeypatch.setattr(
        train_module, "fold_model_specs", lambda: {"a": {"tasks-3.1.json"}, "b": {"other.json"}}
    )
    with pytest.raises(ValueError, match="no fold model there"):
        train(specs, seed=13, folds=1, fold_models=tmp_path)
    for model in ("a", "b"):
        (tmp_path / model).mkdir()
        for name in ("encoder.onnx", "encoder-tokenizer.json"):
            (tmp_path / model / name).symlink_to(TUNED_FILE.parent / name)
    used: list[Path | None] = []
    real = train_module.model_in

    def recorded(folder: Path | None) -> Any:
        used.append(folder)
        return real(folder)

    monkeypatch.setattr(train_module, "model_in", recorded)
    _, meta = train(specs, seed=13, folds=1, fold_models=tmp_path)
    assert meta["trained_on"] == ["petstore-3.0.yaml", "tasks-3.1.json"]
    assert meta["left_out_as_tuned_on"] == 0
    assert meta["sentence_model_read"] == {"b": ["petstore-3.0.yaml", "tasks-3.1.json"]}
    assert used and set(used) == {tmp_path / "b"}


def test_the_shipped_model_and_weights_keep_their_specs_apart() -> None:
    """The shipped weights learned no spec as read by a model tuned on it, and no authored
    validation file asks about a spec any model was tuned on."""
    tuned = tuned_specs(TUNED_FILE)
    models = fold_model_specs(TUNED_FILE)
    assert len(tuned) >= 60 and set().union(*models.values()) == tuned
    weights = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    read = weights["sentence_model_read"]
    assert set().union(*map(set, read.values())) == set(weights["trained_on"])
    for name, files in read.items():
        assert set(files).isdisjoint(tuned if name == "shipped" else models[name])
    assert weights["left_out_as_tuned_on"] == 0
    authored = sorted((ROOT / "validation").glob("authored-*.jsonl"))
    assert len(authored) >= 10 and tuned.isdisjoint(authored_specs(authored))


def test_tuning_batches_hold_distinct_operations_of_one_api(tuning: dict[str, Any]) -> None:
    """A request is scored against the other operations of its batch: one API per batch, no
    operation twice (it would count as a wrong answer for its own request), 4 to 32 of them."""
    batches = tuning_batches(tuning["pairs"], random.Random(0))
    api_of = {(request, key): api for api, request, _, key in tuning["pairs"]}
    assert batches
    for batch in batches:
        keys = [key for _, _, key in batch]
        assert len(set(keys)) == len(keys)
        assert 4 <= len(batch) <= TUNING_BATCH
        assert len({api_of[(request, key)] for request, _, key in batch}) == 1
    assert tuning_batches(tuning["pairs"], random.Random(0)) == batches


def test_step_rounds_add_each_step_of_tasks_of_several_calls(
    tuning: dict[str, Any], tmp_path: Path
) -> None:
    """`--step-rounds`: the steps of tasks of several calls join the one-call pairs, which stay
    as they were; a request of two steps is paired with each of its calls."""
    steps = tuning_pairs(SPECS, excluded={"shop.yaml"}, step_rounds=2)
    assert steps["specs"] == tuning["specs"]
    # the one-call pairs are all there, in the same order
    rest = iter(map(tuple, steps["pairs"]))
    assert all(tuple(pair) in rest for pair in tuning["pairs"])
    added = len(steps["pairs"]) - len(tuning["pairs"])
    assert added > 0
    asked: dict[str, set[str]] = {}
    for _, request, _, key in steps["pairs"]:
        asked.setdefault(request, set()).add(key)
    assert any(len(keys) > 1 for keys in asked.values())
    listed = tmp_path / "tuned.json"
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(tmp_path)]
    assert main([*argv, "--tuned", str(listed), "--step-rounds", "2"]) == 0
    document = json.loads(listed.read_text(encoding="utf-8"))
    written = json.loads((tmp_path / "pairs.json").read_text(encoding="utf-8"))
    assert document["step_rounds"] == 2 and document["pairs"] == len(written)
    with pytest.raises(SystemExit):
        main([*argv, "--tuned", str(listed), "--step-rounds", "-1"])


def test_a_request_of_several_steps_never_meets_its_other_calls_in_a_batch() -> None:
    """A request paired with each of its calls is scored against its batch's other operations:
    neither itself twice, nor a call it also asks for, may stand there as a wrong answer."""
    pairs = [["api", "find Ana, then her albums", "t1", "GET /artists"]]
    pairs += [["api", "find Ana, then her albums", "t2", "GET /artists/{id}/albums"]]
    pairs += [["api", f"request {i}", f"text {i}", f"GET /op{i}"] for i in range(10)]
    pairs += [["api", "the albums of artist 7", "t2", "GET /artists/{id}/albums"]]
    for seed in range(20):
        for batch in tuning_batches(pairs, random.Random(seed)):
            requests = [request for request, _, _ in batch]
            keys = {key for _, _, key in batch}
            assert len(set(requests)) == len(requests)
            if "find Ana, then her albums" in requests:
                assert not {"GET /artists", "GET /artists/{id}/albums"} <= keys


@pytest.mark.parametrize("share", ["1.5", "-0.1"])
def test_a_mixture_share_outside_0_to_1_is_refused_before_anything_loads(
    share: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["--encoder", "--tune", str(tmp_path / "pairs.json"), "--output", str(tmp_path)]
    with pytest.raises(SystemExit) as stopped:
        distill.main([*argv, "--tuned-share", share])
    assert stopped.value.code == 2
    assert "--tuned-share must lie between 0 and 1" in capsys.readouterr().err


def test_a_mixture_share_without_tuning_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit):
        distill.main(["--encoder", "--output", str(tmp_path), "--tuned-share", "0.5"])
    assert "needs --encoder and --tune" in capsys.readouterr().err


def written(path: Path, cases: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    return path


def test_requests_people_wrote_are_paired_with_each_of_their_calls(
    tuning: dict[str, Any], tmp_path: Path
) -> None:
    """`--people FILE`: each request is paired with each of its gold calls' text, as many
    times as asked, after the synthetic pairs (which stay as they were), and joins the fold
    model of its spec's fold only."""
    request = "I lost track of what my team is doing, show me every open task please"
    cases = [
        {"id": "t:0", "prompt": request, "history": [], "gold": ["GET /projects"]},
        {"id": "t:1", "prompt": "mark task 12 done", "history": [], "gold": [TASK]},
    ]
    for case in cases:
        case["spec"] = "tasks-3.1.json"
    people = people_requests([written(tmp_path / "people.jsonl", cases)])
    assert people == {
        "tasks-3.1.json": [(request, ["GET /projects"]), ("mark task 12 done", [TASK])]
    }
    found = tuning_pairs(SPECS, excluded={"shop.yaml"}, people=people, people_copies=2)
    rest = iter(map(tuple, found["pairs"]))
    assert all(tuple(pair) in rest for pair in tuning["pairs"])
    added = [pair for pair in found["pairs"] if pair[1] in (request, "mark task 12 done")]
    assert len(added) == len(found["pairs"]) - len(tuning["pairs"]) == 4
    tasks = next(item for item in load_specs([str(FIXTURES / "tasks-3.1.json")]))
    listing = next(
        op
        for op in tasks.parsed.operations
        if op.key == "GET /projects"  # type: ignore[union-attr]
    )
    assert [tasks.summary.name, request, sentence_text(listing), "GET /projects"] in added
    # the fold model of the spec's fold holds them; the other does not
    fold = folds_of(sorted({api for api, *_ in found["pairs"]}), FOLDS)[tasks.summary.name]
    for folds in FOLD_MODELS.values():
        in_model = [p for p in of_folds(found, folds)["pairs"] if p[1] == request]
        assert len(in_model) == (2 if fold in folds else 0)
    # a request and its copy never meet in one batch
    for batch in tuning_batches(found["pairs"], random.Random(0)):
        requests = [request for request, _, _ in batch]
        assert len(set(requests)) == len(requests)
    listed = tmp_path / "tuned.json"
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(tmp_path)]
    argv += ["--people", str(tmp_path / "people.jsonl"), "--tuned", str(listed)]
    assert main([*argv, "--people-copies", "2"]) == 0
    document = json.loads(listed.read_text(encoding="utf-8"))
    assert document["people_copies"] == 2 and document["people"]
    pairs = json.loads((tmp_path / "pairs.json").read_text(encoding="utf-8"))
    assert document["pairs"] == len(pairs)
    assert sum(pair[1] in (request, "mark task 12 done") for pair in pairs) == 4
    with pytest.raises(SystemExit):
        main([*argv, "--people-copies", "0"])


def test_an_excluded_file_that_is_not_cases_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The files whose specs stay unread are read as the validation files are: a line that is
    no case names the file and the line, and nothing is written."""
    bad = tmp_path / "authored.jsonl"
    bad.write_text(json.dumps(SHOP_CASE) + "\n{not json\n", encoding="utf-8")
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--exclude-authored", str(bad), "--tuned", str(tmp_path / "tuned.json")])
    assert stopped.value.code == 2
    assert f"{bad}:2: not a case: invalid JSON" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "tuned.json").exists()


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ({"spec": "shop.yaml", "gold": ["GET /products"]}, "specs not tuned on: shop.yaml"),
        ({"spec": "nowhere.json", "gold": ["GET /x"]}, "specs not tuned on: nowhere.json"),
        ({"spec": "tasks-3.1.json", "gold": ["GET /nothing"]}, "has no operation GET /nothing"),
        ({"spec": "tasks-3.1.json,shop.yaml", "gold": ["GET /projects"]}, "one spec"),
        ({"spec": "tasks-3.1.json", "gold": []}, ":1: not a case: gold: List should have at"),
        ({"spec": "tasks-3.1.json"}, ":1: not a case: gold: Field required"),
        ({"spec": 7, "gold": [TASK]}, ":1: not a case: spec: Input should be a valid string"),
        ({"spec": "tasks-3.1.json", "gold": [TASK], "prompt": 7}, ":1: not a case: prompt"),
        ({"spec": "tasks-3.1.json", "gold": [TASK], "prompt": " "}, "no request in words"),
    ],
)
def test_requests_about_a_spec_not_tuned_on_or_a_missing_call_are_refused(
    case: dict[str, Any], problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A request about an excluded (authored) spec would tune the model on an API that must stay
    unread: refused, with the reason, and nothing written."""
    path = written(tmp_path / "people.jsonl", [{"id": "x", "prompt": "list them", **case}])
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(tmp_path / "out")]
    argv += ["--exclude-authored", str(written(tmp_path / "authored.jsonl", [SHOP_CASE]))]
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--people", str(path), "--tuned", str(tmp_path / "tuned.json")])
    assert stopped.value.code == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "tuned.json").exists()


SHOP_CASE = {"id": "s", "prompt": "p", "history": [], "gold": ["GET /x"], "spec": "shop.yaml"}


def test_a_request_about_an_excluded_spec_is_refused_before_any_spec_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Generating the corpus's pairs takes minutes: an authored API asked about is refused
    first."""

    def unread(sources: list[str]) -> list[Any]:
        raise AssertionError("specs were read before the refusal")

    monkeypatch.setattr(train_module, "load_specs", unread)
    with pytest.raises(ValueError, match=r"specs not tuned on: shop\.yaml"):
        tuning_pairs(list(SPECS), {"shop.yaml"}, people={"shop.yaml": [("p", ["GET /x"])]})


def test_the_shipped_requests_people_wrote_are_about_tuning_apis_only() -> None:
    """The requests people wrote that tuned the shipped models ask about tuning specs only,
    never about an API of an authored file, and the listing names them."""
    people = people_requests([ROOT / "tuning" / "requests.jsonl"])
    assert len(people) >= 60 and set(people) <= tuned_specs(TUNED_FILE)
    authored = sorted((ROOT / "validation").glob("authored-*.jsonl"))
    assert set(people).isdisjoint(authored_specs(authored))
    assert sum(len(cases) for cases in people.values()) >= 2000
    listed = json.loads(TUNED_FILE.read_text(encoding="utf-8"))
    assert listed["people"] == ["tuning/requests.jsonl"] and listed["people_copies"] == 1


def test_a_requests_file_that_cannot_be_read_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*(arg for spec in SPECS for arg in ("--spec", spec)), "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as stopped:
        main([*argv, "--people", str(tmp_path / "absent.jsonl"), "--tuned", str(tmp_path / "t")])
    assert stopped.value.code == 2
    assert "absent.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "t").exists()
