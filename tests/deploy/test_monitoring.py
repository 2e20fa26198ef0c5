"""The monitoring profile's files, parsed: the Prometheus configuration, Grafana's provisioning,
and the dashboard, whose every query must name metrics that /metrics really exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_support import DEPLOY, ROOT, compose, load_yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from opensesame_predictor.config import Settings
from opensesame_predictor.service import Service
from opensesame_predictor.surfaces.http.app import create_app

PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "opensesame-predictor.yml"
DASHBOARD = GRAFANA / "dashboards" / "opensesame-predictor.json"

# PromQL words that are neither functions (those are followed by "(") nor metrics
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, legends)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, $__rate_interval included
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        word, call = match.group(1), match.group(2)
        if not call and word.lower() not in KEYWORDS:
            names.add(word)
    return names


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{route="/predict"}[$__rate_interval])))'
        " / on (instance) group_left sum without (x) (b_total) + c offset 5m > bool 0"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}


def dashboard() -> dict[str, Any]:
    document = json.loads(DASHBOARD.read_text())
    assert isinstance(document, dict)
    return document


def queries() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


@pytest.fixture
def exported(fixtures: Path) -> Iterator[set[str]]:
    """Sample names of /metrics after a few requests, one of them refused by a rate limit."""
    settings = Settings(
        specs=[str(fixtures / "petstore-3.0.yaml"), str(fixtures / "tasks-3.1.json")],
        rate_limit_per_user="2/minute",
    )
    runtime = Service(settings)
    runtime.set_sources(settings.specs)
    runtime.load()
    with TestClient(create_app(runtime), raise_server_exceptions=False) as client:
        assert client.get("/health").status_code == 200
        body = {"prompt": "upload a photo of the pet I just created", "history": ["POST /pets"]}
        statuses = [
            client.post("/predict", json=body, headers={"X-User-Id": "u"}).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        response = client.get("/metrics")
    assert response.status_code == 200
    yield {
        sample.name
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_the_dashboard_queries_exported_metrics(exported: set[str]) -> None:
    named = set().union(*(metric_names(q) for q in queries()))
    assert named, "the dashboard has no queries"
    missing = named - exported
    assert not missing, f"not exported by /metrics: {sorted(missing)}"


def test_the_dashboard_shows_what_it_promises() -> None:
    named = set().union(*(metric_names(q) for q in queries()))
    for metric in (
        "opensesame_http_requests_total",  # requests
        "opensesame_http_request_duration_seconds_bucket",  # latency percentiles
        "opensesame_rate_limit_rejections_total",  # rate-limit rejections
        "opensesame_cache_hit_ratio",  # cache hit ratio
        "opensesame_specs_loaded",  # specs loaded
    ):
        assert metric in named, metric
    assert any(q.startswith("histogram_quantile(0.95") for q in queries())


def test_the_dashboard_is_well_formed() -> None:
    document = dashboard()
    assert document["uid"] and document["title"]
    panels = document["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    datasource = load_yaml(DATASOURCES)["datasources"][0]
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_grafana_provisioning_matches_the_compose_file() -> None:
    services = compose()["services"]
    grafana = services["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert (ROOT / "deploy/grafana/provisioning").exists()
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"

    datasources = load_yaml(DATASOURCES)
    assert datasources["apiVersion"] == 1
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    host_port = datasource["url"].removeprefix("http://")
    host, _, port = host_port.partition(":")
    assert host in services
    assert any(p.endswith(f":{port}") for p in services[host]["ports"])

    providers = load_yaml(PROVIDERS)
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/{DASHBOARD.name}"


def test_prometheus_scrapes_the_services() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prometheus["volumes"])
    config_path = next(
        a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file=")
    )
    assert mounts["./deploy/prometheus/prometheus.yml"] == config_path

    config = load_yaml(PROMETHEUS)
    assert config["global"]["scrape_interval"]
    targets: dict[str, str] = {}  # service -> port scraped
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.partition(":")
                targets[host] = port
        for dns in job.get("dns_sd_configs", []):
            assert dns["type"] == "A"
            for name in dns["names"]:
                targets[name] = str(dns["port"])
    predictors = {
        n for n, s in services.items() if s.get("image") == services["predictor"]["image"]
    }
    assert set(targets) == predictors
    assert set(targets.values()) == {"8000"}
