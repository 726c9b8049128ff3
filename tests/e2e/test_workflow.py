"""The creator/worker workflow end to end: the real `loom` as a subprocess against a real sandbox.

Each wallet is a `Party`: a fresh key in LOOM_PRIVATE_KEY and a settings
folder of its own, so its token never mixes with another wallet's. Setting
up (creating and claiming jobs, reading their status) goes over plain HTTP,
so each test starts only the loom processes it checks. Most parties also get
LOOM_TOKEN from a login made by the test, which spares every loom process a
login of its own; `make_party(name, token=False)` keeps the signing path.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.sandbox import api_login
from tests.helpers import loom_env, run_loom

pytestmark = pytest.mark.e2e

SPEC_YAML = """\
name: Score support tickets
image: python:3.12-slim
command: [python, /inputs/score.py]
resources:
  cpu: 0.5
  memory: 512Mi
reward:
  amount: "3.75"
"""
SPEC = {
    "name": "Score support tickets",
    "image": "python:3.12-slim",
    "command": ["python", "/inputs/score.py"],
    "resources": {"cpu": 0.5, "memory": "512Mi"},
    "reward": {"amount": "3.75"},
}


@dataclass
class Party:
    """One wallet's side of the marketplace: loom runs with its key and its own settings folder."""

    name: str
    account: Any
    url: str
    env: dict[str, str]
    _token: str | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def token(self) -> str:
        if self._token is None:
            self._token = api_login(self.url, self.account)
        return self._token

    def loom(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return run_loom(*args, env=self.env, input=input, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start loom without waiting; stdout and stderr are pipes, stdin is closed."""
        return subprocess.Popen(
            [sys.executable, "-m", "loom_cli", *args],
            env=loom_env(self.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def create_job(self, spec_file: Path) -> str:
        """Create a job with `loom jobs create` and return its id."""
        result = self.loom("jobs", "create", str(spec_file), "-q")
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    # -- over HTTP, for setting up and checking -------------------------------------------

    def post(self, path: str, body: Any = None) -> dict:
        with httpx.Client(timeout=30, trust_env=False) as client:
            response = client.post(f"{self.url}{path}", json=body, headers={"Authorization": f"Bearer {self.token}"})
        assert response.is_success, response.text
        return response.json()

    def post_job(self) -> str:
        return self.post("/jobs", SPEC)["id"]

    def status(self, job_id: str) -> str:
        with httpx.Client(timeout=30, trust_env=False) as client:
            response = client.get(f"{self.url}/jobs", params={"ids": job_id})
        assert response.status_code == 200, response.text
        return response.json()["data"][0]["status"]


PartyFactory = Callable[..., Party]


@pytest.fixture
def make_party(sandbox_url: str, new_account: Callable[[], Any], tmp_path: Path) -> PartyFactory:
    """Return `make_party(name, url=sandbox_url, token=True)`, a new wallet pointed at the sandbox."""

    def make(name: str, url: str | None = None, token: bool = True) -> Party:
        account = new_account()
        env = {
            "LOOM_API_URL": url or sandbox_url,
            "LOOM_PRIVATE_KEY": account.key.hex(),
            "LOOM_CONFIG_DIR": str(tmp_path / f"{name}-config"),
            "LOOM_KEYRING_BACKEND": "file",
        }
        party = Party(name, account, url or sandbox_url, env)
        if token:
            party.env["LOOM_TOKEN"] = party.token
        return party

    return make


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(SPEC_YAML, encoding="utf-8")
    return path


def claimed_job(make_party: PartyFactory) -> tuple[Party, Party, str]:
    """A creator, a worker, and a job the worker has claimed, set up over HTTP."""
    creator, worker = make_party("creator"), make_party("worker")
    job_id = creator.post_job()
    worker.post(f"/jobs/{job_id}/claim")
    return creator, worker, job_id


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")


@pytest.mark.slow
def test_creator_worker_workflow(make_party: PartyFactory, spec_file: Path, tmp_path: Path):
    # Both sign their own logins here: LOOM_PRIVATE_KEY only, no LOOM_TOKEN.
    creator, worker = make_party("creator", token=False), make_party("worker", token=False)
    job_id = creator.create_job(spec_file)

    claim = worker.loom("jobs", "claim", job_id, "-o", "json")
    assert claim.returncode == 0, claim.stderr
    claimed = json.loads(claim.stdout)
    assert claimed["status"] == "InProgress"
    assert claimed["worker"] == worker.address

    output = '{"tickets": 1200, "mean_score": 0.10000000000000000000001, "labels": ["pos", "neg"]}'
    report = worker.loom("results", "report", job_id, "--output-json", output, "--message", "done in 3 min")
    assert report.returncode == 0, report.stderr
    assert "Completed" in report.stdout

    watch = creator.loom("jobs", "watch", job_id, "--timeout", "30")
    assert watch.returncode == 0, watch.stderr
    assert watch.stdout.split()[1:3] == [job_id, "Completed"]

    saved = tmp_path / "output.json"
    get = creator.loom("results", "get", job_id, "--output-file", str(saved), "-o", "json")
    assert get.returncode == 0, get.stderr
    result = json.loads(get.stdout)
    assert result["outcome"] == "Completed"
    assert result["reported_by"] == worker.address
    assert result["message"] == "done in 3 min"
    # The saved output keeps every digit the worker sent.
    assert "0.10000000000000000000001" in saved.read_text(encoding="utf-8")
    assert json.loads(saved.read_text(encoding="utf-8"))["tickets"] == 1200

    as_worker = worker.loom("results", "get", job_id, "--output-file", "-")
    assert as_worker.returncode == 0, as_worker.stderr
    assert as_worker.stdout == saved.read_text(encoding="utf-8")


def test_two_workers_race_one_wins(make_party: PartyFactory):
    creator = make_party("creator")
    first, second = make_party("first"), make_party("second")
    job_id = creator.post_job()

    racers = [worker.popen("jobs", "claim", job_id, "-q") for worker in (first, second)]
    outcomes = [(process.wait(60), *process.communicate()) for process in racers]

    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 5], outcomes
    winner = next(out for code, out, _ in outcomes if code == 0)
    loser_error = next(err for code, _, err in outcomes if code == 5)
    assert winner.strip() == job_id
    assert "Traceback" not in loser_error
    assert f"loom jobs status {job_id}" in loser_error


def test_claim_own_job_refused(make_party: PartyFactory):
    creator = make_party("creator")
    job_id = creator.post_job()

    result = creator.loom("jobs", "claim", job_id)

    assert_clean_error(result, 5)
    assert "another wallet" in result.stderr


def test_claim_unknown_job_not_found(make_party: PartyFactory):
    result = make_party("worker").loom("jobs", "claim", "job_doesNotExist42")
    assert_clean_error(result, 4)


def test_cancel_without_terminal_needs_yes(make_party: PartyFactory):
    creator = make_party("creator")
    job_id = creator.post_job()

    result = creator.loom("jobs", "cancel", job_id)

    assert_clean_error(result, 2)
    assert "--yes" in result.stderr
    assert creator.status(job_id) == "Open"


def test_cancel_then_watch_exits_11(make_party: PartyFactory):
    creator, worker, job_id = claimed_job(make_party)

    cancel = creator.loom("jobs", "cancel", job_id, "--yes", "-o", "json")
    assert cancel.returncode == 0, cancel.stderr
    assert json.loads(cancel.stdout)["status"] == "Cancelled"

    assert creator.loom("jobs", "watch", job_id).returncode == 11
    again = creator.loom("jobs", "cancel", job_id, "--yes")
    assert_clean_error(again, 5)
    assert "already ended" in again.stderr


def test_cancel_by_other_wallet_refused(make_party: PartyFactory):
    job_id = make_party("creator").post_job()
    result = make_party("stranger").loom("jobs", "cancel", job_id, "--yes")
    assert_clean_error(result, 5)


def test_failed_report_makes_watch_exit_10(make_party: PartyFactory):
    creator, worker, job_id = claimed_job(make_party)

    report = worker.loom("results", "report", job_id, "--failed", "--message", "out of memory", "-o", "json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["outcome"] == "Failed"

    watch = creator.loom("jobs", "watch", job_id)
    assert watch.returncode == 10
    assert "Failed" in watch.stdout


def test_report_checksum_of_local_file(make_party: PartyFactory, tmp_path: Path):
    creator, worker, job_id = claimed_job(make_party)
    artifact = tmp_path / "model.bin"
    artifact.write_bytes(bytes(range(256)) * 5000)

    report = worker.loom(
        "results", "report", job_id, "--output-json", "null",
        "--uri", "s3://models/model.bin", "--file", str(artifact), "-o", "json",
    )  # fmt: skip

    assert report.returncode == 0, report.stderr
    result = json.loads(report.stdout)
    assert result["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert result["result_uri"] == "s3://models/model.bin"
    assert result["output"] is None


def test_report_output_from_stdin(make_party: PartyFactory):
    creator, worker, job_id = claimed_job(make_party)

    report = worker.loom("results", "report", job_id, "--output-file", "-", "-q", input='[1, 2.50, "three"]\n')

    assert report.returncode == 0, report.stderr
    assert report.stdout == f"{job_id}\n"
    get = creator.loom("results", "get", job_id, "--output-file", "-")
    assert get.stdout == '[\n  1,\n  2.50,\n  "three"\n]\n'


def test_report_invalid_json_sends_nothing(make_party: PartyFactory):
    creator, worker, job_id = claimed_job(make_party)

    result = worker.loom("results", "report", job_id, "--output-json", '{"score": 0.9,}')

    assert_clean_error(result, 2)
    assert "invalid JSON in --output-json" in result.stderr
    assert "line 1, column 15" in result.stderr
    assert creator.status(job_id) == "InProgress"


def test_report_by_non_worker_refused(make_party: PartyFactory):
    creator, worker, job_id = claimed_job(make_party)

    result = creator.loom("results", "report", job_id, "--output-json", "{}")

    assert_clean_error(result, 5)
    assert "loom whoami" in result.stderr


def test_report_after_cancel_refused(make_party: PartyFactory):
    creator, worker, job_id = claimed_job(make_party)
    creator.post(f"/jobs/{job_id}/cancel")

    result = worker.loom("results", "report", job_id, "--output-json", "1")

    assert_clean_error(result, 5)
    assert "not InProgress" in result.stderr


def test_get_before_report_not_found(make_party: PartyFactory):
    creator, worker, job_id = claimed_job(make_party)

    result = creator.loom("results", "get", job_id)

    assert_clean_error(result, 4)
    assert f"loom jobs status {job_id}" in result.stderr


def test_get_by_stranger_refused(make_party: PartyFactory):
    creator, worker, job_id = claimed_job(make_party)
    worker.post(f"/jobs/{job_id}/results", {"outcome": "Completed", "output": 1})

    result = make_party("stranger").loom("results", "get", job_id)

    assert_clean_error(result, 5)


@pytest.mark.slow
def test_create_wait_with_simulated_workers(start_sandbox: Callable[..., Any], make_party: PartyFactory, spec_file: Path):
    sandbox = start_sandbox("--simulate-workers", "--work-seconds", "0.3")
    creator = make_party("creator", url=sandbox.url)

    result = creator.loom("jobs", "create", str(spec_file), "--wait", "--interval", "0.2", "--timeout", "30", "-o", "jsonl")

    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    final = [event for event in events if event.get("event") == "final"]
    assert [event["job"]["status"] for event in final] == ["Completed"]
    assert final[0]["job"]["worker"] not in (None, creator.address)


@pytest.mark.slow
def test_create_wait_failed_by_simulated_workers(start_sandbox: Callable[..., Any], make_party: PartyFactory, spec_file: Path):
    sandbox = start_sandbox("--simulate-workers", "--work-seconds", "0.3", "--fail-rate", "1")
    creator = make_party("creator", url=sandbox.url)

    result = creator.loom("jobs", "create", str(spec_file), "--wait", "--interval", "0.2", "--timeout", "30")

    assert result.returncode == 10, result.stderr
    assert "Failed" in result.stdout
