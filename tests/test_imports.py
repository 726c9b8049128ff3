"""Heavy packages stay out of loom's fast paths.

These tests check which modules an invocation imports, never how long it
takes: the timings live in the benchmark (`python -m tests.bench.run`).
"""

from __future__ import annotations

import pytest

from tests.bench.imports import (
    HEAVY_MODULES,
    NOT_ON_COMMAND_HELP,
    NOT_ON_ROOT_HELP,
    NOT_ON_VERSION,
    ImportSnapshot,
    snapshot_imports,
)


def describe(snapshot: ImportSnapshot, packages: tuple[str, ...]) -> str:
    loaded = snapshot.loaded(packages)
    reasons = ", ".join(f"{name} ({HEAVY_MODULES.get(name, 'not needed on this path')})" for name in loaded)
    return f"`loom {' '.join(snapshot.args)}` imported {reasons}; import them inside the function that needs them"


def test_version_skips_typer_and_heavy_packages():
    snapshot = snapshot_imports("--version")
    assert snapshot.returncode == 0, snapshot.stderr
    assert snapshot.loaded(NOT_ON_VERSION) == [], describe(snapshot, NOT_ON_VERSION)


@pytest.mark.parametrize("args", [("--help",), ("-h",), ()], ids=" ".join)
def test_root_help_skips_heavy_packages(args: tuple[str, ...]):
    snapshot = snapshot_imports(*args)
    # `loom` alone prints the help and exits 2, as Click does for a group without a command.
    assert snapshot.returncode in (0, 2), snapshot.stderr
    assert "Usage" in snapshot.stdout + snapshot.stderr
    assert snapshot.loaded(NOT_ON_ROOT_HELP) == [], describe(snapshot, NOT_ON_ROOT_HELP)


@pytest.mark.parametrize("args", [("jobs", "--help")], ids=" ".join)
def test_command_help_skips_heavy_packages(args: tuple[str, ...]):
    snapshot = snapshot_imports(*args)
    assert snapshot.returncode == 0, snapshot.stderr
    assert "Usage" in snapshot.stdout
    assert snapshot.loaded(NOT_ON_COMMAND_HELP) == [], describe(snapshot, NOT_ON_COMMAND_HELP)
