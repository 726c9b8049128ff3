"""Retries as the real CLI makes them: which requests are retried, how often, how long apart, and never twice in effect.

A forwarding fault server sits between loom and a real sandbox. It can pass a request
on and then reset the connection instead of returning the response, the one fault after
which a client cannot know whether its request took effect.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.fixtures.sandbox import api_login
from tests.hardening.conftest import assert_api_failure
from tests.hardening.faultserver import FaultServer, error_reply, forward_to, json_reply
from tests.helpers import run_loom

SPEC_YAML = "name: render frames\nimage: ubuntu:22.04\nresources: {cpu: 2, memory: 4Gi}\nreward: {amount: '12.5'}\n"
SPEC = {"name": "render frames", "image": "ubuntu:22.04", "resources": {"cpu": 2, "memory": "4Gi"}, "reward": {"amount": "12.5"}}


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(SPEC_YAML, encoding="utf-8")
    return path


def loom(server: FaultServer, token: str, *args: str) -> Any:
    return run_loom("--api-url", server.url, "-v", *args, env={"LOOM_TOKEN": token})


def jobs_created_by(sandbox_url: str, address: str) -> list[dict]:
    with httpx.Client(timeout=10, trust_env=False) as client:
        response = client.get(f"{sandbox_url}/jobs", params={"creator": address, "limit": 100})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def post_job(sandbox_url: str, token: str) -> str:
    with httpx.Client(timeout=10, trust_env=False) as client:
        response = client.post(f"{sandbox_url}/jobs", json=SPEC, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_every_post_carries_an_idempotency_key(fault_server, sandbox_url, new_account, spec_file):
    creator, worker = new_account(), new_account()
    creator_token, worker_token = api_login(sandbox_url, creator), api_login(sandbox_url, worker)
    for method in ("GET", "POST"):
        fault_server.on(method, "/", forward_to(sandbox_url))
    to_cancel = post_job(sandbox_url, creator_token)

    created = loom(fault_server, creator_token, "jobs", "create", str(spec_file), "-q")
    assert created.returncode == 0, created.stderr
    job_id = created.stdout.strip()
    claimed = loom(fault_server, worker_token, "jobs", "claim", job_id, "-q")
    assert claimed.returncode == 0, claimed.stderr
    reported = loom(fault_server, worker_token, "results", "report", job_id, "--output-json", '{"frames": 24}', "-q")
    assert reported.returncode == 0, reported.stderr
    cancelled = loom(fault_server, creator_token, "jobs", "cancel", to_cancel, "--yes", "-q")
    assert cancelled.returncode == 0, cancelled.stderr

    posts = [request for request in fault_server.requests if request.method == "POST"]
    assert [request.path for request in posts] == ["/v1/jobs", f"/v1/jobs/{job_id}/claim", f"/v1/jobs/{job_id}/results", f"/v1/jobs/{to_cancel}/cancel"]
    keys = [request.headers.get("idempotency-key") for request in posts]
    assert all(keys), keys
    assert len(set(keys)) == 4


@pytest.mark.parametrize("command", ["create", "claim"])
def test_lost_response_is_retried_and_takes_effect_once(fault_server, sandbox_url, new_account, spec_file, command):
    creator, worker = new_account(), new_account()
    creator_token = api_login(sandbox_url, creator)
    if command == "create":
        path, token, args = "/jobs", creator_token, ["jobs", "create", str(spec_file), "-o", "json"]
    else:
        job_id = post_job(sandbox_url, creator_token)
        path, token, args = f"/jobs/{job_id}/claim", api_login(sandbox_url, worker), ["jobs", "claim", job_id, "-o", "json"]
    # The first POST reaches the sandbox, but its response is lost; the retry gets the stored one.
    fault_server.on("POST", path, forward_to(sandbox_url, drop_response=True), forward_to(sandbox_url))

    result = loom(fault_server, token, *args)

    assert result.returncode == 0, result.stderr
    posts = fault_server.requests_to("POST", path)
    assert len(posts) == 2
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert "http: retrying in " in result.stderr
    job = json.loads(result.stdout)
    created = jobs_created_by(sandbox_url, creator.address)
    assert [item["id"] for item in created] == [job["id"]]
    if command == "claim":
        assert job["status"] == "InProgress"
        assert job["worker"] == worker.address


def test_retry_after_is_honoured(fault_server):
    fault_server.on(
        "GET",
        "/jobs",
        error_reply(429, "rate_limited", "Too many requests.", headers={"Retry-After": "1"}),
        json_reply(200, {"data": [], "next_cursor": None}),
    )

    result = loom(fault_server, "unused", "jobs", "list", "-o", "json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert "http: retrying in 1.0 s after HTTP 429 (attempt 2/4 next)" in result.stderr
    assert len(fault_server.requests_to("GET", "/jobs")) == 2


def test_retry_after_beyond_budget_gives_up_at_once(fault_server):
    fault_server.on("GET", "/jobs", error_reply(429, "rate_limited", "Too many requests.", headers={"Retry-After": "120"}))

    started = time.monotonic()
    result = loom(fault_server, "unused", "jobs", "list")

    assert_api_failure(result, "req_fault_1")
    assert "the API asked to wait 120 s before retrying, more than the 30 s left of the 30 s retry budget" in result.stderr
    assert len(fault_server.requests) == 1
    assert time.monotonic() - started < 15


def test_persistent_503_stops_after_four_attempts(fault_server, spec_file):
    fault_server.on("POST", "/jobs", error_reply(503, "unavailable", "Down for maintenance.", headers={"Retry-After": "0"}))

    result = loom(fault_server, "unused", "jobs", "create", str(spec_file))

    assert_api_failure(result, "req_fault_4")
    assert "gave up after 4 attempts" in result.stderr
    assert result.stderr.count("http: retrying in 0.0 s after HTTP 503") == 3
    keys = {request.headers["idempotency-key"] for request in fault_server.requests}
    assert len(fault_server.requests) == 4
    assert len(keys) == 1


def test_post_without_key_is_never_retried(fault_server):
    fault_server.on("GET", "/auth/nonce", json_reply(200, {"nonce": "abcdefgh12345678", "address": "0x0", "expires_at": "2030-01-01T00:00:00.000000Z"}))
    fault_server.on("POST", "/auth/login", error_reply(503, "unavailable", "Down for maintenance.", headers={"Retry-After": "0"}))
    key = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

    result = run_loom("--api-url", fault_server.url, "-v", "login", env={"LOOM_PRIVATE_KEY": key})

    assert_api_failure(result, "req_fault_2")
    assert len(fault_server.requests_to("POST", "/auth/login")) == 1
    assert "not retried, because POST without an Idempotency-Key could take effect twice" in result.stderr
    assert "http: retrying" not in result.stderr


def test_status_500_is_not_retried(fault_server):
    fault_server.on("GET", "/jobs", error_reply(500, "internal", "The server failed."))

    result = loom(fault_server, "unused", "jobs", "list")

    assert_api_failure(result, "req_fault_1")
    assert len(fault_server.requests) == 1
