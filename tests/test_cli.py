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


def cli(*args: str | Path, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command line with this test's environment (its own store file)."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}  # wide, plain tables
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
    rows = re.findall(r"^\W+(\d+)\W+([A-Z]+ /\S*)", run.stdout, re.MULTILINE)
    assert 3 <= len(rows) <= 5  # five by default
    assert [rank for rank, _ in rows] == [str(n) for n in range(1, len(rows) + 1)]
    assert PHOTO in [call for _, call in rows][:3]
    assert "ms" in run.stdout.splitlines()[-1]


def test_predict_table_shows_no_confidence_when_nothing_fits(tmp_path: Path) -> None:
    """An abstaining answer: each row says "no match" where a confidence would read 0.50
    or 1.00 (the JSON keeps the numbers)."""
    run = cli("predict", "bake a chocolate cake with cinnamon", "--spec", PETSTORE, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = [x for x in run.stdout.splitlines() if re.match(r"^\W+\d+\W+[A-Z]+ /", x)]
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


# eval ----------------------------------------------------------------------------------------


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


def test_version_and_usage(tmp_path: Path) -> None:
    run = cli("--version", cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout.strip() == f"opensesame-predictor {__version__}"

    run = cli(cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("usage: opensesame-predictor")
    assert "COMMAND" in run.stderr
