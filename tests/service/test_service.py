"""The session every surface shares: load state, confinement, search, errors."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core import errors
from opensesame_predictor.core.errors import InvalidRequest, OpenSesameError, UnknownOperation
from opensesame_predictor.service import (
    ERRORS,
    LoadFailed,
    Loading,
    Service,
    meaning_of,
)


def unloaded(*specs: Path, **settings: Any) -> Service:
    service = Service(Settings(specs=[str(s) for s in specs], **settings))
    service.set_sources(service.settings.specs)
    return service


def test_the_load_state_goes_from_loading_to_ready(petstore_path: Path) -> None:
    service = unloaded(petstore_path)
    assert service.state == "loading"
    with pytest.raises(Loading):
        service.require_ready()
    anyio.run(service.wait_loaded)
    assert service.state == "ready"
    service.require_ready()
    assert len(service.catalog) == 13


def test_a_failed_first_load_is_recorded_not_raised(petstore_path: Path) -> None:
    service = unloaded(petstore_path)

    def failing(progress: Any = None) -> Any:
        raise OSError("the workspace folder went away")

    service.load = failing  # type: ignore[method-assign]
    service.load_once()
    assert service.state == "failed"
    assert service.failure == "the workspace folder went away"
    with pytest.raises(LoadFailed, match="loading specs failed: the workspace folder went away"):
        service.require_ready()
    service.load_once()  # settled: not tried again
    assert service.state == "failed"


def test_loading_in_the_background(petstore_path: Path) -> None:
    service = unloaded(petstore_path)
    release = threading.Event()
    real = service.load

    def slow(progress: Any = None) -> Any:
        release.wait(30)
        return real(progress)

    service.load = slow  # type: ignore[method-assign]
    service.start_loading()
    assert service.state == "loading"
    release.set()
    assert service.ready.wait(30)
    assert service.state == "ready"


def test_changed_files_are_reloaded(petstore_path: Path, tmp_path: Path) -> None:
    spec = tmp_path / "petstore.yaml"
    spec.write_text(petstore_path.read_text())
    service = unloaded(spec)
    service.load()
    assert not service.catalog.files_changed()
    spec.write_text(spec.read_text().replace("summary: List pets", "summary: All the pets"))
    assert service.catalog.files_changed()
    service.reload_changed_files()
    assert not service.catalog.files_changed()
    assert service.find_operation("GET /pets").summary == "All the pets"


def test_sources_are_confined_to_the_roots(petstore_path: Path, tmp_path: Path) -> None:
    service = unloaded()
    service.load()  # adding a source waits for the first load
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "pets.yaml").write_text(petstore_path.read_text())
    [source] = service.sources_for("pets.yaml", [root])
    assert source.location == str((root / "pets.yaml").resolve())
    with pytest.raises(InvalidRequest, match="outside the workspace"):
        service.sources_for(str(petstore_path), [root])
    with pytest.raises(InvalidRequest, match="loads files only from its workspace"):
        service.sources_for(str(petstore_path), [])
    assert service.sources_for("https://example.com/openapi.json", [])[0].is_url
    assert service.workspace_roots([], trust_client_roots=False) == []
    assert service.workspace_roots([], trust_client_roots=True) == [Path.cwd().resolve()]
    assert [s.name for s in service.add_sources(service.sources_for("pets.yaml", [root]))] == [
        "pets"
    ]


def test_search_and_find_operation(petstore_service: Service) -> None:
    found = petstore_service.search("upload a photo", limit=2)
    assert found.operations[0].key == "POST /pets/{petId}/photos"
    assert len(found.operations) == 2 and found.total > 2
    gets = petstore_service.search("pets", method="get")
    assert gets.operations and all(op.method == "GET" for op in gets.operations)
    assert petstore_service.find_operation("GET /pets/42").key == "GET /pets/{petId}"
    with pytest.raises(UnknownOperation, match="closest"):
        petstore_service.find_operation("GET /petz")


def test_refiner_health_when_refinement_is_off(petstore_service: Service) -> None:
    health = anyio.run(petstore_service.refiner_health)
    assert (health.provider, health.status) == ("none", "disabled")
    assert health.refiner["enabled"] is False


def test_every_error_has_a_meaning() -> None:
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, OpenSesameError)
    }
    assert codes | {Loading.code, LoadFailed.code} <= ERRORS.keys()
    assert meaning_of("no_such_code") == ERRORS[OpenSesameError.code]
    assert meaning_of("catalog_empty").kind == "unavailable"
    assert meaning_of("guardrail_violation").kind == "invalid"
