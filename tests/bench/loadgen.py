"""A bounded HTTP load test against a server on 127.0.0.1: wrk when installed, else a small asyncio client.

Both keep a fixed number of keep-alive connections busy for a fixed time
(closed loop: each connection sends its next request when the previous
response has arrived) and rotate over a list of paths.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Upper bounds that keep a load test short whatever the caller asks for.
MAX_DURATION_SECONDS = 20.0
MAX_CONNECTIONS = 64
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LoadResult:
    tool: str
    duration: float  # seconds of measured load
    connections: int
    requests: int
    errors: int  # 4xx/5xx responses, socket errors and timeouts
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _check_bounds(host: str, duration: float, connections: int) -> None:
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"load tests only target loopback, not {host!r}")
    if not 0 < duration <= MAX_DURATION_SECONDS:
        raise ValueError(f"duration must be 0-{MAX_DURATION_SECONDS:g} s, got {duration}")
    if not 0 < connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections must be 1-{MAX_CONNECTIONS}, got {connections}")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def run_load(
    host: str,
    port: int,
    paths: Sequence[str],
    *,
    headers: dict[str, str],
    duration: float,
    connections: int,
    tool: str = "auto",
) -> LoadResult:
    """Load `paths` with GET requests; `tool` is "wrk", "python" or "auto" (wrk when on PATH)."""
    _check_bounds(host, duration, connections)
    if not paths:
        raise ValueError("no paths to request")
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    if tool == "wrk":
        return _run_wrk(host, port, paths, headers=headers, duration=duration, connections=connections)
    if tool == "python":
        return asyncio.run(_run_python(host, port, paths, headers=headers, duration=duration, connections=connections))
    raise ValueError(f"unknown load tool {tool!r}; use wrk, python or auto")


# -- the asyncio client ------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection_loop(
    host: str, port: int, requests: list[bytes], offset: int, deadline: float, latencies: list[float], failures: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    index = offset
    try:
        while time.perf_counter() < deadline:
            request = requests[index % len(requests)]
            index += 1
            started = time.perf_counter()
            writer.write(request)
            try:
                status = await asyncio.wait_for(_read_response(reader), timeout=10)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                failures.append(1)
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append(time.perf_counter() - started)
            if status >= 400:
                failures.append(1)
    finally:
        writer.close()


async def _run_python(host: str, port: int, paths: Sequence[str], *, headers: dict[str, str], duration: float, connections: int) -> LoadResult:
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    requests = [f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for path in paths]
    latencies: list[float] = []
    failures: list[int] = []
    started = time.perf_counter()
    deadline = started + duration
    step = max(1, len(requests) // connections)
    await asyncio.gather(
        *(_connection_loop(host, port, requests, number * step, deadline, latencies, failures) for number in range(connections))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        tool="python asyncio",
        duration=elapsed,
        connections=connections,
        requests=len(latencies),
        errors=len(failures),
        requests_per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
    )


# -- wrk ---------------------------------------------------------------------

_WRK_SCRIPT = """\
local paths = {%s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""

_UNIT_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNIT_TO_MS[match.group(2)]


def parse_wrk_output(output: str, connections: int, duration: float) -> LoadResult:
    """Read requests, errors, throughput and the 50th/99th latency percentiles from `wrk --latency` output."""
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", output).group(1))
    p50 = _wrk_ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1))
    p99 = _wrk_ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1))
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    return LoadResult("wrk", duration, connections, requests, errors, rate, p50, p99)


def _run_wrk(host: str, port: int, paths: Sequence[str], *, headers: dict[str, str], duration: float, connections: int) -> LoadResult:
    quoted = ", ".join('"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"' for path in paths)
    with tempfile.TemporaryDirectory(prefix="loom-bench-wrk-") as folder:
        script = Path(folder) / "paths.lua"
        script.write_text(_WRK_SCRIPT % quoted)
        command = ["wrk", "--threads", "1", "--connections", str(connections), "--duration", f"{duration:g}s", "--latency", "--script", str(script)]
        for name, value in headers.items():
            command += ["--header", f"{name}: {value}"]
        command.append(f"http://{host}:{port}/")
        result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise RuntimeError(f"wrk failed with exit code {result.returncode}: {result.stderr.strip()}")
    return parse_wrk_output(result.stdout, connections, duration)
