"""The real thing: `opensesame-predictor http` under uvicorn on 127.0.0.1, driven over TCP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from support.processes import RunningServer


def test_http_mode_over_tcp(start_server: Callable[..., RunningServer], fixtures: Path) -> None:
    server = start_server(
        "http",
        "--host",
        "127.0.0.1",
        "--spec",
        str(fixtures / "petstore-3.0.yaml"),
        "--spec",
        str(fixtures / "tasks-3.1.json"),
        env={"OPENSESAME_LOG_LEVEL": "DEBUG", "OPENSESAME_RATE_LIMIT_PER_USER": "5/minute"},
    )
    canary = f"canary{uuid.uuid4().hex}"
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        health = client.get("/health").json()
        assert health["components"]["catalog"]["specs"] == 2
        response = client.post(
            "/predict",
            json={"prompt": f"upload a photo of {canary}", "history": ["POST /pets"]},
            headers={"X-User-Id": "it"},
        )
        assert response.status_code == 200
        assert response.json()["predictions"][0]["api_call"] == "POST /pets/{petId}/photos"
        assert response.headers["ratelimit"] == '"user";r=4;t=60'
        assert client.post("/predict", json={"prompt": f"{canary} ; rm -rf /"}).status_code == 422
        statuses = [
            client.post("/predict", json={"prompt": canary}, headers={"X-User-Id": "it"})
            for _ in range(5)
        ]
        assert [r.status_code for r in statuses] == [200] * 4 + [429]
        assert int(statuses[-1].headers["retry-after"]) >= 1
        assert "text/html" in client.get("/docs").headers["content-type"]
        metrics = client.get("/metrics").text
        assert 'route="/predict",status="429"} 1.0' in metrics
        assert "opensesame_operations_loaded 27.0" in metrics
        assert canary not in metrics
    log = server.stop()
    assert "DEBUG" in log  # the server did log, at the most verbose level
    assert canary not in log
    assert "Traceback" not in log


def test_http_flag_starts_the_same_mode(
    start_server: Callable[..., RunningServer], fixtures: Path
) -> None:
    server = start_server("--http", "--spec", str(fixtures / "library-swagger-2.0.json"))
    response = httpx.post(f"{server.base_url}/predict", json={"prompt": "borrow book 1024"})
    assert response.status_code == 200
    assert response.json()["predictions"][0]["api_call"].startswith("POST /api/v2/")
    server.stop()


async def test_mcp_is_served_at_slash_mcp_beside_predict(
    start_server: Callable[..., RunningServer], fixtures: Path
) -> None:
    from mcp import Client

    server = start_server("http", "--spec", str(fixtures / "petstore-3.0.yaml"))
    async with Client(f"{server.base_url}/mcp") as client:
        tools = await client.list_tools()
        result = await client.call_tool(
            "predict_next_call", {"prompt": "upload a photo of my pet", "history": ["POST /pets"]}
        )
    assert "predict_next_call" in {tool.name for tool in tools.tools}
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["predictions"][0]["api_call"] == "POST /pets/{petId}/photos"
    foreign = httpx.post(
        f"{server.base_url}/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"Origin": "http://evil.example", "Accept": "application/json, text/event-stream"},
    )
    assert foreign.status_code in (400, 403, 421)
    server.stop()
