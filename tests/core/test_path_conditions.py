"""Operations told apart by a query or fragment written into their path key
(`.../provisioned-concurrency#Qualifier` beside `...#List=ALL`, `/rides?page={page}`): a call
resolves on its bare path, and its query (or the fragment, written as the spec lists it) picks
the operation; query-protocol actions (`/#Action=...`) resolve as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensesame_predictor.core.catalog import Catalog, query_values
from opensesame_predictor.core.models import HistoryEvent, PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.service import Service
from support.mcp import call as call_tool
from support.mcp import text_of
from support.services import service_over

SPEC = Path(__file__).resolve().parents[1] / "data" / "path-conditions.yaml"
CONCURRENCY = "/2017-10-31/functions/{FunctionName}/provisioned-concurrency"
QUALIFIER = f"{CONCURRENCY}#Qualifier"
LIST_ALL = f"{CONCURRENCY}#List=ALL"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Service:
    runtime = service_over(SPEC, tmp_path_factory)
    assert runtime.catalog.errors == []
    return runtime


@pytest.fixture(scope="module")
def predictor(service: Service) -> Predictor:
    return service.predictor


@pytest.fixture(scope="module")
def catalog(predictor: Predictor) -> Catalog:
    return predictor.catalog


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        # a concrete call: its query says which operation
        ("GET /2017-10-31/functions/f1/provisioned-concurrency?Qualifier=3", f"GET {QUALIFIER}"),
        ("GET /2017-10-31/functions/f1/provisioned-concurrency?List=ALL", f"GET {LIST_ALL}"),
        (
            "DELETE /2017-10-31/functions/f1/provisioned-concurrency?Qualifier=3",
            f"DELETE {QUALIFIER}",
        ),
        (
            "https://lambda.eu-west-1.amazonaws.com/2017-10-31/functions/f1/"
            "provisioned-concurrency?List=ALL&MaxItems=5",
            f"GET {LIST_ALL}",
        ),
        # written as the spec lists it
        (f"GET {QUALIFIER}", f"GET {QUALIFIER}"),
        (f"GET {LIST_ALL}", f"GET {LIST_ALL}"),
        ("GET /2017-10-31/functions/f1/provisioned-concurrency#List=ALL", f"GET {LIST_ALL}"),
        # a templated query: any values
        ("GET /rides?page=2&per_page=10", "GET /rides?page={page}&per_page={per_page}"),
        (
            "GET /rides?page={page}&per_page={per_page}",
            "GET /rides?page={page}&per_page={per_page}",
        ),
    ],
)
def test_the_query_picks_among_the_operations_of_one_path(
    catalog: Catalog, call: str, expected: str
) -> None:
    op = catalog.match(call)
    assert op is not None and op.key == expected


def test_an_operation_without_conditions_is_the_fallback(catalog: Catalog) -> None:
    find = "GET /2018-10-31/layers#find=LayerVersion&Arn"
    expected = {
        "GET /2018-10-31/layers": "GET /2018-10-31/layers",
        "GET /2018-10-31/layers?MaxItems=5": "GET /2018-10-31/layers",  # an unrelated query
        "GET /2018-10-31/layers?find=LayerVersion": "GET /2018-10-31/layers",  # no Arn
        "GET /2018-10-31/layers?find=LayerVersion&Arn=arn:aws:lambda:x:1:layer:y:2": find,
        find: find,
    }
    for call, key in expected.items():
        op = catalog.match(call)
        assert op is not None and op.key == key, call


def test_a_path_whose_operations_all_have_conditions_still_takes_a_bare_call(
    catalog: Catalog,
) -> None:
    rides = catalog.match("GET /rides")  # page and per_page are only what the key is about
    assert rides is not None and rides.key == "GET /rides?page={page}&per_page={per_page}"
    unset = catalog.match("PUT /2017-10-31/functions/f1/provisioned-concurrency")
    assert unset is not None and unset.key == f"PUT {QUALIFIER}"


def test_an_operations_own_key_names_it(catalog: Catalog) -> None:
    for op in catalog.operations:
        assert catalog.get(op.key) is op
        assert catalog.match(op.key) is op


def test_a_query_protocol_action_still_names_its_operation_beside_conditions(
    catalog: Catalog,
) -> None:
    expected = {
        "POST /#Action=ListQueues": "POST /#Action=ListQueues",
        "https://sqs.eu-west-1.amazonaws.com/?Action=ListQueues": "POST /#Action=ListQueues",
        "/?Action=ListQueues&search=x": "POST /#Action=ListQueues",
        "https://sqs.eu-west-1.amazonaws.com/1234/orders?Action=PurgeQueue": (
            "GET /{AccountNumber}/{QueueName}/#Action=PurgeQueue"
        ),
        # on the same bare path `/`, a condition that is no action
        "GET /?search=orders": "GET /?search={query}",
    }
    for call, key in expected.items():
        op = catalog.match(call)
        assert op is not None and op.key == key, call


def test_a_history_call_with_a_query_counts_and_fills_the_next(predictor: Predictor) -> None:
    listed = "GET /2017-10-31/functions/orders-fn/provisioned-concurrency?List=ALL"
    request = PredictRequest(
        prompt="delete the provisioned concurrency configuration of that function",
        history=[HistoryEvent(api_call=listed)],
    )
    assert predictor.unmatched(request, predictor.catalog) == []
    delete = next(
        p for p in predictor.predict(request).predictions if p.api_call == f"DELETE {QUALIFIER}"
    )
    assert delete.parameters["FunctionName"] == "orders-fn"
    assert delete.parameter_sources["FunctionName"] == "history"


def test_a_parameter_next_to_the_query_of_a_key_is_read_from_the_history(
    predictor: Predictor,
) -> None:
    """`/pricing/{country}?currency={currency}`: the query is no part of the last segment."""
    request = PredictRequest(
        prompt="and the tax rates of that country?",
        history=[HistoryEvent(api_call="GET /pricing/fr?currency=EUR")],
    )
    rates = next(
        p
        for p in predictor.predict(request).predictions
        if p.api_call == "GET /countries/{country}/rates"
    )
    assert rates.parameters == {"country": "fr"}
    assert rates.parameter_sources == {"country": "history"}


def test_the_operations_of_one_path_include_those_told_apart_by_their_key(
    catalog: Catalog,
) -> None:
    on_path = {op.key for op in catalog.on_path(QUALIFIER)}
    assert on_path == {
        f"GET {QUALIFIER}",
        f"PUT {QUALIFIER}",
        f"DELETE {QUALIFIER}",
        f"GET {LIST_ALL}",
    }
    assert {op.key for op in catalog.on_path(CONCURRENCY)} == on_path


async def test_describe_names_the_other_operations_of_the_path(service: Service) -> None:
    concrete = "/2017-10-31/functions/f1/provisioned-concurrency?Qualifier=3"
    result = await call_tool(service, "describe_endpoint", {"api_call": concrete})
    note = text_of(result).splitlines()[0]
    assert note.startswith("No operation is exactly"), note
    assert f"showing GET {QUALIFIER}" in note and f"GET {LIST_ALL}" in note, note


def test_the_query_of_a_history_call_fills_the_next(predictor: Predictor) -> None:
    """`?Qualifier=prod` in the call made is a value the caller gave: the next call on that
    configuration takes it, from the history."""
    made = "GET /2017-10-31/functions/orders-fn/provisioned-concurrency?Qualifier=prod"
    request = PredictRequest(
        prompt="now delete that provisioned concurrency configuration",
        history=[HistoryEvent(api_call=made)],
    )
    delete = next(
        p for p in predictor.predict(request).predictions if p.api_call == f"DELETE {QUALIFIER}"
    )
    assert delete.parameters == {"FunctionName": "orders-fn", "Qualifier": "prod"}
    assert delete.parameter_sources["Qualifier"] == "history"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("GET /pricing/fr?currency=EUR", {"currency": "EUR"}),
        ("GET /rides?page=2&per_page=50#top", {"page": "2", "per_page": "50"}),
        ("GET /rides?page={page}&per_page=20", {"per_page": "20"}),  # a template gives none
        ("GET https://api.example.com/v1/search?q=red%20shoes", {"q": "red shoes"}),
        ("GET /rides", {}),
    ],
)
def test_query_values_of_a_call(call: str, expected: dict[str, str]) -> None:
    assert query_values(call) == expected
