"""`watch_jobs` against the sandbox app in-process, with a fake clock to check pacing exactly.

The sandbox runs in this process (its TestClient transport), so each test can
change jobs at precise moments of the fake clock. Only the outage test wraps
the transport to drop connections, which the in-process app cannot do.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from loom_cli.commands.jobs.watch import outcome_code, watch_jobs
from loom_cli.context import AppContext, GlobalOptions
from loom_cli.errors import ExitCode, NotFoundError, UsageError

API_URL = "http://127.0.0.1:9/v1"
SPEC = {"name": "Render [bold]frames[/bold]", "image": "ubuntu", "resources": {"cpu": 1, "memory": "1Gi"}, "reward": {"amount": "2.5"}}


class FakeTime:
    """A clock that only moves when slept on; `at(t, action)` runs `action` once the clock reaches t."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.start = self.now
        self.sleeps: list[float] = []
        self._actions: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        due = [entry for entry in self._actions if entry[0] <= self.now - self.start]
        for entry in due:
            self._actions.remove(entry)
            entry[1]()

    def at(self, offset: float, action: Callable[[], None]) -> None:
        self._actions.append((offset, action))


class RecordingTransport(httpx.BaseTransport):
    """Passes requests to the in-process sandbox and records (ids, If-None-Match, status) of each."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str | None, str | None, int]] = []
        self.down = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        response = self.inner.handle_request(request)
        self.requests.append((request.url.params.get("ids"), request.headers.get("If-None-Match"), response.status_code))
        return response


class TerminalStringIO(io.StringIO):
    def isatty(self) -> bool:
        return True


class Marketplace:
    """Creates and moves jobs in the in-process sandbox as a creator and a worker."""

    def __init__(self, client: Any, new_account: Callable[[], Any]) -> None:
        self.client = client
        self.creator = client.auth_headers(new_account())
        self.worker = client.auth_headers(new_account())

    def create(self, **overrides: Any) -> str:
        response = self.client.post("/v1/jobs", json={**SPEC, **overrides}, headers=self.creator)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def claim(self, job_id: str) -> None:
        response = self.client.post(f"/v1/jobs/{job_id}/claim", headers=self.worker)
        assert response.status_code == 200, response.text

    def report(self, job_id: str, outcome: str = "Completed") -> None:
        response = self.client.post(f"/v1/jobs/{job_id}/results", json={"outcome": outcome}, headers=self.worker)
        assert response.status_code == 201, response.text

    def cancel(self, job_id: str) -> None:
        response = self.client.post(f"/v1/jobs/{job_id}/cancel", headers=self.creator)
        assert response.status_code == 200, response.text


@pytest.fixture
def market(sandbox_client: Any, new_account: Callable[[], Any]) -> Marketplace:
    return Marketplace(sandbox_client, new_account)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def transport(sandbox_client: Any) -> RecordingTransport:
    return RecordingTransport(sandbox_client.transport)


def make_app(transport: httpx.BaseTransport, fake_time: FakeTime, *, output: str | None = None, stdout: io.StringIO | None = None, api_url: str | None = None) -> AppContext:
    return AppContext(
        GlobalOptions(output=output, api_url=api_url),
        env={"LOOM_API_URL": API_URL, "LOOM_CONFIG_DIR": "/nonexistent/loom-test", "NO_COLOR": "1"},
        stdin=io.StringIO(),
        stdout=stdout or io.StringIO(),
        stderr=io.StringIO(),
        transport=transport,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )


def test_pause_grows_while_unchanged_then_resets(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    app = make_app(transport, fake_time)
    # Claimed during the sixth pause (which ends at 18.125 s), completed during the one after.
    fake_time.at(18.0, lambda: market.claim(job_id))
    fake_time.at(19.0, lambda: market.report(job_id))

    code = watch_jobs(app, [job_id], interval=1.0, timeout=None)

    assert code == ExitCode.OK
    assert fake_time.sleeps == [1.0, 1.5, 2.25, 3.375, 5.0, 5.0, 1.0]


def test_unchanged_polls_get_304(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    app = make_app(transport, fake_time)
    fake_time.at(4.0, lambda: market.cancel(job_id))

    code = watch_jobs(app, [job_id], interval=1.0, timeout=None)

    assert code == ExitCode.JOB_CANCELLED
    statuses = [status for _, _, status in transport.requests]
    assert statuses == [200, 304, 304, 200]
    first_etag = transport.requests[0][1]
    assert first_etag is None
    assert all(etag for _, etag, _ in transport.requests[1:])


def test_many_ids_split_into_requests_of_100(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    ids = [market.create(name=f"job {number}") for number in range(130)]
    for job_id in ids:
        market.cancel(job_id)
    app = make_app(transport, fake_time)

    code = watch_jobs(app, ids, interval=1.0, timeout=None)

    assert code == ExitCode.JOB_CANCELLED
    sizes = [len(requested.split(",")) for requested, _, _ in transport.requests]
    assert sizes == [100, 30]
    assert fake_time.sleeps == []


def test_only_running_jobs_are_polled(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    done, running = market.create(), market.create()
    market.cancel(done)
    fake_time.at(1.0, lambda: market.cancel(running))

    code = watch_jobs(make_app(transport, fake_time), [done, running], interval=1.0, timeout=None)

    assert code == ExitCode.JOB_CANCELLED
    assert transport.requests[1][0] == running


def test_unknown_id_is_not_found(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    known = market.create()
    with pytest.raises(NotFoundError) as caught:
        watch_jobs(make_app(transport, fake_time), [known, "job_doesNotExist1"], interval=1.0, timeout=None)
    assert caught.value.message == "job not found: job_doesNotExist1"


def test_invalid_id_rejected_before_any_request(transport: RecordingTransport, fake_time: FakeTime):
    with pytest.raises(UsageError):
        watch_jobs(make_app(transport, fake_time), ["not-a-job"], interval=1.0, timeout=None)
    assert transport.requests == []


def test_timeout_returns_12(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    app = make_app(transport, fake_time)

    code = watch_jobs(app, [job_id], interval=2.0, timeout=5.0)

    assert code == ExitCode.WATCH_TIMEOUT
    # The last pause is cut short so the watch ends on time, after one last check.
    assert fake_time.sleeps == [2.0, 3.0]
    assert app.stderr.getvalue() == f"Timed out after 5 s; still running: {job_id} (Open).\n"


def test_terminal_job_returns_at_once(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    market.claim(job_id)
    market.report(job_id, "Failed")

    code = watch_jobs(make_app(transport, fake_time), [job_id], interval=1.0, timeout=0)

    assert code == ExitCode.JOB_FAILED
    assert fake_time.sleeps == []
    assert len(transport.requests) == 1


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["Completed", "Completed"], ExitCode.OK),
        (["Completed", "Failed"], ExitCode.JOB_FAILED),
        (["Cancelled", "Completed"], ExitCode.JOB_CANCELLED),
        (["Cancelled", "Failed"], ExitCode.JOB_FAILED),
        (["Failed", "Cancelled"], ExitCode.JOB_FAILED),
    ],
)
def test_failed_wins_over_cancelled(statuses: list[str], expected: ExitCode):
    assert outcome_code(statuses) == expected


def test_piped_output_one_line_per_change(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    app = make_app(transport, fake_time)
    fake_time.at(1.0, lambda: market.claim(job_id))
    fake_time.at(2.0, lambda: market.report(job_id))

    assert watch_jobs(app, [job_id], interval=1.0, timeout=None) == ExitCode.OK

    lines = app.stdout.getvalue().splitlines()
    assert [line.split(" ")[2] for line in lines] == ["Open", "InProgress", "Completed"]
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ " + job_id + r" InProgress 0x[0-9a-fA-F]{40} Render \[bold\]frames\[/bold\]$")
    assert pattern.match(lines[1]), lines[1]
    assert lines[0].split(" ")[3] == "-"
    assert app.stderr.getvalue() == "Done: 1 Completed.\n"


def test_jsonl_events(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    first, second = market.create(), market.create()
    app = make_app(transport, fake_time, output="jsonl")
    fake_time.at(1.0, lambda: market.claim(first))
    fake_time.at(2.0, lambda: (market.report(first, "Failed"), market.cancel(second)))

    assert watch_jobs(app, [first, second], interval=1.0, timeout=None) == ExitCode.JOB_FAILED

    events = [json.loads(line) for line in app.stdout.getvalue().splitlines()]
    summary = [(event["event"], event.get("job", {}).get("id"), event.get("previous_status")) for event in events]
    assert summary == [
        ("status", first, None),
        ("status", second, None),
        ("status", first, "Open"),
        ("status", first, "InProgress"),
        ("status", second, "Open"),
        ("final", first, None),
        ("final", second, None),
        ("end", None, None),
    ]
    assert events[4]["job"]["status"] == "Cancelled"
    assert events[5]["terminal"] is True
    assert events[7] == {"event": "end", "exit_code": 10, "reason": "failed"}


def test_jsonl_timeout_marks_jobs_not_terminal(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    app = make_app(transport, fake_time, output="jsonl")

    assert watch_jobs(app, [job_id], interval=1.0, timeout=1.0) == ExitCode.WATCH_TIMEOUT

    events = [json.loads(line) for line in app.stdout.getvalue().splitlines()]
    assert events[-2]["event"] == "final"
    assert events[-2]["terminal"] is False
    assert events[-1] == {"event": "end", "exit_code": 12, "reason": "timeout"}


def test_json_prints_final_jobs_once(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    app = make_app(transport, fake_time, output="json")
    fake_time.at(1.0, lambda: market.cancel(job_id))

    assert watch_jobs(app, [job_id], interval=1.0, timeout=None) == ExitCode.JOB_CANCELLED

    jobs = json.loads(app.stdout.getvalue())
    assert [(job["id"], job["status"]) for job in jobs] == [(job_id, "Cancelled")]


def test_outage_reported_once_then_recovery(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    app = make_app(transport, fake_time)

    def go_down() -> None:
        transport.down = True

    def come_back() -> None:
        transport.down = False
        market.cancel(job_id)

    fake_time.at(1.0, go_down)
    fake_time.at(60.0, come_back)

    assert watch_jobs(app, [job_id], interval=1.0, timeout=None) == ExitCode.JOB_CANCELLED

    notices = app.stderr.getvalue().splitlines()
    unreachable = [line for line in notices if line.startswith("API unreachable, retrying…")]
    assert len(unreachable) == 1
    assert "Connection refused" in unreachable[0]
    assert "API reachable again." in notices
    assert app.stdout.getvalue().splitlines()[-1].split(" ")[2] == "Cancelled"


def test_ctrl_c_prints_resume_command(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    app = make_app(transport, fake_time, api_url=API_URL)

    def interrupt() -> None:
        raise KeyboardInterrupt

    fake_time.at(1.0, interrupt)

    assert watch_jobs(app, [job_id, job_id], interval=1.0, timeout=None) == ExitCode.INTERRUPTED
    assert app.stderr.getvalue() == (
        f"Interrupted; the jobs keep running. Watch them again with: loom --api-url {API_URL} jobs watch {job_id}\n"
    )


def test_live_table_on_a_terminal(market: Marketplace, transport: RecordingTransport, fake_time: FakeTime):
    job_id = market.create()
    stdout = TerminalStringIO()
    app = make_app(transport, fake_time, stdout=stdout)
    fake_time.at(1.0, lambda: market.claim(job_id))
    fake_time.at(2.0, lambda: market.report(job_id))

    assert watch_jobs(app, [job_id], interval=1.0, timeout=None) == ExitCode.OK

    screen = stdout.getvalue()
    for header in ("ID", "NAME", "STATUS", "WORKER", "ELAPSED"):
        assert header in screen
    assert job_id in screen
    assert "Completed" in screen
    # The name is shown as text: rich did not take [bold] as markup.
    assert "[bold]frames[/bold]" in screen
