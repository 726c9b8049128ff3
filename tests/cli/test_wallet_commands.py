"""`loom wallet` commands run in-process through loom's entry point, with the file store."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import pytest
import yaml

from loom_cli.app import main
from loom_cli.credentials import CredentialStore
from loom_cli.paths import Paths
from tests.fixtures.keyring import TEST_KEYS, address_of, fast_keystore

KEY = TEST_KEYS[0]
ADDRESS = address_of(KEY)
OTHER_KEY = TEST_KEYS[1]
OTHER_ADDRESS = address_of(OTHER_KEY)
PASSPHRASE = "correct horse battery"


class TerminalInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def in_process_runner(capsys, monkeypatch):
    """Build a function that runs loom's entry point in-process and returns (exit code, stdout, stderr).

    `stdin` is fed to the command, `tty` makes stdin claim to be a terminal,
    and keyword arguments set environment variables for that one run.
    """

    def run(*args: str, stdin: str = "", tty: bool = False, **env: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", TerminalInput(stdin) if tty else io.StringIO(stdin))
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                scoped.setenv(name, value)
            try:
                main(list(args))
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        return code, captured.out, captured.err

    return run


@pytest.fixture
def loom(capsys, monkeypatch):
    return in_process_runner(capsys, monkeypatch)


@pytest.fixture
def store(isolated_env: Path) -> CredentialStore:
    return CredentialStore(Paths.from_env({"LOOM_CONFIG_DIR": str(isolated_env)}), mode="file")


@pytest.fixture(scope="module")
def keystore_file(tmp_path_factory) -> Path:
    """A keystore as MetaMask or ethers would write it: pbkdf2, checksummed address, vendor fields."""
    keystore = fast_keystore(KEY, PASSPHRASE)
    keystore["x-ethers"] = {"client": "ethers.js", "mnemonicCiphertext": "ab" * 16}
    path = tmp_path_factory.mktemp("keystores") / "UTC--2024-01-01T00-00-00.000Z--wallet.json"
    path.write_text(json.dumps(keystore))
    return path


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase.txt"
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def two_wallets(store: CredentialStore) -> CredentialStore:
    store.set_keystore(ADDRESS, fast_keystore(KEY, PASSPHRASE))
    store.set_keystore(OTHER_ADDRESS, fast_keystore(OTHER_KEY, PASSPHRASE))
    return store


def profile_address(isolated_env: Path) -> str | None:
    from loom_cli.settings import ConfigFile

    return ConfigFile.load(Paths.from_env({"LOOM_CONFIG_DIR": str(isolated_env)})).profile("default").get("address")


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY.hex() not in text.lower()
        assert PASSPHRASE not in text


# -- help ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["new", "import", "list", "export", "remove"])
def test_wallet_help_has_examples(loom, command):
    code, out, _ = loom("wallet", command, "--help")
    assert code == 0
    assert "Examples:" in out


def test_wallet_help_names_store_variables(loom):
    code, out, _ = loom("wallet", "--help")
    assert code == 0
    for name in ("LOOM_KEYRING_BACKEND", "LOOM_KEYRING_TIMEOUT", "LOOM_PASSPHRASE"):
        assert name in out


# -- new ----------------------------------------------------------------------------


def test_new_prints_address_and_sets_default(loom, store, isolated_env):
    code, out, err = loom("wallet", "new", LOOM_PASSPHRASE=PASSPHRASE)

    assert code == 0
    address = out.strip()
    assert out == address + "\n"
    assert store.list_wallets() == [address]
    assert profile_address(isolated_env) == address
    assert "Keep a backup" in err
    keystore = store.get_keystore(address)
    assert keystore["crypto"]["kdf"] == "scrypt"
    assert PASSPHRASE not in out + err


def test_new_keeps_existing_default(loom, two_wallets, isolated_env, passphrase_file):
    loom("config", "set", "address", OTHER_ADDRESS)
    code, out, _ = loom("wallet", "new", "--passphrase-file", str(passphrase_file), "-o", "json")

    assert code == 0
    record = json.loads(out)
    assert record["default"] is False
    assert record["location"].startswith("folder ")
    assert profile_address(isolated_env) == OTHER_ADDRESS
    assert len(two_wallets.list_wallets()) == 3


def test_new_without_terminal_needs_passphrase(loom, store):
    code, out, err = loom("wallet", "new")
    assert code == 3
    assert out == ""
    assert "LOOM_PASSPHRASE" in err
    assert "--passphrase-file" in err
    assert store.list_wallets() == []


def test_new_rejects_empty_passphrase(loom, store):
    code, _, err = loom("wallet", "new", LOOM_PASSPHRASE="")
    assert code == 2
    assert "empty passphrase" in err
    assert store.list_wallets() == []


def test_new_prompts_twice_on_terminal(loom, store, monkeypatch):
    answers = [PASSPHRASE, PASSPHRASE]
    monkeypatch.setattr("getpass.getpass", lambda prompt="", stream=None: answers.pop(0))
    code, out, _ = loom("wallet", "new", "-q", tty=True)
    assert code == 0
    assert answers == []
    assert store.list_wallets() == [out.strip()]


# -- import ---------------------------------------------------------------------------


def test_import_hex_from_stdin(loom, store, isolated_env):
    code, out, err = loom("wallet", "import", stdin=f"  0x{KEY.hex()}\n", LOOM_PASSPHRASE=PASSPHRASE)

    assert code == 0
    assert out == ADDRESS + "\n"
    assert store.list_wallets() == [ADDRESS]
    assert profile_address(isolated_env) == ADDRESS
    assert_no_secret(out, err)


def test_import_hex_from_file(loom, store, tmp_path, passphrase_file):
    key_file = tmp_path / "key.hex"
    key_file.write_text(KEY.hex().upper() + "\n")
    code, out, err = loom("wallet", "import", "--private-key-file", str(key_file), "--passphrase-file", str(passphrase_file))

    assert code == 0
    assert out.strip() == ADDRESS
    assert_no_secret(out, err)


def test_import_same_wallet_twice(loom, two_wallets):
    code, _, err = loom("wallet", "import", stdin=KEY.hex(), LOOM_PASSPHRASE=PASSPHRASE)
    assert code == 5
    assert "already stored" in err
    assert "--force" in err


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "no private key on stdin"),
        (KEY.hex()[:-1], "has 63 hex digits"),
        ("g" * 64, "not hexadecimal"),
        ("1" * 5000, "contains more than a private key"),
    ],
    ids=["empty", "short", "non-hex", "huge"],
)
def test_import_rejects_bad_stdin(loom, store, stdin, message):
    code, out, err = loom("wallet", "import", stdin=stdin, LOOM_PASSPHRASE=PASSPHRASE)
    assert code == 2
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) <= 2
    assert store.list_wallets() == []


@pytest.mark.parametrize("kind", ["missing", "folder", "binary"])
def test_import_rejects_bad_key_file(loom, store, tmp_path, kind):
    path = tmp_path / "key.hex"
    if kind == "folder":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff" * 32)
    code, _, err = loom("wallet", "import", "--private-key-file", str(path), LOOM_PASSPHRASE=PASSPHRASE)
    assert code == 2
    assert str(path) in err


def test_import_rejects_both_sources(loom, keystore_file, tmp_path):
    code, _, err = loom("wallet", "import", "--private-key-file", str(tmp_path / "k"), "--keystore", str(keystore_file))
    assert code == 2
    assert "cannot be used together" in err


def test_import_has_no_key_argument(loom, store):
    code, _, _ = loom("wallet", "import", KEY.hex(), LOOM_PASSPHRASE=PASSPHRASE)
    assert code == 2
    assert store.list_wallets() == []


def test_import_keystore_of_another_tool(loom, store, keystore_file, passphrase_file):
    original = json.loads(keystore_file.read_text())
    code, out, err = loom("wallet", "import", "--keystore", str(keystore_file), "--passphrase-file", str(passphrase_file))

    assert code == 0
    assert out.strip() == ADDRESS
    stored = store.get_keystore(ADDRESS)
    # Stored as given: the same ciphertext under the file's own passphrase and kdf.
    assert stored["crypto"]["ciphertext"] == original["crypto"]["ciphertext"]
    assert stored["crypto"]["kdf"] == "pbkdf2"
    assert "x-ethers" not in stored
    assert_no_secret(out, err)


def test_import_keystore_wrong_passphrase(loom, store, keystore_file):
    code, _, err = loom("wallet", "import", "--keystore", str(keystore_file), LOOM_PASSPHRASE="wrong")
    assert code == 3
    assert f"wrong passphrase for wallet {ADDRESS}" in err
    assert store.list_wallets() == []


def test_import_keystore_without_passphrase_source(loom, keystore_file):
    code, _, err = loom("wallet", "import", "--keystore", str(keystore_file))
    assert code == 3
    assert "LOOM_PASSPHRASE" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"version": 3, "crypto": ', "is not valid JSON"),
        ('{"version": 1}', "version 1"),
        ("[]", "expected a JSON object"),
    ],
    ids=["truncated", "old-version", "array"],
)
def test_import_rejects_corrupt_keystore(loom, store, tmp_path, content, message):
    path = tmp_path / "k.json"
    path.write_text(content)
    code, _, err = loom("wallet", "import", "--keystore", str(path), LOOM_PASSPHRASE=PASSPHRASE)
    assert code == 2
    assert message in err
    assert str(path) in err


def test_import_keystore_folder(loom, tmp_path):
    code, _, err = loom("wallet", "import", "--keystore", str(tmp_path), LOOM_PASSPHRASE=PASSPHRASE)
    assert code == 2
    assert "is a folder" in err


# -- list -------------------------------------------------------------------------------


def test_list_table(loom, two_wallets):
    loom("config", "set", "address", OTHER_ADDRESS)
    code, out, _ = loom("wallet", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ADDRESS", "DEFAULT"]
    assert sorted(line.split() for line in lines[1:]) == sorted([[ADDRESS, "false"], [OTHER_ADDRESS, "true"]])


def test_list_json_yaml_quiet(loom, two_wallets):
    loom("config", "set", "address", ADDRESS)

    code, out, _ = loom("wallet", "list", "--json")
    assert code == 0
    assert {item["address"]: item["default"] for item in json.loads(out)} == {ADDRESS: True, OTHER_ADDRESS: False}

    code, out, _ = loom("wallet", "list", "-o", "yaml")
    assert code == 0
    assert {item["address"] for item in yaml.safe_load(out)} == {ADDRESS, OTHER_ADDRESS}

    code, out, _ = loom("wallet", "list", "-q")
    assert code == 0
    assert sorted(out.split()) == sorted([ADDRESS, OTHER_ADDRESS])


def test_list_empty(loom, store):
    code, out, err = loom("wallet", "list", "--json")
    assert code == 0
    assert json.loads(out) == []
    assert "loom wallet new" in err


# -- export ---------------------------------------------------------------------------------


def test_export_writes_private_file(loom, two_wallets, tmp_path):
    target = tmp_path / "backup.json"
    code, out, err = loom("wallet", "export", "--keystore", str(target), "--address", ADDRESS.lower())

    assert code == 0
    assert out == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    exported = json.loads(target.read_text())
    assert exported == two_wallets.get_keystore(ADDRESS)
    assert exported["version"] == 3
    assert str(target) in err


def test_export_refuses_overwrite(loom, two_wallets, tmp_path):
    target = tmp_path / "backup.json"
    target.write_text("keep me")

    code, _, err = loom("wallet", "export", "--keystore", str(target), "--address", ADDRESS)
    assert code == 2
    assert "--force" in err
    assert target.read_text() == "keep me"

    code, _, _ = loom("wallet", "export", "--keystore", str(target), "--address", ADDRESS, "--force")
    assert code == 0
    assert json.loads(target.read_text())["address"] == ADDRESS[2:].lower()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert list(tmp_path.glob(".backup.json.*")) == []


def test_export_to_stdout(loom, two_wallets):
    code, out, _ = loom("wallet", "export", "--keystore", "-", "--address", OTHER_ADDRESS)
    assert code == 0
    assert json.loads(out)["address"] == OTHER_ADDRESS[2:].lower()


def test_export_default_is_only_wallet(loom, store, tmp_path):
    store.set_keystore(ADDRESS, fast_keystore(KEY, PASSPHRASE))
    code, _, _ = loom("wallet", "export", "--keystore", str(tmp_path / "only.json"))
    assert code == 0
    assert json.loads((tmp_path / "only.json").read_text())["address"] == ADDRESS[2:].lower()


@pytest.mark.parametrize(
    ("target", "message", "expected_code"),
    [
        ("folder", "is a folder", 2),
        ("missing-parent", "does not exist", 2),
    ],
)
def test_export_bad_target(loom, two_wallets, tmp_path, target, message, expected_code):
    path = tmp_path if target == "folder" else tmp_path / "nope" / "backup.json"
    code, _, err = loom("wallet", "export", "--keystore", str(path), "--address", ADDRESS)
    assert code == expected_code
    assert message in err


def test_export_unknown_wallet(loom, two_wallets, tmp_path):
    unknown = address_of(TEST_KEYS[2])
    code, _, err = loom("wallet", "export", "--keystore", str(tmp_path / "b.json"), "--address", unknown)
    assert code == 4
    assert unknown in err


def test_export_needs_choice_among_several(loom, two_wallets, tmp_path):
    code, _, err = loom("wallet", "export", "--keystore", str(tmp_path / "b.json"))
    assert code == 2
    assert "--address" in err


# -- remove ------------------------------------------------------------------------------------


def test_remove_with_yes(loom, two_wallets):
    code, out, err = loom("wallet", "remove", ADDRESS.lower(), "--yes")
    assert code == 0
    assert out == ""
    assert two_wallets.list_wallets() == [OTHER_ADDRESS]
    assert f"Removed wallet {ADDRESS}" in err


def test_remove_without_terminal_needs_yes(loom, two_wallets):
    code, _, err = loom("wallet", "remove", ADDRESS)
    assert code == 2
    assert "--yes" in err
    assert ADDRESS in two_wallets.list_wallets()


def test_remove_confirmed_on_terminal(loom, two_wallets):
    code, _, err = loom("wallet", "remove", ADDRESS, stdin="y\n", tty=True)
    assert code == 0
    assert "[y/N]" in err
    assert two_wallets.list_wallets() == [OTHER_ADDRESS]


def test_remove_declined_on_terminal(loom, two_wallets):
    code, _, err = loom("wallet", "remove", ADDRESS, stdin="\n", tty=True)
    assert code == 2
    assert "kept" in err
    assert ADDRESS in two_wallets.list_wallets()


def test_remove_unknown_wallet(loom, two_wallets):
    code, _, err = loom("wallet", "remove", address_of(TEST_KEYS[2]), "--yes")
    assert code == 4
    assert "loom wallet list" in err


def test_remove_invalid_address(loom, two_wallets):
    code, _, err = loom("wallet", "remove", "0x12", "--yes")
    assert code == 2
    assert "invalid address" in err


def test_remove_corrupt_keystore(loom, two_wallets):
    path = two_wallets.keystore_dir / f"{ADDRESS}.json"
    path.write_text("{")
    code, _, _ = loom("wallet", "remove", ADDRESS, "--yes")
    assert code == 0
    assert not path.exists()


def test_remove_notes_profile_address(loom, two_wallets):
    loom("config", "set", "address", ADDRESS)
    code, _, err = loom("wallet", "remove", ADDRESS, "--yes")
    assert code == 0
    assert "loom config unset address" in err


# -- store errors reach the user cleanly ----------------------------------------------------------


def test_corrupt_keystore_file_is_exit_3(loom, two_wallets, tmp_path):
    (two_wallets.keystore_dir / f"{ADDRESS}.json").write_text("not json")
    code, _, err = loom("wallet", "export", "--keystore", str(tmp_path / "b.json"), "--address", ADDRESS)
    assert code == 3
    assert f"{ADDRESS}.json" in err
    assert "hint:" in err


def test_fallback_notice_printed_once(loom, store, monkeypatch, keystore_file):
    monkeypatch.setenv("LOOM_KEYRING_BACKEND", "auto")
    code, _, err = loom("wallet", "import", "--keystore", str(keystore_file), LOOM_PASSPHRASE=PASSPHRASE)
    assert code == 0
    assert err.count("notice: no usable OS keyring") == 1
    assert store.list_wallets() == [ADDRESS]
