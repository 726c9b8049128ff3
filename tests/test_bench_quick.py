"""The benchmark script runs end to end in quick mode; times are not judged here, only that each figure is produced."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.bench.loadgen import parse_wrk_output, percentile, run_load

CHECKOUT = Path(__file__).resolve().parents[1]

# Every measurement the full run judges against a target, by the start of its row name.
MEASUREMENTS = (
    "loom --version",
    "loom --help",
    "loom --help, first run",
    "heavy modules on loom --version",
    "heavy modules on loom --help, first run",
    "heavy modules on loom --help, cached",
    "loom login minus key derivation",
    "loom jobs list (20 jobs",
    "heavy modules on loom jobs list",
    "heavy modules on loom jobs status",
    "jobs list --all -o jsonl",
    "  peak RSS",
    "jsonl streamed page by page",
    "jobs watch",
    "  requests for all jobs",
    "  unchanged polls answered 304",
    "sandbox GET /jobs/{id}",
    "  latency p50 / p99",
)


@pytest.mark.slow
def test_quick_benchmark_produces_every_figure(tmp_path: Path):
    results_path = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench.run", "--quick", "--json", str(results_path)],
        cwd=CHECKOUT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    results = json.loads(results_path.read_text())
    assert results["failures"] == []
    names = [row["name"] for row in results["rows"]]
    for measurement in MEASUREMENTS:
        assert any(name.startswith(measurement) for name in names), f"no row for {measurement!r} in {names}"
    for key in ("CPU", "cores", "memory", "OS", "Python", "loom"):
        assert results["machine"][key]
    assert "quick mode" in result.stdout
    assert "measurement" in result.stdout
    assert "target" in result.stdout


def test_python_load_generator_counts_requests():
    paths_seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            paths_seen.append(self.path)
            status = 404 if self.path.endswith("/missing") else 200
            body = b'{"ok": true}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        loaded = run_load("127.0.0.1", port, ["/v1/jobs/a", "/v1/jobs/b"], headers={"Authorization": "Bearer x"}, duration=0.5, connections=2, tool="python")
        failing = run_load("127.0.0.1", port, ["/v1/jobs/missing"], headers={}, duration=0.2, connections=1, tool="python")
    finally:
        server.shutdown()
        server.server_close()

    assert loaded.requests > 0
    assert loaded.errors == 0
    assert loaded.p99_ms >= loaded.p50_ms > 0
    assert {"/v1/jobs/a", "/v1/jobs/b"} <= set(paths_seen)
    assert failing.errors == failing.requests > 0


def test_wrk_output_is_parsed():
    output = """Running 20s test @ http://127.0.0.1:41234/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    20.95ms    4.08ms  62.00ms   88.30%
    Req/Sec     2.40k   154.71     2.70k    71.50%
  Latency Distribution
     50%   20.31ms
     75%   22.19ms
     90%   24.72ms
     99%   36.06ms
  47890 requests in 20.01s, 40.11MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   2393.27
Transfer/sec:      2.00MB
"""
    result = parse_wrk_output(output, connections=50, duration=20)
    assert result.requests == 47890
    assert result.requests_per_second == pytest.approx(2393.27)
    assert result.p50_ms == pytest.approx(20.31)
    assert result.p99_ms == pytest.approx(36.06)
    assert result.errors == 3


def test_wrk_latency_units_are_converted():
    output = "  Latency Distribution\n     50%  850.00us\n     99%    1.20s\n  10 requests in 1.00s, 1KB read\nRequests/sec:     10.00\n"
    result = parse_wrk_output(output, connections=1, duration=1)
    assert result.p50_ms == pytest.approx(0.85)
    assert result.p99_ms == pytest.approx(1200)


def test_percentile_uses_nearest_rank():
    values = [float(number) for number in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([], 0.99) == 0.0


def test_load_generator_rejects_other_hosts():
    with pytest.raises(ValueError, match="loopback"):
        run_load("192.0.2.1", 80, ["/"], headers={}, duration=1, connections=1, tool="python")
