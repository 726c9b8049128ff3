"""Login tokens in a real Secret Service keyring: stored by `login`, named by `whoami`, removed by `logout`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.keyring import read_secret
from tests.helpers import run_loom

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]


def test_login_token_lives_in_keyring(
    secret_service: dict[str, str], sandbox_url: str, new_account: Callable[[], Any], isolated_env: Path
):
    account = new_account()
    # The keyring is shared by the test session, so the profile name is unique.
    profile = f"login-{uuid.uuid4().hex[:8]}"
    env = {**secret_service, "LOOM_KEYRING_BACKEND": "keyring"}
    common = ("--profile", profile, "--api-url", sandbox_url)

    login = run_loom(*common, "login", env={**env, "LOOM_PRIVATE_KEY": "0x" + bytes(account.key).hex()})
    whoami = run_loom(*common, "whoami", "-o", "json", env=env)
    stored = json.loads(read_secret(secret_service, f"token:{profile}") or "{}")
    logout = run_loom(*common, "logout", env=env)

    assert login.returncode == 0, login.stderr
    assert whoami.returncode == 0, whoami.stderr
    assert "keyring" in json.loads(whoami.stdout)["token_store"].lower()
    assert stored["address"] == account.address
    assert stored["api_url"] == sandbox_url
    assert not (isolated_env / "data" / "tokens.json").exists()
    assert logout.returncode == 0, logout.stderr
    assert read_secret(secret_service, f"token:{profile}") is None
