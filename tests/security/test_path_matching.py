"""Matching a concrete path to the templates is linear in the input, whatever a spec's
templates say: segments with many parameters (`{year}-{month}-{day}-{name}.json`) once
compiled to backtracking regexes, and a 3 KB request froze the service for 45 s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import _fits, _template
from opensesame_predictor.core.models import MAX_HISTORY
from opensesame_predictor.service import Service


@pytest.mark.parametrize(
    ("template", "segment", "fits"),
    [
        ("/files/{year}-{month}-{day}-{name}.json", "2020-01-02-report.json", True),
        ("/files/{year}-{month}-{day}-{name}.json", "2020-01-02.json", False),
        ("/files/{year}-{month}-{day}-{name}.json", "---.json", False),  # empty parameters
        ("/files/{year}-{month}-{day}-{name}.json", "a-b-c-d-e.json", True),  # a name with -
        ("/v/{a}{b}.{c}", "ab.c", True),
        ("/v/{a}{b}.{c}", "a.c", False),  # two parameters need two characters
        ("/v/{name}.{format}", "report.tar.gz", True),
        ("/v/prefix-{id}", "prefix-", False),
        ("/v/prefix-{id}", "prefix-7", True),
    ],
)
def test_a_segment_with_parameters_inside_matches_as_a_pattern_would(
    template: str, segment: str, fits: bool
) -> None:
    path = _template(template)
    assert _fits(path, [template.strip("/").split("/")[0], segment]) is fits


def test_worst_case_templates_and_the_longest_history_answer_at_once(tmp_path: Path) -> None:
    dozen = "-".join(f"{{p{i}}}" for i in range(12))
    paths = {
        "/files/{year}-{month}-{day}-{name}.json": {
            "get": {"responses": {"200": {"description": "ok"}}}
        },
        f"/x/{dozen}": {"get": {"responses": {"200": {"description": "ok"}}}},
    }
    spec = tmp_path / "hostile.json"
    spec.write_text(json.dumps({"openapi": "3.0.0", "info": {"title": "h"}, "paths": paths}))
    predictor = Service.from_settings(Settings(specs=[str(spec)])).predictor
    entry = "/x/" + "-" * 2000  # the longest api_call a history entry may have: 2048
    history = [{"api_call": entry}, {"api_call": "/files/" + "1-" * 1000}] * (MAX_HISTORY // 2)
    started = time.perf_counter()
    result = predictor.predict({"prompt": "list the files", "history": history})
    elapsed = time.perf_counter() - started
    assert result.predictions
    # a hang, not a timing: the backtracking version took minutes on one such entry
    assert elapsed < 10, elapsed
