"""Fixtures and checks shared by the hardening tests."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.hardening.faultserver import FaultServer, running_fault_server

# Characters that must never reach a terminal from marketplace data: C0 controls but
# newline and tab, DEL and C1 controls (CSI is \x9b), and the bidi embeddings,
# overrides and isolates.
UNSAFE_TERMINAL_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with running_fault_server() as server:
        yield server


def assert_clean_failure(result: subprocess.CompletedProcess[str], exit_code: int) -> None:
    """Check that loom failed with `exit_code`, one `error:` line and maybe a hint, no traceback and no raw control text."""
    assert result.returncode == exit_code, f"exit {result.returncode}, stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert not UNSAFE_TERMINAL_TEXT.search(result.stderr), repr(result.stderr)
    # The error comes last, after any progress, notices and -v log lines: one line and maybe a hint.
    lines = result.stderr.splitlines()
    errors = [index for index, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    # A spec validation error lists its problems indented under the error line.
    assert all(line.startswith(("hint: ", "  ")) for line in lines[errors[0] + 1 :]), result.stderr
    assert len(lines[errors[0]]) < 1000, result.stderr


def assert_api_failure(result: subprocess.CompletedProcess[str], request_id: str) -> None:
    """Check for exit 6 with a clean message that names `request_id`."""
    assert_clean_failure(result, 6)
    assert f"(request id {request_id})" in result.stderr, result.stderr
