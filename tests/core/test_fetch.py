"""Fetching spec URLs: size and time caps, conditional requests, and revalidation of stored
specs through the loader and the runtime (SSRF refusals are in tests/security)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from opensesame_predictor.config import Settings
from opensesame_predictor.core.catalog import SpecLoader, SpecSource
from opensesame_predictor.core.errors import FetchRefused, SpecError
from opensesame_predictor.core.fetch import FetchPolicy, fetch, is_url
from opensesame_predictor.core.store import SpecStore
from opensesame_predictor.service import Service
from support import Clock, ParseCounter
from support.spec_server import Handler, LocalServer, large_route, slow_route, spec_route

LOCAL = FetchPolicy(allow_private=True, timeout_seconds=2)
SPEC = """openapi: 3.0.0
info: {title: Remote Notes, version: '1'}
paths:
  /notes:
    get: {operationId: listNotes, summary: List notes}
    post: {operationId: createNote, summary: Create a note}
"""


def test_is_url_tells_urls_from_paths() -> None:
    assert is_url("https://api.example.com/openapi.json")
    assert is_url("http://127.0.0.1:8000/spec.yaml")
    assert not is_url("/home/me/openapi.yaml")
    assert not is_url("file:///home/me/openapi.yaml")  # a local file, read as a file


def test_fetches_a_spec_with_its_validators() -> None:
    headers = {"etag": '"v1"', "last_modified": "Wed, 01 May 2024 10:00:00 GMT"}
    with LocalServer({"/openapi.yaml": spec_route(SPEC, **headers)}) as server:
        result = fetch(server.url("/openapi.yaml"), LOCAL)
    assert result.content == SPEC.encode()
    assert not result.not_modified
    assert result.etag == '"v1"'
    assert result.last_modified == "Wed, 01 May 2024 10:00:00 GMT"
    assert "if-none-match" not in server.requests[0].headers


def test_a_second_fetch_with_the_etag_is_not_modified() -> None:
    with LocalServer({"/openapi.yaml": spec_route(SPEC, etag='"v1"')}) as server:
        first = fetch(server.url("/openapi.yaml"), LOCAL)
        second = fetch(server.url("/openapi.yaml"), LOCAL, etag=first.etag)
    assert second.not_modified and second.content is None
    assert second.etag == '"v1"'
    assert server.requests[1].headers["if-none-match"] == '"v1"'


def test_last_modified_revalidation() -> None:
    stamp = "Wed, 01 May 2024 10:00:00 GMT"
    with LocalServer({"/openapi.yaml": spec_route(SPEC, last_modified=stamp)}) as server:
        first = fetch(server.url("/openapi.yaml"), LOCAL)
        second = fetch(server.url("/openapi.yaml"), LOCAL, last_modified=first.last_modified)
    assert second.not_modified
    assert server.requests[1].headers["if-modified-since"] == stamp


def test_a_changed_etag_downloads_again() -> None:
    with LocalServer({"/openapi.yaml": spec_route(SPEC, etag='"v2"')}) as server:
        result = fetch(server.url("/openapi.yaml"), LOCAL, etag='"v1"')
    assert result.content == SPEC.encode() and result.etag == '"v2"'


@pytest.mark.parametrize("content_length", [True, False], ids=["declared", "streamed"])
def test_a_body_over_the_size_cap_is_refused(content_length: bool) -> None:
    policy = FetchPolicy(allow_private=True, timeout_seconds=2, max_bytes=64 * 1024)
    route = large_route(512 * 1024, content_length=content_length)
    with LocalServer({"/big.json": route}) as server, pytest.raises(SpecError) as info:
        fetch(server.url("/big.json"), policy)
    assert info.value.reason == "larger than the 65536 byte limit"
    assert info.value.source == server.url("/big.json")


def test_a_body_at_the_size_cap_is_accepted() -> None:
    policy = FetchPolicy(allow_private=True, timeout_seconds=2, max_bytes=64 * 1024)
    with LocalServer({"/ok.json": large_route(64 * 1024, content_length=False)}) as server:
        result = fetch(server.url("/ok.json"), policy)
    assert result.content is not None and len(result.content) == 64 * 1024


def test_a_slow_server_times_out() -> None:
    policy = FetchPolicy(allow_private=True, timeout_seconds=0.3)
    with LocalServer({"/slow": slow_route(5)}) as server, pytest.raises(SpecError) as info:
        fetch(server.url("/slow"), policy)
    assert info.value.reason == "timed out after 0.3 s"


def test_a_slow_drip_is_cut_off_by_the_overall_deadline() -> None:
    """Each byte arrives within the read timeout, but the whole body may take at most three
    timeouts, so a server cannot hold a fetch open for ever."""

    def drip(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            if handler.server.owner.stopping.wait(0.05):
                return

    policy = FetchPolicy(allow_private=True, timeout_seconds=0.2)
    with LocalServer({"/drip": drip}) as server, pytest.raises(SpecError) as info:
        fetch(server.url("/drip"), policy)
    assert info.value.reason == "took longer than 0.6 s in all"


def test_slowly_dripped_headers_are_cut_off_by_the_same_deadline() -> None:
    """The deadline covers the headers too: a server that sends a header line every 0.1 s
    (each within the read timeout) is cut off after three timeouts in all."""

    def drip_headers(handler: Handler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for number in range(200):
            handler.wfile.write(b"X-Slow-%d: 1\r\n" % number)
            handler.wfile.flush()
            if handler.server.owner.stopping.wait(0.1):
                return

    policy = FetchPolicy(allow_private=True, timeout_seconds=0.3)
    started = time.monotonic()
    with LocalServer({"/drip": drip_headers}) as server, pytest.raises(SpecError) as info:
        fetch(server.url("/drip"), policy)
    assert info.value.reason == "took longer than 0.9 s in all"
    assert time.monotonic() - started < 10  # twenty seconds of headers were on their way


@pytest.mark.parametrize("location", ["http://[::1/spec", "http://host:99999/spec"])
def test_a_redirect_to_a_malformed_url_is_a_spec_error(location: str) -> None:
    """It ends this fetch with a reason, not the whole load with an exception."""

    def bad_redirect(handler: Handler) -> None:
        handler.reply(302, b"", headers={"Location": location})

    with LocalServer({"/spec": bad_redirect}) as server, pytest.raises(SpecError) as info:
        fetch(server.url("/spec"), LOCAL)
    assert "URL" in info.value.reason or "scheme" in info.value.reason


def test_other_3xx_answers_are_errors() -> None:
    def multiple_choices(handler: Handler) -> None:
        handler.reply(300, b"{}", headers={"Location": "/elsewhere"})

    with LocalServer({"/spec": multiple_choices}) as server, pytest.raises(SpecError) as info:
        fetch(server.url("/spec"), LOCAL)
    assert info.value.reason == "HTTP 300"
    assert server.paths() == ["/spec"]


def test_http_errors_name_the_status() -> None:
    with LocalServer() as server, pytest.raises(SpecError) as info:
        fetch(server.url("/missing.yaml"), LOCAL)
    assert info.value.reason == "HTTP 404"
    assert not isinstance(info.value, FetchRefused)


def test_a_refused_connection_is_a_spec_error() -> None:
    server = LocalServer()
    url = server.url("/openapi.yaml")
    server.stop()  # the port is now closed
    with pytest.raises(SpecError) as info:
        fetch(url, LOCAL)
    assert info.value.reason.startswith("fetch failed")


def test_the_loader_revalidates_a_stale_url_without_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    store = SpecStore(tmp_path / "store.json", ttl_seconds=3600, clock=clock)
    loader = SpecLoader(store, LOCAL, max_spec_bytes=1 << 20)
    parses = ParseCounter(monkeypatch)
    with LocalServer({"/openapi.yaml": spec_route(SPEC, etag='"v1"')}) as server:
        source = SpecSource(server.url("/openapi.yaml"))
        first = loader.load(source, "notes")
        assert first.summary.error is None and first.summary.operations == 2
        assert parses.calls == 1

        clock.now += 60  # fresh: served from the store without asking the server
        loader.load(source, "notes")
        assert len(server.requests) == 1

        clock.now += 3600  # stale: revalidated with the etag, answered 304
        again = loader.load(source, "notes")
    assert [seen.headers.get("if-none-match") for seen in server.requests] == [None, '"v1"']
    assert parses.calls == 1
    assert again.summary.warnings == []
    assert [op.key for op in again.parsed.operations] == ["GET /notes", "POST /notes"]  # type: ignore[union-attr]
    renewed = store.get(source.location)
    assert renewed is not None and renewed.stored_at == clock.now and store.is_fresh(renewed)


def test_the_runtime_revalidates_on_reload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    store = SpecStore(tmp_path / "store.json", ttl_seconds=3600, clock=clock)
    parses = ParseCounter(monkeypatch)
    with LocalServer({"/openapi.yaml": spec_route(SPEC, etag='"v1"')}) as server:
        settings = Settings(allow_private_urls=True)
        runtime = Service(settings, store=store)
        runtime.set_sources([server.url("/openapi.yaml")])
        runtime.load()
        clock.now += 7200
        # a new process on the same store file: the stored copy is stale, so it revalidates
        later = Service(settings, store=SpecStore(store.path, ttl_seconds=3600, clock=clock))
        later.set_sources([server.url("/openapi.yaml")])
        catalog = later.load()
    assert parses.calls == 1
    assert server.requests[-1].headers["if-none-match"] == '"v1"'
    assert len(catalog.operations) == 2
    assert later.store.stats.l2_hits == 1 and later.store.stats.writes == 1


def test_a_changed_remote_spec_is_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    store = SpecStore(tmp_path / "store.json", clock=clock)
    loader = SpecLoader(store, LOCAL, max_spec_bytes=1 << 20)
    parses = ParseCounter(monkeypatch)
    with LocalServer({"/openapi.yaml": spec_route(SPEC, etag='"v1"')}) as server:
        source = SpecSource(server.url("/openapi.yaml"))
        loader.load(source, "notes")
        changed = SPEC + "  /notes/{id}:\n    get: {operationId: getNote}\n"
        server.routes["/openapi.yaml"] = spec_route(changed, etag='"v2"')
        clock.now += 3601
        loaded = loader.load(source, "notes")
    assert parses.calls == 2
    assert loaded.summary.operations == 3
    stored = store.get(source.location)
    assert stored is not None and stored.etag == '"v2"'


def test_a_remote_spec_over_the_cap_is_reported_by_the_runtime() -> None:
    with LocalServer({"/big.json": large_route(256 * 1024)}) as server:
        settings = Settings(
            specs=[server.url("/big.json")], allow_private_urls=True, fetch_max_bytes=1024
        )
        runtime = Service.from_settings(settings)
    [summary] = runtime.catalog.specs
    assert summary.source == server.url("/big.json")
    assert summary.error == "larger than the 1024 byte limit"
