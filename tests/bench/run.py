"""Measure loom against its performance targets and print each figure beside its target.

    python -m tests.bench.run            # full run: medians of several runs, 10,000 jobs, about 3 minutes
    python -m tests.bench.run --quick    # checks that every measurement runs; times are not judged

The benchmark starts its own `loom sandbox` on 127.0.0.1 with a temporary
database, seeds it over HTTP, and runs the installed `loom` as a user would:
a subprocess with no terminal, credentials in a temporary config folder.
Full mode exits 1 when a target is missed; both modes exit 2 when a
measurement could not run at all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from tests.bench.imports import NOT_ON_CACHED_HELP, NOT_ON_READ_COMMANDS, NOT_ON_ROOT_HELP, NOT_ON_VERSION, snapshot_imports
from tests.bench.loadgen import run_load
from tests.bench.machine import describe_machine, load_average
from tests.bench.servers import RecordingProxy, SandboxServer, loom_command
from tests.fixtures.sandbox import api_login

CHECKOUT = Path(__file__).resolve().parents[2]
MB = 1000 * 1000
# The floor for any Typer CLI's --help on this machine: two commands, rich help.
MINIMAL_TYPER_APP = """\
import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    \"\"\"Say hello.\"\"\"
    print(f"hello {name}")


@app.command()
def bye(name: str = "world") -> None:
    \"\"\"Say goodbye.\"\"\"
    print(f"bye {name}")


app()
"""
# Encrypts the benchmark's throwaway wallet; it protects nothing.
PASSPHRASE = "benchmark passphrase"


@dataclass(frozen=True)
class Settings:
    """How much work each measurement does; `quick` only proves that every measurement runs."""

    quick: bool
    startup_runs: int  # timed runs of `--help` and `--version`
    command_runs: int  # timed runs of commands that talk to the sandbox
    stream_runs: int  # timed runs of `jobs list --all`
    login_runs: int  # timed runs of `loom login` (each derives a key, about 0.6 s)
    jobs: int  # jobs seeded for `jobs list --all`
    watch_jobs: int
    watch_seconds: float
    watch_interval: float
    load_seconds: float
    load_connections: int
    load_tool: str
    seed_threads: int = 4
    warmup_runs: int = 2


def settings_for(quick: bool, load_tool: str, jobs: int | None) -> Settings:
    if quick:
        return Settings(
            quick=True, startup_runs=2, command_runs=1, stream_runs=1, login_runs=1, jobs=jobs or 250,
            watch_jobs=5, watch_seconds=3, watch_interval=1, load_seconds=2, load_connections=10,
            load_tool=load_tool, warmup_runs=1,
        )
    return Settings(
        quick=False, startup_runs=21, command_runs=11, stream_runs=5, login_runs=5, jobs=jobs or 10_000,
        watch_jobs=50, watch_seconds=30, watch_interval=2, load_seconds=20, load_connections=50,
        load_tool=load_tool,
    )


@dataclass
class Row:
    """One line of the results table; `passed` is None for a figure shown without a target."""

    name: str
    value: str
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass
class Report:
    settings: Settings
    machine: dict[str, str]
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # measurements that could not run

    def add(self, name: str, value: str, target: str = "", passed: bool | None = None, note: str = "") -> None:
        self.rows.append(Row(name, value, target, passed, note))
        line = f"  {name}: {value}"
        if target:
            line += f"  target {target}"
        if passed is not None:
            line += " [pass]" if passed else " [MISS]"
        print(line, file=sys.stderr, flush=True)

    def run(self, title: str, measurement: Callable[[], None]) -> None:
        """Run one measurement; an exception marks it failed and the benchmark goes on with the next."""
        print(f"== {title}", file=sys.stderr, flush=True)
        try:
            measurement()
        except Exception as exc:  # noqa: BLE001 - any failure is reported and the next measurement runs
            traceback.print_exc(file=sys.stderr)
            self.failures.append(f"{title}: {exc}")
            self.add(title, f"did not run: {exc}", passed=False)


class MeasurementError(RuntimeError):
    """A command under measurement failed, so its timing means nothing."""


# -- running loom ---------------------------------------------------------------


def clean_environment(config_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without LOOM_* and proxy variables, with its own config folder and plain output."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("LOOM_") and name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        {
            "LOOM_CONFIG_DIR": str(config_dir),
            # The file store: a CI runner has no OS keyring, and this skips the notice about falling back to files.
            "LOOM_KEYRING_BACKEND": "file",
            "NO_COLOR": "1",
            "TERM": "dumb",
            "COLUMNS": "120",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    if extra:
        env.update(extra)
    return env


def run_once(command: Sequence[str], env: dict[str, str], *, ok: Sequence[int] = (0,), input: str | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(
        command,
        env=env,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    if result.returncode not in ok:
        raise MeasurementError(f"`{' '.join(command[-6:])}` exited {result.returncode}: {result.stderr.strip()[-800:]}")
    return elapsed, result


def time_command(command: Sequence[str], env: dict[str, str], runs: int, warmup: int, *, ok: Sequence[int] = (0,)) -> list[float]:
    """Run `command` `warmup` times untimed, then `runs` times; return the wall times in seconds."""
    for _ in range(warmup):
        run_once(command, env, ok=ok)
    return [run_once(command, env, ok=ok)[0] for _ in range(runs)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def spread(times: Sequence[float]) -> str:
    """Median with the range, e.g. "142 ms (min 131, max 160, 21 runs)"."""
    return f"{ms(statistics.median(times))} (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {len(times)} runs)"


# -- talking to the sandbox directly -------------------------------------------------


def job_spec(number: int) -> dict:
    return {
        "name": f"bench job {number}",
        "image": "ghcr.io/loom/bench:1.0",
        "command": ["python", "-c", "print(42)"],
        "resources": {"cpu": 1, "memory": "512Mi"},
        "reward": {"amount": "0.5", "currency": "LOOM"},
        "labels": {"suite": "bench"},
    }


def seed_jobs(base_url: str, token: str, count: int, threads: int) -> list[str]:
    """Create `count` jobs with `threads` parallel keep-alive clients; return their ids in creation order."""
    headers = {"Authorization": f"Bearer {token}"}
    local = threading.local()

    def create(number: int) -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(headers=headers, timeout=60)
        response = client.post(f"{base_url}/jobs", json=job_spec(number))
        if response.status_code != 201:
            raise MeasurementError(f"POST /jobs returned {response.status_code}: {response.text[:300]}")
        return response.json()["id"]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(create, range(count)))


# -- the measurements -------------------------------------------------------------


class Benchmark:
    def __init__(self, settings: Settings, report: Report, workdir: Path) -> None:
        self.settings = settings
        self.report = report
        self.workdir = workdir
        self.loom = loom_command()
        self.sandbox: SandboxServer | None = None
        self.token = ""  # JWT of the creator account, from a login over HTTP
        self.private_key = ""
        self.job_ids: list[str] = []
        # A user's config folder: the imported wallet and, once `loom login` ran, its token.
        self.user_env: dict[str, str] = {}
        self.logged_in = False

    # -- start-up, no server -----------------------------------------------------

    def startup(self) -> None:
        runs, warmup = self.settings.startup_runs, self.settings.warmup_runs
        env = clean_environment(self.workdir / "startup-config")
        baseline = time_command([sys.executable, "-c", "pass"], env, runs, warmup)
        self.report.add("python -c pass (reference)", spread(baseline))
        minimal = self.workdir / "minimal_typer_app.py"
        minimal.write_text(MINIMAL_TYPER_APP)
        typer_floor = time_command([sys.executable, str(minimal), "--help"], env, runs, warmup)
        self.report.add("minimal Typer app --help (reference)", spread(typer_floor))
        version = time_command([*self.loom, "--version"], env, runs, warmup)
        self.report.add("loom --version", spread(version), "<= 60 ms", statistics.median(version) <= 0.060)
        # The root help is rendered once per terminal and then replayed from
        # loom's cache folder. The first render is timed with that folder emptied.
        cache = Path(env["LOOM_CONFIG_DIR"]) / "cache"
        first_help = []
        for _ in range(runs):
            shutil.rmtree(cache, ignore_errors=True)
            first_help.append(run_once([*self.loom, "--help"], env)[0])
        self.report.add("loom --help, first run (renders, fills the cache)", spread(first_help))
        help_ = time_command([*self.loom, "--help"], env, runs, warmup)
        self.report.add("loom --help", spread(help_), "<= 150 ms", statistics.median(help_) <= 0.150)

    def startup_imports(self) -> None:
        env = clean_environment(self.workdir / "imports-config")
        self.check_imports(("--version",), "--version", NOT_ON_VERSION, env)
        self.check_imports(("--help",), "--help, first run", NOT_ON_ROOT_HELP, env)
        self.check_imports(("--help",), "--help, cached", NOT_ON_CACHED_HELP, env)

    def check_imports(self, args: tuple[str, ...], label: str, forbidden: tuple[str, ...], env: dict[str, str]) -> None:
        """Run `loom ARGS` once and report which of the `forbidden` packages it imported."""
        snapshot = snapshot_imports(*args, env=env)
        if snapshot.returncode != 0:
            raise MeasurementError(f"loom {' '.join(args)} exited {snapshot.returncode}: {snapshot.stderr.strip()[-500:]}")
        loaded = snapshot.loaded(forbidden)
        # starlette comes only with fastapi, so the target names fastapi alone.
        target = "none of: " + ", ".join(name for name in forbidden if name != "starlette")
        self.report.add(f"heavy modules on loom {label}", ", ".join(loaded) or "none", target, not loaded)

    # -- against the sandbox -----------------------------------------------------

    def start_sandbox(self) -> None:
        from eth_account import Account

        self.sandbox = SandboxServer(self.loom, env=clean_environment(self.workdir / "sandbox-config"))
        account = Account.create()
        self.private_key = account.key.hex()
        self.token = api_login(self.sandbox.url, account)
        self.user_env = clean_environment(
            self.workdir / "user-config", {"LOOM_API_URL": self.sandbox.url, "LOOM_PASSPHRASE": PASSPHRASE}
        )
        started = time.perf_counter()
        self.job_ids = seed_jobs(self.sandbox.url, self.token, self.settings.jobs, self.settings.seed_threads)
        elapsed = time.perf_counter() - started
        self.report.add(
            "seeding over HTTP (setup)",
            f"{len(self.job_ids):,} jobs in {elapsed:.1f} s ({len(self.job_ids) / elapsed:,.0f} POST /jobs per s, {self.settings.seed_threads} threads)",
        )

    def login(self) -> None:
        """Time `loom login` with a stored wallet and subtract the key derivation, timed alone."""
        from loom_cli.wallet import decrypt_key, encrypt_key

        key_file = self.workdir / "bench.key"
        key_file.write_text(self.private_key + "\n")
        key_file.chmod(0o600)
        run_once([*self.loom, "wallet", "import", "--private-key-file", str(key_file)], self.user_env)

        logins = time_command([*self.loom, "login"], self.user_env, self.settings.login_runs, 0)
        self.logged_in = True

        keystore = encrypt_key(bytes.fromhex(self.private_key.removeprefix("0x")), PASSPHRASE)
        derivations = []
        for _ in range(self.settings.login_runs):
            started = time.perf_counter()
            decrypt_key(keystore, PASSPHRASE)
            derivations.append(time.perf_counter() - started)
        kdf = statistics.median(derivations)
        login = statistics.median(logins)
        self.report.add("loom login, stored wallet", spread(logins))
        self.report.add("keystore decryption alone (scrypt)", spread(derivations))
        self.report.add("loom login minus key derivation", ms(login - kdf), "<= 150 ms", login - kdf <= 0.150)

        # The same login with the key in LOOM_PRIVATE_KEY derives nothing: a direct check of the subtraction.
        key_env = {**self.user_env, "LOOM_PRIVATE_KEY": self.private_key}
        direct = time_command([*self.loom, "login"], key_env, self.settings.login_runs, 0)
        self.report.add("loom login with LOOM_PRIVATE_KEY", spread(direct))

    def read_commands(self) -> None:
        runs, warmup = self.settings.command_runs, self.settings.warmup_runs
        env = self.user_env
        token_source = "stored token"
        if not self.logged_in:
            env = {**env, "LOOM_TOKEN": self.token}
            token_source = "LOOM_TOKEN, because loom login failed"
        listing = time_command([*self.loom, "jobs", "list"], env, runs, warmup)
        self.report.add(f"loom jobs list (20 jobs, table, {token_source})", spread(listing), "<= 300 ms", statistics.median(listing) <= 0.300)
        as_json = time_command([*self.loom, "jobs", "list", "-o", "json"], env, runs, warmup)
        self.report.add("loom jobs list -o json", spread(as_json))
        status = time_command([*self.loom, "jobs", "status", self.job_ids[0]], env, runs, warmup)
        self.report.add("loom jobs status ID", spread(status))

        self.check_imports(("jobs", "list"), "jobs list", NOT_ON_READ_COMMANDS, env)
        self.check_imports(("jobs", "status", self.job_ids[0]), "jobs status", NOT_ON_READ_COMMANDS, env)

    def list_all(self) -> None:
        """`jobs list --all -o jsonl` straight to the sandbox: throughput, peak RSS and completeness."""
        command = [*self.loom, "jobs", "list", "--all", "-o", "jsonl"]
        env = clean_environment(self.workdir / "list-config", {"LOOM_API_URL": self.sandbox.url, "LOOM_TOKEN": self.token})
        runs = [stream_command(command, env) for _ in range(self.settings.stream_runs)]
        expected = len(self.job_ids)
        for run in runs:
            if run.lines != expected or run.unique_ids != expected:
                raise MeasurementError(f"jobs list --all printed {run.lines} lines with {run.unique_ids} distinct ids; expected {expected}")
        wall = statistics.median(run.wall for run in runs)
        rate = expected / wall
        peak = max(run.peak_rss for run in runs)
        first = statistics.median(run.first_line for run in runs)
        self.report.add(
            f"jobs list --all -o jsonl, {expected:,} jobs",
            f"{rate:,.0f} jobs/s ({wall:.2f} s wall, median of {len(runs)})",
            ">= 5,000 jobs/s",
            rate >= 5000,
        )
        self.report.add("  peak RSS of that process", f"{peak / MB:.1f} MB (max of {len(runs)})", "<= 80 MB", peak <= 80 * MB)
        self.report.add("  time to the first line", ms(first))

    def streaming(self) -> None:
        """Hold the second page request until the first line is out: a buffering CLI would wait for nothing."""
        hold_seconds = 10.0
        first_line = threading.Event()
        list_path = self.sandbox.base_path + "/jobs"
        pages: list[float] = []
        gate_outcome: dict[str, bool] = {}
        lock = threading.Lock()

        def gate(method: str, path: str) -> None:
            if method != "GET" or path.split("?")[0] != list_path:
                return
            with lock:
                pages.append(time.monotonic())
                number = len(pages)
            if number == 2:
                gate_outcome["first_line_before_page_2"] = first_line.wait(hold_seconds)

        with RecordingProxy(self.sandbox.host, self.sandbox.port, self.sandbox.base_path) as proxy:
            proxy.gate = gate
            env = clean_environment(self.workdir / "stream-config", {"LOOM_API_URL": proxy.url, "LOOM_TOKEN": self.token})
            run = stream_command([*self.loom, "jobs", "list", "--all", "-o", "jsonl"], env, on_first_line=first_line.set)
        if len(pages) < 2:
            raise MeasurementError(f"jobs list --all sent {len(pages)} page request(s) for {len(self.job_ids)} jobs; need 2 to check streaming")
        streamed = gate_outcome.get("first_line_before_page_2", False)
        self.report.add(
            "jsonl streamed page by page",
            f"first line {'before' if streamed else 'NOT before'} page 2 was requested ({len(pages)} pages, {run.lines:,} lines)",
            "first line before page 2",
            streamed,
        )

    def watch(self) -> None:
        """Watch unchanging jobs through the recording proxy and count the requests it sends."""
        settings = self.settings
        ids = seed_jobs(self.sandbox.url, self.token, settings.watch_jobs, settings.seed_threads)
        with RecordingProxy(self.sandbox.host, self.sandbox.port, self.sandbox.base_path) as proxy:
            env = clean_environment(self.workdir / "watch-config", {"LOOM_API_URL": proxy.url, "LOOM_TOKEN": self.token})
            command = [
                *self.loom, "jobs", "watch", *ids,
                "--interval", f"{settings.watch_interval:g}", "--timeout", f"{settings.watch_seconds:g}",
            ]
            # Exit code 12: the timeout passed before every job ended, as expected for jobs nobody claims.
            elapsed, _ = run_once(command, env, ok=(12,))
            requests = proxy.snapshot()
        minutes = elapsed / 60
        # One request at start, then one per interval until the timeout.
        expected = int(settings.watch_seconds // settings.watch_interval) + 1
        not_modified = sum(1 for request in requests if request.status == 304)
        later = requests[1:]
        per_job_minute = len(requests) / (len(ids) * minutes)
        self.report.add(
            f"jobs watch, {len(ids)} jobs, interval {settings.watch_interval:g} s, {settings.watch_seconds:g} s",
            f"{per_job_minute:.3f} requests per job-minute ({len(requests)} requests, {not_modified} answered 304)",
        )
        self.report.add(
            "  requests for all jobs",
            f"{len(requests)} in {elapsed:.1f} s",
            f"one per interval (<= {expected + 1})",
            len(requests) <= expected + 1,
            note=", ".join(sorted({f"{request.method} {request.path.split('?')[0]}" for request in requests})),
        )
        all_304 = bool(later) and all(request.status == 304 for request in later)
        self.report.add(
            "  unchanged polls answered 304",
            f"{sum(1 for request in later if request.status == 304)} of {len(later)}",
            "all after the first",
            all_304,
        )

    def load(self) -> None:
        settings = self.settings
        sandbox = self.sandbox
        paths = [f"{sandbox.base_path}/jobs/{job_id}" for job_id in self.job_ids[:1000]]
        headers = {"Authorization": f"Bearer {self.token}"}
        # A short warm-up, so the measured window does not include first-request costs.
        run_load(sandbox.host, sandbox.port, paths, headers=headers, duration=1, connections=settings.load_connections, tool="python")
        result = run_load(
            sandbox.host, sandbox.port, paths, headers=headers,
            duration=settings.load_seconds, connections=settings.load_connections, tool=settings.load_tool,
        )
        label = f"sandbox GET /jobs/{{id}}, {result.connections} connections, {result.duration:.0f} s ({result.tool})"
        self.report.add(label, f"{result.requests_per_second:,.0f} req/s", ">= 1,500 req/s", result.requests_per_second >= 1500)
        self.report.add("  latency p50 / p99", f"{result.p50_ms:.1f} / {result.p99_ms:.1f} ms", "p99 <= 50 ms", result.p99_ms <= 50)
        self.report.add("  failed requests", f"{result.errors} of {result.requests:,}", "0", result.errors == 0)

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None


@dataclass
class StreamRun:
    wall: float
    first_line: float
    lines: int
    unique_ids: int
    peak_rss: int  # bytes
    returncode: int


# Runs the command given after the first argument as a child and writes its wall time and peak RSS
# to the file named by the first argument. The peak RSS of a child started by this small
# interpreter is the child's own: Linux counts a forked copy of the parent's memory, before
# exec, toward the child's peak, and the benchmark process is far larger than loom.
_MEASURE_PROGRAM = """\
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as handle:
    json.dump({"wall": wall, "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "code": code}, handle)
sys.exit(code)
"""


def stream_command(command: Sequence[str], env: dict[str, str], on_first_line: Callable[[], None] | None = None) -> StreamRun:
    """Run a command that prints JSON lines, reading stdout as it comes; return times, counts and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="loom-bench-stream-") as folder:
        figures_path = Path(folder) / "figures.json"
        stderr_path = Path(folder) / "stderr"
        with open(stderr_path, "wb") as stderr:
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-c", _MEASURE_PROGRAM, str(figures_path), *command],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
            chunks: list[bytes] = []
            first_line = 0.0
            while chunk := process.stdout.read1(1 << 16):
                if not first_line and b"\n" in chunk:
                    first_line = time.perf_counter() - started
                    if on_first_line is not None:
                        on_first_line()
                chunks.append(chunk)
            process.stdout.close()
            returncode = process.wait()
        if returncode != 0:
            log = stderr_path.read_text(errors="replace")[-800:]
            raise MeasurementError(f"`{' '.join(command[-5:])}` exited {returncode}: {log}")
        figures = json.loads(figures_path.read_text())
    lines = b"".join(chunks).splitlines()
    ids = {json.loads(line)["id"] for line in lines}
    # ru_maxrss is in KiB on Linux.
    return StreamRun(figures["wall"], first_line, len(lines), len(ids), figures["maxrss_kib"] * 1024, returncode)


# -- output ---------------------------------------------------------------------------


def render_table(report: Report) -> str:
    header = ("measurement", "result", "target", "")
    rows = [header] + [
        (row.name, row.value, row.target, "" if row.passed is None else ("pass" if row.passed else "MISS")) for row in report.rows
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render(report: Report) -> str:
    mode = "quick mode: times are not judged" if report.settings.quick else "full mode"
    lines = [f"loom benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC ({mode})", ""]
    lines += [f"{name + ':':14} {value}" for name, value in report.machine.items()]
    lines += ["", render_table(report)]
    notes = [f"- {row.name.strip()}: {row.note}" for row in report.rows if row.note]
    if notes:
        lines += ["", "notes:", *notes]
    if report.failures:
        lines += ["", "measurements that did not run:", *(f"- {failure}" for failure in report.failures)]
    return "\n".join(lines)


def wait_for_idle(timeout: float, threshold: float = 1.0) -> None:
    """Poll the 1-minute load average until it is below `threshold` or `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        load = os.getloadavg()[0]
        if load < threshold:
            return
        if time.monotonic() >= deadline:
            print(f"load average still {load:.2f} after {timeout:g} s; measuring anyway", file=sys.stderr)
            return
        time.sleep(5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few runs and small data: check that each measurement runs, judge no times")
    parser.add_argument("--jobs", type=int, help="jobs to seed for jobs list --all (default 10,000; 250 with --quick)")
    parser.add_argument("--load-tool", choices=("auto", "wrk", "python"), default="auto", help="load generator (default: wrk when installed)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument(
        "--wait-for-idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the 1-minute load average to drop below 1 (default: start at once)",
    )
    args = parser.parse_args(argv)
    if args.wait_for_idle > 0:
        wait_for_idle(args.wait_for_idle)

    settings = settings_for(args.quick, args.load_tool, args.jobs)
    report = Report(settings, describe_machine(CHECKOUT))
    with tempfile.TemporaryDirectory(prefix="loom-bench-") as folder:
        bench = Benchmark(settings, report, Path(folder))
        try:
            report.run("start-up", bench.startup)
            report.run("imports on start-up paths", bench.startup_imports)
            report.run("sandbox and seeding", bench.start_sandbox)
            if bench.sandbox is not None:
                report.run("login", bench.login)
                report.run("read commands", bench.read_commands)
                report.run("jobs list --all", bench.list_all)
                report.run("streaming", bench.streaming)
                report.run("watch", bench.watch)
                report.run("sandbox load", bench.load)
        finally:
            bench.stop()
    report.machine["load at end"] = load_average()

    print(render(report))
    if args.json:
        args.json.write_text(json.dumps({"settings": asdict(settings), "machine": report.machine, "rows": [asdict(row) for row in report.rows], "failures": report.failures}, indent=2) + "\n")
    if report.failures:
        return 2
    if not settings.quick and any(row.passed is False for row in report.rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
