"""A reader that closes the pipe early (`loom jobs list --all | head -1`) ends loom quietly with 0.

Two ways to close it: a real `head -n 1` on more output than a pipe buffers,
and a pipe whose reading end is closed before loom writes anything, which
makes the very first write fail on every run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.contract.world import Market, World, assert_no_traceback
from tests.helpers import loom_env

pytestmark = pytest.mark.e2e

# Enough jobs with long descriptions that one listing is several times what a
# pipe buffers (64 KiB on Linux) plus what `head` reads at once.
BULK_JOBS = 60
LONG_DESCRIPTION = "Description text that makes each listed job long. " * 38


def _popen(args: list[str], env: dict[str, str], stdout: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "loom_cli", *args],
        env=loom_env(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )


def run_into_closed_pipe(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run loom with stdout on a pipe whose reading end is already closed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = _popen(args, env, write_end)
    finally:
        os.close(write_end)
    _, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, "", stderr.decode("utf-8", "replace"))


def run_into_head(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run `loom ARGS | head -n 1` as a shell would; return loom's result and head's output."""
    loom = _popen(args, env, subprocess.PIPE)
    assert loom.stdout is not None
    head = subprocess.Popen(["head", "-n", "1"], stdin=loom.stdout, stdout=subprocess.PIPE)
    loom.stdout.close()  # now only head has the reading end open, as in a shell pipeline
    first_line, _ = head.communicate(timeout=60)
    _, stderr = loom.communicate(timeout=60)
    result = subprocess.CompletedProcess(loom.args, loom.returncode, "", stderr.decode("utf-8", "replace"))
    return result, first_line.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def bulk_creator(market: Market) -> str:
    """Create BULK_JOBS long jobs by one new creator and return the creator's address."""
    creator = market.actor()
    for number in range(BULK_JOBS):
        market.create_job(creator, name=f"bulk job {number}", description=LONG_DESCRIPTION)
    return creator.address


@pytest.mark.parametrize("flags", [["-o", "jsonl"], ["-o", "json"], ["-o", "yaml"], ["-o", "table"], []], ids=["jsonl", "json", "yaml", "table", "default"])
def test_head_one_ends_quietly(flags: list[str], world: World, bulk_creator: str):
    args = ["jobs", "list", "--all", "--limit", "7", "--creator", bulk_creator, *flags]

    result, first_line = run_into_head(args, {"LOOM_API_URL": world.url})

    assert first_line.strip(), "head printed nothing"
    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert "BrokenPipe" not in result.stderr
    assert result.stderr == ""


CLOSED_PIPE_COMMANDS = [
    ["jobs", "list", "--all"],
    ["jobs", "list", "--all", "-o", "jsonl"],
    ["jobs", "list", "--all", "-o", "json"],
    ["jobs", "list", "--all", "-o", "yaml"],
    ["jobs", "list", "--all", "-q"],
    ["jobs", "status", "{job}"],
    ["jobs", "watch", "{job}"],
    ["jobs", "watch", "{job}", "-o", "jsonl"],
    ["results", "get", "{job}"],
    ["whoami"],
    ["auth", "token"],
    ["wallet", "list", "-o", "json"],
    ["config", "list"],
    ["config", "get", "api_url"],
    ["jobs", "schema"],
    ["jobs", "init", "-"],
    ["completion", "bash"],
    ["--help"],
    ["jobs", "list", "--help"],
    ["--version"],
]


@pytest.mark.parametrize("args", CLOSED_PIPE_COMMANDS, ids=lambda args: " ".join(args))
def test_closed_pipe_ends_quietly(args: list[str], world: World):
    job_id = world.finished_job() if "{job}" in args else None
    args = [job_id if arg == "{job}" else arg for arg in args]

    result = run_into_closed_pipe(args, {"LOOM_API_URL": world.url, **world.creator.token_env})

    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    assert "BrokenPipe" not in result.stderr
