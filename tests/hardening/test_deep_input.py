"""Input nested 100,000 levels deep, and other input built to exhaust a parser, is rejected cleanly by the CLI and the sandbox.

eth-account raises Python's recursion limit to 100,000 when imported, so a recursive
parser that would otherwise stop with RecursionError can overflow the C stack and kill
the process. These tests run the real CLI and a real sandbox as subprocesses, where such
a crash shows as a signal instead of taking the test run down.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures.sandbox import api_login
from tests.hardening.conftest import assert_clean_failure
from tests.helpers import loom_env

DEPTH = 100_000

DEEP_SPECS = {
    "yaml-flow-lists": ("job.yaml", "name: " + "[" * DEPTH + "]" * DEPTH + "\n"),
    "yaml-flow-maps": ("job.yaml", "name: " + "{a: " * DEPTH + "1" + "}" * DEPTH + "\n"),
    "json-lists": ("job.json", '{"name": ' + "[" * DEPTH + "]" * DEPTH + "}"),
    "json-objects": ("job.json", '{"name": ' + '{"a": ' * DEPTH + "1" + "}" * DEPTH + "}"),
    "json-unclosed": ("job.json", "[" * DEPTH),
    "json-on-stdin": ("-", "{" + '"a":[' * DEPTH),
}

# Run loom after importing eth_account, as commands that sign do, so the recursion limit is 100,000.
WITH_ETH_ACCOUNT = "import sys, eth_account; sys.argv = ['loom', *sys.argv[1:]]; from loom_cli.__main__ import main; main()"


def run_cli(args: list[str], *, with_eth_account: bool, input: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", WITH_ETH_ACCOUNT] if with_eth_account else [sys.executable, "-m", "loom_cli"]
    return subprocess.run(
        [*command, *args],
        env=loom_env(),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("command", "with_eth_account"),
    [("validate", False), ("create --dry-run", True)],
    ids=["validate", "create-dry-run-with-eth-account"],
)
@pytest.mark.parametrize("case", list(DEEP_SPECS))
def test_deep_spec_is_rejected(tmp_path: Path, case: str, command: str, with_eth_account: bool):
    name, text = DEEP_SPECS[case]
    if name == "-":
        location, stdin = "-", text
    else:
        (tmp_path / name).write_text(text, encoding="utf-8")
        location, stdin = str(tmp_path / name), None

    result = run_cli(["jobs", *command.split(), location], with_eth_account=with_eth_account, input=stdin)

    assert_clean_failure(result, 2)
    assert result.stdout == ""
    assert "nested more than 32 levels deep" in result.stderr or "invalid JSON" in result.stderr


@pytest.mark.parametrize(
    "text",
    [
        # "Billion laughs": each alias doubles the size of what it names.
        "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: &e [*d, *d]\nname: *e\n",
        # Many unterminated strings, which once made the depth scan quadratic.
        '{"' + '"\\' * 400_000,
        # A number of a million digits.
        "resources: {cpu: " + "9" * 1_000_000 + "}\n",
    ],
    ids=["aliases", "unterminated-strings", "long-number"],
)
def test_costly_spec_is_rejected_quickly(tmp_path: Path, text: str):
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")

    started = time.monotonic()
    result = run_cli(["jobs", "validate", str(path)], with_eth_account=False)

    assert_clean_failure(result, 2)
    assert time.monotonic() - started < 20


# -- the sandbox ---------------------------------------------------------------------------------


DEEP_BODIES = {
    "lists": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "unclosed": b"[" * DEPTH,
    "spec-field": b'{"name": "x", "labels": ' + b'{"a":' * DEPTH + b"}" * DEPTH + b"}",
}


@pytest.mark.parametrize("case", list(DEEP_BODIES))
def test_sandbox_rejects_deep_body_and_keeps_serving(sandbox_url: str, new_account, case: str):
    token = api_login(sandbox_url, new_account())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    with httpx.Client(timeout=30, trust_env=False) as client:
        created = client.post(f"{sandbox_url}/jobs", content=DEEP_BODIES[case], headers=headers)
        reported = client.post(f"{sandbox_url}/jobs/job_none/results", content=DEEP_BODIES[case], headers=headers)
        listed = client.get(f"{sandbox_url}/jobs")

    for response in (created, reported):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_request"
        assert "256 levels" in response.json()["error"]["message"]
        assert response.headers["x-request-id"]
    assert listed.status_code == 200


def test_sandbox_scans_unterminated_strings_quickly(sandbox_url: str, new_account):
    token = api_login(sandbox_url, new_account())
    body = b'{"' + b'"\\' * 1_000_000

    started = time.monotonic()
    with httpx.Client(timeout=30, trust_env=False) as client:
        response = client.post(f"{sandbox_url}/jobs", content=body, headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    assert response.status_code == 400, response.text
    assert time.monotonic() - started < 10


def test_sandbox_rejects_oversized_body_before_reading_it(sandbox_url: str, new_account):
    token = api_login(sandbox_url, new_account())

    def chunks():
        # 8 MiB with no Content-Length, so the size is known only as the body arrives.
        for _ in range(128):
            yield b"[" + b"0," * 32767 + b"0]"

    with httpx.Client(timeout=30, trust_env=False) as client:
        response = client.post(f"{sandbox_url}/jobs", content=chunks(), headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        alive = client.get(f"{sandbox_url}/jobs")

    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert alive.status_code == 200
