"""Shared test fixtures: every test runs isolated from the user's config, keyring and terminal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.keyring",
]

# Variables that would leak the developer's own settings into a test.
_LOOM_VARIABLES = (
    "LOOM_API_URL",
    "LOOM_PROFILE",
    "LOOM_OUTPUT",
    "LOOM_TOKEN",
    "LOOM_PRIVATE_KEY",
    "LOOM_PASSPHRASE",
    "LOOM_CONFIG_DIR",
    "LOOM_KEYRING_BACKEND",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give each test its own config folder, no colour, a fixed width and no inherited LOOM_* values."""
    for name in _LOOM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config_dir = tmp_path / "loom-config"
    monkeypatch.setenv("LOOM_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("TERM", "dumb")
    # Credentials go to files under LOOM_CONFIG_DIR, silently; a test that wants a keyring
    # passes the `secret_service` env. Code that asks `keyring` anyway gets the backend that
    # always fails, never the developer's own keyring.
    monkeypatch.setenv("LOOM_KEYRING_BACKEND", "file")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    # Proxies from the developer's shell must not reroute loopback test traffic.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return config_dir


@pytest.fixture
def in_ci() -> bool:
    return os.environ.get("CI") == "true"
