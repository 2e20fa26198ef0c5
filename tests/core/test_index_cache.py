"""The index cache: a restart over unchanged specs reuses the built index; anything else
(a changed spec, a damaged or foreign file) rebuilds it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.index import PredictorIndex
from opensesame_predictor.service import Service


def load(spec: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> Service:
    """A new runtime over the spec; with `monkeypatch`, building an index fails the test."""
    runtime = Service(Settings(specs=[str(spec)]))
    runtime.set_sources([str(spec)])
    if monkeypatch is not None:
        forbid_building(monkeypatch)
    runtime.load()
    return runtime


def forbid_building(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("the index was built instead of read from the cache")

    monkeypatch.setattr(PredictorIndex, "__init__", refuse)


def index_files(runtime: Service) -> list[Path]:
    assert runtime.index_cache.directory is not None
    return sorted(runtime.index_cache.directory.glob("index-*.pickle"))


def test_a_restart_reuses_the_index(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "petstore.yaml"
    shutil.copy(fixtures / "petstore-3.0.yaml", spec)
    first = load(spec)
    [cached] = index_files(first)
    assert cached.stat().st_mode & 0o077 == 0
    request = {"prompt": "upload a photo of my pet", "history": ["POST /pets"]}
    expected = first.predictor.predict(request)

    with monkeypatch.context() as patch:
        second = load(spec, patch)
    again = second.predictor.predict(request)
    assert [p.api_call for p in again.predictions] == [p.api_call for p in expected.predictions]

    spec.write_text(spec.read_text().replace("Upload a pet photo", "Attach a picture"))
    third = load(spec)  # changed content: a new key, a new index
    assert len(index_files(third)) == 2
    assert any(op.summary == "Attach a picture" for op in third.predictor.catalog.operations)


def test_a_damaged_or_foreign_cache_file_is_rebuilt(
    fixtures: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = fixtures / "tasks-3.1.json"
    [cached] = index_files(load(spec))
    cached.write_bytes(b"not a pickle")
    rebuilt = load(spec)
    assert rebuilt.predictor.predict({"prompt": "list my projects"}).predictions
    [cached] = index_files(rebuilt)
    assert cached.read_bytes() != b"not a pickle"

    os.chmod(cached, 0o666)  # writable by others: never unpickled
    with caplog.at_level("WARNING"):
        assert load(spec).predictor.predict({"prompt": "list my projects"}).predictions
    assert "not private" in caplog.text


def test_a_symlinked_cache_file_is_never_followed(fixtures: Path, tmp_path: Path) -> None:
    """A link planted where a pickle is expected points at a file someone else wrote: it is
    not unpickled (that would run their code), and the index is rebuilt."""
    spec = fixtures / "tasks-3.1.json"
    [cached] = index_files(load(spec))
    planted = tmp_path / "planted.pickle"
    shutil.copy(cached, planted)
    cached.unlink()
    cached.symlink_to(planted)
    rebuilt = load(spec)
    assert rebuilt.predictor.predict({"prompt": "list my projects"}).predictions
    [cached] = index_files(rebuilt)
    assert not cached.is_symlink()


def test_the_cache_folder_and_the_store_are_private(fixtures: Path, isolated_store: Path) -> None:
    folder = isolated_store.parent / "indexes"
    folder.mkdir(parents=True)
    folder.chmod(0o777)  # a folder someone left open: tightened before anything is read
    runtime = load(fixtures / "tasks-3.1.json")
    assert folder.stat().st_mode & 0o777 == 0o700
    files = [isolated_store, *runtime.store.blobs.iterdir()]
    assert files and all(f.stat().st_mode & 0o077 == 0 for f in files)
    assert runtime.store.blobs.stat().st_mode & 0o077 == 0


def test_the_cached_index_serves_the_catalogs_own_operations(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pickle holds what was computed, not a second copy of every operation: read back,
    the index works over the operations the catalog loaded, and predicts as before."""
    spec = tmp_path / "petstore.yaml"
    shutil.copy(fixtures / "petstore-3.0.yaml", spec)
    first = load(spec)
    [cached] = index_files(first)
    assert b"Exchange a username and password" not in cached.read_bytes()
    request = {"prompt": "log in with my password", "history": ["GET /pets"]}
    expected = first.predictor.predict(request)

    with monkeypatch.context() as patch:
        second = load(spec, patch)
    catalog, index = second.predictor._state
    assert index.operations is catalog.operations
    assert index.text.operations is catalog.operations
    assert [len(p) for p in index.path_params] == [len(op.path_params) for op in catalog.operations]
    assert second.predictor.predict(request).model_dump(
        exclude={"metadata", "processing_time_ms"}
    ) == (expected.model_dump(exclude={"metadata", "processing_time_ms"}))


def test_an_index_refuses_operations_it_was_not_built_from(fixtures: Path) -> None:
    runtime = load(fixtures / "tasks-3.1.json")
    catalog, index = runtime.predictor._state
    with pytest.raises(ValueError, match="operations"):
        index.attach(catalog.operations[:-1])
