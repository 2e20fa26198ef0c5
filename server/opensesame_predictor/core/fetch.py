"""Safe remote fetch of spec URLs.

Only http and https; every hop of a redirect is re-checked; a host must resolve to public
addresses only (unless allowed), and the connection goes to the address that was checked, so a
second DNS answer cannot swap in a private one. Bodies are capped in size and time, and
ETag / Last-Modified let an unchanged spec be revalidated without a download.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio

from opensesame_predictor.core.errors import FetchRefused, SpecError

ALLOWED_SCHEMES = ("http", "https")
REDIRECT_CODES = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class FetchPolicy:
    timeout_seconds: float = 10.0
    max_bytes: int = 32 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False


@dataclass(frozen=True)
class FetchResult:
    url: str
    content: bytes | None  # None when the server answered 304 Not Modified
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.content is None


def is_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def _public_address(source: str, host: str, port: int, allow_private: bool) -> str:
    """Resolve `host` and return an address to connect to, refusing non-public ones."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SpecError(source, f"cannot resolve host {host!r}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        for ip in _meant(ipaddress.ip_address(address.split("%")[0])):
            if not allow_private and not ip.is_global:
                raise FetchRefused(
                    source,
                    f"host {host!r} resolves to non-public address {ip} "
                    "(set OPENSESAME_ALLOW_PRIVATE_URLS=true to allow it)",
                )
    return addresses[0]


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_COMPATIBLE = ipaddress.ip_network("::/96")  # the deprecated IPv4-compatible form ::a.b.c.d


def _meant(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[Any]:
    """The address, and every IPv4 address an IPv6 one carries: mapped (`::ffff:a.b.c.d`),
    compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`), 6to4 (`2002:aabb:ccdd::`) and
    Teredo. Each must be public: `64:ff9b::7f00:1` reaches 127.0.0.1 through a translator."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return [ip]
    meant: list[Any] = []
    if ip.ipv4_mapped:
        meant.append(ip.ipv4_mapped)
    if ip.sixtofour:
        meant.append(ip.sixtofour)
    if ip.teredo:
        meant.extend(ip.teredo)
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in network for network in _NAT64) or (ip in _COMPATIBLE and int(ip) > 1):
        meant.append(last32)
    return [*meant, ip]


def _check_url(source: str, url: str, policy: FetchPolicy) -> tuple[str, str, str]:
    """Validate one hop; returns (url to connect to, Host header, TLS server name)."""
    parts = urlsplit(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        raise FetchRefused(source, f"scheme {parts.scheme!r} is not allowed (http, https only)")
    if not parts.hostname:
        raise FetchRefused(source, "URL has no host")
    if parts.username or parts.password:
        raise FetchRefused(source, "URLs with credentials are not fetched")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = _public_address(source, parts.hostname, port, policy.allow_private)
    netloc_host = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{netloc_host}:{port}", parts.path or "/", parts.query, ""))
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return pinned, host_header, parts.hostname


def fetch(
    url: str,
    policy: FetchPolicy,
    etag: str | None = None,
    last_modified: str | None = None,
) -> FetchResult:
    """GET a spec URL under the policy; raises SpecError/FetchRefused with the reason. One
    deadline (three timeouts) covers connecting, the headers and the body of every hop: a
    server that drips its headers cannot hold the fetch either."""
    fetching = partial(_fetch, url, policy, etag, last_modified)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(fetching)
    # called on a thread that runs a loop (fetching blocks; callers run it off their loop):
    # the download runs on a thread of its own
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, fetching).result()


async def _fetch(
    url: str, policy: FetchPolicy, etag: str | None, last_modified: str | None
) -> FetchResult:
    total = policy.timeout_seconds * 3
    try:
        with anyio.fail_after(total):
            return await _hops(url, policy, etag, last_modified)
    except TimeoutError:
        raise SpecError(url, f"took longer than {total:g} s in all") from None


async def _hops(
    url: str, policy: FetchPolicy, etag: str | None, last_modified: str | None
) -> FetchResult:
    headers = {"Accept": "application/json, application/yaml, text/yaml, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    import httpx  # only a remote spec needs it: local ones start without it

    current = url
    timeout = httpx.Timeout(policy.timeout_seconds)
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        for _hop in range(policy.max_redirects + 1):
            try:
                pinned, host_header, server_name = _check_url(url, current, policy)
                request = client.build_request(
                    "GET",
                    pinned,
                    headers={**headers, "Host": host_header},
                    extensions={"sni_hostname": server_name},
                )
            except (httpx.InvalidURL, ValueError) as exc:  # a redirect to a malformed URL
                raise SpecError(url, f"malformed URL {current!r}: {exc}") from None
            try:
                response = await client.send(request, stream=True)
            except httpx.TimeoutException:
                raise SpecError(url, f"timed out after {policy.timeout_seconds:g} s") from None
            except httpx.HTTPError as exc:
                raise SpecError(url, f"fetch failed: {exc}") from None
            try:
                # 304 first: httpx counts every 3xx, 304 included, as `is_redirect`
                if response.status_code == 304:
                    return FetchResult(url, None, etag, last_modified)
                if response.status_code in REDIRECT_CODES:
                    location = response.headers.get("location")
                    if not location:
                        raise SpecError(url, "redirect without a Location header")
                    current = urljoin(current, location)
                    continue
                if response.status_code >= 300:
                    raise SpecError(url, f"HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                    raise SpecError(url, f"larger than the {policy.max_bytes} byte limit")
                body = bytearray()
                try:
                    async for chunk in response.aiter_bytes():
                        body.extend(chunk)
                        if len(body) > policy.max_bytes:
                            raise SpecError(url, f"larger than the {policy.max_bytes} byte limit")
                except httpx.TimeoutException:
                    raise SpecError(url, f"timed out after {policy.timeout_seconds:g} s") from None
                except httpx.HTTPError as exc:
                    raise SpecError(url, f"fetch failed: {exc}") from None
                return FetchResult(
                    url,
                    bytes(body),
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                )
            finally:
                await response.aclose()
    raise FetchRefused(url, f"more than {policy.max_redirects} redirects")
