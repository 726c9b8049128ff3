"""The credential store: keyring layout, file fallback, file safety, locks and corrupt data."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from keyring.backends import chainer, fail

from loom_cli.credentials import (
    WINDOWS_MAX_SECRET_BYTES,
    CredentialStore,
    StoredToken,
)
from loom_cli.errors import AuthError, ConflictError, ExitCode, UsageError
from loom_cli.paths import Paths
from tests.fixtures.keyring import (
    TEST_KEYS,
    HangingKeyring,
    LowPriorityKeyring,
    MemoryKeyring,
    PlaintextKeyring,
    RaisingKeyring,
    WindowsSizedKeyring,
    address_of,
    fast_keystore,
)

ADDRESS = address_of(TEST_KEYS[0])
OTHER_ADDRESS = address_of(TEST_KEYS[1])


@pytest.fixture(scope="module")
def keystores() -> dict[str, dict]:
    return {address_of(key): fast_keystore(key, "correct horse") for key in TEST_KEYS[:2]}


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(config_dir=tmp_path / "config", data_dir=tmp_path / "data")


class Notices:
    """Collects what the store prints on stderr."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)


def make_token(profile: str = "default") -> StoredToken:
    return StoredToken(
        token=f"eyJhbGciOiJIUzI1NiJ9.{profile}.signature",
        api_url="http://127.0.0.1:9/v1",
        address=ADDRESS,
        expires_at="2030-01-01T00:00:00Z",
    )


def file_store(paths: Paths, notices: Notices | None = None) -> CredentialStore:
    return CredentialStore(paths, mode="file", warn=notices)


def keyring_store(paths: Paths, backend, notices: Notices | None = None, **kwargs) -> CredentialStore:
    return CredentialStore(paths, mode="auto", backend_factory=lambda: backend, warn=notices, **kwargs)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- file store -------------------------------------------------------------


def test_file_token_round_trip(paths):
    store = file_store(paths)
    assert store.get_token("default") is None

    store.set_token("default", make_token("default"))
    store.set_token("staging", make_token("staging"))

    assert store.get_token("default") == make_token("default")
    assert store.get_token("staging") == make_token("staging")
    assert store.delete_token("default") is True
    assert store.delete_token("default") is False
    assert store.get_token("default") is None
    assert store.get_token("staging") == make_token("staging")


def test_file_keystore_round_trip(paths, keystores):
    store = file_store(paths)
    assert store.list_wallets() == []

    store.set_keystore(ADDRESS, keystores[ADDRESS])
    store.set_keystore(OTHER_ADDRESS.lower(), keystores[OTHER_ADDRESS])

    assert sorted(store.list_wallets()) == sorted([ADDRESS, OTHER_ADDRESS])
    stored = store.get_keystore(ADDRESS.lower())
    assert stored["crypto"]["ciphertext"] == keystores[ADDRESS]["crypto"]["ciphertext"]
    assert stored["address"] == ADDRESS[2:].lower()
    assert store.delete_keystore(ADDRESS) is True
    assert store.delete_keystore(ADDRESS) is False
    assert store.get_keystore(ADDRESS) is None
    assert store.list_wallets() == [OTHER_ADDRESS]


def test_file_store_modes(paths, keystores):
    store = file_store(paths)
    store.set_token("default", make_token())
    store.set_keystore(ADDRESS, keystores[ADDRESS])

    assert mode_of(paths.data_dir) == 0o700
    assert mode_of(store.keystore_dir) == 0o700
    assert mode_of(store.tokens_path) == 0o600
    assert mode_of(store.keystore_dir / f"{ADDRESS}.json") == 0o600


@pytest.mark.parametrize("first_write", ["keystore", "lock"])
def test_data_folder_private_when_subfolder_first(paths, keystores, first_write):
    store = file_store(paths)
    if first_write == "keystore":
        store.set_keystore(ADDRESS, keystores[ADDRESS])
    else:
        with store.lock():
            pass
    assert mode_of(paths.data_dir) == 0o700


def test_file_store_tightens_loose_folder(paths):
    paths.data_dir.mkdir(parents=True, mode=0o755)
    os.chmod(paths.data_dir, 0o755)
    file_store(paths).set_token("default", make_token())
    assert mode_of(paths.data_dir) == 0o700


def test_explicit_file_store_prints_no_notice(paths):
    notices = Notices()
    store = file_store(paths, notices)
    store.set_token("default", make_token())
    assert store.location == f"file {paths.data_dir / 'tokens.json'}"
    assert notices.lines == []


def test_stored_token_repr_hides_token():
    token = make_token()
    assert token.token not in repr(token)


def test_set_keystore_rejects_clear_key(paths):
    store = file_store(paths)
    with pytest.raises(UsageError):
        store.set_keystore(ADDRESS, {"address": ADDRESS[2:], "private_key": TEST_KEYS[0].hex()})
    assert store.list_wallets() == []


def test_set_keystore_rejects_other_address(paths, keystores):
    store = file_store(paths)
    with pytest.raises(UsageError, match="holds wallet"):
        store.set_keystore(OTHER_ADDRESS, keystores[ADDRESS])


def test_get_keystore_rejects_invalid_address(paths):
    with pytest.raises(UsageError, match="invalid address"):
        file_store(paths).get_keystore("0x1234")


# -- corrupt files ------------------------------------------------------------


def test_corrupt_tokens_file_is_auth_error(paths):
    store = file_store(paths)
    paths.data_dir.mkdir(parents=True)
    store.tokens_path.write_text("{not json")

    with pytest.raises(AuthError) as caught:
        store.get_token("default")

    assert caught.value.exit_code == ExitCode.AUTH
    assert str(store.tokens_path) in caught.value.message
    assert "loom logout" in caught.value.hint


def test_token_entry_with_wrong_shape_is_auth_error(paths):
    store = file_store(paths)
    paths.data_dir.mkdir(parents=True)
    store.tokens_path.write_text(json.dumps({"default": {"token": "x"}}))

    with pytest.raises(AuthError, match="corrupt"):
        store.get_token("default")


def test_logout_removes_corrupt_tokens_file(paths):
    notices = Notices()
    store = file_store(paths, notices)
    paths.data_dir.mkdir(parents=True)
    store.tokens_path.write_text("[1, 2")

    assert store.delete_token("default") is True

    assert not store.tokens_path.exists()
    assert len(notices.lines) == 1
    assert "corrupt" in notices.lines[0]
    assert store.get_token("default") is None


def test_corrupt_keystore_file_is_auth_error(paths, keystores):
    store = file_store(paths)
    store.set_keystore(ADDRESS, keystores[ADDRESS])
    path = store.keystore_dir / f"{ADDRESS}.json"
    path.write_text('{"version": 3, "crypto": ')

    with pytest.raises(AuthError) as caught:
        store.get_keystore(ADDRESS)

    assert str(path) in caught.value.message
    assert f"loom wallet remove {ADDRESS}" in caught.value.hint
    assert store.delete_keystore(ADDRESS) is True


def test_tokens_path_that_is_a_folder_is_auth_error(paths):
    store = file_store(paths)
    store.tokens_path.mkdir(parents=True)
    with pytest.raises(AuthError, match="is a folder"):
        store.get_token("default")


# -- keyring layout -------------------------------------------------------------


def test_keyring_keeps_token_and_key_apart(paths, keystores):
    backend = MemoryKeyring()
    store = keyring_store(paths, backend)

    store.set_token("default", make_token())
    store.set_keystore(ADDRESS, keystores[ADDRESS])

    assert set(backend.entries) == {
        ("loom", "token:default"),
        ("loom", f"keystore:{ADDRESS}"),
        ("loom", "wallets"),
    }
    assert json.loads(backend.entries[("loom", "wallets")]) == [ADDRESS]
    assert "ciphertext" not in backend.entries[("loom", "token:default")]
    assert make_token().token not in backend.entries[("loom", f"keystore:{ADDRESS}")]
    assert not store.tokens_path.exists()
    assert not store.keystore_dir.exists()


def test_keyring_round_trip(paths, keystores):
    store = keyring_store(paths, MemoryKeyring())

    store.set_token("default", make_token())
    store.set_keystore(ADDRESS, keystores[ADDRESS])
    store.set_keystore(OTHER_ADDRESS, keystores[OTHER_ADDRESS])
    store.set_keystore(ADDRESS, keystores[ADDRESS])

    assert store.get_token("default") == make_token()
    assert store.list_wallets() == [ADDRESS, OTHER_ADDRESS]
    assert store.get_keystore(ADDRESS)["address"] == ADDRESS[2:].lower()
    assert store.delete_keystore(ADDRESS) is True
    assert store.list_wallets() == [OTHER_ADDRESS]
    assert store.delete_keystore(ADDRESS) is False
    assert store.delete_token("default") is True
    assert store.delete_token("default") is False


def test_keyring_corrupt_index_is_auth_error(paths):
    backend = MemoryKeyring()
    backend.entries[("loom", "wallets")] = '["not an address"]'

    with pytest.raises(AuthError, match="wallet list"):
        keyring_store(paths, backend).list_wallets()


def test_keyring_corrupt_token_is_auth_error(paths):
    backend = MemoryKeyring()
    backend.entries[("loom", "token:default")] = "garbage"

    with pytest.raises(AuthError) as caught:
        keyring_store(paths, backend).get_token("default")
    assert "loom logout" in caught.value.hint


def test_windows_size_limit_rejects_large_secret(paths, keystores):
    backend = WindowsSizedKeyring()
    store = keyring_store(paths, backend)
    big = make_token()
    big.token = "x" * WINDOWS_MAX_SECRET_BYTES

    with pytest.raises(AuthError) as caught:
        store.set_token("default", big)

    assert "LOOM_KEYRING_BACKEND=file" in caught.value.hint
    assert ("loom", "token:default") not in backend.entries


def test_windows_size_limit_fits_token_and_keystore(paths, keystores):
    backend = WindowsSizedKeyring()
    store = keyring_store(paths, backend)

    store.set_token("default", make_token())
    store.set_keystore(ADDRESS, keystores[ADDRESS])

    for value in backend.entries.values():
        assert len(value.encode("utf-16-le")) <= WINDOWS_MAX_SECRET_BYTES


def test_keyring_failing_after_probe_is_auth_error(paths):
    class WriteFails(MemoryKeyring):
        def set_password(self, service, username, password):
            raise RuntimeError("write refused")

    store = keyring_store(paths, WriteFails())
    with pytest.raises(AuthError) as caught:
        store.set_token("default", make_token())
    assert "write refused" in caught.value.message
    assert "LOOM_KEYRING_BACKEND=file" in caught.value.hint
    assert not store.tokens_path.exists()


# -- fallback to files ------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "reason"),
    [
        (fail.Keyring(), "found no Secret Service"),
        (RaisingKeyring(), "the keyring daemon went away"),
        (PlaintextKeyring(), "plain file"),
        (LowPriorityKeyring(), "not a recommended backend"),
    ],
    ids=["no-backend", "raising", "plaintext", "low-priority"],
)
def test_fallback_to_files(paths, backend, reason):
    notices = Notices()
    store = keyring_store(paths, backend, notices)

    store.set_token("default", make_token())
    store.set_token("other", make_token("other"))
    assert store.get_token("default") == make_token()

    assert len(notices.lines) == 1
    assert notices.lines[0].startswith("notice: no usable OS keyring")
    assert reason in notices.lines[0]
    assert str(paths.data_dir) in notices.lines[0]
    assert store.location == f"file {store.tokens_path}"
    assert mode_of(store.tokens_path) == 0o600
    if isinstance(backend, MemoryKeyring):
        assert backend.entries == {}


def test_fallback_notice_once_per_folder(paths):
    first, second, changed = Notices(), Notices(), Notices()

    keyring_store(paths, fail.Keyring(), first).set_token("default", make_token())
    keyring_store(paths, fail.Keyring(), second).get_token("default")
    keyring_store(paths, RaisingKeyring(), changed).get_token("default")

    assert len(first.lines) == 1
    assert second.lines == []
    assert len(changed.lines) == 1
    assert "the keyring daemon went away" in changed.lines[0]


def test_fallback_on_hanging_keyring(paths):
    notices = Notices()
    store = keyring_store(paths, HangingKeyring(), notices, timeout=0.2)

    started = time.monotonic()
    store.set_token("default", make_token())
    assert store.get_token("default") == make_token()

    assert time.monotonic() - started < 3
    assert len(notices.lines) == 1
    assert "timed out after 0.2 s" in notices.lines[0]


def test_fallback_never_writes_to_plaintext_in_chain(paths, keystores):
    plaintext = PlaintextKeyring()

    class Chain(chainer.ChainerBackend):
        viable = False
        backends = [plaintext, MemoryKeyring()]

    notices = Notices()
    store = keyring_store(paths, Chain(), notices)
    store.set_keystore(ADDRESS, keystores[ADDRESS])

    assert plaintext.entries == {}
    assert store.list_wallets() == [ADDRESS]
    assert (store.keystore_dir / f"{ADDRESS}.json").exists()
    assert len(notices.lines) == 1


def test_chain_uses_its_best_member(paths):
    best = MemoryKeyring()

    class Chain(chainer.ChainerBackend):
        viable = False
        backends = [best, PlaintextKeyring()]

    notices = Notices()
    keyring_store(paths, Chain(), notices).set_token("default", make_token())
    assert ("loom", "token:default") in best.entries
    assert notices.lines == []


def test_keyring_mode_refuses_fallback(paths):
    store = CredentialStore(paths, mode="keyring", backend_factory=RaisingKeyring)
    with pytest.raises(AuthError) as caught:
        store.get_token("default")
    assert "LOOM_KEYRING_BACKEND" in caught.value.hint
    assert not paths.data_dir.exists()


def test_store_resolves_backend_lazily(paths):
    calls = []

    def factory():
        calls.append(1)
        return MemoryKeyring()

    store = CredentialStore(paths, backend_factory=factory)
    assert calls == []
    store.get_token("default")
    store.list_wallets()
    assert calls == [1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LOOM_KEYRING_BACKEND": "vault"}, "invalid LOOM_KEYRING_BACKEND"),
        ({"LOOM_KEYRING_TIMEOUT": "soon"}, "invalid LOOM_KEYRING_TIMEOUT"),
        ({"LOOM_KEYRING_TIMEOUT": "0"}, "invalid LOOM_KEYRING_TIMEOUT"),
    ],
)
def test_invalid_store_variables(tmp_path, env, message):
    with pytest.raises(UsageError, match=message):
        CredentialStore.from_env({"LOOM_CONFIG_DIR": str(tmp_path), **env})


def test_from_env_reads_mode_and_timeout(tmp_path):
    store = CredentialStore.from_env(
        {"LOOM_CONFIG_DIR": str(tmp_path), "LOOM_KEYRING_BACKEND": "FILE", "LOOM_KEYRING_TIMEOUT": "1.5"}
    )
    assert store.mode == "file"
    assert store.timeout == 1.5
    assert store.paths.data_dir == tmp_path / "data"


# -- locks ------------------------------------------------------------------------

HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from loom_cli.credentials import CredentialStore
    from loom_cli.paths import Paths

    root = Path(sys.argv[1])
    store = CredentialStore(Paths(root / "config", root / "data"), mode="file")
    with store.lock("login"):
        print("locked", flush=True)
        time.sleep(30)
    """
)


def test_lock_is_exclusive_across_processes(paths):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(paths.data_dir.parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        store = CredentialStore(paths, mode="file", lock_timeout=0.3)

        with pytest.raises(ConflictError) as caught:
            with store.lock("login"):
                pass
        assert "login.lock" in caught.value.message

        # Another name is another lock.
        with store.lock("credentials"):
            pass
    finally:
        holder.kill()
        holder.wait()

    with store.lock("login"):
        pass


def test_lock_file_is_private(paths):
    store = file_store(paths)
    with store.lock():
        lock_file = paths.data_dir / "locks" / "credentials.lock"
        assert mode_of(lock_file) == 0o600
        assert mode_of(lock_file.parent) == 0o700


def test_store_writes_while_caller_holds_lock(paths, keystores):
    store = file_store(paths)
    with store.lock("credentials"):
        store.set_keystore(ADDRESS, keystores[ADDRESS])
        store.set_token("default", make_token())
    assert store.list_wallets() == [ADDRESS]


def test_lock_rejects_path_like_name(paths):
    with pytest.raises(ValueError):
        with file_store(paths).lock("../escape"):
            pass


# -- atomic writes ----------------------------------------------------------------

WRITE_FOREVER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from loom_cli.credentials import CredentialStore, StoredToken
    from loom_cli.paths import Paths

    root = Path(sys.argv[1])
    store = CredentialStore(Paths(root / "config", root / "data"), mode="file")
    # Large tokens make each write take long enough to be interrupted half-way.
    values = ["a" * 2_000_000, "b" * 2_000_000]
    for index in range(100_000):
        store.set_token("default", StoredToken(values[index % 2], "http://127.0.0.1:9/v1", "0x0", "2030-01-01T00:00:00Z"))
        if index == 0:
            print("written", flush=True)
    """
)


def test_token_file_survives_kill_during_write(paths):
    store = file_store(paths)
    for delay in (0.0, 0.013, 0.031, 0.057, 0.11):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITE_FOREVER, str(paths.data_dir.parent)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert writer.stdout.readline().strip() == "written"
            time.sleep(delay)
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()

        token = store.get_token("default")
        assert token is not None
        assert token.token in ("a" * 2_000_000, "b" * 2_000_000)
