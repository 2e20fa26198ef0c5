"""A prompt leaves no trace: not in the store, the logs, /metrics or /health."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opensesame_predictor.core.guardrails import prompt_fingerprint


def canary_requests(canary: str) -> list[dict[str, object]]:
    """The canary in every place a request can carry it, on the happy and the error paths."""
    return [
        {"prompt": f"find the pet named {canary}"},
        {"prompt": f"find {canary}", "history": [{"api_call": f"/pets/{canary}"}]},
        {"prompt": f"{canary} && rm -rf /"},  # guardrail refusal
        {"prompt": canary * 400},  # over the length limit
        {"prompt": canary, "max_predictions": 99},  # invalid field
        {"prompt": canary, canary: 1},  # unknown field named by the canary
        {"prompt": f"{canary}\x00"},
    ]


def files_text(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


def test_canary_prompt_appears_nowhere(
    make_client: Callable[..., TestClient],
    isolated_store: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(rate_limit_enabled=True)
    canary = f"canary{uuid.uuid4().hex}"
    statuses = [
        client.post("/predict", json=body, headers={"X-User-Id": canary}).status_code
        for body in canary_requests(canary)
    ]
    assert statuses[:2] == [200, 200] and all(s in (200, 422) for s in statuses)
    metrics = client.get("/metrics").text
    health = client.get("/health").text

    assert isolated_store.exists()  # the store was written: the spec is in it
    assert canary not in files_text(isolated_store.parent)
    assert canary not in caplog.text
    assert canary not in metrics
    assert canary not in health
    # what the logs may say instead
    assert prompt_fingerprint(f"find the pet named {canary}") in caplog.text
