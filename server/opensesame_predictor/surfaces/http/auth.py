"""API keys for the HTTP service: `Authorization: Bearer <key>` or `X-API-Key: <key>`.

The setting holds SHA-256 hashes of the keys, never the keys (`opensesame-predictor api-key`
makes a key and prints its hash). Keys are 256-bit random tokens, so a fast hash is enough; the
presented key's hash is compared with every configured one in constant time. `/` and `/health`
stay open (load balancers probe them); `/metrics` and the docs follow a setting.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from opensesame_predictor.surfaces.http.errors import error_response

PREFIX = "sha256:"
KEY_PREFIX = "osp_"  # recognisable in a leaked config or a secret scanner
ALWAYS_OPEN = frozenset({"/", "/health"})
DOCS_AND_METRICS = frozenset(
    {"/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
)
# the docs pages' scripts and styles (docs.ASSETS_PATH): open or closed with the pages
DOCS_ASSETS_PREFIX = "/docs-assets/"
REALM = 'Bearer realm="opensesame-predictor"'


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()


def parse_hashes(setting: str) -> list[str]:
    """The hashes of OPENSESAME_API_KEYS (comma-separated); a plain key there is refused, so a
    secret is never kept in a setting by mistake."""
    hashes = [part.strip().lower() for part in setting.split(",") if part.strip()]
    for value in hashes:
        digest = value.removeprefix(PREFIX)
        if not value.startswith(PREFIX) or len(digest) != 64 or not _is_hex(digest):
            raise ValueError(
                "OPENSESAME_API_KEYS holds hashes like 'sha256:<64 hex digits>', not keys: "
                "`opensesame-predictor api-key` makes a key and prints its hash"
            )
    return hashes


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def presented_key(headers: Headers) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AuthMiddleware:
    """401 with `WWW-Authenticate` unless the request carries a configured key."""

    def __init__(self, app: ASGIApp, hashes: list[str], open_docs_and_metrics: bool) -> None:
        self.app = app
        self.hashes = [h.encode() for h in hashes]
        self.open = ALWAYS_OPEN | (DOCS_AND_METRICS if open_docs_and_metrics else frozenset())
        self.open_prefixes = (DOCS_ASSETS_PREFIX,) if open_docs_and_metrics else ()

    def is_open(self, path: str) -> bool:
        return path in self.open or (
            path.startswith(self.open_prefixes) and ".." not in path.split("/")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.hashes or self.is_open(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        if key is not None and self.known(key):
            await self.app(scope, receive, send)
            return
        message = "an API key is required" if key is None else "the API key is not valid"
        response = error_response(401, "unauthorized", message, headers={"WWW-Authenticate": REALM})
        await response(scope, receive, send)

    def known(self, key: str) -> bool:
        presented = hash_key(key).encode()
        found = False
        for expected in self.hashes:  # every one compared: the time says nothing of which
            found |= hmac.compare_digest(presented, expected)
        return found
