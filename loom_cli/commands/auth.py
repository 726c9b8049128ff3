"""`loom login`, `loom logout`, `loom whoami` and `loom auth token`: the profile's login token."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loom_cli.context import AppContext
from loom_cli.errors import ApiUnavailableError, AuthError, NotFoundError, PromptRequired, UsageError
from loom_cli.options import JsonOption, OutputOption, QuietOption, output_value

if TYPE_CHECKING:
    from loom_cli.auth import Signer

LOGIN_EXAMPLES = """\
Examples:

  loom login                          # stored wallet; asks its passphrase
  loom login --address 0xAbC...       # one of several stored wallets
  LOOM_PRIVATE_KEY=0x... loom login   # CI: a key from the environment
  loom login --keystore wallet.json --passphrase-file pass.txt
  loom login --address 0xAbC... --signer-command 'hw-signer --account 0'
  loom login --address 0xAbC... --manual   # sign in another wallet app
  loom --api-url http://127.0.0.1:8765/v1 login -o json
"""

LOGOUT_EXAMPLES = """\
Examples:

  loom logout                          # forget the default profile's token
  loom --profile staging logout
"""

WHOAMI_EXAMPLES = """\
Examples:

  loom whoami
  loom whoami -o json | jq -r .address
"""

TOKEN_EXAMPLES = """\
Examples:

  curl -H "Authorization: Bearer $(loom auth token)" \\
      https://api.the-loom.io/v1/auth/me
  export LOOM_TOKEN="$(loom auth token)"   # later commands store nothing
"""

AddressOption = Annotated[
    str | None,
    typer.Option("--address", metavar="0x…", help="Wallet to log in as. \\[default: the profile's address, or the only stored wallet]", show_default=False),
]
KeystoreOption = Annotated[
    Path | None,
    typer.Option("--keystore", metavar="FILE", help="Sign with the key in this keystore v3 file (geth, MetaMask, ethers, `loom wallet export`).", show_default=False),
]
SignerCommandOption = Annotated[
    str | None,
    typer.Option(
        "--signer-command",
        metavar="CMD",
        help="Run CMD (no shell) with the nonce on stdin; it must print the 65-byte hex signature on stdout. Needs the address.",
        show_default=False,
    ),
]
ManualOption = Annotated[
    bool,
    typer.Option("--manual", help="Show the nonce to sign elsewhere and read the signature from stdin. Needs the address."),
]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option("--passphrase-file", metavar="FILE", help="Read the wallet or keystore passphrase from the first line of FILE.", show_default=False),
]


def register(root: typer.Typer) -> None:
    root.command("login", epilog=LOGIN_EXAMPLES)(login)
    root.command("logout", epilog=LOGOUT_EXAMPLES)(logout)
    root.command("whoami", epilog=WHOAMI_EXAMPLES)(whoami)

    auth_app = typer.Typer(name="auth", help="Login tokens for scripts.", no_args_is_help=True)
    auth_app.command("token", epilog=TOKEN_EXAMPLES)(token)
    root.add_typer(auth_app, name="auth")


def login(
    ctx: typer.Context,
    address: AddressOption = None,
    keystore: KeystoreOption = None,
    signer_command: SignerCommandOption = None,
    manual: ManualOption = False,
    passphrase_file: PassphraseFileOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Log in by signing a one-time nonce with your wallet; the token is stored for the profile.

    The key comes from --keystore, --signer-command or --manual when given,
    else from LOOM_PRIVATE_KEY (never stored), else from the stored wallet
    (`loom wallet new` or `loom wallet import`). Commands renew an expired
    token by themselves when LOOM_PRIVATE_KEY, or LOOM_PASSPHRASE for the
    stored wallet, is set. Prints the address on stdout.
    """
    from loom_cli import auth

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    signer = _choose_signer(app, address, keystore, signer_command, manual, passphrase_file)

    app.info(f"Logging in to {app.settings.api_url} as {signer.address}.")
    stored = auth.login(app, signer)
    app.credentials.set_token(app.settings.profile, stored)
    _remember_address(app, stored.address)
    app.info(f"Logged in. The token is valid until {stored.expires_at} and kept in the {app.credentials.location}.")
    if app.env.get("LOOM_TOKEN", "").strip():
        app.warn("warning: LOOM_TOKEN is set, and commands use it instead of this login until you unset it")

    if app.renderer.fmt == "table":
        app.renderer.text(stored.address)
    else:
        app.renderer.record({"address": stored.address, "api_url": stored.api_url, "expires_at": stored.expires_at}, id_key="address")


def _choose_signer(
    app: AppContext,
    address: str | None,
    keystore: Path | None,
    signer_command: str | None,
    manual: bool,
    passphrase_file: Path | None,
) -> Signer:
    """Pick the key source: an explicit flag, then LOOM_PRIVATE_KEY, then the stored wallet."""
    from loom_cli import auth
    from loom_cli.addresses import normalize_address

    chosen_flags = [flag for flag, value in (("--keystore", keystore), ("--signer-command", signer_command), ("--manual", manual)) if value]
    if len(chosen_flags) > 1:
        raise UsageError(f"{' and '.join(chosen_flags)} cannot be combined", hint="choose one way to sign")
    if passphrase_file is not None and (signer_command is not None or manual):
        raise UsageError("--passphrase-file applies only to --keystore and the stored wallet")
    requested_address = normalize_address(address, what="--address") if address else None

    if keystore is not None:
        signer: Signer = auth.keystore_signer(app, keystore, passphrase_file=passphrase_file)
    elif signer_command is not None:
        signer = auth.CommandSigner(signer_command, _address_for_external_signer(app, requested_address, "--signer-command"), dict(app.env))
    elif manual:
        signer = auth.ManualSigner(app, _address_for_external_signer(app, requested_address, "--manual"))
    elif (key_signer := auth.private_key_signer(app)) is not None:
        signer = key_signer
    else:
        signer = _stored_wallet_signer(app, requested_address, passphrase_file)

    if requested_address is not None and signer.address != requested_address:
        raise UsageError(f"{signer.source} holds the key of {signer.address}, not --address {requested_address}", hint="drop --address, or give the key of that wallet")
    return signer


def _address_for_external_signer(app: AppContext, requested_address: str | None, flag: str) -> str:
    from loom_cli.wallet import resolve_wallet_address

    if requested_address is not None:
        return requested_address
    try:
        return resolve_wallet_address(app, None)
    except (NotFoundError, UsageError) as exc:
        raise UsageError(f"{flag} needs the address of the wallet that signs", hint="pass --address 0x…, or set it with `loom config set address 0x…`") from exc


def _stored_wallet_signer(app: AppContext, requested_address: str | None, passphrase_file: Path | None) -> Signer:
    from loom_cli import auth

    try:
        return auth.stored_wallet_signer(app, requested_address, passphrase_file=passphrase_file, interactive=True)
    except PromptRequired as exc:
        raise PromptRequired(
            exc.message,
            hint="set LOOM_PASSPHRASE or pass --passphrase-file FILE; or sign with a key from LOOM_PRIVATE_KEY instead",
        ) from exc
    except NotFoundError as exc:
        if requested_address is not None:
            raise AuthError(exc.message, hint=exc.hint) from exc
        raise AuthError(
            "no key to sign the login with: no wallet is stored and LOOM_PRIVATE_KEY is not set",
            hint="create a wallet with `loom wallet new`, import one with `loom wallet import`, or set LOOM_PRIVATE_KEY",
        ) from exc


def _remember_address(app: AppContext, address: str) -> None:
    """Store the logged-in address as the profile's `address` setting, so the next login picks that wallet."""
    from loom_cli.settings import ConfigFile

    config = ConfigFile.load(app.settings.paths)
    settings = config.profiles.setdefault(app.settings.profile, {})
    if settings.get("address") != address:
        settings["address"] = address
        config.save()


def logout(
    ctx: typer.Context,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Forget the profile's login token; the wallet key stays stored.

    Running it again, or without a token, does nothing and succeeds.
    """
    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    profile = app.settings.profile
    if app.credentials.delete_token(profile):
        app.info(f"Logged out: removed the token of profile {profile!r} from the {app.credentials.location}.")
    else:
        app.info(f"Not logged in with profile {profile!r}; there was no token to remove.")
    if app.env.get("LOOM_TOKEN", "").strip():
        app.warn("warning: LOOM_TOKEN is still set, and commands keep using it until you unset it")


def whoami(
    ctx: typer.Context,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Show the address, API URL and token expiry of the profile's login, checked with the API.

    Logs in again first when the token expired and LOOM_PRIVATE_KEY or
    LOOM_PASSPHRASE allows it. Exit code 3 when not logged in.
    """
    from loom_cli.output import Column

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)

    with app.api(auth=True) as client:
        response = client.get("/auth/me")
        source = client.tokens.source if client.tokens is not None else None
    me = response.data
    if not isinstance(me, dict) or not all(isinstance(me.get(name), str) for name in ("address", "expires_at")):
        raise ApiUnavailableError("GET /auth/me returned a response without address and expires_at", request_id=response.request_id)

    record = {
        "address": me["address"],
        "api_url": app.settings.api_url,
        "expires_at": me["expires_at"],
        "token_store": "LOOM_TOKEN environment variable" if source == "env" else app.credentials.location,
    }
    fields = [
        Column("Address", "address"),
        Column("API URL", "api_url"),
        Column("Token expires", "expires_at"),
        Column("Token kept in", "token_store"),
    ]
    app.renderer.record(record, fields=fields, id_key="address")


def token(
    ctx: typer.Context,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Print the profile's token on stdout, logging in again first if it expired.

    This is the one command that prints a secret on purpose, for scripts
    that call the API themselves. LOOM_TOKEN, when set, is printed as is.
    The token is printed bare in every output format, so `$(loom auth token)`
    works whatever LOOM_OUTPUT is set to.
    """
    from loom_cli.auth import TokenProvider

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    bearer = TokenProvider(app).token()
    app.renderer.text(bearer.value)
