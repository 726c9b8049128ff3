"""The outermost layer of the sandbox app: request ids, one log line per request, and last-resort 500s."""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

from loom_cli.sandbox import jsonio
from loom_cli.text import escape_control

logger = logging.getLogger("loom.sandbox")

REQUEST_ID_HEADER = b"x-request-id"
_CLIENT_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
# A client that sent more than this after the response was decided gets its connection closed
# instead of having the rest of its body read and thrown away.
_DRAIN_LIMIT_BYTES = 16 * 1024 * 1024


def request_id_of(scope: dict[str, Any]) -> str:
    """Return the request id that the middleware assigned to this request."""
    return scope.get("state", {}).get("request_id", "")


def _choose_request_id(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER:
            if _CLIENT_REQUEST_ID.match(value):
                return value.decode("ascii")
            break
    return "req_" + secrets.token_hex(12)


class RequestContextMiddleware:
    """Give every HTTP response an `X-Request-Id`, log it, and turn an unhandled exception into a 500 body.

    Before the response starts, any request body the handler left unread is read and dropped,
    so that uvicorn can keep the connection and the client receives the response rather than a reset.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _choose_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0
        body_done = scope["method"] in ("GET", "HEAD")

        async def tracking_receive() -> dict[str, Any]:
            nonlocal body_done
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def drain_body() -> None:
            nonlocal body_done
            drained = 0
            while not body_done and drained <= _DRAIN_LIMIT_BYTES:
                message = await tracking_receive()
                drained += len(message.get("body", b""))

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                await drain_body()
                status = message["status"]
                headers = [(name, value) for name, value in message.get("headers", []) if name.lower() != REQUEST_ID_HEADER]
                headers.append((REQUEST_ID_HEADER, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, tracking_receive, send_with_id)
        except Exception:
            logger.exception("unhandled error in %s %s (request id %s)", scope["method"], escape_control(scope["path"]), request_id)
            if status:
                raise
            body = jsonio.dumps(
                {"error": {"code": "internal", "message": f"The sandbox failed to handle this request (request id {request_id})."}}
            ).encode("utf-8")
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode("ascii"))],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            # The path only: query strings and headers may carry values that do not belong in logs.
            logger.info("%s %s %s %.1fms %s", scope["method"], escape_control(scope["path"]), status or "-", elapsed_ms, request_id)
