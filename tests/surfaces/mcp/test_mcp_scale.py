"""With the GitHub and Stripe specs loaded (1,000+ operations), tools/list stays ≤ 4 KB and
every answer stays sized for an agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from opensesame_predictor.config import Settings
from opensesame_predictor.present import DESCRIBE_BUDGET
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.mcp.server import build_server

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "eval" / "specs"
GITHUB = SPECS / "github-2020-08.json"
STRIPE = SPECS / "stripe-2023-08.yaml"

pytestmark = pytest.mark.skipif(
    not (GITHUB.exists() and STRIPE.exists()), reason="../shared/eval/specs is not present"
)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Loaded once for the module: parsing both specs takes a few seconds."""
    store = tmp_path_factory.mktemp("store") / "store.json"
    runtime = Service(Settings(specs=[str(GITHUB), str(STRIPE)], database_url=str(store)))
    runtime.set_sources(runtime.settings.specs)
    runtime.load()
    yield runtime


def compact(data: object) -> int:
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


async def test_tools_list_stays_under_4_kb_with_a_large_catalog(big: Service) -> None:
    assert len(big.catalog) > 1000
    for mode in ("auto", "legacy"):
        async with Client(build_server(big), mode=mode) as client:
            result = await client.list_tools()
        serialized = result.model_dump_json(by_alias=True, exclude_none=True)
        assert len(serialized.encode()) <= 4096, (mode, len(serialized))


async def test_describe_trims_the_largest_operations_to_the_budget(big: Service) -> None:
    widest = sorted(
        big.catalog.operations,
        key=lambda op: len(op.response_fields) + len(op.body_fields) + len(op.parameters),
    )[-5:]
    async with Client(build_server(big)) as client:
        for op in widest:
            result = await client.call_tool("describe_endpoint", {"api_call": op.uid})
            assert not result.is_error
            data = result.structured_content
            assert data is not None
            assert compact(data) <= DESCRIBE_BUDGET
            assert data["truncated"] is True
            assert data["api_call"] == op.key


async def test_answers_stay_small_over_a_large_catalog(big: Service) -> None:
    async with Client(build_server(big)) as client:
        predicted = await client.call_tool(
            "predict_next_call", {"prompt": "create a payment intent for a customer"}
        )
        searched = await client.call_tool(
            "search_endpoints", {"query": "list pull requests", "limit": 50}
        )
        listed = await client.call_tool("list_specs", {})
    assert predicted.structured_content is not None
    assert compact(predicted.structured_content) < 8192
    assert "/v1/payment_intents" in predicted.structured_content["predictions"][0]["api_call"]
    assert searched.structured_content is not None
    assert compact(searched.structured_content) < 12288
    assert listed.structured_content is not None
    names = [s["name"] for s in listed.structured_content["specs"]]
    assert names == ["github-2020-08", "stripe-2023-08"]
