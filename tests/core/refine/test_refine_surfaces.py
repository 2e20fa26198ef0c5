"""Every surface shows how a prediction was made: `hybrid_ml_llm` when the model helped, `ml`
with the reason when it did not (the CLI, the HTTP service and the MCP tool)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from fake_ollama import FakeOllama
from mcp import Client

from opensesame_predictor.cli import http_app
from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.mcp.server import build_server

PHOTO = "POST /pets/{petId}/photos"
GET_PET = "GET /pets/{petId}"


def ollama_settings(fixtures: Path, host: str) -> Settings:
    return Settings(
        specs=[str(fixtures / "petstore-3.0.yaml")],
        llm_provider="ollama",
        ollama_host=host,
        llm_timeout_ms=1500,
    )


def cli(fixtures: Path, host: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "OPENSESAME_LLM_PROVIDER": "ollama",
        "OPENSESAME_OLLAMA_HOST": host,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "opensesame_predictor",
            "predict",
            "upload a photo of my pet",
            "--spec",
            str(fixtures / "petstore-3.0.yaml"),
            "--history",
            "POST /pets",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_cli_shows_the_refinement_and_the_fallback(
    fixtures: Path, fake: FakeOllama, free_port: int
) -> None:
    fake.answer = {"ranking": [{"operation": GET_PET}, {"operation": PHOTO}]}
    refined = cli(fixtures, fake.url)
    assert refined["metadata"]["processing_method"] == "hybrid_ml_llm"
    assert refined["predictions"][0]["api_call"] == GET_PET
    assert refined["metadata"]["refiner"]["provider"] == "ollama"

    down = cli(fixtures, f"http://127.0.0.1:{free_port}")
    assert down["metadata"]["processing_method"] == "ml"
    assert down["metadata"]["refinement"]["status"] == "unreachable"
    assert down["predictions"][0]["api_call"] == PHOTO


async def test_http_shows_the_refinement_and_the_fallback(fixtures: Path, fake: FakeOllama) -> None:
    fake.answer = {"ranking": [{"operation": GET_PET}, {"operation": PHOTO}]}
    runtime = Service.from_settings(ollama_settings(fixtures, fake.url))
    app = http_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        body = {"prompt": "upload a photo of my pet", "history": ["POST /pets"]}
        refined = (await client.post("/predict", json=body)).json()
        assert refined["metadata"]["processing_method"] == "hybrid_ml_llm"
        fake.mode = "garbage_content"
        fallback = (await client.post("/predict", json=body)).json()
        assert fallback["metadata"]["processing_method"] == "ml"
        assert fallback["metadata"]["refinement"]["status"] == "invalid_answer"
        health = (await client.get("/health")).json()
    refiner = health["components"]["llm"]["refiner"]
    assert refiner["provider"] == "ollama"
    assert refiner["last_status"] == "invalid_answer"


async def test_mcp_shows_the_refinement_and_the_fallback(fixtures: Path, fake: FakeOllama) -> None:
    fake.mode, fake.stall_seconds = "stall", 5.0
    settings = ollama_settings(fixtures, fake.url).model_copy(update={"llm_timeout_ms": 300})
    runtime = Service.from_settings(settings)
    async with Client(build_server(runtime)) as client:
        result = await client.call_tool(
            "predict_next_call", {"prompt": "upload a photo of my pet", "history": ["POST /pets"]}
        )
    assert not result.is_error
    assert result.structured_content is not None
    metadata = result.structured_content["metadata"]
    assert metadata["processing_method"] == "ml"
    assert metadata["refinement"]["status"] == "timeout"
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert "refinement timeout" in text
