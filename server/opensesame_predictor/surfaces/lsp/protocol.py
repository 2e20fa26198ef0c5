"""The language server's JSON-RPC: every request with an id gets an answer.

pygls drops a request it cannot read into its types (`"textDocument": 42`) after logging it,
and a frame that is no JSON at all; the client then waits forever. JSON-RPC 2.0 asks for an
error instead: -32602 for invalid params (with the request's id), -32700 for a parse error (with
a null id, as the id cannot be known). The server stays up and reads the next message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pygls.exceptions import JsonRpcException, JsonRpcInvalidRequest, JsonRpcParseError
from pygls.protocol import LanguageServerProtocol

log = logging.getLogger(__name__)

UNREADABLE = (json.JSONDecodeError, UnicodeDecodeError, RecursionError)


@dataclass(frozen=True)
class Refused:
    """A request read as JSON whose content does not fit its method: answered with `error`."""

    id: int | str
    error: JsonRpcException


class AnsweringProtocol(LanguageServerProtocol):
    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            request_id = data.get("id")
            if (
                "method" in data
                and isinstance(request_id, int | str)
                and not isinstance(request_id, bool)
            ):
                return Refused(request_id, exc)
            raise
        except RecursionError:  # types nested too deeply to structure
            request_id = data.get("id")
            if isinstance(request_id, int | str) and not isinstance(request_id, bool):
                return Refused(request_id, JsonRpcInvalidRequest("message nested too deeply"))
            raise

    def handle_message(self, message: Any) -> None:
        if isinstance(message, Refused):
            log.warning("refused request %r: %s", message.id, message.error.message)
            self._send_response(message.id, error=message.error.to_response_error())
            return
        super().handle_message(message)

    def answer_unreadable(self, error: Exception) -> None:
        """A frame that is no JSON: a parse error, with a null id (written as such: the
        response types leave a null id out)."""
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        message = f"{JsonRpcParseError.MESSAGE}: {reason}"
        self._send_data(
            {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": JsonRpcParseError.CODE, "message": message},
            }
        )
