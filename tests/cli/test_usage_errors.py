"""Click's usage errors (unknown command or option, invalid value) in loom's one-line form."""

from __future__ import annotations

import pytest

from tests.helpers import run_loom


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (("jobs", "lst"), "error: No such command 'lst'. Did you mean 'list'?", "hint: see the usage with: loom jobs --help"),
        (("jobs", "list", "--limt", "3"), "error: No such option: --limt", "hint: see the usage with: loom jobs list --help"),
        (("-o", "xml", "jobs", "list"), "error: Invalid value for '--output' / '-o'", "hint: see the usage with: loom --help"),
        (("jobs", "status"), "error: Missing argument 'ID'.", "hint: see the usage with: loom jobs status --help"),
        (("jobs", "list", "--limit", "many"), "error: Invalid value for '--limit'", "hint: see the usage with: loom jobs list --help"),
    ],
    ids=["unknown command", "unknown option", "bad choice", "missing argument", "bad number"],
)
def test_usage_error_is_two_lines(args: tuple[str, ...], error: str, hint: str):
    result = run_loom(*args)

    assert result.returncode == 2
    assert result.stdout == ""
    first, second = result.stderr.splitlines()
    assert first.startswith(error)
    assert second == hint


def test_usage_error_escapes_control_characters():
    result = run_loom("jobs", "list", "--\x1b[31mred")

    assert result.returncode == 2
    assert "\x1b" not in result.stderr
    assert "\\x1b[31mred" in result.stderr
