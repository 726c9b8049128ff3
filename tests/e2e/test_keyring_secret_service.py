"""The credential store against a real Secret Service (gnome-keyring on a private D-Bus bus)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from eth_account import Account

from loom_cli.credentials import CredentialStore, StoredToken
from loom_cli.paths import Paths
from tests.fixtures.keyring import fast_keystore, read_secret
from tests.helpers import run_loom

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]


@pytest.fixture
def real_store(secret_service, monkeypatch, tmp_path) -> CredentialStore:
    """A store in this process that talks to the test Secret Service (secretstorage reads os.environ)."""
    from keyring.backends import SecretService

    for name, value in secret_service.items():
        monkeypatch.setenv(name, value)
    paths = Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")
    return CredentialStore(paths, mode="keyring", backend_factory=SecretService.Keyring)


def fresh_wallet() -> tuple[str, dict, str]:
    account = Account.create()
    key = bytes(account.key)
    return account.address, fast_keystore(key, "pass"), key.hex()


def test_loom_detects_secret_service_itself(secret_service, monkeypatch):
    # Without PYTHON_KEYRING_BACKEND, keyring must find the Secret Service on the bus by itself.
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    env = {name: value for name, value in secret_service.items() if name != "PYTHON_KEYRING_BACKEND"}
    address, keystore, _ = fresh_wallet()
    keystore_file = os.path.join(env["XDG_RUNTIME_DIR"], f"{uuid.uuid4().hex}.json")
    with open(keystore_file, "w") as handle:
        json.dump(keystore, handle)

    result = run_loom("wallet", "import", "--keystore", keystore_file, env={**env, "LOOM_PASSPHRASE": "pass"})

    assert result.returncode == 0, result.stderr
    assert "Secret Service keyring" in result.stderr
    assert "notice" not in result.stderr
    assert json.loads(read_secret(secret_service, f"keystore:{address}"))["crypto"]["kdf"] == "pbkdf2"


def test_token_round_trip(real_store, secret_service):
    profile = f"test-{uuid.uuid4().hex[:12]}"
    token = StoredToken("header.payload.signature", "http://127.0.0.1:9/v1", "0x" + "ab" * 20, "2030-01-01T00:00:00Z")

    real_store.set_token(profile, token)

    assert real_store.get_token(profile) == token
    assert json.loads(read_secret(secret_service, f"token:{profile}"))["token"] == token.token
    assert real_store.delete_token(profile) is True
    assert real_store.delete_token(profile) is False
    assert real_store.get_token(profile) is None
    assert real_store.location == "Secret Service keyring"


def test_token_and_key_are_separate_entries(real_store, secret_service):
    profile = f"test-{uuid.uuid4().hex[:12]}"
    address, keystore, key_hex = fresh_wallet()
    real_store.set_keystore(address, keystore)
    real_store.set_token(profile, StoredToken("jwt-value", "http://127.0.0.1:9/v1", address, "2030-01-01T00:00:00Z"))

    # Forgetting the token (what `loom logout` does) leaves the key alone.
    real_store.delete_token(profile)

    stored = read_secret(secret_service, f"keystore:{address}")
    assert stored is not None
    assert key_hex not in stored
    assert "jwt-value" not in stored
    assert address in real_store.list_wallets()
    assert real_store.delete_keystore(address) is True
    assert address not in real_store.list_wallets()
    assert read_secret(secret_service, f"keystore:{address}") is None


LOCK_COLLECTION = "import secretstorage; secretstorage.get_default_collection(secretstorage.dbus_init()).lock()"


def test_locked_keyring(private_secret_service):
    env = {**os.environ, **private_secret_service}
    subprocess.run([sys.executable, "-c", LOCK_COLLECTION], env=env, check=True, timeout=30)

    # Required: a locked keyring is an error, never a silent switch to files.
    required = run_loom("wallet", "list", env=private_secret_service)
    assert required.returncode == 3
    assert "is locked" in required.stderr
    assert "Traceback" not in required.stderr

    # auto: the files take over, with one notice that gives the reason.
    fallback = run_loom("wallet", "list", env={**private_secret_service, "LOOM_KEYRING_BACKEND": "auto"})
    assert fallback.returncode == 0, fallback.stderr
    assert fallback.stderr.count("notice: no usable OS keyring") == 1
    assert "is locked" in fallback.stderr
