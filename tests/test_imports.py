"""Heavy packages stay out of loom's fast paths.

These tests check which modules an invocation imports, never how long it
takes: the timings live in the benchmark (`python -m tests.bench.run`).
"""

from __future__ import annotations

import httpx
import pytest

from tests.bench.imports import (
    HEAVY_MODULES,
    NOT_ON_COMMAND_HELP,
    NOT_ON_READ_COMMANDS,
    NOT_ON_ROOT_HELP,
    NOT_ON_VERSION,
    ImportSnapshot,
    snapshot_imports,
)
from tests.fixtures.sandbox import api_login
from tests.helpers import loom_env, run_loom


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


@pytest.mark.parametrize("args", [("jobs", "--help"), ("jobs", "list", "--help"), ("sandbox", "--help"), ("login", "--help")], ids=" ".join)
def test_command_help_skips_heavy_packages(args: tuple[str, ...]):
    snapshot = snapshot_imports(*args)
    assert snapshot.returncode == 0, snapshot.stderr
    assert "Usage" in snapshot.stdout
    assert snapshot.loaded(NOT_ON_COMMAND_HELP) == [], describe(snapshot, NOT_ON_COMMAND_HELP)


@pytest.fixture
def job_reader(sandbox_url: str, new_account) -> tuple[dict[str, str], str]:
    """Log a fresh wallet in with `loom login` (token stored in files) and create one job; return (env, job id)."""
    account = new_account()
    token = api_login(sandbox_url, account)
    spec = {"name": "imports", "image": "ubuntu", "resources": {"cpu": 1, "memory": "1Gi"}, "reward": {"amount": "1"}}
    created = httpx.post(f"{sandbox_url}/jobs", json=spec, headers={"Authorization": f"Bearer {token}"}, timeout=30, trust_env=False)
    assert created.status_code == 201, created.text

    env = loom_env({"LOOM_API_URL": sandbox_url, "LOOM_KEYRING_BACKEND": "file"})
    login = run_loom("login", env={**env, "LOOM_PRIVATE_KEY": account.key.hex()})
    assert login.returncode == 0, login.stderr
    return env, created.json()["id"]


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["jobs list", "jobs status"])
def test_read_commands_skip_heavy_packages(job_reader: tuple[dict[str, str], str], command: str):
    env, job_id = job_reader
    args = command.split() + ([job_id] if command == "jobs status" else [])

    snapshot = snapshot_imports(*args, env=env)

    assert snapshot.returncode == 0, snapshot.stderr
    assert job_id in snapshot.stdout
    assert snapshot.loaded(NOT_ON_READ_COMMANDS) == [], describe(snapshot, NOT_ON_READ_COMMANDS)
