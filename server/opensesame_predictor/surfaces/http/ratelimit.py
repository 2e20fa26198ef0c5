"""Rate limits of the HTTP surface, on the `limits` library (moving windows).

Three limits apply to each request: a per-user quota, a global quota (so rotating ids does not
get around the per-user one) and a temporary block for users who keep going after being refused.
Users are keyed by a salted hash only; the raw id is never stored. Storage is `memory://` by
default; any `limits` storage URI (e.g. `redis://host:6379`) shares the counters between
processes, and then `OPENSESAME_RATE_LIMIT_SALT` must be set, the same in all of them.

When a shared storage stops answering, requests are still served: each process counts in its
own memory until the storage is back (probed every few seconds), the outage is logged once and
`/health` reports the limits as degraded. Refusing every request because a counter is away would
turn a Redis hiccup into an outage of the service.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

Scope = Literal["user", "global", "blocked"]
log = logging.getLogger(__name__)
PROBE_SECONDS = 5.0  # how often a lost shared storage is tried again
STORAGE_TIMEOUT_SECONDS = 0.5  # a Redis that hangs must not hang the request


@dataclass(frozen=True)
class LimitsHealth:
    """What /health says of the limits: where they are counted and whether that works."""

    storage: str  # the scheme only: a URI may hold a password
    shared: bool
    degraded: bool
    error: str | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome of one check, with what the RateLimit headers need."""

    allowed: bool
    scope: Scope  # the limit that decided: the user's when allowed
    limit: int
    remaining: int
    window_seconds: int
    reset_seconds: int  # until the deciding window frees a slot (or the block ends)

    @property
    def retry_after(self) -> int:
        return max(1, self.reset_seconds)


def hash_id(raw: str, salt: bytes) -> str:
    """What the limiter keeps of a user id: a salted HMAC, never the id itself."""
    return hmac.new(salt, raw.encode("utf-8", errors="replace"), hashlib.sha256).hexdigest()[:32]


class RateLimitGuard:
    """Per-user and global moving-window limits plus a temporary block after repeated violations.

    `clock` must be the clock the storage uses (time.time for `limits`' storages); tests inject a
    fake one into both.
    """

    def __init__(
        self,
        per_user: str = "60/minute",
        global_limit: str = "1200/minute",
        block_after: int = 10,
        block_seconds: int = 300,
        storage_uri: str = "memory://",
        salt: str | bytes = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_user: RateLimitItem = parse(per_user)
        self.global_limit: RateLimitItem = parse(global_limit)
        # Refused requests counted per minute; the block is a window that holds one entry.
        self.violations: RateLimitItem | None = (
            RateLimitItemPerMinute(block_after) if block_after > 0 else None
        )
        self.block: RateLimitItem = parse(f"1/{max(1, block_seconds)} second")
        self.scheme = urlsplit(storage_uri).scheme or storage_uri
        self.shared = self.scheme != "memory"
        self.salt = salt.encode() if isinstance(salt, str) else salt
        if self.shared and not self.salt:
            raise ValueError(
                f"the rate-limit storage {self.scheme}:// is shared between processes: set "
                "OPENSESAME_RATE_LIMIT_SALT (the same in every process) so they hash user ids "
                "alike"
            )
        if not self.salt:
            self.salt = secrets.token_bytes(32)  # per process: hashes are unlinkable across runs
        storage = storage_from_string(storage_uri, **_storage_options(self.scheme))
        if not isinstance(storage, Storage):
            raise ValueError(f"rate-limit storage {self.scheme}:// is async-only")
        self.limiter = MovingWindowRateLimiter(storage)
        self.local = MovingWindowRateLimiter(MemoryStorage())  # while the shared one is away
        self.outage: str | None = None
        self._next_probe = 0.0
        self._lock = threading.Lock()
        self.clock = clock
        if self.shared and not storage.check():
            self._lost(StorageError(ConnectionError("no answer at start")))

    @property
    def policy_header(self) -> str:
        """`RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): both quotas."""
        return (
            f'"user";q={self.per_user.amount};w={self.per_user.get_expiry()}, '
            f'"global";q={self.global_limit.amount};w={self.global_limit.get_expiry()}'
        )

    def key(self, raw_id: str) -> str:
        return hash_id(raw_id, self.salt)

    def check(self, raw_id: str) -> Decision:
        """Count one request of `raw_id` and decide whether it may proceed."""
        user = self.key(raw_id)
        if self.outage is not None and time.monotonic() >= self._next_probe:
            self._probe()
        if self.outage is None:
            try:
                return self._check(self.limiter, user)
            except StorageError as exc:
                self._lost(exc)
        return self._check(self.local, user)

    def health(self) -> LimitsHealth:
        if self.outage is not None and time.monotonic() >= self._next_probe:
            self._probe()
        return LimitsHealth(self.scheme, self.shared, self.outage is not None, self.outage)

    def _check(self, limiter: MovingWindowRateLimiter, user: str) -> Decision:
        if self.violations is not None and not limiter.test(self.block, "block", user):
            return self._refused(limiter, "blocked", self.block, "block", user)
        if not limiter.hit(self.per_user, "user", user):
            self._record_violation(limiter, user)
            return self._refused(limiter, "user", self.per_user, "user", user)
        if not limiter.hit(self.global_limit, "global"):
            return self._refused(limiter, "global", self.global_limit, "global")
        stats = limiter.get_window_stats(self.per_user, "user", user)
        return Decision(
            allowed=True,
            scope="user",
            limit=self.per_user.amount,
            remaining=max(0, stats.remaining),
            window_seconds=self.per_user.get_expiry(),
            reset_seconds=self._seconds_until(stats.reset_time),
        )

    def _lost(self, exc: StorageError) -> None:
        with self._lock:
            self._next_probe = time.monotonic() + PROBE_SECONDS
            if self.outage is None:
                cause = exc.storage_error
                self.outage = f"{type(cause).__name__}: {cause}"[:300]
                log.error(
                    "rate-limit storage %s:// unreachable (%s): limits now count in this "
                    "process only, until it answers again",
                    self.scheme,
                    self.outage,
                )

    def _probe(self) -> None:
        with self._lock:
            if self.outage is None or time.monotonic() < self._next_probe:
                return
            self._next_probe = time.monotonic() + PROBE_SECONDS
        if self.limiter.storage.check():
            with self._lock:
                self.outage = None
            log.warning("rate-limit storage %s:// answers again: limits are shared", self.scheme)

    def _record_violation(self, limiter: MovingWindowRateLimiter, user: str) -> None:
        if self.violations is not None and not limiter.hit(self.violations, "viol", user):
            limiter.hit(self.block, "block", user)

    def _refused(
        self,
        limiter: MovingWindowRateLimiter,
        scope: Scope,
        item: RateLimitItem,
        *identifiers: str,
    ) -> Decision:
        stats = limiter.get_window_stats(item, *identifiers)
        return Decision(
            allowed=False,
            scope=scope,
            limit=item.amount,
            remaining=0,
            window_seconds=item.get_expiry(),
            reset_seconds=self._seconds_until(stats.reset_time),
        )

    def _seconds_until(self, moment: float) -> int:
        return max(0, math.ceil(moment - self.clock()))

    def reset(self) -> None:
        self.limiter.storage.reset()
        self.local.storage.reset()


def _storage_options(scheme: str) -> dict[str, float | str | bool]:
    """Errors wrapped in one type whatever the backend; short socket timeouts for Redis."""
    options: dict[str, float | str | bool] = {"wrap_exceptions": True}
    if scheme.startswith(("redis", "valkey")):
        options["socket_timeout"] = STORAGE_TIMEOUT_SECONDS
        options["socket_connect_timeout"] = STORAGE_TIMEOUT_SECONDS
    return options


def ratelimit_headers(decision: Decision, policy: str) -> dict[str, str]:
    """`RateLimit`, `RateLimit-Policy` and, when refused, `Retry-After`."""
    name = "global" if decision.scope == "global" else "user"  # a block is the user's quota
    headers = {
        "RateLimit-Policy": policy,
        "RateLimit": f'"{name}";r={decision.remaining};t={decision.reset_seconds}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(decision.retry_after)
    return headers
