"""`loom jobs watch` as a subprocess: exit codes, the JSON lines stream, Ctrl-C and a server restart."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

# make_party is a fixture, found by pytest through this import.
from tests.e2e.test_workflow import PartyFactory, assert_clean_error, make_party  # noqa: F401

pytestmark = pytest.mark.e2e


def read_line(process: subprocess.Popen[str], timeout: float = 30) -> str:
    """Return the next stdout line of `process`, failing the test if none comes within `timeout`."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            pytest.fail(f"no output within {timeout} s; stderr: {process.communicate()[1]}")
    return process.stdout.readline()


class StderrCollector:
    """Reads a process's stderr on a thread, so a test can wait for one line while the process runs."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.lines: list[str] = []
        self._stream = process.stderr
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if time.monotonic() > deadline:
                pytest.fail(f"stderr never showed {text!r}; it showed: {''.join(self.lines)!r}")
            time.sleep(0.05)

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


def test_timeout_exits_12(make_party: PartyFactory):
    creator = make_party("creator")
    job_id = creator.post_job()

    result = creator.loom("jobs", "watch", job_id, "--interval", "0.2", "--timeout", "1")

    assert result.returncode == 12, result.stderr
    assert f"Timed out after 1 s; still running: {job_id} (Open)." in result.stderr
    assert result.stdout.split()[1:3] == [job_id, "Open"]


def test_unknown_id_exits_4(make_party: PartyFactory):
    result = make_party("visitor").loom("jobs", "watch", "job_neverCreated7")
    assert_clean_error(result, 4)
    assert "job_neverCreated7" in result.stderr


def test_invalid_id_exits_2(make_party: PartyFactory):
    result = make_party("visitor").loom("jobs", "watch", "12345")
    assert_clean_error(result, 2)


def test_ended_jobs_return_at_once_with_failed_first(make_party: PartyFactory):
    creator, worker = make_party("creator"), make_party("worker")
    cancelled, failed, completed = (creator.post_job() for _ in range(3))
    creator.post(f"/jobs/{cancelled}/cancel")
    for job_id, outcome in ((failed, "Failed"), (completed, "Completed")):
        worker.post(f"/jobs/{job_id}/claim")
        worker.post(f"/jobs/{job_id}/results", {"outcome": outcome})

    started = time.monotonic()
    result = creator.loom("jobs", "watch", cancelled, failed, completed, "--interval", "60")

    # Nothing was left to wait for, so the 60 s interval never came into play.
    assert time.monotonic() - started < 30
    assert result.returncode == 10, result.stderr
    assert [line.split()[2] for line in result.stdout.splitlines()] == ["Cancelled", "Failed", "Completed"]
    assert "Done: 1 Cancelled, 1 Failed, 1 Completed." in result.stderr


def test_jsonl_stream_follows_changes(make_party: PartyFactory):
    creator, worker = make_party("creator"), make_party("worker")
    job_id = creator.post_job()
    watcher = creator.popen("jobs", "watch", job_id, "--interval", "0.2", "--timeout", "60", "-o", "jsonl")

    first = json.loads(read_line(watcher))
    worker.post(f"/jobs/{job_id}/claim")
    worker.post(f"/jobs/{job_id}/results", {"outcome": "Completed", "output": {"ok": True}})
    rest, errors = watcher.communicate(timeout=60)

    assert watcher.returncode == 0, errors
    events = [first] + [json.loads(line) for line in rest.splitlines()]
    statuses = [(event["event"], event.get("job", {}).get("status")) for event in events]
    assert statuses[0] == ("status", "Open")
    assert statuses[-2:] == [("final", "Completed"), ("end", None)]
    # A fast worker may claim and report within one interval, so InProgress may be skipped.
    assert [status for kind, status in statuses if kind == "status"][-1] == "Completed"
    assert events[-1] == {"event": "end", "exit_code": 0, "reason": "completed"}
    assert events[-2]["job"]["worker"] == worker.address


def test_ctrl_c_exits_130_with_resume_hint(make_party: PartyFactory):
    creator = make_party("creator")
    job_id = creator.post_job()
    watcher = creator.popen("jobs", "watch", job_id, "--interval", "0.2")

    assert read_line(watcher).split()[1:3] == [job_id, "Open"]
    watcher.send_signal(signal.SIGINT)
    _, errors = watcher.communicate(timeout=30)

    assert watcher.returncode == 130
    assert "Traceback" not in errors
    # LOOM_API_URL counts as --api-url, so the command repeats it and works from any shell.
    assert f"the jobs keep running. Watch them again with: loom --api-url {creator.env['LOOM_API_URL']} jobs watch {job_id}\n" in errors
    assert creator.status(job_id) == "Open"


@pytest.mark.slow
def test_watch_survives_sandbox_restart(start_sandbox: Callable[..., Any], make_party: PartyFactory):
    sandbox = start_sandbox()
    creator, worker = make_party("creator", url=sandbox.url), make_party("worker", url=sandbox.url, token=False)
    job_id = creator.post_job()
    worker.post(f"/jobs/{job_id}/claim")
    watcher = creator.popen("jobs", "watch", job_id, "--interval", "0.2", "--timeout", "120")
    stderr = StderrCollector(watcher)
    assert read_line(watcher).split()[1:3] == [job_id, "InProgress"]

    sandbox.stop()
    stderr.wait_for("API unreachable, retrying…")
    assert watcher.poll() is None

    port = httpx.URL(sandbox.url).port
    restarted = start_sandbox("--port", str(port), "--db", str(sandbox.db_path))
    assert restarted.url == sandbox.url
    # The worker's CLI signs a fresh login if the restarted server rejects older tokens.
    report = worker.loom("results", "report", job_id, "--output-json", '{"after": "restart"}')
    assert report.returncode == 0, report.stderr

    # communicate() reads stderr too, so the last lines may reach it instead of the collector.
    rest, late_stderr = watcher.communicate(timeout=60)
    notices = stderr.text() + late_stderr
    assert watcher.returncode == 0, notices
    assert rest.split()[1:3] == [job_id, "Completed"]
    assert notices.count("API unreachable, retrying…") == 1
    assert "API reachable again." in notices
    assert "Traceback" not in notices

