"""A misbehaving Loom API on 127.0.0.1, for driving the real CLI into faults the sandbox never makes.

`FaultServer` replies to each request by the first matching rule: a route (method and a
path prefix under /v1) and a list of replies used in turn, the last one repeated. Replies
are functions of the request handler, built by the helpers below: JSON, raw bytes, an
HTML page, a reset in the middle of the body, a connection closed before any response,
a stall, a body that trickles in, a huge body, or a request passed on to a real sandbox.
Every request is recorded with its headers and body, and every reply that has headers
carries an `X-Request-Id` of the form `req_fault_N`, so tests can check that the CLI names it.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

Reply = Callable[["FaultHandler"], None]

# A stalled reply waits at most this long, so a test without a client timeout still ends.
MAX_STALL_SECONDS = 30.0


@dataclass
class Recorded:
    """One request as the server received it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    request_id: str


@dataclass
class Rule:
    method: str
    path: str
    replies: list[Reply]
    used: int = 0

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.used, len(self.replies) - 1)]
        self.used += 1
        return reply


@dataclass
class FaultServer:
    """The server's state: rules, the requests received, and the address it listens on."""

    rules: list[Rule] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    # Bodies of the responses that forward_to passed back from the upstream API.
    forwarded_bodies: list[bytes] = field(default_factory=list)
    port: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/v1"

    def on(self, method: str, path: str, *replies: Reply) -> FaultServer:
        """Reply to `method` on paths starting with /v1`path` with `replies` in turn (the last one repeats)."""
        with self.lock:
            self.rules.insert(0, Rule(method, "/v1" + path, list(replies)))
        return self

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        return [item for item in self.requests if item.method == method and item.path.split("?")[0] == "/v1" + path]

    def rule_for(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.method == method and path.split("?")[0].startswith(rule.path):
                    return rule
        return None


class FaultHandler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        state = self.server.state
        length = self.headers.get("Content-Length", "0")
        body = self.rfile.read(int(length)) if length.isdigit() else b""
        with state.lock:
            request_id = f"req_fault_{len(state.requests) + 1}"
            state.requests.append(
                Recorded(self.command, self.path, {name.lower(): value for name, value in self.headers.items()}, body, request_id)
            )
        self.request_id = request_id
        self.request_body = body
        rule = state.rule_for(self.command, self.path)
        if rule is None:
            json_reply(404, {"error": {"code": "not_found", "message": f"No fault rule for {self.command} {self.path}."}})(self)
            return
        rule.next_reply()(self)

    do_GET = do_POST = do_DELETE = do_PUT = _handle  # noqa: N815 - the names http.server dispatches to

    def start(self, status: int, headers: dict[str, str]) -> None:
        """Send the status line and headers, with this request's X-Request-Id unless `headers` sets one."""
        self.send_response_only(status)
        headers = {"X-Request-Id": self.request_id, "Connection": "close", **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True

    def reset(self) -> None:
        """Close the connection with a TCP reset (SO_LINGER 0) instead of an orderly close."""
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FaultServer) -> None:
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.state = state

    def handle_error(self, request: object, client_address: object) -> None:
        # A reply that resets or drops its connection makes the handler's final flush fail; that is the point.
        pass


@contextmanager
def running_fault_server() -> Iterator[FaultServer]:
    state = FaultServer()
    server = _HttpServer(state)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- replies -------------------------------------------------------------------------------


def raw_reply(status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None) -> Reply:
    def reply(handler: FaultHandler) -> None:
        handler.start(status, {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})})
        handler.wfile.write(body)

    return reply


def json_reply(status: int, body: object, headers: dict[str, str] | None = None) -> Reply:
    return raw_reply(status, json.dumps(body).encode("utf-8"), headers=headers)


def error_reply(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    return json_reply(status, {"error": {"code": code, "message": message}}, headers=headers)


def html_reply(status: int = 200) -> Reply:
    page = b"<!DOCTYPE html><html><head><title>Sign in to the captive portal</title></head><body><h1>Welcome</h1></body></html>"
    return raw_reply(status, page, content_type="text/html; charset=utf-8")


def reset_mid_body(declared: int = 4096, sent: bytes = b'{"data": [{"id": "job_') -> Reply:
    """Promise `declared` bytes, send the first few, then reset the connection."""

    def reply(handler: FaultHandler) -> None:
        handler.start(200, {"Content-Type": "application/json", "Content-Length": str(declared)})
        handler.wfile.write(sent)
        handler.reset()

    return reply


def drop_connection() -> Reply:
    """Close the connection without sending any response (a crashed or overloaded server)."""

    def reply(handler: FaultHandler) -> None:
        handler.reset()

    return reply


def stall(seconds: float, then: Reply | None = None) -> Reply:
    """Wait `seconds` (less when the server stops) before replying with `then`, or before dropping the connection."""

    def reply(handler: FaultHandler) -> None:
        handler.server.state.stopping.wait(min(seconds, MAX_STALL_SECONDS))
        (then or drop_connection())(handler)

    return reply


def trickle(body: bytes, interval: float) -> Reply:
    """Send the headers at once, then the body one byte every `interval` seconds."""

    def reply(handler: FaultHandler) -> None:
        handler.start(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        deadline = time.monotonic() + MAX_STALL_SECONDS
        for byte in body:
            if handler.server.state.stopping.wait(interval) or time.monotonic() > deadline:
                return
            try:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
            except OSError:
                return

    return reply


def huge_reply(size: int, *, declare_length: bool) -> Reply:
    """Send `size` bytes of a JSON array of zeros, with or without a Content-Length header."""

    def reply(handler: FaultHandler) -> None:
        headers = {"Content-Type": "application/json"}
        if declare_length:
            headers["Content-Length"] = str(size)
        handler.start(200, headers)
        chunk = b"0," * 32768
        sent = 0
        try:
            handler.wfile.write(b"[")
            sent = 1
            while sent < size - 2:
                piece = chunk[: size - 2 - sent]
                handler.wfile.write(piece)
                sent += len(piece)
            handler.wfile.write(b"0]")
        except OSError:
            # The client stopped reading at its cap and closed the connection.
            return

    return reply


def redirect_to(location: str, status: int = 302) -> Reply:
    def reply(handler: FaultHandler) -> None:
        handler.start(status, {"Location": location, "Content-Length": "0"})

    return reply


def forward_to(upstream_url: str, *, drop_response: bool = False) -> Reply:
    """Pass the request on to a real API at `upstream_url` (its /v1 base) and return its response.

    With `drop_response`, the request reaches the upstream API but its response is thrown
    away and the client's connection is reset: the client cannot know the request took effect.
    """

    def reply(handler: FaultHandler) -> None:
        base = httpx.URL(upstream_url)
        target = f"{base.scheme}://{base.netloc.decode('ascii')}{handler.path}"
        skip = {"host", "content-length", "connection", "accept-encoding"}
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in skip}
        with httpx.Client(timeout=10.0, trust_env=False) as client:
            upstream = client.request(handler.command, target, headers=headers, content=handler.request_body)
        with handler.server.state.lock:
            handler.server.state.forwarded_bodies.append(upstream.content)
        if drop_response:
            handler.reset()
            return
        passed = {name: value for name, value in upstream.headers.items() if name.lower() in ("content-type", "etag", "location", "x-request-id", "retry-after")}
        raw_reply(upstream.status_code, upstream.content, content_type=passed.pop("content-type", "application/json"), headers=passed)(handler)

    return reply
