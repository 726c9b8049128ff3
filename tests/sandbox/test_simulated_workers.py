"""`loom sandbox --simulate-workers`: built-in workers take jobs through the real API and report them."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.fixtures.sandbox import api_login
from tests.sandbox.conftest import job_spec

TERMINAL = ("Completed", "Failed", "Cancelled")


def wait_for_terminal(client: httpx.Client, url: str, job_id: str, headers: dict[str, str], timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{url}/jobs/{job_id}", headers=headers).json()
        if job["status"] in TERMINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} is still {job['status']} after {timeout}s")


def post_jobs(url: str, account, count: int) -> tuple[httpx.Client, dict[str, str], list[str]]:
    """Log `account` in and post `count` jobs; return an unopened client for the checks, the headers and the ids."""
    spec = job_spec(outputs=[{"path": "/out"}])
    ids: list[str] = []
    with httpx.Client(timeout=30.0, trust_env=False) as poster:
        while len(ids) < count:
            # With --token-ttl 1 a token can run out between login and post; log in again then.
            headers = {"Authorization": f"Bearer {api_login(url, account)}"}
            response = poster.post(f"{url}/jobs", json=spec, headers=headers)
            if response.status_code != 401:
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
    return httpx.Client(timeout=30.0, trust_env=False), headers, ids


@pytest.mark.slow
def test_created_job_reaches_completed(start_sandbox, new_account):
    sandbox = start_sandbox("--simulate-workers", "--work-seconds", "0.3")
    creator = new_account()
    client, headers, ids = post_jobs(sandbox.url, creator, 3)
    with client:
        workers = set()
        for job_id in ids:
            job = wait_for_terminal(client, sandbox.url, job_id, headers)
            assert job["status"] == "Completed"
            assert job["worker"] not in (None, creator.address)
            assert job["claimed_at"] <= job["finished_at"]
            workers.add(job["worker"])

            result = client.get(f"{sandbox.url}/jobs/{job_id}/results", headers=headers).json()
            assert result["outcome"] == "Completed"
            assert result["reported_by"] == job["worker"]
            assert result["output"]["exit_code"] == 0
            assert result["output"]["artifacts"][0]["path"] == "/out"
            assert len(result["sha256"]) == 64
    assert sandbox.stop() == 0
    log = sandbox.log()
    assert "worker 1 stopped" in log
    assert "worker 2 stopped" in log
    assert "Traceback" not in log


@pytest.mark.slow
def test_fail_rate_one_fails_every_job(start_sandbox, new_account):
    sandbox = start_sandbox("--simulate-workers", "--work-seconds", "0.2", "--fail-rate", "1")
    client, headers, ids = post_jobs(sandbox.url, new_account(), 2)
    with client:
        for job_id in ids:
            job = wait_for_terminal(client, sandbox.url, job_id, headers)
            assert job["status"] == "Failed"
            result = client.get(f"{sandbox.url}/jobs/{job_id}/results", headers=headers).json()
            assert result["outcome"] == "Failed"
            assert result["output"]["exit_code"] == 1
            assert "Simulated failure" in result["message"]


@pytest.mark.slow
def test_workers_renew_short_lived_tokens(start_sandbox, new_account):
    sandbox = start_sandbox("--simulate-workers", "--work-seconds", "1.5", "--token-ttl", "1")
    creator = new_account()
    client, headers, ids = post_jobs(sandbox.url, creator, 1)
    with client:
        # The creator's own token also lives one second; log in again for each check.
        deadline = time.monotonic() + 30
        status = "Open"
        while status not in TERMINAL and time.monotonic() < deadline:
            fresh = {"Authorization": f"Bearer {api_login(sandbox.url, creator)}"}
            status = client.get(f"{sandbox.url}/jobs/{ids[0]}", headers=fresh).json()["status"]
            time.sleep(0.3)
    assert status == "Completed"
    assert sandbox.log().count("logged in") >= 3


def test_workers_leave_own_and_cancelled_jobs(start_sandbox, new_account):
    sandbox = start_sandbox("--simulate-workers", "--work-seconds", "0.2")
    client, headers, ids = post_jobs(sandbox.url, new_account(), 1)
    with client:
        cancelled = client.post(f"{sandbox.url}/jobs/{ids[0]}/cancel", headers=headers)
        # The workers may already have claimed it; either way it ends Cancelled and is never reported on.
        assert cancelled.status_code == 200
        time.sleep(1.5)
        job = client.get(f"{sandbox.url}/jobs/{ids[0]}", headers=headers).json()
        assert job["status"] == "Cancelled"
    assert sandbox.stop(signal.SIGINT) == 130


def test_workers_stop_promptly_on_sigterm(start_sandbox):
    sandbox = start_sandbox("--simulate-workers", "--work-seconds", "30")
    time.sleep(1.0)
    started = time.monotonic()
    assert sandbox.stop() == 0
    assert time.monotonic() - started < 10
    log = sandbox.log()
    assert "Traceback" not in log
    # Workers stop before the server does, so none of them gets a refused connection.
    assert "request failed" not in log
    assert "worker 1 stopped" in log
