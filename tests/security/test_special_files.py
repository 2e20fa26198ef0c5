"""Loading never hangs nor reads without bound: a FIFO named like a spec, a device, a file
larger than the cap; in discovery, as a spec source, and behind an external $ref."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import discover
from opensesame_predictor.service import Service

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "openapi-pipe.yaml"
    os.mkfifo(path)
    return path


def test_discovery_skips_a_fifo_named_like_a_spec(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")  # not named openapi*: discovery would read its head
    (tmp_path / "openapi.yaml").write_bytes((FIXTURES / "petstore-3.0.yaml").read_bytes())
    assert [p.name for p in discover(tmp_path)] == ["openapi.yaml"]


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_a_special_file_is_refused_as_a_spec_and_the_others_serve(special: str, fifo: Path) -> None:
    source = str(fifo) if special == "fifo" else special
    settings = Settings(specs=[source, str(FIXTURES / "petstore-3.0.yaml")])
    catalog = Service.from_settings(settings).catalog
    [error] = catalog.errors
    assert "not a regular file" in (error.error or "")
    assert len(catalog) == 13


def test_a_file_larger_than_the_cap_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"openapi: 3.0.0\n" + b"#" * 5000)
    settings = Settings(specs=[str(big)], max_spec_bytes=1000)
    [error] = Service.from_settings(settings).catalog.errors
    assert "larger than 1000 bytes" in (error.error or "")


def test_an_external_ref_to_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "schemas.yaml")
    spec = tmp_path / "openapi.yaml"
    spec.write_text(
        "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n"
        "      responses:\n        '200':\n          description: ok\n          content:\n"
        "            application/json:\n              schema: {$ref: 'schemas.yaml#/A'}\n"
    )
    catalog = Service.from_settings(Settings(specs=[str(spec)])).catalog
    [error] = catalog.errors
    assert "not a regular file" in (error.error or "")
