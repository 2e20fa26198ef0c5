"""Rate limits of the HTTP surface, on the `limits` library (moving windows).

Three limits apply to each request: a per-user quota, a global quota (so rotating ids does not
get around the per-user one) and a temporary block for users who keep going after being refused.
Users are keyed by a salted hash only; the raw id is never stored. Storage is `memory://` by
default; any `limits` storage URI (e.g. `redis://host:6379`) shares the counters between
processes, and then `OPENSESAME_RATE_LIMIT_SALT` must be the same in all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerMinute, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

Scope = Literal["user", "global", "blocked"]


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
        storage = storage_from_string(storage_uri)
        if not isinstance(storage, Storage):
            raise ValueError(f"rate-limit storage {storage_uri!r} is async-only")
        self.limiter = MovingWindowRateLimiter(storage)
        self.salt = salt.encode() if isinstance(salt, str) else salt
        if not self.salt:
            self.salt = secrets.token_bytes(32)  # per process: hashes are unlinkable across runs
        self.clock = clock

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
        if self.violations is not None and not self.limiter.test(self.block, "block", user):
            return self._refused("blocked", self.block, "block", user)
        if not self.limiter.hit(self.per_user, "user", user):
            self._record_violation(user)
            return self._refused("user", self.per_user, "user", user)
        if not self.limiter.hit(self.global_limit, "global"):
            return self._refused("global", self.global_limit, "global")
        stats = self.limiter.get_window_stats(self.per_user, "user", user)
        return Decision(
            allowed=True,
            scope="user",
            limit=self.per_user.amount,
            remaining=max(0, stats.remaining),
            window_seconds=self.per_user.get_expiry(),
            reset_seconds=self._seconds_until(stats.reset_time),
        )

    def _record_violation(self, user: str) -> None:
        if self.violations is not None and not self.limiter.hit(self.violations, "viol", user):
            self.limiter.hit(self.block, "block", user)

    def _refused(self, scope: Scope, item: RateLimitItem, *identifiers: str) -> Decision:
        stats = self.limiter.get_window_stats(item, *identifiers)
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
