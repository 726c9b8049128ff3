"""Wallet keys: passphrases, keystore v3 encryption, and unlocking the stored wallet.

A key never rests in clear: it is kept as an Ethereum keystore v3 (the JSON
format of geth, MetaMask and ethers), encrypted with a passphrase through
eth-account. eth_account is imported inside the functions that need it,
because it costs about 0.3 s at startup.
"""

from __future__ import annotations

import json
import re
import stat
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loom_cli.errors import AuthError, NotFoundError, PromptRequired, UsageError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from loom_cli.context import AppContext

PASSPHRASE_VARIABLE = "LOOM_PASSPHRASE"

# Order of the secp256k1 group: a private key must lie in [1, N).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Keystore files are about 500 bytes; ethers adds an encrypted mnemonic. Larger input is not a keystore.
MAX_KEYSTORE_FILE_BYTES = 64 * 1024
MAX_PASSPHRASE_FILE_BYTES = 64 * 1024

# Limits on the key-derivation cost a keystore may ask for, so a hostile file
# cannot make loom allocate gigabytes or spin for minutes. geth's "standard"
# scrypt and eth-account's default (eth-keyfile 0.10) are n=2^18, r=8, p=1:
# 256 MiB and n*r*p = 2^21. The limits allow 4 and 8 times that.
MAX_SCRYPT_MEMORY_BYTES = 1 << 30  # scrypt uses 128 * n * r bytes
MAX_SCRYPT_WORK = 1 << 24  # n * r * p
MAX_PBKDF2_ROUNDS = 10_000_000

_HEX = re.compile(r"^[0-9a-fA-F]*$")


# -- passphrases ----------------------------------------------------------------


def read_passphrase(
    app: AppContext,
    *,
    prompt: str,
    confirm: bool = False,
    passphrase_file: Path | None = None,
    interactive: bool = True,
) -> str:
    """Return a passphrase from --passphrase-file, LOOM_PASSPHRASE, or a no-echo prompt, in that order.

    `confirm` marks a new passphrase: the prompt asks twice and an empty
    passphrase is rejected, whatever the source. Without a terminal on stdin,
    or with `interactive=False`, no prompt is shown and PromptRequired (exit 3)
    names the variable and the flag that supply the passphrase.
    """
    if passphrase_file is not None:
        passphrase = _read_passphrase_file(app, passphrase_file)
    elif PASSPHRASE_VARIABLE in app.env:
        passphrase = app.env[PASSPHRASE_VARIABLE]
    elif interactive and app.stdin_is_tty:
        passphrase = _prompt_hidden(app, f"{prompt}: ")
        if confirm and passphrase:
            again = _prompt_hidden(app, f"{prompt} (again): ")
            if again != passphrase:
                raise UsageError("the two passphrases do not match", hint="run the command again and type the same passphrase twice")
    else:
        raise PromptRequired(
            f"cannot prompt for the {prompt[0].lower()}{prompt[1:]}: stdin is not a terminal",
            hint=f"set {PASSPHRASE_VARIABLE} or pass --passphrase-file FILE",
        )

    if confirm and not passphrase:
        raise UsageError("an empty passphrase is not allowed for a new key", hint="choose a passphrase; it encrypts the key at rest")
    return passphrase


def ask_hidden(app: AppContext, text: str) -> str | None:
    """Prompt on the terminal without echo; return None at end of input.

    On Ctrl-C the cursor is moved off the prompt line first, so the shell's
    next prompt does not land after it.
    """
    import getpass

    try:
        return getpass.getpass(text, stream=app.stderr)
    except EOFError:
        return None
    except KeyboardInterrupt:
        app.stderr.write("\n")
        app.stderr.flush()
        raise


def _prompt_hidden(app: AppContext, text: str) -> str:
    answer = ask_hidden(app, text)
    if answer is None:
        raise UsageError("no passphrase was entered (end of input)")
    return answer


def _read_passphrase_file(app: AppContext, path: Path) -> str:
    """Return the first line of `path`, without its line ending; warn when others may read the file."""
    data = read_small_file(path, what="passphrase file", limit=MAX_PASSPHRASE_FILE_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"passphrase file {path} is not UTF-8 text") from exc
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0
    if stat.S_ISREG(mode) and mode & 0o077:
        app.warn(f"warning: passphrase file {path} is readable by other users (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}")
    return text.splitlines()[0] if text else ""


def read_small_file(path: Path, *, what: str, limit: int) -> bytes:
    """Read a user-named file of at most `limit` bytes, or raise a UsageError naming it."""
    try:
        if path.is_dir():
            raise UsageError(f"{what} {path} is a folder, not a file")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError as exc:
        raise UsageError(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise UsageError(f"{what} {path} is larger than {limit // 1024} KiB; is it the right file?")
    return data


# -- private keys and keystores -------------------------------------------------


def parse_private_key(text: str, *, source: str) -> bytes:
    """Parse a hex private key (optional 0x, surrounding whitespace ignored) into 32 bytes.

    Error messages name `source` ("stdin", a file) and never echo the text, which may be a key.
    """
    value = text.strip()
    if value.startswith("{"):
        raise UsageError(f"the private key from {source} looks like a keystore (JSON)", hint="import it with: loom wallet import --keystore FILE")
    if value[:2].lower() == "0x":
        value = value[2:]
    if not value:
        raise UsageError(f"no private key in {source}", hint="give 64 hex digits (32 bytes), with or without 0x")
    if not _HEX.match(value):
        raise UsageError(f"the private key from {source} is not hexadecimal", hint="give 64 hex digits (32 bytes), with or without 0x")
    if len(value) != 64:
        raise UsageError(
            f"the private key from {source} has {len(value)} hex digits, expected 64 (32 bytes)",
            hint="give 64 hex digits (32 bytes), with or without 0x",
        )
    if not 0 < int(value, 16) < SECP256K1_N:
        raise UsageError(f"the private key from {source} is outside the valid range of secp256k1 keys")
    return bytes.fromhex(value)


def encrypt_key(private_key: bytes, passphrase: str, *, kdf: str = "scrypt", iterations: int | None = None) -> dict:
    """Encrypt a 32-byte key as a keystore v3, by default with eth-account's scrypt parameters.

    `kdf` ("scrypt" or "pbkdf2") and `iterations` (scrypt's n, or pbkdf2's
    rounds) let tests make keystores that decrypt in milliseconds.
    """
    from eth_account import Account

    keystore = Account.encrypt(private_key, passphrase, kdf=kdf, iterations=iterations)
    # eth-keyfile before 0.9 writes the AES counter as the shortest big-endian
    # bytes of a random number, so about one keystore in 256 gets a 15-byte IV,
    # which geth and ethers refuse. Putting the leading zero back keeps the
    # counter's value, so the ciphertext stays valid.
    params = keystore["crypto"]["cipherparams"]
    params["iv"] = params["iv"].rjust(32, "0")
    return normalize_keystore(keystore, source="")


def decrypt_key(keystore: dict, passphrase: str, *, source: str | None = None) -> bytes:
    """Decrypt a keystore v3 and return its 32-byte key.

    A wrong passphrase raises AuthError (exit 3); a malformed keystore raises
    UsageError (exit 2) naming `source` ("file PATH", "of wallet 0x…").
    """
    from eth_account import Account

    keystore = normalize_keystore(keystore, source=source or "")
    subject = _keystore_subject(source or "")
    named = _checksum(keystore["address"]) if keystore["address"] else None
    wallet = f"wallet {named}" if named else subject
    try:
        key = bytes(Account.decrypt(keystore, passphrase))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise AuthError(
                f"wrong passphrase for {wallet}",
                hint=f"check the passphrase (or {PASSPHRASE_VARIABLE} / --passphrase-file) and retry",
            ) from None
        raise UsageError(f"cannot decrypt {subject}: {exc}") from None

    if len(key) != 32 or not 0 < int.from_bytes(key, "big") < SECP256K1_N:
        raise UsageError(f"{subject} decrypts to an invalid private key")
    address = Account.from_key(key).address
    if named and named != address:
        raise UsageError(f"{subject} names wallet {named} but holds the key of {address}")
    return key


def _checksum(lower_hex: str) -> str:
    from loom_cli.addresses import to_checksum

    return to_checksum("0x" + lower_hex)


def _keystore_subject(where: str) -> str:
    return f"keystore {where}" if where else "the keystore"


def _invalid(where: str, problem: str) -> UsageError:
    return UsageError(f"{_keystore_subject(where)} is invalid: {problem}")


def _unsupported(where: str, problem: str) -> UsageError:
    return UsageError(f"{_keystore_subject(where)} is not supported: {problem}")


def _hex_field(value: object, name: str, where: str, *, size: int | None = None) -> str:
    if not isinstance(value, str):
        raise _invalid(where, f"{name} must be a hex string")
    digits = value[2:] if value[:2].lower() == "0x" else value
    if not digits or not _HEX.match(digits) or len(digits) % 2:
        raise _invalid(where, f"{name} is not hexadecimal")
    if size is not None and len(digits) != size * 2:
        raise _invalid(where, f"{name} must be {size} bytes, got {len(digits) // 2}")
    return digits.lower()


def _positive_int(value: object, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid(where, f"{name} must be a positive integer")
    return value


def normalize_keystore(data: object, *, source: str) -> dict[str, Any]:
    """Check that `data` is an encrypted keystore v3 and return only its standard fields.

    Vendor additions (ethers' "x-ethers" with an encrypted mnemonic, geth's
    upper-case "Crypto") are dropped or renamed; hex is lower-case without
    0x; "address" is lower-case hex without 0x, or None when the file has none.
    `source` names the keystore in error messages ("file PATH"); it may be empty.
    """
    where = source
    if not isinstance(data, dict):
        raise _invalid(where, "expected a JSON object")
    version = data.get("version")
    if version != 3 or isinstance(version, bool):
        raise _unsupported(where, f"version {version!r} (loom reads version 3)")
    crypto = data.get("crypto", data.get("Crypto"))
    if not isinstance(crypto, dict):
        raise _invalid(where, "the crypto object is missing")

    if crypto.get("cipher") != "aes-128-ctr":
        raise _unsupported(where, f"cipher {crypto.get('cipher')!r} (loom reads aes-128-ctr)")
    cipherparams = crypto.get("cipherparams")
    if not isinstance(cipherparams, dict):
        raise _invalid(where, "crypto.cipherparams is missing")
    iv = _hex_field(cipherparams.get("iv"), "crypto.cipherparams.iv", where, size=16)
    ciphertext = _hex_field(crypto.get("ciphertext"), "crypto.ciphertext", where, size=32)
    mac = _hex_field(crypto.get("mac"), "crypto.mac", where, size=32)
    kdf = crypto.get("kdf")
    kdfparams = crypto.get("kdfparams")
    if not isinstance(kdfparams, dict):
        raise _invalid(where, "crypto.kdfparams is missing")
    params = _normalize_kdfparams(kdf, kdfparams, where)

    address = data.get("address")
    if address is not None:
        address = _hex_field(address, "address", where, size=20)
    key_id = data.get("id")
    if not isinstance(key_id, str) or not key_id:
        key_id = str(uuid.uuid4())

    return {
        "address": address,
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv},
            "ciphertext": ciphertext,
            "kdf": kdf,
            "kdfparams": params,
            "mac": mac,
        },
        "id": key_id,
        "version": 3,
    }


def _normalize_kdfparams(kdf: object, kdfparams: dict, where: str) -> dict[str, Any]:
    dklen = kdfparams.get("dklen")
    if dklen != 32 or isinstance(dklen, bool):
        raise _invalid(where, "crypto.kdfparams.dklen must be 32")
    salt = _hex_field(kdfparams.get("salt"), "crypto.kdfparams.salt", where)

    if kdf == "scrypt":
        n = _positive_int(kdfparams.get("n"), "crypto.kdfparams.n", where)
        r = _positive_int(kdfparams.get("r"), "crypto.kdfparams.r", where)
        p = _positive_int(kdfparams.get("p"), "crypto.kdfparams.p", where)
        if n < 2 or n & (n - 1):
            raise _invalid(where, "crypto.kdfparams.n must be a power of 2")
        if 128 * n * r > MAX_SCRYPT_MEMORY_BYTES or n * r * p > MAX_SCRYPT_WORK:
            raise _unsupported(where, f"scrypt parameters n={n}, r={r}, p={p} cost more than loom allows")
        return {"dklen": 32, "n": n, "p": p, "r": r, "salt": salt}

    if kdf == "pbkdf2":
        rounds = _positive_int(kdfparams.get("c"), "crypto.kdfparams.c", where)
        if kdfparams.get("prf") != "hmac-sha256":
            raise _unsupported(where, f"pbkdf2 prf {kdfparams.get('prf')!r} (loom reads hmac-sha256)")
        if rounds > MAX_PBKDF2_ROUNDS:
            raise _unsupported(where, f"{rounds} pbkdf2 rounds cost more than loom allows ({MAX_PBKDF2_ROUNDS})")
        return {"c": rounds, "dklen": 32, "prf": "hmac-sha256", "salt": salt}

    raise _unsupported(where, f"kdf {kdf!r} (loom reads scrypt and pbkdf2)")


def load_keystore_file(path: Path) -> dict[str, Any]:
    """Read and check a keystore v3 file from geth, MetaMask, ethers or `loom wallet export`."""
    data = read_small_file(path, what="keystore file", limit=MAX_KEYSTORE_FILE_BYTES)
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"keystore file {path} is not valid JSON: {exc}", hint="give the keystore v3 JSON file that geth, MetaMask or ethers exported") from None
    return normalize_keystore(parsed, source=f"file {path}")


# -- the stored wallet --------------------------------------------------------


def resolve_wallet_address(app: AppContext, address: str | None) -> str:
    """Choose the wallet: `address` if given, else the profile's address, else the only stored wallet."""
    from loom_cli.addresses import normalize_address

    if address:
        return normalize_address(address)
    if app.settings.address:
        return normalize_address(str(app.settings.address), what=f"address of profile {app.settings.profile!r}")

    wallets = app.credentials.list_wallets()
    if len(wallets) == 1:
        return wallets[0]
    if not wallets:
        raise NotFoundError(
            f"no wallet is stored in the {app.credentials.wallet_location}",
            hint="create one with `loom wallet new` or import one with `loom wallet import`",
        )
    raise UsageError(
        f"{len(wallets)} wallets are stored and profile {app.settings.profile!r} names none of them",
        hint="pass --address, or choose a default with `loom config set address 0x…` (see `loom wallet list`)",
    )


def unlock_account(app: AppContext, address: str | None, *, interactive: bool) -> LocalAccount:
    """Decrypt the stored wallet for `address` (or the default one) and return its account.

    The passphrase comes from LOOM_PASSPHRASE, or a prompt when `interactive`
    and stdin is a terminal; otherwise PromptRequired (exit 3).
    """
    from eth_account import Account

    chosen = resolve_wallet_address(app, address)
    keystore = app.credentials.get_keystore(chosen)
    if keystore is None:
        raise NotFoundError(
            f"no wallet {chosen} is stored in the {app.credentials.wallet_location}",
            hint="see `loom wallet list`, or import the key with `loom wallet import`",
        )
    passphrase = read_passphrase(app, prompt=f"Passphrase for wallet {chosen}", interactive=interactive)
    key = decrypt_key(keystore, passphrase, source=f"of wallet {chosen}")
    account = Account.from_key(key)
    if account.address != chosen:
        raise UsageError(f"the keystore stored for {chosen} holds the key of {account.address}", hint=f"remove it with `loom wallet remove {chosen}` and import it again")
    return account
