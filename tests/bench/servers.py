"""The servers a benchmark talks to: a `loom sandbox` subprocess and a recording proxy in front of it.

The proxy forwards every request to the sandbox unchanged and records its
method, path, status and times, so the benchmark can count what the CLI sent
(requests per interval of `jobs watch`, page requests of `jobs list --all`)
without depending on the sandbox's log format. A gate can hold a request
until the benchmark has seen something on the CLI's stdout, which proves
that output is streamed rather than buffered.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

# Headers that describe one hop of a connection, not the message, and are not forwarded.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "transfer-encoding", "upgrade"}
)


class SandboxServer:
    """A `loom sandbox` subprocess on 127.0.0.1 with its own database file; stop() ends it."""

    def __init__(self, command: Sequence[str], *extra_args: str, env: dict[str, str] | None = None, start_timeout: float = 60) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="loom-bench-sandbox-")
        self.db_path = Path(self._workdir.name) / "sandbox.db"
        self.log_path = Path(self._workdir.name) / "sandbox.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [*command, "sandbox", "--port", "0", "--db", str(self.db_path), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self.url = self._read_url(start_timeout)
        parts = urlsplit(self.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        # "/v1" for "http://127.0.0.1:PORT/v1"
        self.base_path = parts.path.rstrip("/")

    def _read_url(self, timeout: float) -> str:
        # The sandbox prints its base URL as the first line of stdout once it listens.
        result: list[bytes] = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = result[0].decode().strip() if result else ""
        if not line.startswith("http://"):
            self.stop()
            log = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"loom sandbox did not print its URL within {timeout:g} s (got {line!r}); its log ends:\n{log}")
        # Drain the rest of stdout so the sandbox never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        return line.rstrip("/")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self._workdir.cleanup()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True)
class ProxiedRequest:
    method: str
    path: str  # with the query string
    status: int
    started: float  # time.monotonic() when the request arrived
    finished: float  # time.monotonic() when the response was sent


class RecordingProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that forwards to one upstream and records each request.

    `gate(method, path)` runs before a request is forwarded and may block; it
    sees requests in arrival order (one at a time per connection).
    """

    def __init__(self, upstream_host: str, upstream_port: int, base_path: str) -> None:
        self.requests: list[ProxiedRequest] = []
        self.gate: Callable[[str, str], None] | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without TCP_NODELAY, a response written as headers then body waits for a delayed ACK (about 40 ms).
            disable_nagle_algorithm = True
            upstream: http.client.HTTPConnection | None = None

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.gate is not None:
                    proxy.gate(self.command, self.path)
                headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(upstream_host, upstream_port, timeout=60)
                try:
                    self.upstream.request(self.command, self.path, body=body, headers=headers)
                    response = self.upstream.getresponse()
                    payload = response.read()
                except (OSError, http.client.HTTPException):
                    self.upstream.close()
                    self.upstream = None
                    self.send_error(502)
                    return
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                with proxy._lock:
                    proxy.requests.append(ProxiedRequest(self.command, self.path, response.status, started, time.monotonic()))

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{base_path}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def snapshot(self) -> list[ProxiedRequest]:
        with self._lock:
            return list(self.requests)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RecordingProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def loom_command() -> list[str]:
    """Return the command that runs this checkout's loom: the console script beside the interpreter, else `-m`."""
    script = Path(sys.executable).with_name("loom")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "loom_cli"]
