"""Hostile marketplace data never reaches the terminal as control sequences, and a login never signs or leaks more than it should.

Job names, descriptions, labels, statuses, result messages and server error messages
carry rich markup, ANSI CSI and OSC sequences (links, clipboard writes, cursor moves,
device queries), C1 controls, bidi overrides and NULs. Every human view (piped tables,
key/value views, watch lines, errors, a terminal table with colour) shows them escaped;
JSON, YAML and JSON Lines keep the values but write them as escapes.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest

from loom_cli.output import Column, Renderer
from tests.fixtures.sandbox import api_login
from tests.hardening.conftest import UNSAFE_TERMINAL_TEXT, assert_clean_failure
from tests.hardening.faultserver import FaultServer, json_reply, running_fault_server
from tests.hardening.test_server_faults import KEY_ADDRESS, KEY_HEX, job
from tests.helpers import run_loom

PAYLOADS = {
    "clear-screen": "\x1b[2J\x1b[H",
    "cursor-and-query": "\x1b[10;10H\x1b[6n",
    "osc8-link": "\x1b]8;;https://evil.invalid/\x1b\\click me\x1b]8;;\x1b\\",
    "osc52-clipboard": "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07",
    "c1-csi": "\x9b31mred",
    "bidi-override": "invoice\u202egnp.exe",
    "bidi-isolate": "\u2066hidden\u2069",
    "nul": "a\x00b",
    "carriage-return": "fake\rreal",
    "bell-and-backspace": "\x07\x08\x08",
    "rich-markup": "[bold red]FREE[/bold red] [link=https://evil.invalid]x[/link]",
}
HOSTILE = " ".join(PAYLOADS.values())
# Raw sequences that loom itself never writes, so finding one means hostile text got through.
RAW_SEQUENCES = ["\x1b]", "\x1b[2J", "\x1b[6n", "\x1b[10;10H", "\x9b", "\u202e", "\u2066", "\x00", "\r", "\x07"]

JOB_ID = "job_hostile1"


def hostile_job(**overrides: Any) -> dict:
    spec = {
        "name": HOSTILE,
        "description": HOSTILE,
        "image": "ubuntu:22.04",
        "resources": {"cpu": 2, "memory": "4Gi"},
        "labels": {HOSTILE: HOSTILE},
    }
    fields = {"id": JOB_ID, "name": HOSTILE, "spec": spec, "reward": {"amount": "1", "currency": HOSTILE}, "worker": HOSTILE}
    return job(**{**fields, **overrides})


def hostile_result() -> dict:
    return {
        "job_id": JOB_ID,
        "outcome": "Completed",
        "output": {HOSTILE: [HOSTILE, 1]},
        "result_uri": "ipfs://" + HOSTILE,
        "sha256": None,
        "message": HOSTILE,
        "reported_by": KEY_ADDRESS,
        "reported_at": "2026-01-01T00:00:00.000000Z",
    }


def assert_no_raw_sequences(text: str) -> None:
    assert not UNSAFE_TERMINAL_TEXT.search(text), repr(text)
    for sequence in RAW_SEQUENCES:
        assert sequence not in text, (sequence, text)


@pytest.fixture
def hostile_server(fault_server: FaultServer) -> FaultServer:
    fault_server.on("GET", "/jobs", json_reply(200, {"data": [hostile_job()], "next_cursor": None}))
    fault_server.on("GET", f"/jobs/{JOB_ID}/results", json_reply(200, hostile_result()))
    return fault_server


def loom(server: FaultServer, *args: str) -> Any:
    return run_loom("--api-url", server.url, *args, env={"LOOM_TOKEN": "hostile-test-token"})


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "list"],
        ["jobs", "list", "-o", "json"],
        ["jobs", "list", "-o", "yaml"],
        ["jobs", "list", "-o", "jsonl"],
        ["jobs", "status", JOB_ID],
        ["jobs", "status", JOB_ID, "-q"],
        ["jobs", "watch", JOB_ID],
        ["jobs", "watch", JOB_ID, "-o", "jsonl"],
        ["results", "get", JOB_ID],
        ["results", "get", JOB_ID, "-o", "yaml"],
        ["results", "get", JOB_ID, "--output-file", "-"],
    ],
    ids=lambda args: "-".join(arg for arg in args if arg != JOB_ID),
)
def test_hostile_text_is_escaped(hostile_server, args):
    if args[:2] == ["jobs", "watch"]:
        hostile_server.on("GET", "/jobs", json_reply(200, {"data": [hostile_job(status="Completed")], "next_cursor": None}))
    if args[-1] == "-q":
        hostile_server.on("GET", "/jobs", json_reply(200, {"data": [hostile_job(status=HOSTILE)], "next_cursor": None}))

    result = loom(hostile_server, *args)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert_no_raw_sequences(result.stdout)
    assert_no_raw_sequences(result.stderr)


def test_table_shows_markup_literally(hostile_server):
    result = loom(hostile_server, "jobs", "list")

    assert "[bold red]FREE[/bold red]" in result.stdout
    assert "\\x1b]52;c;" in result.stdout
    assert "\\u202egnp.exe" in result.stdout


def test_json_keeps_the_exact_values(hostile_server):
    result = loom(hostile_server, "jobs", "list", "-o", "json")

    assert json.loads(result.stdout)[0]["name"] == HOSTILE


def test_watch_timeout_message_escapes_status(hostile_server):
    hostile_server.on("GET", "/jobs", json_reply(200, {"data": [hostile_job(status="\x1b[32mCompleted\x1b]0;pwned\x07")], "next_cursor": None}))

    result = loom(hostile_server, "jobs", "watch", JOB_ID, "--timeout", "0.5", "--interval", "0.2")

    assert result.returncode == 12, result.stderr
    assert "still running: job_hostile1 (\\x1b[32mCompleted" in result.stderr
    assert_no_raw_sequences(result.stdout)
    assert_no_raw_sequences(result.stderr)


def test_error_field_from_server_is_escaped(fault_server):
    body = {"error": {"code": "invalid_request", "message": HOSTILE, "details": {"field": HOSTILE}}}
    fault_server.on("GET", "/jobs", json_reply(400, body))

    result = loom(fault_server, "jobs", "list")

    assert_clean_failure(result, 2)
    assert_no_raw_sequences(result.stderr)
    assert "[bold red]FREE" in result.stderr


@pytest.mark.parametrize("color", [False, True], ids=["plain", "colour"])
def test_terminal_table_escapes_hostile_text(color):
    stdout = io.StringIO()
    renderer = Renderer(fmt="table", quiet=False, stdout=stdout, stderr=io.StringIO(), color=color, terminal=True, width=400)

    renderer.records([hostile_job()], columns=[Column("NAME", "name"), Column("WORKER", "worker")])
    renderer.record(hostile_job())

    # Rich styles text with SGR sequences only. Once they are stripped, no escape character may remain.
    text = re.sub("\x1b\\[[0-9;]*m", "", stdout.getvalue())
    assert_no_raw_sequences(text)
    assert "\x1b" not in text
    assert "[bold red]FREE[/bold red]" in text
    assert "\\x1b]8;;https://evil.invalid/" in text


# -- a login signs only a plain nonce --------------------------------------------------------------


NOT_PLAIN_NONCES = {
    "sign-in-message": "example.invalid wants you to sign in with your Ethereum account:\n0x0\n\nNonce: abcdefgh12345678",
    "trailing-newline": "abcdefgh12345678\n",
    "nul": "abcdefgh\x0012345678",
    "cyrillic-lookalike": "аbcdefgh12345678",
    "fullwidth-digits": "abcdefgh１２３４５６７８",
    "too-short": "abcdefgh1234567",
    "too-long": "a" * 65,
    "with-space": "abcdefgh 12345678",
    "escape-sequence": "\x1b]52;c;abcdefgh\x07",
    "number": 1234567890123456,
    "list": ["abcdefgh12345678"],
    "null": None,
}


@pytest.mark.parametrize("nonce", list(NOT_PLAIN_NONCES.values()), ids=list(NOT_PLAIN_NONCES))
def test_login_refuses_nonce_that_is_not_plain(fault_server, nonce):
    fault_server.on("GET", "/auth/nonce", json_reply(200, {"address": KEY_ADDRESS, "nonce": nonce, "expires_at": "2030-01-01T00:00:00.000000Z"}))
    fault_server.on("POST", "/auth/login", json_reply(500, {"error": {"code": "internal", "message": "never reached"}}))

    result = run_loom("--api-url", fault_server.url, "login", env={"LOOM_PRIVATE_KEY": KEY_HEX})

    assert_clean_failure(result, 3)
    assert "did not sign the login nonce from the API" in result.stderr
    assert fault_server.requests_to("POST", "/auth/login") == []


# -- where a token may go ---------------------------------------------------------------------------


def test_stored_token_is_never_sent_to_another_api(fault_server, sandbox_url, new_account):
    account = new_account()
    logged_in = run_loom("--api-url", sandbox_url, "login", env={"LOOM_PRIVATE_KEY": "0x" + bytes(account.key).hex()})
    assert logged_in.returncode == 0, logged_in.stderr
    fault_server.on("GET", "/auth/me", json_reply(200, {"address": account.address, "expires_at": "2030-01-01T00:00:00.000000Z"}))

    result = run_loom("--api-url", fault_server.url, "whoami")

    assert_clean_failure(result, 3)
    assert all("authorization" not in request.headers for request in fault_server.requests)


def test_environment_proxy_is_not_used_for_loopback(fault_server):
    fault_server.on("GET", "/jobs", json_reply(200, {"data": [], "next_cursor": None}))
    with running_fault_server() as proxy:
        proxy.on("GET", "/", json_reply(502, {"error": {"code": "proxy", "message": "The proxy was used."}}))
        env = {"HTTP_PROXY": proxy.origin, "HTTPS_PROXY": proxy.origin, "ALL_PROXY": proxy.origin, "http_proxy": proxy.origin, "NO_PROXY": ""}

        result = run_loom("--api-url", fault_server.url, "jobs", "list", "-o", "json", env=env)

        assert proxy.requests == []
    assert result.returncode == 0, result.stderr
    assert len(fault_server.requests) == 1


def test_loom_token_goes_where_the_user_points_it(sandbox_url, new_account):
    # LOOM_TOKEN is used with whatever API URL the user gives, unlike a stored token,
    # which never moves between API URLs (see the test above).
    account = new_account()
    token = api_login(sandbox_url, account)
    with running_fault_server() as other:
        other.on("GET", "/auth/me", json_reply(200, {"address": account.address, "expires_at": "2030-01-01T00:00:00.000000Z"}))
        result = run_loom("--api-url", other.url, "whoami", "-o", "json", env={"LOOM_TOKEN": token})
        assert result.returncode == 0, result.stderr
        assert other.requests[0].headers["authorization"] == f"Bearer {token}"
