"""Proxies from the environment: used for remote API hosts, never for loopback ones.

A small recording proxy and a small JSON server run on 127.0.0.1; the remote
host is under `.invalid`, so a request that skipped the proxy could not
reach anything either.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from loom_cli.errors import ApiUnavailableError
from loom_cli.http import ApiClient


class RecordingProxy(socketserver.ThreadingTCPServer):
    """Records the first line of every request it receives and turns it down with 403."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.request_lines: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(8192).decode("latin-1").strip()
        self.server.request_lines.append(line)  # type: ignore[attr-defined]
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


class _JsonHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        body = json.dumps({"data": [], "next_cursor": None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    server = RecordingProxy()
    for _ in _serve(server):
        yield server


@pytest.fixture
def loopback_api() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _JsonHandler)
    for _ in _serve(server):
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"


def test_remote_api_goes_through_https_proxy(proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    client = ApiClient("https://api.example.invalid/v1", sleep=lambda seconds: None)

    with pytest.raises(ApiUnavailableError) as caught:
        client.get("/jobs")

    assert proxy.request_lines == ["CONNECT api.example.invalid:443 HTTP/1.1"]
    assert "proxy" in caught.value.message
    assert "HTTPS_PROXY" in (caught.value.hint or "")


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy"])
def test_loopback_api_bypasses_proxy(proxy: RecordingProxy, loopback_api: str, monkeypatch: pytest.MonkeyPatch, variable: str):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv(variable, proxy.url)

    with ApiClient(loopback_api) as client:
        response = client.get("/jobs")

    assert response.data == {"data": [], "next_cursor": None}
    assert proxy.request_lines == []


def test_localhost_api_bypasses_proxy(proxy: RecordingProxy, loopback_api: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)

    with ApiClient(loopback_api.replace("127.0.0.1", "localhost")) as client:
        assert client.get("/jobs").status == 200

    assert proxy.request_lines == []
