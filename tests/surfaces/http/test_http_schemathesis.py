"""schemathesis against the service's own /openapi.json, every check on, zero failures.

It runs schemathesis's engine in process over the ASGI app (all phases: examples, coverage,
fuzzing, stateful), so the pytest plugin stays off. Rate limits are off for the run: a fuzzer
is one very busy user, and a 429 for valid data would be reported as a rejection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.engine import Status, events, from_schema

from opensesame_predictor.cli import http_app
from opensesame_predictor.core.guardrails import INJECTION_RULES
from support.services import make_service

MAX_EXAMPLES = 25
# A fixed seed keeps CI reproducible; change it (or drop it) locally to explore new inputs.
SEED = 20261126


def refused_by_design(body: Any) -> bool:
    """Prompts the guardrails refuse: their patterns cannot be written in JSON Schema."""
    prompt = body.get("prompt") if isinstance(body, dict) else None
    return isinstance(prompt, str) and any(p.search(prompt) for p in INJECTION_RULES.values())


def test_schemathesis_all_checks(fixtures: Path) -> None:
    runtime = make_service(
        fixtures / "petstore-3.0.yaml", fixtures / "tasks-3.1.json", rate_limit_enabled=False
    )
    app = http_app(runtime)
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "checks": {"enabled": True},
            "generation": {"max-examples": MAX_EXAMPLES},
        }
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)

    @schema.hook
    def filter_body(_: Any, body: Any) -> bool:
        return not refused_by_design(body)

    failures: list[str] = []
    errors: list[str] = []
    tested: set[str] = set()
    finished = None
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            if event.label and event.status in (Status.SUCCESS, Status.FAILURE):
                tested.add(event.label)
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        failures.append(
                            f"{event.label} [{event.phase}] {check.name}: {failure.title}\n"
                            f"{failure.message}\n{check.failure_info.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(repr(event))
        elif isinstance(event, events.EngineFinished):
            finished = event
    assert finished is not None
    assert not errors, errors
    assert not failures, "\n\n".join(failures)
    assert not finished.failures
    assert tested >= {"POST /predict", "GET /", "GET /health", "GET /metrics"}
