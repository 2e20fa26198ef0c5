"""The spec store: L1 memory + L2 TinyDB file, TTL, content-hash keys, corruption recovery,
several processes at once, stale entries served when a refetch fails, counters, privacy."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

import platformdirs
import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import SpecLoader, SpecSource
from opensesame_predictor.core.fetch import FetchPolicy
from opensesame_predictor.core.models import Operation
from opensesame_predictor.core.specs import ParsedSpec
from opensesame_predictor.core.store import STORE_FORMAT, SpecStore, StoredSpec
from opensesame_predictor.service import Service
from support import Clock, ParseCounter
from support.spec_server import LocalServer, spec_route

NOW = time.time()  # entries are stored now: older ones would be evicted when a store opens


def entry(source: str, content_hash: str = "h1", stored_at: float = NOW) -> StoredSpec:
    operation = Operation(spec="s", method="GET", path=f"/{content_hash}", operation_id="op")
    parsed = ParsedSpec(
        title=f"spec {source}",
        version="1",
        openapi_version="3.0.0",
        server_paths=[],
        operations=[operation],
    )
    return StoredSpec(source=source, content_hash=content_hash, stored_at=stored_at, parsed=parsed)


def stored_sources(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    return sorted(doc["source"] for doc in data["specs"].values())


# --- L1 / L2 ---------------------------------------------------------------------------------


def test_put_and_get_through_memory_and_file(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "store.json"
    clock = Clock()
    store = SpecStore(path, clock=clock)
    assert store.get("a.yaml") is None
    store.put(entry("a.yaml"))
    assert store.get("a.yaml") == entry("a.yaml")  # from L1
    assert (store.stats.l1_hits, store.stats.l2_hits, store.stats.misses) == (1, 0, 1)
    assert store.stats.writes == 1
    assert stored_sources(path) == ["a.yaml"]

    fresh = SpecStore(path, clock=clock)  # a new process: L1 is empty, L2 has it
    assert fresh.get("a.yaml") == entry("a.yaml")
    assert fresh.get("a.yaml") == entry("a.yaml")
    assert (fresh.stats.l1_hits, fresh.stats.l2_hits, fresh.stats.misses) == (1, 1, 0)
    assert fresh.stats.hit_ratio == 1.0
    assert fresh.sources() == ["a.yaml"]


def test_a_memory_only_store_works_without_a_file() -> None:
    store = SpecStore(None)
    store.put(entry("a.yaml"))
    assert store.get("a.yaml") is not None and store.sources() == ["a.yaml"]
    assert store.stats.writes == 0


def test_put_replaces_the_entry_of_a_source(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = SpecStore(path)
    store.put(entry("a.yaml", "h1"))
    store.put(entry("a.yaml", "h2"))
    store.put(entry("b.yaml", "h1"))
    assert stored_sources(path) == ["a.yaml", "b.yaml"]
    reread = SpecStore(path).get("a.yaml")
    assert reread is not None and reread.content_hash == "h2"


def test_entries_are_keyed_by_content_hash(tmp_path: Path) -> None:
    store = SpecStore(tmp_path / "store.json")
    store.put(entry("a.yaml", "h1"))
    assert store.get("a.yaml", content_hash="h1") is not None
    assert store.get("a.yaml", content_hash="h2") is None
    assert SpecStore(tmp_path / "store.json").get("a.yaml", content_hash="h2") is None


def test_hit_and_miss_counters(tmp_path: Path) -> None:
    store = SpecStore(tmp_path / "store.json")
    assert store.stats.hit_ratio == 0.0
    store.get("a")
    store.put(entry("a"))
    store.get("a")
    store.get("a")
    store.get("b")
    assert (store.stats.l1_hits, store.stats.l2_hits, store.stats.misses) == (2, 0, 2)
    assert store.stats.hit_ratio == 0.5


def test_entries_of_another_store_format_read_as_misses(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    SpecStore(path).put(entry("a.yaml"))
    data = json.loads(path.read_text())
    for doc in data["specs"].values():
        doc["format"] = STORE_FORMAT - 1
    path.write_text(json.dumps(data))
    store = SpecStore(path)
    assert store.get("a.yaml") is None and store.stats.misses == 1


def test_an_unreadable_entry_is_a_miss_and_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.json"
    document = {"source": "a.yaml", "format": STORE_FORMAT, "stored_at": NOW}
    path.write_text(json.dumps({"specs": {"1": document}}))
    store = SpecStore(path)
    with caplog.at_level(logging.WARNING):
        assert store.get("a.yaml") is None
    assert "store entry for a.yaml is unreadable" in caplog.text
    store.put(entry("a.yaml"))
    assert SpecStore(path).get("a.yaml") == entry("a.yaml")


def test_each_spec_lives_in_a_file_of_its_own(tmp_path: Path) -> None:
    """Storing one spec never rewrites another's file, and the index holds no spec content:
    a workspace of hundreds of specs loads in linear time."""
    path = tmp_path / "store.json"
    store = SpecStore(path)
    store.put(entry("a.yaml"))
    [first] = list(store.blobs.iterdir())
    before = first.stat()
    for number in range(50):
        store.put(entry(f"spec{number}.yaml"))
    assert len(list(store.blobs.glob("*.json"))) == 51
    after = first.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert b"operations" not in path.read_bytes()  # the index: sources, hashes, file names
    assert path.stat().st_size < 300 * 51


def test_a_new_version_of_a_spec_replaces_its_file(tmp_path: Path) -> None:
    store = SpecStore(tmp_path / "store.json")
    store.put(entry("a.yaml", "h1"))
    store.put(entry("a.yaml", "h2"))
    [only] = list(store.blobs.iterdir())
    assert entry("a.yaml", "h2").blob == only.name
    store.put(entry("a.yaml", "h2"))  # the same content again: nothing to write
    assert list(store.blobs.iterdir()) == [only]


@pytest.mark.parametrize("damage", ["delete", "garble", "other-shape", "bad-operation"])
def test_a_missing_or_damaged_spec_file_is_a_miss_and_is_rebuilt(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.json"
    SpecStore(path).put(entry("a.yaml"))
    store = SpecStore(path)
    [blob] = list(store.blobs.iterdir())
    if damage == "delete":
        blob.unlink()
    elif damage == "garble":
        blob.write_bytes(b'{"title": "half a spe')
    elif damage == "other-shape":
        blob.write_text(json.dumps({"operations": "not a list"}))
    else:  # operations are plain dataclasses in memory, but still validated when read back
        document = json.loads(blob.read_text())
        document["operations"][0]["parameters"] = [{"name": "x", "location": "nowhere"}]
        blob.write_text(json.dumps(document))
    with caplog.at_level(logging.WARNING):
        assert store.get("a.yaml") is None
    assert "unreadable" in caplog.text
    store.put(entry("a.yaml"))
    assert SpecStore(path).get("a.yaml") == entry("a.yaml")


# --- TTL -------------------------------------------------------------------------------------


def test_the_ttl_is_an_hour_by_default_and_configurable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert SpecStore(None).ttl == 3600
    assert Settings().cache_ttl_seconds == 3600
    assert Service(Settings()).store.ttl == 3600
    monkeypatch.setenv("OPENSESAME_CACHE_TTL_SECONDS", "120")
    assert Service(Settings()).store.ttl == 120


def test_entries_expire_after_the_ttl(tmp_path: Path) -> None:
    clock = Clock()
    store = SpecStore(tmp_path / "store.json", ttl_seconds=3600, clock=clock)
    store.put(entry("a.yaml", stored_at=clock()))
    clock.now += 3599
    cached = store.get("a.yaml")
    assert cached is not None and store.is_fresh(cached) and store.stats.l1_hits == 1
    clock.now += 2
    stale = store.get("a.yaml")  # L1 dropped it; L2 still answers, marked stale
    assert stale is not None and not store.is_fresh(stale)
    assert store.stats.l2_hits == 1
    renewed = store.touch(stale)  # what a 304 revalidation does
    assert renewed.stored_at == clock.now and store.is_fresh(renewed)
    assert store.is_fresh(SpecStore(store.path, clock=clock).get("a.yaml"))  # type: ignore[arg-type]


def test_a_stale_file_entry_is_parsed_again(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    store = SpecStore(tmp_path / "store.json", clock=clock)
    loader = SpecLoader(store, FetchPolicy(), 1 << 24)
    parses = ParseCounter(monkeypatch)
    source = SpecSource(str(fixtures / "petstore-3.0.yaml"), fixtures)
    loader.load(source, "petstore")
    loader.load(source, "petstore")
    assert parses.calls == 1
    clock.now += 3601
    assert loader.load(source, "petstore").summary.operations == 13
    assert parses.calls == 2


# --- warm start and content hashes through the runtime ---------------------------------------


def test_a_warm_start_skips_parsing(fixtures: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parses = ParseCounter(monkeypatch)
    settings = Settings(specs=[str(fixtures / "petstore-3.0.yaml"), str(fixtures / "cyclic.yaml")])
    cold = Service.from_settings(settings)
    assert parses.calls == 2 and cold.store.stats.misses == 2 and cold.store.stats.writes == 2
    warm = Service.from_settings(settings)  # a second process on the same store file
    assert parses.calls == 2
    assert warm.store.stats.l2_hits == 2 and warm.store.stats.misses == 0
    assert [op.uid for op in warm.catalog.operations] == [op.uid for op in cold.catalog.operations]
    assert warm.catalog.operations == cold.catalog.operations


def test_changing_a_file_parses_it_again(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "openapi.yaml"
    shutil.copy(fixtures / "petstore-3.0.yaml", spec)
    parses = ParseCounter(monkeypatch)
    Service.from_settings(Settings(specs=[str(spec)]))
    spec.write_text(spec.read_text().replace("title: Petstore API", "title: Pet Shop API"))
    runtime = Service.from_settings(Settings(specs=[str(spec)]))
    assert parses.calls == 2
    assert runtime.catalog.specs[0].title == "Pet Shop API"


def test_changing_a_file_that_a_ref_reads_parses_again(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    split = tmp_path / "split"
    shutil.copytree(fixtures / "split", split)
    settings = Settings(specs=[str(split / "openapi.yaml")])
    parses = ParseCounter(monkeypatch)
    Service.from_settings(settings)
    Service.from_settings(settings)
    assert parses.calls == 1
    schemas = split / "schemas" / "invoice.yaml"
    schemas.write_text(schemas.read_text().replace("voidedAt:", "cancelledAt:"))
    runtime = Service.from_settings(settings)
    assert parses.calls == 2
    invoice = runtime.catalog.get("GET /invoices/{invoiceId}")
    assert invoice is not None and "cancelledAt" in invoice.response_fields


# --- corruption ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff\xfe garbage \x80\x81",
        b'{"specs": {"1": {"source": "a.yaml", "content_ha',
        b"[1, 2, 3]",
        b'{"specs": ["not", "a", "table"]}',
        b'{"specs": {"1": "not a document"}}',
        b'{"specs": {"one": {"source": "a.yaml"}}}',
        b'{"specs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["garbage", "truncated", "list", "table-list", "doc-string", "bad-id", "deep"],
)
def test_a_corrupt_file_is_quarantined_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "store.json"
    path.write_bytes(content)
    store = SpecStore(path)
    with caplog.at_level(logging.WARNING, logger="opensesame_predictor.core.store"):
        assert store.get("a.yaml") is None
    quarantined = tmp_path / "store.json.corrupt"
    assert quarantined.read_bytes() == content
    assert store.stats.quarantined == 1
    [record] = [r for r in caplog.records if "was corrupt" in r.getMessage()]
    assert record.levelno == logging.WARNING and str(quarantined) in record.getMessage()
    store.put(entry("a.yaml"))
    assert stored_sources(path) == ["a.yaml"]
    assert SpecStore(path).get("a.yaml") == entry("a.yaml")


def test_a_second_corruption_keeps_the_first_quarantined_file(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.write_bytes(b"first")
    SpecStore(path).get("a")
    path.write_bytes(b"second")
    SpecStore(path).get("a")
    kept = sorted(p.read_bytes() for p in tmp_path.glob("store.json*.corrupt"))
    assert kept == [b"first", b"second"]


def test_the_runtime_recovers_from_a_corrupt_store(
    fixtures: Path, isolated_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    isolated_store.parent.mkdir(parents=True, exist_ok=True)
    isolated_store.write_bytes(b"{not json")
    with caplog.at_level(logging.WARNING):
        runtime = Service.from_settings(Settings(specs=[str(fixtures / "petstore-3.0.yaml")]))
    assert len(runtime.catalog.operations) == 13
    assert runtime.store.stats.quarantined == 1
    assert "was corrupt" in caplog.text
    assert stored_sources(isolated_store) == [str((fixtures / "petstore-3.0.yaml").resolve())]


# --- several processes -----------------------------------------------------------------------


def write_entries(path: str, worker: int, count: int, barrier: Any) -> None:
    """Runs in a spawned process: write `count` distinct entries to the shared store."""
    store = SpecStore(Path(path))
    barrier.wait(timeout=30)
    for index in range(count):
        store.put(entry(f"worker{worker}/spec{index}.yaml", content_hash=f"h{worker}-{index}"))


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=write_entries, args=(str(path), worker, 25, barrier))
        for worker in (1, 2)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
    assert [process.exitcode for process in workers] == [0, 0]
    expected = sorted(f"worker{w}/spec{i}.yaml" for w in (1, 2) for i in range(25))
    assert stored_sources(path) == expected  # the file is valid JSON with every entry
    store = SpecStore(path)
    assert all(store.get(source) is not None for source in expected)
    assert store.stats.quarantined == 0
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.corrupt"))


# --- stale entries when a refetch fails -------------------------------------------------------


def test_a_stale_url_entry_is_served_when_the_refetch_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = "openapi: 3.0.0\ninfo: {title: Remote}\npaths:\n  /notes:\n    get: {}\n"
    clock = Clock()
    store = SpecStore(tmp_path / "store.json", clock=clock)
    runtime = Service(Settings(allow_private_urls=True, fetch_timeout_seconds=1), store=store)
    with LocalServer({"/openapi.yaml": spec_route(spec)}) as server:
        url = server.url("/openapi.yaml")
        runtime.set_sources([url])
        runtime.load()
    clock.now += 3601  # expired, and the server is gone
    with caplog.at_level(logging.WARNING):
        catalog = runtime.load()
    [summary] = catalog.specs
    assert summary.error is None and summary.operations == 1
    assert [op.key for op in catalog.operations] == ["GET /notes"]
    [warning] = summary.warnings
    assert warning.startswith("serving the stored copy: refetch failed (fetch failed")
    assert store.stats.stale_served == 1
    assert f"spec {url}: serving the stored copy" in caplog.text


def test_a_url_that_never_loaded_has_nothing_stale_to_serve(tmp_path: Path) -> None:
    server = LocalServer()
    url = server.url("/openapi.yaml")
    server.stop()
    runtime = Service(Settings(allow_private_urls=True, fetch_timeout_seconds=1))
    runtime.set_sources([url])
    [summary] = runtime.load().specs
    assert summary.error is not None and summary.error.startswith("fetch failed")
    assert runtime.store.stats.stale_served == 0


# --- where the file lives, and what it holds -------------------------------------------------


def test_the_store_file_location(tmp_path: Path) -> None:
    default = Settings(database_url="").database_path()
    cache_dir = platformdirs.user_cache_dir("opensesame-predictor", appauthor=False)
    assert default == Path(cache_dir) / "store.json"
    assert Settings(database_url=f"tinydb://{tmp_path}/s.json").database_path() == (
        tmp_path / "s.json"
    )
    assert Settings(database_url=str(tmp_path / "x.json")).database_path() == tmp_path / "x.json"


def test_runtime_uses_the_configured_store_file(fixtures: Path, isolated_store: Path) -> None:
    runtime = Service.from_settings(Settings(specs=[str(fixtures / "cyclic.yaml")]))
    assert runtime.store.path == isolated_store
    assert isolated_store.is_file() and Path(f"{isolated_store}.lock").exists()


def test_prompts_are_never_stored(fixtures: Path, isolated_store: Path) -> None:
    runtime = Service.from_settings(Settings(specs=[str(fixtures / "petstore-3.0.yaml")]))
    prompt = "please upload the photo of my iguana Zanzibar-4711 right away"
    runtime.predictor.predict({"prompt": prompt, "history": ["POST /pets"]})
    runtime.predictor.predict({"prompt": "delete pet Zanzibar-4711", "history": []})
    runtime.reload_if_changed()
    runtime.add_source(SpecSource(str(fixtures / "cyclic.yaml"), fixtures))
    files = [p for p in isolated_store.parent.rglob("*") if p.is_file()]
    assert isolated_store in files
    # the store does hold the specs
    assert any(b"Petstore API" in file.read_bytes() for file in files if file.suffix == ".json")
    for file in files:
        data = file.read_bytes()
        assert b"Zanzibar" not in data and b"iguana" not in data, file


# --- size, age and leftovers ------------------------------------------------------------------


def test_the_oldest_entries_go_when_the_spec_files_exceed_the_cap(tmp_path: Path) -> None:
    clock = Clock()
    one = len(entry("s0.yaml").parsed.model_dump_json())
    store = SpecStore(tmp_path / "store.json", clock=clock, max_bytes=one * 3 + one // 2)
    for number in range(5):
        store.put(entry(f"s{number}.yaml"))
        clock.now += 1
    assert store.evict() == 2
    assert sorted(store.sources()) == ["s2.yaml", "s3.yaml", "s4.yaml"]
    assert len(list(store.blobs.iterdir())) == 3
    assert SpecStore(tmp_path / "store.json", clock=clock).get("s0.yaml") is None


def test_entries_not_revalidated_for_the_maximum_age_go(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "store.json"
    store = SpecStore(path, clock=clock, max_age_seconds=7 * 24 * 3600)
    store.put(entry("old.yaml", stored_at=clock.now))
    clock.now += 6 * 24 * 3600
    store.put(entry("new.yaml", stored_at=clock.now))
    assert store.evict() == 0  # stale, but a stale copy still serves when a refetch fails
    clock.now += 2 * 24 * 3600
    reopened = SpecStore(path, clock=clock, max_age_seconds=7 * 24 * 3600)  # evicts on open
    assert reopened.sources() == ["new.yaml"]


def test_leftovers_of_killed_writers_are_removed_when_the_store_opens(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    store = SpecStore(path)
    store.put(entry("a.yaml"))
    old_tmp = tmp_path / ".store.json.123.abc.tmp"
    young_tmp = tmp_path / ".store.json.456.def.tmp"
    orphan = store.blobs / "0000-orphan-v11.json"
    for leftover in (old_tmp, young_tmp, orphan, store.blobs / ".x.json.9.tmp"):
        leftover.write_bytes(b"{}" * 1000)
    hour_ago = time.time() - 3600
    for leftover in (old_tmp, orphan, store.blobs / ".x.json.9.tmp"):
        os.utime(leftover, (hour_ago, hour_ago))
    SpecStore(path)
    assert not old_tmp.exists() and not orphan.exists()
    assert young_tmp.exists()  # a writer may be at work on it right now
    assert SpecStore(path).get("a.yaml") == entry("a.yaml")
