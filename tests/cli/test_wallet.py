"""Passphrases, private keys, keystores and unlocking the stored wallet (loom_cli.wallet)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from loom_cli.context import AppContext, GlobalOptions
from loom_cli.credentials import CredentialStore
from loom_cli.errors import AuthError, ExitCode, NotFoundError, PromptRequired, UsageError
from loom_cli.settings import ConfigFile
from loom_cli.wallet import (
    SECP256K1_N,
    decrypt_key,
    encrypt_key,
    load_keystore_file,
    normalize_keystore,
    parse_private_key,
    read_passphrase,
    unlock_account,
)
from tests.fixtures.keyring import TEST_KEYS, address_of, fast_keystore

KEY = TEST_KEYS[0]
ADDRESS = address_of(KEY)
PASSPHRASE = "correct horse battery"


class TerminalInput(io.StringIO):
    """stdin that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def make_app(tmp_path: Path, *, tty: bool = False, **env: str) -> AppContext:
    base = {"LOOM_CONFIG_DIR": str(tmp_path / "config"), "LOOM_KEYRING_BACKEND": "file"}
    return AppContext(
        GlobalOptions(),
        env={**base, **env},
        stdin=TerminalInput("") if tty else io.StringIO(""),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


@pytest.fixture
def prompts(monkeypatch):
    """Replace the hidden prompt with a queue of answers; records the prompts shown."""
    answers: list[str] = []
    shown: list[str] = []

    def fake_getpass(prompt: str = "", stream=None) -> str:
        shown.append(prompt)
        if not answers:
            raise EOFError
        return answers.pop(0)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    return answers, shown


@pytest.fixture(scope="module")
def fast_store_keystore() -> dict:
    return fast_keystore(KEY, PASSPHRASE)


# -- passphrases --------------------------------------------------------------


def test_passphrase_file_wins_over_variable(tmp_path):
    path = tmp_path / "pass"
    path.write_text("from file\nsecond line\n")
    path.chmod(0o600)
    app = make_app(tmp_path, LOOM_PASSPHRASE="from env")
    assert read_passphrase(app, prompt="Passphrase", passphrase_file=path) == "from file"


def test_passphrase_file_with_crlf(tmp_path):
    path = tmp_path / "pass"
    path.write_bytes(b"windows line\r\n")
    path.chmod(0o600)
    assert read_passphrase(make_app(tmp_path), prompt="Passphrase", passphrase_file=path) == "windows line"


def test_passphrase_variable_wins_over_prompt(tmp_path, prompts):
    app = make_app(tmp_path, tty=True, LOOM_PASSPHRASE="from env")
    assert read_passphrase(app, prompt="Passphrase") == "from env"
    assert prompts[1] == []


def test_passphrase_prompt_on_terminal(tmp_path, prompts):
    answers, shown = prompts
    answers.extend(["typed", "typed"])
    app = make_app(tmp_path, tty=True)
    assert read_passphrase(app, prompt="Passphrase for the new wallet", confirm=True) == "typed"
    assert shown == ["Passphrase for the new wallet: ", "Passphrase for the new wallet (again): "]


def test_passphrase_prompt_mismatch(tmp_path, prompts):
    prompts[0].extend(["one", "two"])
    with pytest.raises(UsageError, match="do not match"):
        read_passphrase(make_app(tmp_path, tty=True), prompt="Passphrase", confirm=True)


def test_passphrase_without_terminal_names_sources(tmp_path):
    with pytest.raises(PromptRequired) as caught:
        read_passphrase(make_app(tmp_path), prompt="Passphrase for wallet 0xabc")
    assert caught.value.exit_code == ExitCode.AUTH
    assert "LOOM_PASSPHRASE" in caught.value.hint
    assert "--passphrase-file" in caught.value.hint


def test_passphrase_not_interactive_never_prompts(tmp_path, prompts):
    with pytest.raises(PromptRequired):
        read_passphrase(make_app(tmp_path, tty=True), prompt="Passphrase", interactive=False)
    assert prompts[1] == []


def test_empty_passphrase_rejected_for_new_key(tmp_path):
    with pytest.raises(UsageError, match="empty passphrase"):
        read_passphrase(make_app(tmp_path, LOOM_PASSPHRASE=""), prompt="Passphrase", confirm=True)


def test_empty_passphrase_allowed_for_unlock(tmp_path):
    assert read_passphrase(make_app(tmp_path, LOOM_PASSPHRASE=""), prompt="Passphrase") == ""


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_passphrase_file_unreadable(tmp_path, kind):
    path = tmp_path / "pass"
    if kind == "folder":
        path.mkdir()
    with pytest.raises(UsageError) as caught:
        read_passphrase(make_app(tmp_path), prompt="Passphrase", passphrase_file=path)
    assert str(path) in caught.value.message
    assert caught.value.exit_code == ExitCode.USAGE


def test_passphrase_file_readable_by_others_warns(tmp_path):
    path = tmp_path / "pass"
    path.write_text("secret words\n")
    path.chmod(0o644)
    app = make_app(tmp_path)
    read_passphrase(app, prompt="Passphrase", passphrase_file=path)
    warning = app.stderr.getvalue()
    assert "readable by other users" in warning
    assert "secret words" not in warning


# -- private keys -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [KEY.hex(), "0x" + KEY.hex(), "  0X" + KEY.hex().upper() + "\n", "\t" + KEY.hex() + "\r\n"],
    ids=["plain", "0x", "upper-with-spaces", "tab-crlf"],
)
def test_parse_private_key_accepts(text):
    assert parse_private_key(text, source="stdin") == KEY


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (KEY.hex()[:-2], "has 62 hex digits, expected 64"),
        (KEY.hex() + "00", "has 66 hex digits"),
        ("zz" + KEY.hex()[2:], "is not hexadecimal"),
        (KEY.hex()[:32] + " " + KEY.hex()[32:], "is not hexadecimal"),
        ("", "no private key"),
        ("0x", "no private key"),
        ("00" * 32, "outside the valid range"),
        (f"{SECP256K1_N:064x}", "outside the valid range"),
        ('{"version": 3}', "looks like a keystore"),
    ],
    ids=["short", "long", "non-hex", "inner-space", "empty", "bare-0x", "zero", "order", "json"],
)
def test_parse_private_key_rejects(text, message):
    with pytest.raises(UsageError) as caught:
        parse_private_key(text, source="stdin")
    assert message in caught.value.message
    assert "stdin" in caught.value.message
    if len(text) > 20:
        assert text.strip() not in caught.value.message


# -- keystores -------------------------------------------------------------------


def test_encrypt_key_uses_default_scrypt():
    keystore = encrypt_key(KEY, PASSPHRASE)
    assert keystore["version"] == 3
    assert keystore["crypto"]["kdf"] == "scrypt"
    assert keystore["crypto"]["kdfparams"]["n"] == 262144
    assert keystore["address"] == ADDRESS[2:].lower()
    assert KEY.hex() not in json.dumps(keystore)
    assert decrypt_key(keystore, PASSPHRASE) == KEY


def test_encrypt_key_pads_short_iv(monkeypatch):
    # Older eth-keyfile releases drop a leading zero byte of the IV; geth and
    # ethers need all 16 bytes.
    from Crypto import Random

    monkeypatch.setattr(Random, "get_random_bytes", lambda size: b"\x00" + os.urandom(size - 1))
    keystore = encrypt_key(KEY, PASSPHRASE)
    iv = keystore["crypto"]["cipherparams"]["iv"]
    assert len(iv) == 32
    assert iv.startswith("00")
    assert decrypt_key(keystore, PASSPHRASE) == KEY


def test_decrypt_pbkdf2_keystore(fast_store_keystore):
    assert decrypt_key(fast_store_keystore, PASSPHRASE) == KEY


def test_decrypt_wrong_passphrase_is_auth_error(fast_store_keystore):
    with pytest.raises(AuthError) as caught:
        decrypt_key(fast_store_keystore, "wrong")
    assert caught.value.exit_code == ExitCode.AUTH
    assert caught.value.message == f"wrong passphrase for wallet {ADDRESS}"


def test_decrypt_rejects_keystore_of_other_key(fast_store_keystore):
    forged = dict(fast_store_keystore, address=address_of(TEST_KEYS[1])[2:])
    with pytest.raises(UsageError, match="holds the key of"):
        decrypt_key(forged, PASSPHRASE, source="file forged.json")


def mutate(keystore: dict, path: str, value) -> dict:
    """Copy `keystore` with the dotted `path` set to `value` (or removed when value is ...)."""
    copy = json.loads(json.dumps(keystore))
    *parents, last = path.split(".")
    target = copy
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return copy


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("version", 4, "version 4"),
        ("version", True, "version True"),
        ("crypto", ..., "crypto object is missing"),
        ("crypto.cipher", "aes-256-gcm", "cipher 'aes-256-gcm'"),
        ("crypto.mac", "abc", "crypto.mac is not hexadecimal"),
        ("crypto.mac", "00" * 31, "crypto.mac must be 32 bytes, got 31"),
        ("crypto.ciphertext", 12, "crypto.ciphertext must be a hex string"),
        ("crypto.cipherparams", ..., "cipherparams is missing"),
        ("crypto.kdf", "argon2", "kdf 'argon2'"),
        ("crypto.kdfparams.c", 0, "kdfparams.c must be a positive integer"),
        ("crypto.kdfparams.c", 10**9, "pbkdf2 rounds cost more"),
        ("crypto.kdfparams.prf", "hmac-sha1", "prf 'hmac-sha1'"),
        ("crypto.kdfparams.dklen", 16, "dklen must be 32"),
        ("address", "0x1234", "address must be 20 bytes"),
    ],
)
def test_malformed_keystore_is_usage_error(fast_store_keystore, path, value, message):
    with pytest.raises(UsageError) as caught:
        decrypt_key(mutate(fast_store_keystore, path, value), PASSPHRASE, source="file k.json")
    assert caught.value.exit_code == ExitCode.USAGE
    assert message in caught.value.message
    assert "keystore file k.json" in caught.value.message


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n": 1000}, "power of 2"),
        ({"n": 2**30}, "cost more than loom allows"),
        ({"n": 2**18, "r": 8, "p": 64}, "cost more than loom allows"),
    ],
)
def test_costly_scrypt_keystore_is_rejected(fast_store_keystore, params, message):
    keystore = mutate(fast_store_keystore, "crypto.kdf", "scrypt")
    keystore["crypto"]["kdfparams"] = {"dklen": 32, "n": 2**18, "r": 8, "p": 1, "salt": "00" * 16, **params}
    with pytest.raises(UsageError, match=message):
        normalize_keystore(keystore, source="file k.json")


def test_normalize_keystore_keeps_standard_fields(fast_store_keystore):
    foreign = json.loads(json.dumps(fast_store_keystore))
    foreign["Crypto"] = foreign.pop("crypto")
    foreign["Crypto"]["mac"] = "0x" + foreign["Crypto"]["mac"].upper()
    foreign["x-ethers"] = {"mnemonicCiphertext": "ab" * 16, "path": "m/44'/60'/0'/0/0"}
    foreign["address"] = ADDRESS

    normalized = normalize_keystore(foreign, source="")

    assert set(normalized) == {"address", "crypto", "id", "version"}
    assert normalized["address"] == ADDRESS[2:].lower()
    assert normalized["crypto"]["mac"] == fast_store_keystore["crypto"]["mac"].lower()
    assert normalized["id"] == fast_store_keystore["id"]
    assert decrypt_key(normalized, PASSPHRASE) == KEY


def test_keystore_without_address_or_id(fast_store_keystore):
    bare = {key: value for key, value in fast_store_keystore.items() if key not in ("address", "id")}
    normalized = normalize_keystore(bare, source="")
    assert normalized["address"] is None
    assert normalized["id"]
    assert decrypt_key(normalized, PASSPHRASE) == KEY


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"\xff\xfe", "is not valid JSON"),
        (b" " * (70 * 1024), "larger than 64 KiB"),
    ],
    ids=["broken", "array", "binary", "huge"],
)
def test_load_keystore_file_rejects(tmp_path, content, message):
    path = tmp_path / "k.json"
    path.write_bytes(content)
    with pytest.raises(UsageError) as caught:
        load_keystore_file(path)
    assert message in caught.value.message
    assert str(path) in caught.value.message


# -- unlocking the stored wallet --------------------------------------------------


def store_for(app: AppContext) -> CredentialStore:
    return app.credentials


def test_unlock_account_with_variable(tmp_path, fast_store_keystore):
    app = make_app(tmp_path, LOOM_PASSPHRASE=PASSPHRASE)
    store_for(app).set_keystore(ADDRESS, fast_store_keystore)
    account = unlock_account(app, None, interactive=False)
    assert account.address == ADDRESS


def test_unlock_account_prompts_on_terminal(tmp_path, fast_store_keystore, prompts):
    answers, shown = prompts
    answers.append(PASSPHRASE)
    app = make_app(tmp_path, tty=True)
    store_for(app).set_keystore(ADDRESS, fast_store_keystore)
    assert unlock_account(app, ADDRESS.lower(), interactive=True).address == ADDRESS
    assert shown == [f"Passphrase for wallet {ADDRESS}: "]


def test_unlock_account_not_interactive_needs_variable(tmp_path, fast_store_keystore):
    app = make_app(tmp_path, tty=True)
    store_for(app).set_keystore(ADDRESS, fast_store_keystore)
    with pytest.raises(PromptRequired, match=ADDRESS):
        unlock_account(app, None, interactive=False)


def test_unlock_account_wrong_passphrase(tmp_path, fast_store_keystore):
    app = make_app(tmp_path, LOOM_PASSPHRASE="nope")
    store_for(app).set_keystore(ADDRESS, fast_store_keystore)
    with pytest.raises(AuthError, match=f"wrong passphrase for wallet {ADDRESS}"):
        unlock_account(app, None, interactive=False)


def test_unlock_account_without_wallets(tmp_path):
    with pytest.raises(NotFoundError) as caught:
        unlock_account(make_app(tmp_path, LOOM_PASSPHRASE="x"), None, interactive=False)
    assert "loom wallet new" in caught.value.hint


def test_unlock_account_unknown_address(tmp_path, fast_store_keystore):
    app = make_app(tmp_path, LOOM_PASSPHRASE=PASSPHRASE)
    store_for(app).set_keystore(ADDRESS, fast_store_keystore)
    with pytest.raises(NotFoundError, match=address_of(TEST_KEYS[1])):
        unlock_account(app, address_of(TEST_KEYS[1]), interactive=False)


def test_unlock_account_needs_choice_among_several(tmp_path, fast_store_keystore):
    app = make_app(tmp_path, LOOM_PASSPHRASE=PASSPHRASE)
    store_for(app).set_keystore(ADDRESS, fast_store_keystore)
    store_for(app).set_keystore(address_of(TEST_KEYS[1]), fast_keystore(TEST_KEYS[1], PASSPHRASE))
    with pytest.raises(UsageError) as caught:
        unlock_account(app, None, interactive=False)
    assert "--address" in caught.value.hint


def test_unlock_account_uses_profile_address(tmp_path, fast_store_keystore):
    app = make_app(tmp_path, LOOM_PASSPHRASE=PASSPHRASE)
    other = address_of(TEST_KEYS[1])
    store_for(app).set_keystore(ADDRESS, fast_store_keystore)
    store_for(app).set_keystore(other, fast_keystore(TEST_KEYS[1], PASSPHRASE))
    config = ConfigFile.load(app.settings.paths)
    config.profiles["default"] = {"address": other.lower()}
    config.save()
    app.__dict__.pop("settings", None)

    assert unlock_account(app, None, interactive=False).address == other


def test_wallet_module_does_not_import_eth_account():
    import subprocess
    import sys

    code = "import sys, loom_cli.wallet, loom_cli.credentials; print('eth_account' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), check=True)
    assert result.stdout.strip() == "False"


def test_hidden_prompt_ends_line_on_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import getpass

    from loom_cli.wallet import ask_hidden

    def interrupted(prompt: str, stream: object = None) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(getpass, "getpass", interrupted)
    app = make_app(tmp_path, tty=True)

    with pytest.raises(KeyboardInterrupt):
        ask_hidden(app, "Passphrase: ")

    assert app.stderr.getvalue() == "\n"
