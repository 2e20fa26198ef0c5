"""docker-compose.yml, checked without a container runtime: valid against the Compose
Specification's JSON schema (vendored in deploy/), and the three setups it promises."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from deploy_support import COMPOSE, DEPLOY, ROOT, compose
from jsonschema import Draft202012Validator

from opensesame_predictor.config import Settings


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return compose()


@pytest.fixture(scope="module")
def services(document: dict[str, Any]) -> dict[str, Any]:
    return dict(document["services"])


def test_the_schema_is_the_compose_specification() -> None:
    schema = json.loads((DEPLOY / "compose-spec.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["title"] == "Compose Specification"
    assert (DEPLOY / "compose-spec.LICENSE").read_text().lstrip().startswith("Apache License")


def test_the_compose_file_is_valid(document: dict[str, Any]) -> None:
    schema = json.loads((DEPLOY / "compose-spec.json").read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_schema_catches_mistakes(document: dict[str, Any]) -> None:
    """The validation has teeth: a misspelt key, a wrong type, an unknown value are errors."""
    validator = Draft202012Validator(json.loads((DEPLOY / "compose-spec.json").read_text()))
    misspelt = {**document, "services": {"x": {"image": "a", "enviroment": {}}}}
    assert not validator.is_valid(misspelt)
    wrong = {**document, "services": {"x": {"image": "a", "profiles": "production"}}}
    assert not validator.is_valid(wrong)
    condition = {"depends_on": {"redis": {"condition": "service_ready"}}}
    assert not validator.is_valid({**document, "services": {"x": {"image": "a", **condition}}})


def test_the_default_service_serves_on_8000(services: dict[str, Any]) -> None:
    default = {name for name, s in services.items() if "profiles" not in s}
    assert default == {"predictor"}
    predictor = services["predictor"]
    assert predictor["build"] == "."
    assert "8000:8000" in predictor["ports"]
    assert "store:/data" in predictor["volumes"]


def test_production_runs_replicas_on_a_shared_redis(services: dict[str, Any]) -> None:
    production = {n for n, s in services.items() if "production" in s.get("profiles", [])}
    assert production == {"predictor-production", "redis"}
    replicas = services["predictor-production"]
    assert replicas["deploy"]["replicas"] >= 2
    environment = replicas["environment"]
    assert environment["OPENSESAME_RATE_LIMIT_STORAGE_URI"] == "redis://redis:6379"
    # the salt comes from the operator, never from this file
    assert environment["OPENSESAME_RATE_LIMIT_SALT"] == "${OPENSESAME_RATE_LIMIT_SALT:-}"
    assert replicas["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "healthcheck" in services["redis"]
    assert replicas["image"] == services["predictor"]["image"]  # the same image
    start, _, end = replicas["ports"][0].partition(":")[0].partition("-")
    assert int(end) - int(start) + 1 == replicas["deploy"]["replicas"]


def test_monitoring_runs_prometheus_and_grafana(services: dict[str, Any]) -> None:
    monitoring = {n for n, s in services.items() if "monitoring" in s.get("profiles", [])}
    assert monitoring == {"prometheus", "grafana"}


def test_every_opensesame_variable_is_a_setting() -> None:
    fields = set(Settings.model_fields)
    names = set(re.findall(r"\bOPENSESAME_[A-Z0-9_]+", COMPOSE.read_text()))
    assert names
    for name in names:
        assert name.removeprefix("OPENSESAME_").lower() in fields, name


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
        assert re.search(r":v?\d+\.\d+\.\d+", image), f"{name}: pin a version ({image})"


def test_bind_mounts_exist_in_the_repository(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_named_volumes_are_declared(document: dict[str, Any], services: dict[str, Any]) -> None:
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/", "$")):
                assert source in document["volumes"], source
