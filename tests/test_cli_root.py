"""The root command: version, help and exit codes for usage errors."""

from __future__ import annotations

from loom_cli import __version__
from tests.helpers import run_loom


def test_version_prints_package_version():
    result = run_loom("--version")
    assert result.returncode == 0
    assert result.stdout == f"loom {__version__}\n"


def test_help_lists_global_options():
    result = run_loom("--help")
    assert result.returncode == 0
    for flag in ("--profile", "--api-url", "--output", "--json", "--quiet", "--verbose", "--no-color", "--timeout"):
        assert flag in result.stdout


def test_unknown_option_is_usage_error():
    result = run_loom("--no-such-flag")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
