"""Helpers for tests that run loom as a user would: a subprocess with no terminal on stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping


def loom_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Copy the test's environment (already isolated by conftest) and add `extra`."""
    env = dict(os.environ)
    if extra:
        env.update(extra)
    return env


def run_loom(
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m loom_cli ARGS` with stdin closed (or fed `input`) and capture text output."""
    return subprocess.run(
        [sys.executable, "-m", "loom_cli", *args],
        env=loom_env(env),
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
