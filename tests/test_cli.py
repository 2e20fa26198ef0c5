"""The command line, run the way a user runs it: `python -m opensesame_predictor ...` in a
subprocess. Each run costs a second or two (interpreter + imports), so each test checks several
things of one run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from opensesame_predictor import __version__

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PETSTORE = FIXTURES / "petstore-3.0.yaml"
PHOTO = "POST /pets/{petId}/photos"
PREDICTION_KEYS = {"api_call", "method", "description", "parameters", "confidence", "rank"}


def cli(
    *args: str | Path, cwd: Path, stdin: str | None = None, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    """Run the command line with this test's environment (its own store file)."""
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "opensesame_predictor", *map(str, args)],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_predict_batch_answers_each_json_line_in_order(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {"prompt": "upload a photo of the pet I just created", "history": ["POST /pets"]}
        ),
        "not json",
        "",
        json.dumps({"prompt": "list the pets", "max_predictions": 99}),
        json.dumps({"prompt": "list the pets", "max_predictions": 2}),
    ]
    run = cli("predict", "--batch", "--spec", PETSTORE, cwd=tmp_path, stdin="\n".join(lines))
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [a["index"] for a in answers] == [0, 1, 2, 3]
    assert answers[0]["result"]["predictions"][0]["api_call"] == PHOTO
    assert answers[1]["error"]["code"] == "invalid_json"
    assert answers[2]["error"]["code"] == "invalid_request"
    assert "max_predictions" in answers[2]["error"]["message"]
    assert len(answers[3]["result"]["predictions"]) == 2
    assert run.returncode == 2  # some lines failed
    both = cli("predict", "list the pets", "--batch", "--spec", PETSTORE, cwd=tmp_path)
    assert both.returncode == 2 and "--batch" in both.stderr


# predict -------------------------------------------------------------------------------------


def test_predict_json_prints_only_the_wire_json(tmp_path: Path) -> None:
    run = cli(
        "predict",
        "upload a photo of the pet",
        "--spec",
        PETSTORE,
        "--history",
        "POST /pets",
        "--max",
        "3",
        "--temperature",
        "0",
        "--json",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    wire = json.loads(run.stdout)  # nothing but JSON on stdout
    assert set(wire) >= {"predictions", "confidence_scores", "processing_time_ms", "metadata"}
    assert set(wire["metadata"]) >= {"model_version", "processing_time_ms", "processing_method"}
    predictions = wire["predictions"]
    assert 1 <= len(predictions) <= 3  # --max 3
    for item in predictions:
        assert set(item) >= PREDICTION_KEYS
    assert [p["rank"] for p in predictions] == list(range(1, len(predictions) + 1))
    assert wire["confidence_scores"][0] == 1.0  # temperature 0
    assert PHOTO in [p["api_call"] for p in predictions]
    assert "error" not in run.stderr


def test_predict_prints_a_table_of_the_calls_and_takes_a_history(tmp_path: Path) -> None:
    run = cli(
        "predict",
        "upload a photo of the pet",
        "--spec",
        PETSTORE,
        "--history",
        "POST /pets",
        "--history",
        "https://petstore.example.com/v1/pets/42",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    rows = re.findall(r"^(\d+)\s+\S+\s+([A-Z]+ /\S*)$", run.stdout, re.MULTILINE)
    assert 3 <= len(rows) <= 5  # five by default
    assert [rank for rank, _ in rows] == [str(n) for n in range(1, len(rows) + 1)]
    assert PHOTO in [call for _, call in rows][:3]
    assert "ms" in run.stdout.splitlines()[-1]


def test_predict_table_shows_no_confidence_when_nothing_fits(tmp_path: Path) -> None:
    """An abstaining answer: each row says "no match" where a confidence would read 0.50
    or 1.00 (the JSON keeps the numbers)."""
    run = cli("predict", "bake a chocolate cake with cinnamon", "--spec", PETSTORE, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = [x for x in run.stdout.splitlines() if re.match(r"^\d+\s.*\s[A-Z]+ /", x)]
    assert rows and all("no match" in row for row in rows), run.stdout
    assert not any(re.search(r"\b[01]\.\d\d\b", row) for row in rows), run.stdout


def test_bad_specs_exit_2_naming_each_source_and_reason(tmp_path: Path) -> None:
    bad = {
        tmp_path / "missing.yaml": "file not found",
        FIXTURES / "bad" / "not-openapi.yaml": "not an OpenAPI or Swagger document",
        FIXTURES / "bad" / "invalid.yaml": "invalid YAML at line",
        FIXTURES / "bad" / "invalid.json": "invalid JSON at line",
        FIXTURES / "bad" / "unresolvable-ref.yaml": "unresolvable $ref",
    }
    args: list[str | Path] = []
    for path in bad:
        args += ["--spec", path]
    run = cli("predict", "list pets", *args, "--json", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stdout == ""
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad)
    for path, reason in bad.items():
        assert any(f"{path}: " in line and reason in line for line in errors), (path, errors)
    assert "Traceback" not in run.stderr


def test_one_bad_spec_among_good_ones_still_predicts_but_exits_2(tmp_path: Path) -> None:
    broken = FIXTURES / "bad" / "invalid.yaml"
    run = cli(
        "predict", "upload a photo", "--spec", PETSTORE, "--spec", broken, "--json", cwd=tmp_path
    )
    assert run.returncode == 2
    assert json.loads(run.stdout)["predictions"]
    assert f"error: {broken}: invalid YAML" in run.stderr


def test_an_invalid_request_exits_2_naming_the_field(tmp_path: Path) -> None:
    run = cli("predict", "list pets", "--spec", PETSTORE, "--max", "21", cwd=tmp_path)
    assert run.returncode == 2
    assert "max_predictions" in run.stderr and "20" in run.stderr
    assert "Traceback" not in run.stderr


def test_predict_table_reads_whole_at_80_columns_through_a_pipe(tmp_path: Path) -> None:
    """stdout is a pipe here and the terminal 80 wide: every call and figure whole on its
    line, text wrapped at spaces (no word cut, no one-character lines), no line past 80 but
    for a single unbreakable word, and ranks 2-5 not all `0.00`."""
    run = cli(
        "predict",
        "upload a photo of the pet I just created",
        "--spec",
        PETSTORE,
        "--history",
        "POST /pets",
        cwd=tmp_path,
        columns=80,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    rows = [re.match(r"^(\d+)\s+(\S+)\s+([A-Z]+ /\S+)$", line) for line in lines]
    found = [m for m in rows if m]
    assert [m[1] for m in found] == ["1", "2", "3", "4", "5"], run.stdout
    assert found[0][3] == PHOTO
    figures = [m[2] for m in found]
    assert all(re.fullmatch(r"\d\.\d+", f) for f in figures), figures  # whole, never `0.5…`
    assert any(f != "0.00" for f in figures[1:]), figures
    assert "…" not in run.stdout and "\x1b" not in run.stdout  # plain, never cut
    for line in lines:
        assert len(line) <= 80 or " " not in line.strip(), line
        assert len(line.strip()) > 1, run.stdout  # no one-character lines
    words = set(re.findall(r"\S+", run.stdout))
    assert {"'upload',", "'photo',", 'petId="4f7c2a1e-9b3d-4c55-8f0a-2d6e1b7c9a10"'} <= words


def test_predict_json_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    """`predict --json | head -1`: the reader is gone before the JSON is written. The
    command ends as the standard tools do (status 141), with no traceback."""
    args = ["predict", "list pets", "--json", "--spec", str(PETSTORE)]
    process = subprocess.Popen(
        [sys.executable, "-m", "opensesame_predictor", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # as `head -1` does once it has its line
    with process.stderr:
        stderr = process.stderr.read()
    assert process.wait(timeout=120) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_predict_with_neither_prompt_nor_history_names_both(tmp_path: Path) -> None:
    run = cli("predict", "", "--spec", PETSTORE, cwd=tmp_path)
    assert run.returncode == 2
    assert "prompt, --history: neither is given" in run.stderr and run.stdout == ""
    alone = cli("predict", "", "--spec", PETSTORE, "--history", "POST /pets", cwd=tmp_path)
    assert alone.returncode == 0, alone.stderr


def test_history_that_matches_nothing_is_said_not_ignored(tmp_path: Path) -> None:
    run = cli(
        "predict",
        "list the pets",
        "--spec",
        PETSTORE,
        "--history",
        "POST /petz",
        "--history",
        "FETCH /pets",
        "--history",
        "GET /pets",
        "--json",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["metadata"]["unmatched_history"] == ["POST /petz", "FETCH /pets"]
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "'POST /petz'" in warnings[0] and "FETCH" in warnings[1]
    clean = cli("predict", "list the pets", "--spec", PETSTORE, "--json", cwd=tmp_path)
    assert "unmatched_history" not in json.loads(clean.stdout)["metadata"]  # only when some


# eval ----------------------------------------------------------------------------------------


def test_eval_table_is_whole_at_80_columns(tmp_path: Path) -> None:
    run = cli("eval", "data/petstore.jsonl", cwd=ROOT / "tests", columns=80)
    assert run.returncode == 0, run.stderr
    header, row = run.stdout.splitlines()
    assert header.split() == ["file", "n", "top1", "recall_at_5", "mrr", "ece", "p50_ms", "p95_ms"]
    cells = row.split()
    assert cells[0] == "petstore.jsonl" and cells[1] == "8"
    assert all(re.fullmatch(r"\d+\.\d{3}", c) for c in cells[2:]), cells


def test_eval_by_step_adds_a_row_for_first_and_later_calls(tmp_path: Path) -> None:
    table = cli("eval", "data/petstore.jsonl", "--by-step", cwd=ROOT / "tests", columns=80)
    assert table.returncode == 0, table.stderr
    header, whole, first, later = table.stdout.splitlines()
    assert header.split()[0] == "file"
    assert whole.split()[:2] == ["petstore.jsonl", "8"]
    assert first.startswith("  first calls") and later.startswith("  later calls")
    assert int(first.split()[2]) + int(later.split()[2]) == 8
    document = cli("eval", "data/petstore.jsonl", "--by-step", "--json", cwd=ROOT / "tests")
    parts = json.loads(document.stdout)["petstore.jsonl"]["by_step"]
    assert [parts["first"]["n"], parts["later"]["n"]] == [
        int(first.split()[2]),
        int(later.split()[2]),
    ]


def test_eval_gold_naming_no_operation_is_an_error_naming_the_case(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    good = {"spec": str(PETSTORE), "prompt": "list pets", "gold": ["GET /pets"]}
    bad = {**good, "id": "typo", "gold": ["GET /pets", "GET /petz"]}
    cases.write_text(f"{json.dumps(good)}\n{json.dumps(bad)}\n")
    run = cli("eval", cases, "--json", cwd=tmp_path)
    assert run.returncode == 2
    assert "case typo" in run.stderr and "'GET /petz'" in run.stderr, run.stderr
    assert run.stdout == "" and "Traceback" not in run.stderr


def test_eval_json_prints_metrics_per_file(tmp_path: Path) -> None:
    other = tmp_path / "every-key.jsonl"
    other.write_text(
        json.dumps(
            {"spec": "pets.yaml", "prompt": "list the pets", "gold": ["GET /pets", "POST /pets"]}
        )
        + "\n"
    )
    (tmp_path / "pets.yaml").write_bytes(PETSTORE.read_bytes())  # relative to the JSONL file
    # from tests/, so the relative spec paths only work when read relative to each file
    run = cli("eval", "data/petstore.jsonl", other, "--json", cwd=ROOT / "tests")
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert list(results) == ["petstore.jsonl", "every-key.jsonl"]
    keys = {"n", "top1", "recall_at_5", "mrr", "ece", "p50_ms", "p95_ms"}
    for metrics in results.values():
        assert set(metrics) == keys
        assert all(isinstance(v, int | float) for v in metrics.values())
        assert 0 <= metrics["top1"] <= metrics["recall_at_5"] <= 1
    assert results["petstore.jsonl"]["n"] == 8
    assert results["every-key.jsonl"]["n"] == 1


def test_eval_with_a_bad_line_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    good = json.dumps({"spec": str(PETSTORE), "prompt": "list pets", "gold": ["GET /pets"]})
    cases.write_text(f"{good}\n{good}\n{{broken\n")
    run = cli("eval", cases, "--json", cwd=tmp_path)
    assert run.returncode == 2
    assert f"{cases}:3: invalid JSON" in run.stderr
    assert run.stdout == ""


def test_eval_with_stale_weights_exits_2_saying_what_they_lack(tmp_path: Path) -> None:
    stale = tmp_path / "weights.json"
    stale.write_text(json.dumps({"version": "old", "scale": 1.0, "weights": {"all": 1.0}}))
    run = cli("eval", "data/petstore.jsonl", "--weights", stale, cwd=ROOT / "tests")
    assert run.returncode == 2
    assert f"{stale}: not a weights file" in run.stderr
    assert "no weight for short" in run.stderr  # the first feature it lacks, named
    assert run.stdout == ""


# bench, version, usage -----------------------------------------------------------------------


def test_bench_json_prints_the_numbers(tmp_path: Path) -> None:
    run = cli("bench", "--spec", PETSTORE, "--requests", "20", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    numbers = json.loads(run.stdout)
    for key in ("cold_load_ms", "warm_load_ms", "predict_p50_ms", "predict_p95_ms"):
        assert isinstance(numbers[key], int | float) and numbers[key] >= 0, key
    # peak resident sizes of the cold and the warm process: at least the interpreter's
    assert numbers["rss_mb"] > 20 and numbers["warm_rss_mb"] > 20
    assert numbers["requests"] == 20
    assert numbers["operations"] == 13


PARENT = """
import subprocess, sys
ballast = bytearray(300 * 1024 * 1024)  # touched: resident
ballast[::4096] = b"x" * len(ballast[::4096])
child = "from opensesame_predictor.offline.bench import _rss_mb; print(_rss_mb())"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True).stdout)
"""


def test_the_peak_memory_of_a_child_is_its_own() -> None:
    """The warm load's figure comes from a child of the big cold-load process: it must not
    report the parent's peak (Linux keeps `ru_maxrss` across exec)."""
    run = subprocess.run(
        [sys.executable, "-c", PARENT], capture_output=True, text=True, check=True, timeout=60
    )
    assert 10 < float(run.stdout) < 200


def test_bench_http_sends_the_requests_asked_for(tmp_path: Path) -> None:
    run = cli("bench", "--http", "--spec", PETSTORE, "--requests", "30", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    numbers = json.loads(run.stdout)
    assert numbers["requests_sent"] == 30
    assert numbers["burst_requests"] + numbers["paced_requests"] <= 30


def test_train_outside_a_clone_says_to_give_a_spec(tmp_path: Path) -> None:
    run = cli("train", cwd=tmp_path)
    assert run.returncode == 2
    assert "--spec" in run.stderr and "Traceback" not in run.stderr
    assert "concatenate" not in run.stderr
    assert not (tmp_path / "weights.json").exists()


def test_train_writes_its_weights_in_the_working_directory(tmp_path: Path) -> None:
    """Never into the installed package unless `--output` names it."""
    package_weights = ROOT / "server" / "opensesame_predictor" / "data" / "weights.json"
    before = package_weights.stat().st_mtime_ns
    run = cli("train", "--spec", PETSTORE, "--folds", "1", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "wrote weights.json" in run.stdout
    assert json.loads((tmp_path / "weights.json").read_text())["weights"]
    assert package_weights.stat().st_mtime_ns == before
    makefile = (ROOT / "Makefile").read_text()
    assert "--output server/opensesame_predictor/data/weights.json" in makefile  # asked for


def test_every_option_has_help_text() -> None:
    from opensesame_predictor.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    assert isinstance(subparsers.choices, dict)
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}: no help text"


def test_train_offers_every_wording_the_generator_has() -> None:
    """`--wording`'s choices are spelled out in the CLI (to keep `--help` light): they must stay
    the names of `phrasing.WORDINGS`."""
    from opensesame_predictor.cli import build_parser
    from opensesame_predictor.core.phrasing import WORDINGS

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    train = subparsers.choices["train"]
    wording = next(a for a in train._actions if a.dest == "wording")
    assert sorted(wording.choices) == sorted(WORDINGS)


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    """`--help` starts fast: no numerical, HTTP-server, MCP or LSP library is imported
    (a one-shot `predict` imports no face either). Timings are the benchmark's, not a test's."""
    heavy = ("scipy", "sklearn", "fastapi", "starlette", "uvicorn", "mcp", "pygls", "numpy")
    code = (
        "import sys\n"
        "from opensesame_predictor import cli\n"
        "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}), file=sys.stderr)\n"
    )
    for args, banned in (
        (["--help"], heavy),
        (["predict", "list pets", "--spec", str(PETSTORE), "--json"], heavy[:-1]),
    ):
        run = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        loaded = set(eval(run.stderr.strip().splitlines()[-1]))  # our own repr of a list
        assert not loaded & set(banned), (args, loaded & set(banned))


def test_readme_quick_start_says_where_the_command_is() -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme[readme.index("## Quick start") : readme.index("## Command line")]
    assert ".venv/bin/opensesame-predictor" in start and ". .venv/bin/activate" in start


def test_version_and_usage(tmp_path: Path) -> None:
    run = cli("--version", cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout.strip() == f"opensesame-predictor {__version__}"

    run = cli(cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("usage: opensesame-predictor")
    assert "COMMAND" in run.stderr
