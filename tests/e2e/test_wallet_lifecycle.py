"""The installed `loom` manages wallets end to end: in a real Secret Service keyring, and in files without one."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from eth_account import Account

from tests.fixtures.keyring import fast_keystore, read_secret
from tests.helpers import run_loom

pytestmark = pytest.mark.e2e

PASSPHRASE = "e2e passphrase, never printed"
REPO_ROOT = Path(__file__).resolve().parents[2]


def assert_clean(result, *secrets: str) -> None:
    """Check that a run printed no traceback and none of `secrets`."""
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream
        for secret in secrets:
            assert secret not in stream


@pytest.fixture
def imported_keystore(tmp_path: Path) -> tuple[Path, str, str]:
    """A keystore file of a fresh key, as another tool would write it; returns (path, address, key hex)."""
    account = Account.create()
    path = tmp_path / "other-tool.json"
    path.write_text(json.dumps(fast_keystore(bytes(account.key), PASSPHRASE)))
    return path, account.address, bytes(account.key).hex()


@pytest.mark.keyring
@pytest.mark.slow
def test_lifecycle_in_secret_service(secret_service, imported_keystore, tmp_path, isolated_env):
    env = {**secret_service, "LOOM_PASSPHRASE": PASSPHRASE}
    keystore_path, imported, key_hex = imported_keystore

    created = run_loom("wallet", "new", "-q", env=env)
    assert created.returncode == 0, created.stderr
    address = created.stdout.strip()
    assert_clean(created, PASSPHRASE)

    result = run_loom("wallet", "import", "--keystore", str(keystore_path), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == imported
    assert "Secret Service keyring" in result.stderr
    assert_clean(result, PASSPHRASE, key_hex)

    listed = run_loom("wallet", "list", "-o", "json", env=env)
    assert listed.returncode == 0, listed.stderr
    wallets = {item["address"]: item["default"] for item in json.loads(listed.stdout)}
    assert wallets[address] is True
    assert wallets[imported] is False

    # The key sits in the keyring, in its own entry, and nothing is written to files.
    stored = json.loads(read_secret(secret_service, f"keystore:{address}"))
    assert stored["crypto"]["kdf"] == "scrypt"
    assert address in json.loads(read_secret(secret_service, "wallets"))
    assert not (isolated_env / "data" / "keystores").exists()
    assert not (isolated_env / "data" / "tokens.json").exists()

    backup = tmp_path / "backup.json"
    exported = run_loom("wallet", "export", "--keystore", str(backup), env=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(backup.read_text()) == stored
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    for wallet in (address, imported):
        removed = run_loom("wallet", "remove", wallet, "--yes", env=env)
        assert removed.returncode == 0, removed.stderr
    assert read_secret(secret_service, f"keystore:{address}") is None
    assert address not in json.loads(read_secret(secret_service, "wallets"))

    listed = run_loom("wallet", "list", "-q", env=env)
    assert address not in listed.stdout
    assert imported not in listed.stdout


@pytest.mark.slow
def test_lifecycle_in_files_without_dbus(monkeypatch, tmp_path, isolated_env):
    # No bus at all, and keyring left to detect backends on its own.
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    env = {"LOOM_KEYRING_BACKEND": "auto", "LOOM_PASSPHRASE": PASSPHRASE, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    account = Account.create()
    key_hex = bytes(account.key).hex()

    imported = run_loom("wallet", "import", env=env, input=f"0x{key_hex}\n")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == account.address + "\n"
    assert imported.stderr.count("notice: no usable OS keyring") == 1
    assert_clean(imported, PASSPHRASE, key_hex)

    data = isolated_env / "data"
    keystore_file = data / "keystores" / f"{account.address}.json"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(keystore_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(keystore_file.stat().st_mode) == 0o600
    assert key_hex not in keystore_file.read_text()

    listed = run_loom("wallet", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["ADDRESS", "DEFAULT", account.address, "true"]

    backup = tmp_path / "backup.json"
    exported = run_loom("wallet", "export", "--keystore", str(backup), env=env)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(backup.read_text()) == json.loads(keystore_file.read_text())

    refused = run_loom("wallet", "remove", account.address, env=env)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr

    removed = run_loom("wallet", "remove", account.address, "--yes", env=env)
    assert removed.returncode == 0, removed.stderr
    assert not keystore_file.exists()

    # The exported keystore brings the wallet back, under the same passphrase.
    restored = run_loom("wallet", "import", "--keystore", str(backup), env=env)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == account.address
    assert_clean(restored, PASSPHRASE, key_hex)


def test_hanging_keyring_falls_back_after_timeout():
    env = {
        "LOOM_KEYRING_BACKEND": "auto",
        "LOOM_KEYRING_TIMEOUT": "0.5",
        "PYTHON_KEYRING_BACKEND": "tests.fixtures.keyring.HangingKeyring",
        "PYTHONPATH": str(REPO_ROOT),
    }
    started = time.monotonic()
    result = run_loom("wallet", "list", env=env)

    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20
    assert result.stderr.count("notice: no usable OS keyring") == 1
    assert "timed out after 0.5 s" in result.stderr
    assert_clean(result)


def test_plaintext_keyring_is_never_used():
    env = {
        "LOOM_KEYRING_BACKEND": "auto",
        "PYTHON_KEYRING_BACKEND": "tests.fixtures.keyring.PlaintextKeyring",
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = run_loom("wallet", "list", env=env)
    assert result.returncode == 0, result.stderr
    assert "keeps secrets in a plain file" in result.stderr


def test_required_keyring_missing_is_exit_3():
    # The isolated environment points keyring at its always-failing backend.
    result = run_loom("wallet", "list", env={"LOOM_KEYRING_BACKEND": "keyring"})
    assert result.returncode == 3
    assert "no usable OS keyring" in result.stderr
    assert_clean(result)
