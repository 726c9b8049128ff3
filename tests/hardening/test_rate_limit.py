"""The sandbox's --rate-limit as the CLI meets it: 429 with Retry-After, honoured or reported, and no limit by default."""

from __future__ import annotations

import time

import httpx

from tests.hardening.conftest import assert_clean_failure
from tests.helpers import run_loom


def test_no_limit_by_default(sandbox_url: str):
    with httpx.Client(timeout=10, trust_env=False) as client:
        statuses = {client.get(f"{sandbox_url}/jobs", params={"limit": 1}).status_code for _ in range(60)}

    assert statuses == {200}


def test_cli_reports_rate_limit_it_cannot_wait_out(start_sandbox):
    sandbox = start_sandbox("--rate-limit", "3")

    allowed = [run_loom("--api-url", sandbox.url, "jobs", "list", "-q") for _ in range(3)]
    started = time.monotonic()
    limited = run_loom("--api-url", sandbox.url, "-v", "jobs", "list", "-q")

    for result in allowed:
        assert result.returncode == 0, result.stderr
    assert_clean_failure(limited, 6)
    assert "HTTP 429" in limited.stderr
    assert "rate_limited" in limited.stderr
    assert "the API asked to wait" in limited.stderr
    # The window is a minute, more than the 30 s retry budget: loom stops at once instead of sleeping.
    assert limited.stderr.count("http: GET ") == 1
    assert time.monotonic() - started < 15

    with httpx.Client(timeout=10, trust_env=False) as client:
        response = client.get(f"{sandbox.url}/jobs")
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.json()["error"]["code"] == "rate_limited"
    assert response.headers["X-Request-Id"]
