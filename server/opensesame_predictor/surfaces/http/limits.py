"""What one HTTP connection may hold: a deadline for its request headers.

uvicorn times out idle keep-alive connections and caps concurrent connections, but nothing
bounds how long a client may take to send its headers: 300 sockets dripping a header line
every few seconds held every file descriptor ("slowloris"). This protocol closes a connection
whose request line and headers are not complete within the deadline, counted from the moment
the connection opens or a new request on it begins.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from opensesame_predictor.config import Settings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections that are too slow to send headers.
    A module-level class so that worker processes can be handed it (it pickles by name);
    `seconds` is set from the settings where the app is built."""

    seconds: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for this service, one process or several: the connection limits,
    no access log (it would hold client addresses; the metrics count requests instead), and
    X-Forwarded-For trusted only from the configured proxies."""
    HeaderDeadlineProtocol.seconds = settings.http_header_timeout_seconds
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    return {
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "server_header": False,
        "http": HeaderDeadlineProtocol,  # by name: worker processes import it
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "limit_concurrency": settings.http_max_connections,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
    }
