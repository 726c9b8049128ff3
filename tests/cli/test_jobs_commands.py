"""`loom jobs list/status/create` in-process against the sandbox app, with exact output.

The commands run through Typer with an AppContext whose transport is the
in-process sandbox, so every request reaches the real API code.
`httpx.MockTransport` appears only for responses the sandbox never sends
(ones that break the contract).
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from loom_cli import api
from loom_cli.app import app as root_app
from loom_cli.context import AppContext, GlobalOptions
from loom_cli.errors import ApiUnavailableError, AuthError, ConflictError, NotFoundError, UsageError
from loom_cli.http import ApiClient
from tests.cli.test_spec_loader import VALID

# Any loopback URL works: the transport sends every request to the in-process app.
API_URL = "http://127.0.0.1:9/v1"


class TerminalStream(io.StringIO):
    """A stdout that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


class CountingTransport(httpx.BaseTransport):
    """Passes requests on to the sandbox and records, for each, what stdout held when it was sent."""

    def __init__(self, inner: httpx.BaseTransport, stdout: io.StringIO) -> None:
        self.inner = inner
        self.stdout = stdout
        self.requests: list[httpx.Request] = []
        self.stdout_at_request: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.stdout_at_request.append(self.stdout.getvalue())
        return self.inner.handle_request(request)


class Loom:
    """Runs loom commands in-process as one user of the in-process sandbox."""

    def __init__(self, sandbox_client, account, tmp_path: Path, *, stdout: io.StringIO | None = None) -> None:
        self.sandbox = sandbox_client
        self.account = account
        self.tmp_path = tmp_path
        self.token = sandbox_client.login(account)
        self.env = {
            "LOOM_CONFIG_DIR": str(tmp_path / "config"),
            "LOOM_API_URL": API_URL,
            "LOOM_TOKEN": self.token,
            "LOOM_KEYRING_BACKEND": "file",
            "NO_COLOR": "1",
        }
        self.stdout_factory = (lambda: stdout) if stdout is not None else io.StringIO
        self.clock = None
        self.transport: httpx.BaseTransport = sandbox_client.transport

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str, BaseException | None]:
        stdout, stderr = self.stdout_factory(), io.StringIO()
        extra = {"clock": self.clock} if self.clock is not None else {}
        context = AppContext(
            GlobalOptions(), env=self.env, stdin=io.StringIO(stdin), stdout=stdout, stderr=stderr, transport=self.transport, **extra
        )
        result = CliRunner().invoke(root_app, list(args), obj=context)
        error = result.exception if not isinstance(result.exception, SystemExit) else None
        return result.exit_code, stdout.getvalue(), stderr.getvalue(), error

    def create(self, name: str = "render frames") -> dict:
        path = self.tmp_path / "job.yaml"
        path.write_text(VALID.replace("render frames", name), encoding="utf-8")
        code, out, err, error = self("jobs", "create", str(path), "-o", "json")
        assert error is None, error
        return json.loads(out)


@pytest.fixture
def loom(sandbox_client, new_account, tmp_path) -> Loom:
    return Loom(sandbox_client, new_account(), tmp_path)


def test_create_prints_key_value_view(loom):
    path = loom.tmp_path / "job.yaml"
    path.write_text(VALID, encoding="utf-8")
    code, out, err, error = loom("jobs", "create", str(path))
    assert error is None
    job = json.loads(loom("jobs", "list", "--mine", "-o", "jsonl")[1])
    assert out == (
        f"ID:           {job['id']}\n"
        "Name:         render frames\n"
        "Description:  -\n"
        "Status:       Open\n"
        "Reward:       12.5 LOOM\n"
        f"Creator:      {loom.account.address}\n"
        "Worker:       -\n"
        "Image:        python:3.12-slim\n"
        "Resources:    cpu 0.5, memory 512Mi\n"
        "Timeout:      1h\n"
        "Labels:       -\n"
        f"Created:      {job['created_at']}\n"
        "Claimed:      -\n"
        "Finished:     -\n"
    )
    assert err == f"Created {job['id']}; follow it with: loom jobs watch {job['id']}\n"


def test_create_quiet_prints_only_the_id(loom):
    path = loom.tmp_path / "job.yaml"
    path.write_text(VALID, encoding="utf-8")
    code, out, err, error = loom("jobs", "create", str(path), "-q")
    assert error is None
    assert out.strip().startswith("job_")
    assert out.count("\n") == 1
    assert err == ""


def test_create_sends_the_normalised_spec(loom):
    job = loom.create()
    assert job["spec"] == {
        "name": "render frames",
        "image": "python:3.12-slim",
        "resources": {"cpu": 0.5, "memory": "512Mi"},
        "reward": {"amount": "12.5", "currency": "LOOM"},
        "timeout": "1h",
    }


def test_create_sends_an_idempotency_key(sandbox_client, new_account, tmp_path):
    stdout = io.StringIO()
    loom = Loom(sandbox_client, new_account(), tmp_path, stdout=stdout)
    loom.transport = CountingTransport(sandbox_client.transport, stdout)
    loom.create()
    [post] = [request for request in loom.transport.requests if request.method == "POST"]
    assert len(post.headers["Idempotency-Key"]) == 36


def test_list_piped_table_is_exact(loom):
    first = loom.create("first job")
    second = loom.create("second job")
    code, out, err, error = loom("jobs", "list", "--mine")
    assert error is None
    address = loom.account.address
    assert out == (
        "ID                    NAME        STATUS  REWARD     CREATOR                                     WORKER  CREATED\n"
        f"{second['id']}  second job  Open    12.5 LOOM  {address}  -       {second['created_at']}\n"
        f"{first['id']}  first job   Open    12.5 LOOM  {address}  -       {first['created_at']}\n"
    )
    assert err == ""


def test_list_terminal_table_shows_age(sandbox_client, new_account, tmp_path):
    loom = Loom(sandbox_client, new_account(), tmp_path)
    job = loom.create("first job")
    created = datetime.fromisoformat(job["created_at"]).timestamp()
    loom.clock = lambda: created + 180
    loom.stdout_factory = TerminalStream
    code, out, err, error = loom("jobs", "list", "--mine")
    assert error is None
    address = loom.account.address
    # On a terminal the creator's address is shortened to its first 6 and last 4 characters.
    assert out.splitlines() == [
        "ID                    NAME       STATUS  REWARD     CREATOR      WORKER  CREATED",
        f"{job['id']}  first job  Open    12.5 LOOM  {address[:6]}…{address[-4:]}  -       3m ago ",
    ]


def test_list_hint_when_more_pages(loom):
    loom.create("a")
    loom.create("b")
    code, out, err, error = loom("jobs", "list", "--mine", "--limit", "1", "-o", "jsonl")
    assert len(out.splitlines()) == 1
    assert err == "More jobs exist; list every page with --all (or show up to 100 per page with --limit 100).\n"


def test_list_all_streams_each_page_before_the_next(sandbox_client, new_account, tmp_path):
    account = new_account()
    creator = Loom(sandbox_client, account, tmp_path)
    ids = [creator.create(f"job {number}")["id"] for number in range(3)]
    stdout = io.StringIO()
    loom = Loom(sandbox_client, account, tmp_path, stdout=stdout)
    loom.transport = CountingTransport(sandbox_client.transport, stdout)
    code, out, err, error = loom("jobs", "list", "--mine", "--all", "--limit", "1", "-o", "jsonl")
    assert error is None
    assert [json.loads(line)["id"] for line in out.splitlines()] == list(reversed(ids))
    pages = [request for request in loom.transport.requests if request.url.path == "/v1/jobs"]
    assert len(pages) == 3
    # The first line was written before the second page was requested.
    assert loom.transport.stdout_at_request[1].count("\n") == 1
    assert "cursor" not in pages[0].url.params
    assert pages[1].url.params["cursor"]


def test_list_sends_canonical_status(sandbox_client, new_account, tmp_path):
    stdout = io.StringIO()
    loom = Loom(sandbox_client, new_account(), tmp_path, stdout=stdout)
    loom.transport = CountingTransport(sandbox_client.transport, stdout)
    code, out, err, error = loom("jobs", "list", "--status", "INPROGRESS", "-q")
    assert error is None
    assert loom.transport.requests[0].url.params["status"] == "InProgress"


def test_list_sends_no_token(sandbox_client, new_account, tmp_path):
    stdout = io.StringIO()
    loom = Loom(sandbox_client, new_account(), tmp_path, stdout=stdout)
    loom.transport = CountingTransport(sandbox_client.transport, stdout)
    loom("jobs", "list", "--mine", "-q")
    assert "Authorization" not in loom.transport.requests[0].headers


def test_mine_uses_loom_token_subject(loom, sandbox_client, new_account):
    own = loom.create("mine")
    (loom.tmp_path / "other").mkdir()
    other_user = Loom(sandbox_client, new_account(), loom.tmp_path / "other")
    other_user.create("not mine")
    code, out, err, error = loom("jobs", "list", "--mine", "-q")
    assert out == f"{own['id']}\n"


def test_mine_uses_address_setting(loom):
    own = loom.create("mine")
    config = Path(loom.env["LOOM_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(f'[profiles.default]\naddress = "{loom.account.address}"\n', encoding="utf-8")
    del loom.env["LOOM_TOKEN"]
    code, out, err, error = loom("jobs", "list", "--mine", "-q")
    assert error is None, error
    assert out == f"{own['id']}\n"


def test_mine_with_malformed_token(loom):
    loom.env["LOOM_TOKEN"] = "not-a-jwt"
    code, out, err, error = loom("jobs", "list", "--mine")
    assert isinstance(error, AuthError)
    assert error.message == "LOOM_TOKEN is not a valid JWT"


def test_status_views(loom):
    job = loom.create()
    code, out, err, error = loom("jobs", "status", job["id"], "-q")
    assert out == "Open\n"
    code, out, err, error = loom("jobs", "status", job["id"], "-o", "json")
    assert json.loads(out) == job
    code, out, err, error = loom("jobs", "status", job["id"], "-o", "yaml")
    assert out.startswith(f"id: {job['id']}\nname: render frames\nstatus: Open\n")


def test_status_unknown_job(loom):
    code, out, err, error = loom("jobs", "status", "job_missing")
    assert isinstance(error, NotFoundError)
    assert error.message == "job job_missing not found"
    assert out == ""


def test_create_reused_key_with_other_spec_is_conflict(loom):
    path = loom.tmp_path / "job.yaml"
    path.write_text(VALID, encoding="utf-8")
    assert loom("jobs", "create", str(path), "--idempotency-key", "k-1", "-q")[3] is None
    path.write_text(VALID.replace("render frames", "other"), encoding="utf-8")
    code, out, err, error = loom("jobs", "create", str(path), "--idempotency-key", "k-1", "-q")
    assert isinstance(error, ConflictError)
    assert error.hint == "this --idempotency-key was already used with a different spec; use a new key"


# -- api helpers -----------------------------------------------------------------------


def api_client(transport: httpx.BaseTransport) -> ApiClient:
    return ApiClient(API_URL, transport=transport, sleep=lambda seconds: None)


def test_list_jobs_etag_gives_not_modified(loom, sandbox_client):
    loom.create()
    with api_client(sandbox_client.transport) as client:
        page = api.list_jobs(client, creator=loom.account.address)
        assert page.etag
        again = api.list_jobs(client, creator=loom.account.address, etag=page.etag)
    assert again.not_modified
    assert again.data == []
    assert again.etag == page.etag


def test_find_job_returns_none_for_unknown(sandbox_client):
    with api_client(sandbox_client.transport) as client:
        assert api.find_job(client, "job_nothere") is None


def test_iter_jobs_fetches_lazily(loom, sandbox_client):
    for number in range(3):
        loom.create(f"job {number}")
    stdout = io.StringIO()
    transport = CountingTransport(sandbox_client.transport, stdout)
    with api_client(transport) as client:
        jobs = api.iter_jobs(client, creator=loom.account.address, limit=2, all_pages=True)
        assert transport.requests == []
        next(jobs)
        next(jobs)
        assert len(transport.requests) == 1
        next(jobs)
        assert len(transport.requests) == 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda client: api.get_job(client, "nope"), "invalid job id 'nope'"),
        (lambda client: api.claim_job(client, "job_1", "bad key"), "invalid idempotency key 'bad key'"),
        (lambda client: api.list_jobs(client, limit=0), "invalid limit 0: must be 1-100"),
        (lambda client: api.list_jobs(client, ids=[]), "give 1-100 job ids per request, got 0"),
        (lambda client: api.list_jobs(client, ids=["job_1", "x"]), "invalid job id 'x'"),
        (lambda client: api.list_jobs(client, status="running"), "invalid status 'running'"),
    ],
)
def test_api_checks_arguments_before_any_request(call, message):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    with api_client(httpx.MockTransport(refuse)) as client:
        with pytest.raises(UsageError) as caught:
            call(client)
    assert caught.value.message == message


GOOD_JOB = {
    "id": "job_1",
    "name": "x",
    "status": "Open",
    "creator": "0x" + "a" * 40,
    "worker": None,
    "reward": {"amount": "1", "currency": "LOOM"},
    "spec": {},
    "created_at": "2024-01-01T00:00:00.000000Z",
    "updated_at": "2024-01-01T00:00:00.000000Z",
    "claimed_at": None,
    "finished_at": None,
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], "a body that is not a JSON object"),
        ({"next_cursor": None}, "a body without a 'data' list"),
        ({"data": []}, "a body without 'next_cursor'"),
        ({"data": [{k: v for k, v in GOOD_JOB.items() if k != "status"}], "next_cursor": None}, "a job without 'status'"),
        ({"data": [{**GOOD_JOB, "name": 5}], "next_cursor": None}, "a job whose 'name' is int"),
        ({"data": [{**GOOD_JOB, "reward": {"amount": 1}}], "next_cursor": None}, "a job reward whose 'amount' is int"),
        ({"data": ["job_1"], "next_cursor": None}, "a job that is not a JSON object"),
    ],
)
def test_list_jobs_rejects_broken_responses(body, expected):
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    with api_client(transport) as client:
        with pytest.raises(ApiUnavailableError) as caught:
            api.list_jobs(client)
    assert caught.value.message == f"GET /jobs: the API returned HTTP 200 with {expected}, which breaks the Loom API contract"
    assert caught.value.exit_code == 6


def test_iter_jobs_stops_on_a_repeated_cursor():
    body = {"data": [GOOD_JOB], "next_cursor": "same"}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    with api_client(transport) as client:
        with pytest.raises(ApiUnavailableError) as caught:
            list(api.iter_jobs(client, all_pages=True))
    assert "next_cursor it had already returned" in caught.value.message


def test_create_job_rejects_a_result_without_id():
    body = {k: v for k, v in GOOD_JOB.items() if k != "id"}
    transport = httpx.MockTransport(lambda request: httpx.Response(201, json=body))
    with api_client(transport) as client:
        with pytest.raises(ApiUnavailableError) as caught:
            api.create_job(client, {"name": "x"}, "key-1")
    assert caught.value.message == "POST /jobs: the API returned HTTP 201 with a job without 'id', which breaks the Loom API contract"


def test_normalize_status_accepts_any_case():
    assert [api.normalize_status(value) for value in ("open", "INPROGRESS", "Completed", " failed ", "cancelled")] == [
        "Open",
        "InProgress",
        "Completed",
        "Failed",
        "Cancelled",
    ]
