"""`loom wallet`: create, import, list, export and remove the keys loom signs in with.

Keys rest only as encrypted keystore v3 JSON, in the OS keyring or, when no
usable keyring exists, in 0600 files (see `loom_cli.credentials`). A private
key is read from stdin or a file, never from the command line, where other
users could see it in the process list and the shell keeps it in history.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loom_cli.context import AppContext
from loom_cli.errors import AuthError, ConflictError, NotFoundError, UsageError
from loom_cli.options import JsonOption, OutputOption, QuietOption, YesOption, output_value

if TYPE_CHECKING:
    from loom_cli.credentials import CredentialStore

MAX_PRIVATE_KEY_INPUT_BYTES = 4096

WALLET_HELP = """\
Create, import, list, export and remove the wallets loom signs in with.

Each key is kept encrypted with your passphrase (keystore v3, the format of
geth, MetaMask and ethers) in the OS keyring: Secret Service (GNOME Keyring,
KWallet) on Linux, the macOS Keychain, or the Windows Credential Manager. When
no usable keyring responds, loom keeps the keystores and login tokens in files
of mode 0600 in its data folder instead and prints a notice saying so.

Environment: LOOM_PASSPHRASE supplies the passphrase without a prompt (as does
--passphrase-file). LOOM_KEYRING_BACKEND=file always uses the files,
LOOM_KEYRING_BACKEND=keyring requires the OS keyring, and auto (the default)
tries the keyring first. LOOM_KEYRING_TIMEOUT is how many seconds a keyring
call may take before loom gives up on it (default 5).
"""

NEW_EXAMPLES = """\
Examples:

  loom wallet new                                   # asks for the passphrase twice
  LOOM_PASSPHRASE=... loom wallet new -q            # in a script: prints only the address
  loom wallet new --passphrase-file ~/.loom-pass
"""

IMPORT_EXAMPLES = """\
Examples:

  loom wallet import --private-key-file key.hex     # 64 hex digits, with or without 0x
  pass show loom/key | loom wallet import --passphrase-file ~/.loom-pass
  loom wallet import --keystore ~/.ethereum/keystore/UTC--2024-01-01T00-00-00Z--0a1b...
"""

LIST_EXAMPLES = """\
Examples:

  loom wallet list
  loom wallet list -q                               # addresses only, one per line
  loom wallet list -o json | jq -r '.[] | select(.default) | .address'
"""

EXPORT_EXAMPLES = """\
Examples:

  loom wallet export --keystore backup.json         # the profile's wallet
  loom wallet export --keystore backup.json --address 0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1
  loom wallet export --keystore - | gpg --encrypt -r me > backup.json.gpg
"""

REMOVE_EXAMPLES = """\
Examples:

  loom wallet remove 0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1
  loom wallet remove 0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1 --yes    # no prompt
"""

PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        metavar="FILE",
        help="Read the passphrase from the first line of FILE instead of LOOM_PASSPHRASE or a prompt.",
        show_default=False,
    ),
]

wallet_app = typer.Typer(name="wallet", help=WALLET_HELP, no_args_is_help=True)


def register(root: typer.Typer) -> None:
    wallet_app.command("new", epilog=NEW_EXAMPLES)(new)
    wallet_app.command("import", epilog=IMPORT_EXAMPLES)(import_wallet)
    wallet_app.command("list", epilog=LIST_EXAMPLES)(list_wallets)
    wallet_app.command("export", epilog=EXPORT_EXAMPLES)(export)
    wallet_app.command("remove", epilog=REMOVE_EXAMPLES)(remove)
    root.add_typer(wallet_app, name="wallet")


def new(
    ctx: typer.Context,
    passphrase_file: PassphraseFileOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Create a wallet with a fresh random key, encrypt it with a new passphrase and store it.

    Prints the new address. The wallet becomes the profile's address when the
    profile has none yet.
    """
    from eth_account import Account

    from loom_cli.wallet import encrypt_key, read_passphrase

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    passphrase = read_passphrase(app, prompt="Passphrase for the new wallet", confirm=True, passphrase_file=passphrase_file)

    account = Account.create()
    keystore = encrypt_key(bytes(account.key), passphrase)
    store = app.credentials
    store.set_keystore(account.address, keystore)

    app.info(f"Created wallet {account.address} in the {store.wallet_location}.")
    _finish_new_wallet(app, store, account.address)


def import_wallet(
    ctx: typer.Context,
    private_key_file: Annotated[
        Path | None,
        typer.Option(
            "--private-key-file",
            metavar="FILE",
            help="Read the hex private key from FILE. Without this or --keystore, the key is read from stdin.",
            show_default=False,
        ),
    ] = None,
    keystore_file: Annotated[
        Path | None,
        typer.Option(
            "--keystore",
            metavar="FILE",
            help="Import a keystore v3 JSON file (geth, MetaMask, ethers); it keeps its own passphrase.",
            show_default=False,
        ),
    ] = None,
    passphrase_file: PassphraseFileOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a wallet with the same address that is already stored.")] = False,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Import an existing key: hex from stdin or --private-key-file, or a keystore file.

    A hex key is encrypted with a new passphrase (asked twice). A keystore is
    unlocked once with its passphrase to check it, then stored as it is, so
    the key stays under that file's passphrase. The key is never accepted as
    an argument, because other users can read arguments in the process list.
    """
    from loom_cli.wallet import decrypt_key, encrypt_key, load_keystore_file, read_passphrase

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    if private_key_file is not None and keystore_file is not None:
        raise UsageError("--private-key-file and --keystore cannot be used together", hint="give one source for the key")

    if keystore_file is not None:
        keystore = load_keystore_file(keystore_file)
        source = f"file {keystore_file}"
        passphrase = read_passphrase(app, prompt=f"Passphrase of keystore {keystore_file}", passphrase_file=passphrase_file)
        address = _address_of(decrypt_key(keystore, passphrase, source=source))
        keystore["address"] = address[2:].lower()
        store = _check_not_stored(app, address, force)
    else:
        key = _read_private_key(app, private_key_file)
        address = _address_of(key)
        store = _check_not_stored(app, address, force)
        passphrase = read_passphrase(app, prompt=f"New passphrase for wallet {address}", confirm=True, passphrase_file=passphrase_file)
        keystore = encrypt_key(key, passphrase)

    store.set_keystore(address, keystore)
    app.info(f"Imported wallet {address} into the {store.wallet_location}.")
    _finish_new_wallet(app, store, address)


def list_wallets(
    ctx: typer.Context,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """List the stored wallets and mark the profile's default one."""
    from loom_cli.output import Column

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    store = app.credentials
    wallets = store.list_wallets()
    default = _profile_address(app)

    rows = [{"address": address, "default": address == default} for address in wallets]
    app.renderer.records(rows, columns=[Column("ADDRESS", "address"), Column("DEFAULT", "default")], id_key="address")

    if not wallets:
        app.info(f"No wallets are stored in the {store.wallet_location}; create one with `loom wallet new` or `loom wallet import`.")
    elif default and default not in wallets:
        app.info(f"Profile {app.settings.profile!r} names {default} as its address, but no key for it is stored here.")


def export(
    ctx: typer.Context,
    keystore_file: Annotated[
        Path,
        typer.Option(
            "--keystore",
            metavar="FILE",
            help="Write the encrypted keystore v3 JSON to FILE (mode 0600); - writes it to stdout.",
            show_default=False,
        ),
    ],
    address: Annotated[
        str | None,
        typer.Option("--address", metavar="ADDRESS", help="Wallet to export. \\[default: the profile's address, or the only wallet]", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Write a wallet's encrypted keystore to a file, as a backup or for another tool.

    The keystore stays encrypted with the wallet's passphrase; geth, MetaMask
    and ethers read it. An existing FILE is kept unless --force is given.
    With --keystore - the keystore JSON goes to stdout, whatever the output format.
    """
    from loom_cli.wallet import resolve_wallet_address

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    chosen = resolve_wallet_address(app, address)
    store = app.credentials
    keystore = store.get_keystore(chosen)
    if keystore is None:
        raise NotFoundError(f"no wallet {chosen} is stored in the {store.wallet_location}", hint="see `loom wallet list`")
    keystore["address"] = keystore.get("address") or chosen[2:].lower()
    text = json.dumps(keystore, indent=2, sort_keys=True) + "\n"

    if str(keystore_file) == "-":
        app.renderer.text(text.rstrip("\n"))
        return
    write_new_private_file(keystore_file, text.encode("utf-8"), force=force)
    app.info(f"Exported wallet {chosen} to {keystore_file} (mode 0600), encrypted with the wallet's passphrase.")


def remove(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(metavar="ADDRESS", help="Address of the wallet to remove.", show_default=False)],
    yes: YesOption = False,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Remove a stored wallet and its encrypted key.

    Asks for confirmation on a terminal; elsewhere --yes is required. Export
    the wallet first if you may need the key again. Login tokens stay until
    `loom logout`.
    """
    from loom_cli.addresses import normalize_address

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    chosen = normalize_address(address)
    store = app.credentials
    if not _is_stored(store, chosen):
        raise NotFoundError(f"no wallet {chosen} is stored in the {store.wallet_location}", hint="see `loom wallet list`")

    if not yes:
        if not app.stdin_is_tty:
            raise UsageError(f"not removing wallet {chosen} without confirmation: stdin is not a terminal", hint="pass --yes to remove it")
        question = f"Remove wallet {chosen}? Its key is lost unless you exported a backup."
        if not _confirm(app, question):
            raise UsageError(f"removal cancelled; wallet {chosen} is kept")

    store.delete_keystore(chosen)
    app.info(f"Removed wallet {chosen} from the {store.wallet_location}.")
    if _profile_address(app) == chosen:
        app.info(f"Profile {app.settings.profile!r} still names it as its address; change that with `loom config set address` or `loom config unset address`.")


# -- helpers ------------------------------------------------------------------


def _address_of(key: bytes) -> str:
    from eth_account import Account

    return Account.from_key(key).address


def _read_private_key(app: AppContext, path: Path | None) -> bytes:
    """Read the hex key from `path`, a hidden prompt on a terminal, or stdin, and parse it."""
    from loom_cli.wallet import parse_private_key as parse
    from loom_cli.wallet import read_small_file

    if path is not None:
        data = read_small_file(path, what="private key file", limit=MAX_PRIVATE_KEY_INPUT_BYTES)
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise UsageError(f"the private key from {path} is not hexadecimal", hint="give 64 hex digits (32 bytes), with or without 0x") from None
        return parse(text, source=str(path))

    if app.stdin_is_tty:
        from loom_cli.wallet import ask_hidden

        text = ask_hidden(app, "Private key (64 hex digits, input hidden): ") or ""
        return parse(text, source="the prompt")

    text = app.stdin.read(MAX_PRIVATE_KEY_INPUT_BYTES + 1)
    if len(text) > MAX_PRIVATE_KEY_INPUT_BYTES:
        raise UsageError(f"stdin contains more than a private key (over {MAX_PRIVATE_KEY_INPUT_BYTES} bytes)", hint="pipe only the 64 hex digits, or use --keystore FILE for a keystore")
    if not text.strip():
        raise UsageError(
            "no private key on stdin",
            hint="pipe the hex key to stdin, or pass --private-key-file FILE or --keystore FILE",
        )
    return parse(text, source="stdin")


def _check_not_stored(app: AppContext, address: str, force: bool) -> CredentialStore:
    store = app.credentials
    if not force and _is_stored(store, address):
        raise ConflictError(
            f"wallet {address} is already stored in the {store.wallet_location}",
            hint="pass --force to replace it, or remove it first with `loom wallet remove`",
        )
    return store


def _is_stored(store: CredentialStore, address: str) -> bool:
    if address in store.list_wallets():
        return True
    # A keystore can exist without its index entry (an interrupted write), or be corrupt.
    try:
        return store.get_keystore(address) is not None
    except AuthError:
        return True


def _profile_address(app: AppContext) -> str | None:
    from loom_cli.addresses import is_valid_address, to_checksum

    value = app.settings.address
    if isinstance(value, str) and is_valid_address(value):
        return to_checksum(value)
    return None


def _finish_new_wallet(app: AppContext, store: CredentialStore, address: str) -> None:
    """Make `address` the profile's address if it has none, and print the wallet."""
    from loom_cli.settings import ConfigFile

    config = ConfigFile.load(app.settings.paths)
    profile = config.profiles.setdefault(app.settings.profile, {})
    is_default = not profile.get("address")
    if is_default:
        profile["address"] = address
        config.save()
        app.info(f"It is now the address of profile {app.settings.profile!r}.")
    else:
        is_default = _profile_address(app) == address
    app.info("Keep a backup: loom wallet export --keystore FILE")

    if app.output_format == "table" and not app.options.quiet:
        app.renderer.text(address)
    else:
        record = {"address": address, "default": is_default, "location": store.wallet_location}
        app.renderer.record(record, id_key="address")


def _confirm(app: AppContext, question: str) -> bool:
    app.stderr.write(f"{question} [y/N]: ")
    app.stderr.flush()
    answer = app.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def write_new_private_file(path: Path, data: bytes, *, force: bool) -> None:
    """Write `data` to a user-named `path` with mode 0600; replace an existing file only with `force`.

    Unlike `paths.write_private_file`, this never creates or re-permissions
    the user's folders. Without `force`, O_EXCL makes the check and the
    creation one step, so a file that appears meanwhile is not overwritten.
    """
    if path.is_dir():
        raise UsageError(f"{path} is a folder", hint="give a file name, such as backup.json")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"folder {folder} does not exist", hint="create it first, or choose another file")

    try:
        if not force:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            return
        fd, temp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise UsageError(f"{path} already exists", hint="pass --force to replace it, or choose another file") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
