"""The real CLI against a misbehaving server on loopback: every fault is exit 6 with the request id, never a traceback.

The faults are ones the sandbox never makes: HTML instead of JSON, invalid JSON, error
bodies of another shape, successful responses without documented fields, huge and
deeply nested bodies, resets in the middle of a body, stalls and slow bodies.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.hardening.conftest import assert_api_failure, assert_clean_failure
from tests.hardening.faultserver import (
    FaultServer,
    drop_connection,
    error_reply,
    html_reply,
    huge_reply,
    json_reply,
    raw_reply,
    redirect_to,
    reset_mid_body,
    running_fault_server,
    stall,
    trickle,
)
from tests.helpers import run_loom

# LOOM_TOKEN is sent as given; this server never checks it.
TOKEN_ENV = {"LOOM_TOKEN": "fault-server-token"}
KEY_HEX = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
KEY_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
JOB_ID = "job_faulty1"


def job(**overrides: Any) -> dict:
    """A job object with every documented field."""
    base = {
        "id": JOB_ID,
        "name": "render frames",
        "status": "Open",
        "creator": KEY_ADDRESS,
        "worker": None,
        "reward": {"amount": "12.5", "currency": "LOOM"},
        "spec": {"name": "render frames", "image": "ubuntu:22.04", "resources": {"cpu": 2, "memory": "4Gi"}},
        "created_at": "2026-01-01T00:00:00.000000Z",
        "updated_at": "2026-01-01T00:00:00.000000Z",
        "claimed_at": None,
        "finished_at": None,
    }
    base.update(overrides)
    return base


def loom(server: FaultServer, *args: str, timeout: str = "2", env: dict[str, str] | None = None) -> Any:
    return run_loom("--api-url", server.url, "--timeout", timeout, *args, env={**TOKEN_ENV, **(env or {})})


def last_sent_request_id(server: FaultServer) -> str:
    """The X-Request-Id loom sent with its last request, which it names when no response came back."""
    return server.requests[-1].headers["x-request-id"]


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(
        "name: render frames\nimage: ubuntu:22.04\nresources: {cpu: 2, memory: 4Gi}\nreward: {amount: '12.5'}\n",
        encoding="utf-8",
    )
    return path


# -- responses that are not the contract's JSON ---------------------------------------------


def test_html_page_instead_of_json(fault_server):
    fault_server.on("GET", "/jobs", html_reply(200))

    result = loom(fault_server, "jobs", "list")

    assert_api_failure(result, "req_fault_1")
    assert "an HTML page" in result.stderr
    assert result.stdout == ""


def test_html_error_page(fault_server):
    fault_server.on("GET", "/jobs", html_reply(404))

    result = loom(fault_server, "jobs", "status", JOB_ID)

    assert_api_failure(result, "req_fault_1")
    assert "HTTP 404" in result.stderr
    assert "an HTML page" in result.stderr


@pytest.mark.parametrize("body", [b'{"data": [', b"not json at all", b"\xff\xfe\x00garbage", b""], ids=["truncated", "text", "binary", "empty"])
def test_invalid_json_success(fault_server, body):
    fault_server.on("GET", "/jobs", raw_reply(200, body))

    result = loom(fault_server, "jobs", "list")

    assert_api_failure(result, "req_fault_1")
    assert "check that --api-url points at a Loom API" in result.stderr


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (409, {"detail": "conflict"}),
        (403, {"error": "forbidden"}),
        (400, {"error": {"code": 5, "message": ["not", "a", "string"]}}),
        (404, {"error": {"code": "not_found", "message": "gone", "details": "not an object"}}),
        (422, []),
    ],
    ids=["no-error-key", "error-is-text", "wrong-types", "details-not-object", "list"],
)
def test_error_body_not_in_contract_shape(fault_server, status, body):
    fault_server.on("POST", f"/jobs/{JOB_ID}/claim", json_reply(status, body))

    result = loom(fault_server, "jobs", "claim", JOB_ID)

    assert_api_failure(result, "req_fault_1")
    assert f"HTTP {status}" in result.stderr
    assert "not a Loom API error object" in result.stderr or "not valid JSON" in result.stderr


# -- successful responses without the documented fields ----------------------------------------


MISSING_FIELDS = [
    ("jobs-list-job", ["jobs", "list"], "GET", "/jobs", 200, {"data": [{"id": JOB_ID}], "next_cursor": None}, "without 'name'"),
    ("jobs-list-data", ["jobs", "list"], "GET", "/jobs", 200, {"items": []}, "without a 'data' list"),
    ("jobs-list-cursor", ["jobs", "list"], "GET", "/jobs", 200, {"data": []}, "without 'next_cursor'"),
    ("jobs-status-reward", ["jobs", "status", JOB_ID], "GET", "/jobs", 200,
     {"data": [job(reward={"amount": "1"})], "next_cursor": None}, "without 'currency'"),
    ("jobs-create", ["jobs", "create", "SPEC"], "POST", "/jobs", 201, {}, "without 'id'"),
    ("jobs-claim-type", ["jobs", "claim", JOB_ID], "POST", f"/jobs/{JOB_ID}/claim", 200, job(status=None), "whose 'status' is NoneType"),
    ("jobs-cancel", ["jobs", "cancel", JOB_ID, "--yes"], "POST", f"/jobs/{JOB_ID}/cancel", 200, [job()], "not a JSON object"),
    ("results-get", ["results", "get", JOB_ID], "GET", f"/jobs/{JOB_ID}/results", 200, {"job_id": JOB_ID}, "without 'outcome'"),
    ("results-report", ["results", "report", JOB_ID, "--output-json", "1"], "POST", f"/jobs/{JOB_ID}/results", 201,
     {"job_id": JOB_ID, "outcome": "Completed"}, "without 'result_uri'"),
    ("whoami", ["whoami"], "GET", "/auth/me", 200, {"address": 5}, "without address and expires_at"),
]


@pytest.mark.parametrize(
    ("args", "method", "path", "status", "body", "fragment"),
    [case[1:] for case in MISSING_FIELDS],
    ids=[case[0] for case in MISSING_FIELDS],
)
def test_success_without_documented_fields(fault_server, spec_file, args, method, path, status, body, fragment):
    fault_server.on(method, path, json_reply(status, body))
    args = [str(spec_file) if arg == "SPEC" else arg for arg in args]

    result = loom(fault_server, *args)

    assert_api_failure(result, "req_fault_1")
    assert fragment in result.stderr
    assert result.stdout == ""


def test_login_nonce_response_without_nonce(fault_server):
    fault_server.on("GET", "/auth/nonce", json_reply(200, {"address": KEY_ADDRESS}))

    result = run_loom("--api-url", fault_server.url, "login", env={"LOOM_PRIVATE_KEY": KEY_HEX})

    assert_api_failure(result, "req_fault_1")
    assert "without a nonce" in result.stderr
    assert fault_server.requests_to("POST", "/auth/login") == []


def test_login_response_without_token(fault_server):
    fault_server.on("GET", "/auth/nonce", json_reply(200, {"address": KEY_ADDRESS, "nonce": "abcdefgh12345678", "expires_at": "2030-01-01T00:00:00.000000Z"}))
    fault_server.on("POST", "/auth/login", json_reply(200, {"token_type": "Bearer", "address": KEY_ADDRESS}))

    result = run_loom("--api-url", fault_server.url, "login", env={"LOOM_PRIVATE_KEY": KEY_HEX})

    assert_api_failure(result, "req_fault_2")
    assert "without the string field 'token'" in result.stderr


def test_job_id_that_is_not_an_id(fault_server, spec_file):
    # The id is printed in "Created ..." and used in later URLs, so a hostile one is refused.
    fault_server.on("POST", "/jobs", json_reply(201, job(id="job_1\x1b]52;c;cm0gLXJmIH4=\x07")))

    result = loom(fault_server, "jobs", "create", str(spec_file))

    assert_api_failure(result, "req_fault_1")
    assert "whose 'id' is not 'job_'" in result.stderr


# -- bodies too large or too deep ------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "streamed"])
def test_huge_body_is_cut_off(fault_server, declare_length):
    fault_server.on("GET", "/jobs", huge_reply(11 * 1024 * 1024, declare_length=declare_length))

    result = loom(fault_server, "jobs", "list", timeout="10")

    assert_api_failure(result, "req_fault_1")
    assert "larger than 10 MiB" in result.stderr


@pytest.mark.parametrize("opening", [b"[", b'{"a":'], ids=["arrays", "objects"])
def test_deeply_nested_body_in_process_with_eth_account(fault_server, opening):
    # login imports eth_account, which raises the recursion limit to 100000: a recursive
    # parse of this body would overflow the C stack and kill the process.
    deep = opening * 100_000
    fault_server.on("GET", "/auth/nonce", raw_reply(200, deep))

    result = run_loom("--api-url", fault_server.url, "login", env={"LOOM_PRIVATE_KEY": KEY_HEX})

    assert_api_failure(result, "req_fault_1")
    assert "nested deeper than 128 levels" in result.stderr


def test_body_of_unterminated_strings_is_refused_quickly(fault_server):
    # Scanning such a body for nesting once took time quadratic in its size.
    body = b'{"' + b'"\\' * 1_000_000
    fault_server.on("GET", "/jobs", raw_reply(200, body))

    started = time.monotonic()
    result = loom(fault_server, "jobs", "list", timeout="10")

    assert_api_failure(result, "req_fault_1")
    assert time.monotonic() - started < 20


# -- broken connections and slow servers -----------------------------------------------------------


def test_reset_post_without_key_not_retried(fault_server):
    fault_server.on("GET", "/auth/nonce", json_reply(200, {"address": KEY_ADDRESS, "nonce": "abcdefgh12345678", "expires_at": "2030-01-01T00:00:00.000000Z"}))
    fault_server.on("POST", "/auth/login", reset_mid_body())

    result = run_loom("--api-url", fault_server.url, "-v", "login", env={"LOOM_PRIVATE_KEY": KEY_HEX})

    assert_api_failure(result, last_sent_request_id(fault_server))
    assert len(fault_server.requests_to("POST", "/auth/login")) == 1
    assert "not retried, because POST without an Idempotency-Key could take effect twice" in result.stderr


def test_stall_on_post_without_key_times_out(fault_server):
    fault_server.on("GET", "/auth/nonce", json_reply(200, {"address": KEY_ADDRESS, "nonce": "abcdefgh12345678", "expires_at": "2030-01-01T00:00:00.000000Z"}))
    fault_server.on("POST", "/auth/login", stall(20))

    started = time.monotonic()
    result = run_loom("--api-url", fault_server.url, "--timeout", "0.5", "login", env={"LOOM_PRIVATE_KEY": KEY_HEX})

    assert_api_failure(result, last_sent_request_id(fault_server))
    assert "no response within 0.5 s" in result.stderr
    assert time.monotonic() - started < 15


def test_slow_body_is_bounded_by_timeout(fault_server):
    # Each byte arrives within the read timeout, so only a limit on the whole response stops it.
    fault_server.on("GET", "/auth/nonce", json_reply(200, {"address": KEY_ADDRESS, "nonce": "abcdefgh12345678", "expires_at": "2030-01-01T00:00:00.000000Z"}))
    fault_server.on("POST", "/auth/login", trickle(b'{"token": "' + b"x" * 200 + b'"}', interval=0.2))

    started = time.monotonic()
    result = run_loom("--api-url", fault_server.url, "--timeout", "1", "login", env={"LOOM_PRIVATE_KEY": KEY_HEX})

    assert_api_failure(result, last_sent_request_id(fault_server))
    assert "timed out" in result.stderr
    assert time.monotonic() - started < 15


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reply", "fragment"),
    [(reset_mid_body(), "Connection reset by peer"), (stall(20), "no response within 0.5 s"), (drop_connection(), "Connection reset by peer")],
    ids=["reset-mid-body", "stall", "dropped"],
)
def test_get_faults_are_retried_then_exit_6(fault_server, reply, fragment):
    fault_server.on("GET", "/jobs", reply)

    result = loom(fault_server, "-v", "jobs", "list", timeout="0.5")

    assert_api_failure(result, last_sent_request_id(fault_server))
    assert fragment in result.stderr
    assert "gave up after 4 attempts" in result.stderr
    assert len(fault_server.requests_to("GET", "/jobs")) == 4
    assert result.stderr.count("http: retrying in ") == 3
    for attempt in range(1, 5):
        assert f"attempt {attempt}/4)" in result.stderr


# -- redirects ---------------------------------------------------------------------------------------


def test_cross_host_redirect_is_not_followed(fault_server):
    with running_fault_server() as elsewhere:
        elsewhere.on("GET", "/auth/me", json_reply(200, {"address": KEY_ADDRESS, "expires_at": "2030-01-01T00:00:00.000000Z"}))
        fault_server.on("GET", "/auth/me", redirect_to(f"{elsewhere.url}/auth/me"))

        result = loom(fault_server, "whoami")

        assert elsewhere.requests == []
    assert_api_failure(result, "req_fault_1")
    assert "loom does not follow redirects" in result.stderr
    assert fault_server.requests[0].headers["authorization"] == "Bearer fault-server-token"


def test_server_error_message_is_escaped(fault_server):
    fault_server.on("GET", "/jobs", error_reply(500, "internal", "Broken \x1b[2J\x1b]8;;https://evil.invalid\x07here\x1b]8;;\x07 \u202egnp.exe\n"))

    result = loom(fault_server, "jobs", "list")

    assert_api_failure(result, "req_fault_1")
    assert "\\x1b[2J" in result.stderr
    assert "\\u202e" in result.stderr


def nested_object(levels: int) -> dict:
    root: dict = {}
    current = root
    for _ in range(levels - 1):
        current["a"] = {}
        current = current["a"]
    return root


@pytest.mark.parametrize("args", [["jobs", "list", "-o", "yaml"], ["jobs", "list", "-o", "json"], ["-vv", "jobs", "list"]], ids=["yaml", "json", "vv"])
def test_body_at_depth_limit_is_printed(fault_server, args):
    # The page, its data list and the job take three levels: the whole body nests 128 deep.
    body = {"data": [job(spec=nested_object(125))], "next_cursor": None}
    fault_server.on("GET", "/jobs", json_reply(200, body))

    result = loom(fault_server, *args)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["jobs", "list", "-o", "yaml"], ["-vv", "jobs", "list"]], ids=["yaml", "vv"])
def test_body_past_depth_limit_is_refused(fault_server, args):
    body = {"data": [job(spec=nested_object(500))], "next_cursor": None}
    fault_server.on("GET", "/jobs", json_reply(200, body))

    result = loom(fault_server, *args)

    assert_api_failure(result, "req_fault_1")
    assert "nested deeper than 128 levels" in result.stderr
