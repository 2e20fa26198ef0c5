"""YAML 1.2 as OpenAPI asks: what YAML 1.1 refuses or misreads in published specs loads, as
fast as before, and what is invalid still fails with a position."""

from __future__ import annotations

import pytest

from opensesame_predictor.core import yaml12
from opensesame_predictor.core.errors import SpecError
from opensesame_predictor.core.specs import parse_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: =", {"a": "="}),  # the 1.1 "value" tag is a plain string in 1.2
        ("when: 2020-01-07T16:21:76Z", {"when": "2020-01-07T16:21:76Z"}),  # no timestamps
        ("when: 2020-01-07", {"when": "2020-01-07"}),
        ("flag: yes", {"flag": "yes"}),  # only true/false are booleans
        ("flag: True", {"flag": True}),
        ("n: 012", {"n": 12}),  # no 1.1 octal
        ("n: 0o17", {"n": 15}),
        ("n: 0x1F", {"n": 31}),
        ("n: 1_000", {"n": "1_000"}),
        ("x: .inf", {"x": float("inf")}),
        ("x: 1.5e3", {"x": 1500.0}),
        ("x: ~", {"x": None}),
        ("t: 1:30", {"t": "1:30"}),  # no sexagesimal
        ('s: "caf\u00e9 \u009f"', {"s": "caf\u00e9 \u009f"}),  # C1 inside double quotes
        ("d: |\n  one\u2028two\n", {"d": "one\u2028two\n"}),  # U+2028 is no line break
        ("d: |\n  col1\tcol2\n  \tindented\n", {"d": "col1\tcol2\n\tindented\n"}),  # tabs
        ("base: &b {x: 1}\nmore:\n  <<: *b\n  y: 2", {"base": {"x": 1}, "more": {"x": 1, "y": 2}}),
    ],
)
def test_yaml_12_reads_what_published_specs_write(text: str, expected: object) -> None:
    assert yaml12.load(text) == expected


def test_private_use_characters_of_the_text_stay_what_they_are() -> None:
    assert yaml12.load('a: "\U000f0000 \u0085"') == {"a": "\U000f0000 \u0085"}
    # a text that uses them itself is read without hiding anything (1.1 line breaks)
    assert yaml12.load('a: "\U000f0000 x\u0090"') == {"a": "\U000f0000 x\u0090"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("a: [1, 2", "invalid YAML at line"),
        ("a:\n  - b\n c: d", "invalid YAML at line"),
        ("n: " + "9" * 5000, "unreadable value"),
        ('{"n": ' + "9" * 5000 + "}", "unreadable value"),  # JSON too
        ("[" * 100_000, "nested too deeply"),
    ],
)
def test_invalid_yaml_names_the_problem(text: str, reason: str) -> None:
    with pytest.raises(SpecError, match=reason):
        parse_text(text, "spec.yaml")
