"""Keyring faults as a user meets them: each gives one clear notice and working file storage, or exit 3.

The real CLI imports a wallet, logs in with it against a real sandbox and checks the
login, with keyring pointed at a backend that is missing, failing, hanging, locked, or
as small as Windows Credential Manager's 2,560 bytes per secret.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.fixtures.keyring import fast_keystore
from tests.hardening.conftest import assert_clean_failure
from tests.hardening.faultserver import json_reply
from tests.hardening.keyrings import ENTRIES_VARIABLE
from tests.hardening.test_server_faults import KEY_ADDRESS, KEY_HEX
from tests.helpers import run_loom

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "keyring fault passphrase"

BACKENDS = {
    "none": ("keyring.backends.fail.Keyring", "keyring found no Secret Service, Keychain or Credential Manager"),
    "failing": ("tests.fixtures.keyring.RaisingKeyring", "failed: the keyring daemon went away"),
    "hanging": ("tests.fixtures.keyring.HangingKeyring", "timed out after 0.5 s"),
    "locked": ("tests.hardening.keyrings.LockedKeyring", "is locked"),
}


def import_wallet(account: Any, env: dict[str, str], tmp_path: Path) -> Any:
    """Import `account` from a keystore file; a cheap key derivation keeps the import and later unlocks fast."""
    keystore = tmp_path / "wallet.json"
    keystore.write_text(json.dumps(fast_keystore(bytes(account.key), PASSPHRASE)))
    return run_loom("wallet", "import", "--keystore", str(keystore), env=env)


def keyring_env(backend: str, mode: str) -> dict[str, str]:
    # Only the hanging backend gets a short timeout: on a loaded machine a short one could
    # also cut off a backend that fails quickly, and change the reason loom gives.
    timeout = "0.5" if backend.endswith("HangingKeyring") else "10"
    return {
        "LOOM_KEYRING_BACKEND": mode,
        "LOOM_KEYRING_TIMEOUT": timeout,
        "PYTHON_KEYRING_BACKEND": backend,
        "PYTHONPATH": str(REPO_ROOT),
        "LOOM_PASSPHRASE": PASSPHRASE,
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BACKENDS))
def test_broken_keyring_falls_back_to_private_files(name, sandbox_url, new_account, isolated_env, tmp_path):
    backend, reason = BACKENDS[name]
    env = keyring_env(backend, "auto")
    account = new_account()

    imported = import_wallet(account, env, tmp_path)
    login = run_loom("--api-url", sandbox_url, "login", env=env)
    whoami = run_loom("--api-url", sandbox_url, "whoami", "-o", "json", env=env)

    for result in (imported, login, whoami):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert json.loads(whoami.stdout)["address"] == account.address
    notices = "".join(result.stderr for result in (imported, login, whoami))
    assert notices.count("notice: no usable OS keyring") == 1
    assert reason in imported.stderr

    data = isolated_env / "data"
    assert stat.S_IMODE((data / "tokens.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "keystores" / f"{account.address}.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


@pytest.mark.parametrize("name", list(BACKENDS))
def test_required_keyring_that_fails_is_exit_3(name, isolated_env, new_account, tmp_path):
    backend, reason = BACKENDS[name]

    result = import_wallet(new_account(), keyring_env(backend, "keyring"), tmp_path)

    assert_clean_failure(result, 3)
    assert reason in result.stderr
    assert not (isolated_env / "data" / "keystores").exists()


def windows_env(tmp_path: Path) -> dict[str, str]:
    return {
        **keyring_env("tests.hardening.keyrings.FileWindowsKeyring", "auto"),
        ENTRIES_VARIABLE: str(tmp_path / "credential-manager.json"),
    }


@pytest.mark.slow
def test_windows_sized_keyring_keeps_token_and_key_apart(tmp_path, sandbox_url, new_account):
    env = windows_env(tmp_path)
    account = new_account()

    imported = import_wallet(account, env, tmp_path)
    login = run_loom("--api-url", sandbox_url, "login", env=env)
    whoami = run_loom("--api-url", sandbox_url, "whoami", env=env)

    for result in (imported, login, whoami):
        assert result.returncode == 0, result.stderr
        assert "notice:" not in result.stderr
    entries: dict[str, Any] = json.loads((tmp_path / "credential-manager.json").read_text())
    assert set(entries) == {"loom/wallets", "loom/token:default", f"loom/keystore:{account.address}"}
    assert "crypto" not in entries["loom/token:default"]
    assert "token" not in json.loads(entries[f"loom/keystore:{account.address}"])
    for value in entries.values():
        assert len(value.encode("utf-16-le")) <= 2560


def test_secret_too_large_for_windows_is_exit_3(tmp_path, fault_server):
    # A token this large does not fit one Credential Manager entry once stored as UTF-16.
    token = jwt.encode({"sub": KEY_ADDRESS, "exp": int(time.time()) + 3600, "pad": "x" * 2000}, "a test signing key of at least 32 bytes", algorithm="HS256")
    fault_server.on("GET", "/auth/nonce", json_reply(200, {"address": KEY_ADDRESS, "nonce": "abcdefgh12345678", "expires_at": "2030-01-01T00:00:00.000000Z"}))
    fault_server.on("POST", "/auth/login", json_reply(200, {"token": token, "token_type": "Bearer", "expires_at": "2030-01-01T00:00:00.000000Z", "address": KEY_ADDRESS}))
    env = {**windows_env(tmp_path), "LOOM_PRIVATE_KEY": KEY_HEX}

    refused = run_loom("--api-url", fault_server.url, "login", env=env)

    assert_clean_failure(refused, 3)
    assert "more than the Windows Credential Manager accepts (2560 bytes)" in refused.stderr
    assert "LOOM_KEYRING_BACKEND=file" in refused.stderr
    assert token not in refused.stderr

    # The hint works: the file store takes it.
    stored = run_loom("--api-url", fault_server.url, "login", env={**env, "LOOM_KEYRING_BACKEND": "file"})
    assert stored.returncode == 0, stored.stderr
