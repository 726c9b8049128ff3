"""Logging in with a wallet signature, and the token every authenticated request carries.

Login is three steps: `GET /auth/nonce?address=` returns a one-time nonce,
the wallet signs it with EIP-191 `personal_sign` (the nonce alone, as UTF-8
text), and `POST /auth/login` trades the signature for a JWT. Before signing,
`check_nonce` rejects anything that is not a plain random string, because a
wallet signature over other text could authorise something else.

`TokenProvider` chooses the token a request carries. LOOM_TOKEN comes first
and is used as given, never stored. Next is the profile's stored token, when
the same API URL issued it and it is valid for more than a minute. Otherwise
loom logs in with LOOM_PRIVATE_KEY or the stored wallet, under a cross-process
lock, so parallel loom processes with an expired token log in once, not once each.

eth_account and jwt are imported inside the functions that need them.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from loom_cli.errors import ApiUnavailableError, AuthError, NotFoundError, PromptRequired, UsageError
from loom_cli.text import escape_control

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from loom_cli.context import AppContext
    from loom_cli.credentials import StoredToken
    from loom_cli.http import ApiClient, ApiResponse, BearerToken

NONCE_PATTERN = re.compile(r"[A-Za-z0-9]{16,64}")
SIGNATURE_PATTERN = re.compile(r"(?:0x)?([0-9a-fA-F]{130})")

# A stored token is renewed when it has this many seconds left or fewer, so it
# cannot expire between the check and the request.
RENEW_MARGIN_SECONDS = 60

# Seconds a --signer-command may take; a hardware wallet waits for a button press.
SIGNER_TIMEOUT_SECONDS = 120
MAX_SIGNER_OUTPUT_BYTES = 64 * 1024

# What to do after each 401 code of POST /auth/login.
LOGIN_ERROR_HINTS = {
    "nonce_expired": "the nonce is valid for 5 minutes; run the login again and sign sooner",
    "nonce_not_found": "the nonce was already used or never issued; run the login again",
    "invalid_signature": "sign exactly the nonce text with personal_sign (EIP-191), with the key of the address",
}

PRIVATE_KEY_VARIABLE = "LOOM_PRIVATE_KEY"
TOKEN_VARIABLE = "LOOM_TOKEN"
# Variables a --signer-command never receives: it signs a nonce and needs none of loom's secrets.
SECRET_VARIABLES = ("LOOM_TOKEN", "LOOM_PRIVATE_KEY", "LOOM_PASSPHRASE")


def login_hint(profile: str = "default") -> str:
    flag = "" if profile == "default" else f" --profile {profile}"
    return f"run: loom{flag} login (scripts: set {PRIVATE_KEY_VARIABLE}, or LOOM_PASSPHRASE for the stored wallet)"


# -- nonces and signatures ----------------------------------------------------------------


def check_nonce(nonce: object) -> str:
    """Return `nonce` if it is 16-64 ASCII letters and digits, else raise AuthError (exit 3).

    Anything else is not signed: a multi-line text, an EIP-4361 "Sign-In with
    Ethereum" message for another site, or a long string could make the
    signature authorise something the user never meant to.
    """
    if isinstance(nonce, str) and NONCE_PATTERN.fullmatch(nonce):
        return nonce
    raise AuthError(
        f"did not sign the login nonce from the API: expected 16-64 letters and digits, got {_describe_nonce(nonce)}",
        hint="a signature over other text could authorise something else, such as a sign-in to another site; "
        "check that --api-url points at the Loom API you trust",
    )


def _describe_nonce(nonce: object) -> str:
    if not isinstance(nonce, str):
        return f"a JSON {type(nonce).__name__}" if nonce is not None else "null"
    preview = escape_control(nonce[:40]) + ("..." if len(nonce) > 40 else "")
    if "wants you to sign in with your Ethereum account" in nonce:
        kind = "an EIP-4361 sign-in message"
    elif "\n" in nonce or "\r" in nonce:
        kind = f"a text of {len(nonce.splitlines())} lines"
    elif len(nonce) > 64:
        kind = f"a string of {len(nonce)} characters"
    elif len(nonce) < 16:
        kind = f"a string of only {len(nonce)} characters"
    else:
        kind = "a string with characters other than letters and digits"
    return f'{kind} ("{preview}")'


def sign_nonce(account: LocalAccount, nonce: str) -> str:
    """Sign `nonce` with EIP-191 personal_sign and return the 65-byte signature as 0x-prefixed hex."""
    from eth_account.messages import encode_defunct

    signed = account.sign_message(encode_defunct(text=check_nonce(nonce)))
    return "0x" + bytes(signed.signature).hex()


def parse_signature(text: str, *, source: str) -> str:
    """Normalise a 65-byte hex signature (0x optional, v as 0/1 or 27/28) to 0x-hex with v as 27/28.

    Errors name `source` and describe the text's shape without echoing it.
    """
    match = SIGNATURE_PATTERN.fullmatch(text.strip())
    if match is None:
        raise AuthError(
            f"{source} returned {len(text.strip())} characters, which is not a signature",
            hint="a signature is 65 bytes as hex: 0x followed by 130 hex digits",
        )
    raw = bytes.fromhex(match.group(1))
    v = raw[64]
    if v in (0, 1):
        raw = raw[:64] + bytes([v + 27])
    elif v not in (27, 28):
        raise AuthError(f"{source} returned a signature with recovery id {v}; expected 0, 1, 27 or 28")
    return "0x" + raw.hex()


def recover_signer(nonce: str, signature: str) -> str:
    """Return the checksummed address that made `signature` over `nonce` (EIP-191 personal_sign)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        return Account.recover_message(encode_defunct(text=nonce), signature=bytes.fromhex(signature[2:]))
    except Exception as exc:  # eth_keys raises several types for an invalid curve point
        raise AuthError(f"the signature is not valid for this nonce: {exc}") from exc


def address_of_key(key: bytes) -> str:
    """Return the checksummed address of a 32-byte private key."""
    from eth_keys import keys

    return keys.PrivateKey(key).public_key.to_checksum_address()


# -- signers ------------------------------------------------------------------------------


class Signer(Protocol):
    """Something that signs a login nonce for `address`; `source` names it in messages."""

    address: str
    source: str

    def sign(self, nonce: str) -> str:
        """Return the signature of `nonce` as hex (0x optional)."""
        ...


@dataclass
class AccountSigner:
    """Signs with a key in memory (LOOM_PRIVATE_KEY, a keystore file, the stored wallet)."""

    account: LocalAccount
    source: str

    @property
    def address(self) -> str:
        return self.account.address

    def sign(self, nonce: str) -> str:
        return sign_nonce(self.account, nonce)


@dataclass
class CommandSigner:
    """Runs an external signer: the nonce goes to its stdin, the signature comes back on its stdout.

    The command line is split like a shell would (shlex) but runs without a
    shell. Its stderr passes through, so a hardware wallet bridge can ask the
    user to confirm on the device.
    """

    command: str
    address: str
    env: dict[str, str]
    timeout: float = SIGNER_TIMEOUT_SECONDS
    source: str = "the signer command"

    def sign(self, nonce: str) -> str:
        try:
            argv = shlex.split(self.command)
        except ValueError as exc:
            raise UsageError(f"cannot parse --signer-command {self.command!r}: {exc}", hint="quote it as you would in a shell") from exc
        if not argv:
            raise UsageError("--signer-command is empty", hint="give the command that signs, for example --signer-command 'my-signer --account 0'")

        child_env = {name: value for name, value in self.env.items() if name not in SECRET_VARIABLES}
        child_env["LOOM_SIGNER_ADDRESS"] = self.address
        try:
            completed = subprocess.run(
                argv,
                input=(nonce + "\n").encode("utf-8"),
                stdout=subprocess.PIPE,
                stderr=None,
                env=child_env,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise UsageError(f"signer command not found: {argv[0]}", hint="give the full path, or check PATH") from exc
        except PermissionError as exc:
            raise UsageError(f"signer command {argv[0]} is not executable", hint=f"run: chmod +x {argv[0]}") from exc
        except OSError as exc:
            raise UsageError(f"cannot run signer command {argv[0]}: {exc.strerror or exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise AuthError(
                f"the signer command {argv[0]} did not finish within {self.timeout:g} s",
                hint="confirm the request on the signing device sooner, or check that the command reads the nonce from stdin",
            ) from exc

        if completed.returncode < 0:
            raise AuthError(f"the signer command {argv[0]} was killed by signal {-completed.returncode}")
        if completed.returncode != 0:
            raise AuthError(
                f"the signer command {argv[0]} failed with exit status {completed.returncode}",
                hint="its own messages, if any, are above",
            )
        output = completed.stdout[:MAX_SIGNER_OUTPUT_BYTES].decode("utf-8", errors="replace")
        return parse_signature(output, source=f"the signer command {argv[0]}")


@dataclass
class ManualSigner:
    """Shows the nonce on stderr and reads the signature that the user made elsewhere from stdin."""

    app: AppContext
    address: str
    source: str = "the pasted signature"

    def sign(self, nonce: str) -> str:
        app = self.app
        app.warn(f"Sign this message with wallet {self.address}, using personal_sign (EIP-191):")
        app.warn(f"  {nonce}")
        app.warn(
            "The message is the nonce alone, as UTF-8 text; the wallet adds the "
            f'"\\x19Ethereum Signed Message:\\n{len(nonce.encode("utf-8"))}" prefix itself.'
        )
        if app.stdin_is_tty:
            from loom_cli.wallet import ask_hidden

            # No echo: the signature never shows on screen or in the scrollback.
            line = ask_hidden(app, "Signature (0x followed by 130 hex digits): ") or ""
        else:
            app.warn("Reading the signature from stdin.")
            line = app.stdin.readline(1024)
        if not line.strip():
            raise PromptRequired(
                "no signature was given on stdin",
                hint="pipe the signature into `loom login --manual`, or run it in a terminal",
            )
        return parse_signature(line, source="stdin")


# -- login ----------------------------------------------------------------------------------


def as_signer(account_or_signer: LocalAccount | Signer, *, source: str = "the key") -> Signer:
    if hasattr(account_or_signer, "sign_message"):
        return AccountSigner(account_or_signer, source)  # type: ignore[arg-type]
    return account_or_signer  # type: ignore[return-value]


def login(app: AppContext, account_or_signer: LocalAccount | Signer, *, client: ApiClient | None = None) -> StoredToken:
    """Log in to the profile's API with a wallet signature and return the new token (not stored).

    The signature is checked locally before it is sent: the address it
    recovers to must be the one the nonce was issued for.
    """
    from loom_cli.credentials import StoredToken
    from loom_cli.http import ApiClient

    signer = as_signer(account_or_signer)
    own_client = client is None
    api = client or ApiClient.from_context(app, auth=False)
    try:
        nonce_response = api.get("/auth/nonce", params={"address": signer.address}, auth=False)
        if not isinstance(nonce_response.data, dict) or "nonce" not in nonce_response.data:
            raise ApiUnavailableError(
                "GET /auth/nonce returned a response without a nonce",
                request_id=nonce_response.request_id,
                hint="check that --api-url points at a Loom API",
            )
        nonce = check_nonce(nonce_response.data["nonce"])

        signature = parse_signature(signer.sign(nonce), source=signer.source)
        signed_by = recover_signer(nonce, signature)
        if signed_by != signer.address:
            raise AuthError(
                f"{signer.source} signed with wallet {signed_by}, not {signer.address}",
                hint=f"sign the nonce with the key of {signer.address}, or pass --address {signed_by}",
            )

        try:
            login_response = api.post("/auth/login", json={"address": signer.address, "signature": signature}, auth=False)
        except AuthError as exc:
            exc.hint = exc.hint or LOGIN_ERROR_HINTS.get(exc.api_code or "", "run the login again")
            raise
    finally:
        if own_client:
            api.close()

    token = _field(login_response, "token")
    address = _field(login_response, "address")
    if address.lower() != signer.address.lower():
        raise ApiUnavailableError(
            f"POST /auth/login returned a token for {escape_control(address)}, not {signer.address}",
            request_id=login_response.request_id,
        )
    # The contract's expires_at comes first: decoding the JWT instead would
    # import PyJWT (about 25 ms) on every login.
    expires_at = login_response.data.get("expires_at") if isinstance(login_response.data, dict) else None
    expires = parse_timestamp(expires_at) if isinstance(expires_at, str) else None
    if expires is None:
        expires = token_expiry(token)
    if expires is None:
        raise ApiUnavailableError("POST /auth/login returned a token without a readable expiry", request_id=login_response.request_id)
    return StoredToken(token=token, api_url=api.base_url, address=signer.address, expires_at=format_timestamp(expires))


def _field(response: ApiResponse, name: str) -> str:
    """Return a string field of the login response, or raise ApiUnavailableError when it is missing."""
    data = response.data
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise ApiUnavailableError(
            f"POST /auth/login returned a response without the string field {name!r}",
            request_id=response.request_id,
            hint="check that --api-url points at a Loom API",
        )
    return value


def token_expiry(token: str) -> float | None:
    """Read `exp` (seconds since the epoch) from a JWT without checking its signature; None if unreadable.

    The signature cannot be checked here (the key is the server's), and it
    need not be, because loom reads `exp` only to decide when to log in again.
    """
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def parse_timestamp(value: str) -> float | None:
    """Parse an RFC 3339 timestamp into seconds since the epoch; None if it is not one."""
    try:
        when = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return when.timestamp()


def format_timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- choosing a key ---------------------------------------------------------------------


def private_key_from_env(app: AppContext) -> bytes | None:
    """Return the 32-byte key in LOOM_PRIVATE_KEY, None when it is unset, or raise UsageError when it is malformed."""
    from loom_cli.wallet import parse_private_key

    text = app.env.get(PRIVATE_KEY_VARIABLE, "")
    if not text.strip():
        return None
    return parse_private_key(text, source=PRIVATE_KEY_VARIABLE)


def private_key_signer(app: AppContext) -> AccountSigner | None:
    """Return a signer for LOOM_PRIVATE_KEY, or None when it is not set."""
    key = private_key_from_env(app)
    if key is None:
        return None
    from eth_account import Account

    return AccountSigner(Account.from_key(key), PRIVATE_KEY_VARIABLE)


def keystore_signer(app: AppContext, path: Path, *, passphrase_file: Path | None) -> AccountSigner:
    """Unlock a keystore v3 file given with --keystore."""
    from eth_account import Account

    from loom_cli.wallet import decrypt_key, load_keystore_file, read_passphrase

    keystore = load_keystore_file(path)
    passphrase = read_passphrase(app, prompt=f"Passphrase for keystore {path}", passphrase_file=passphrase_file)
    key = decrypt_key(keystore, passphrase, source=f"file {path}")
    return AccountSigner(Account.from_key(key), f"keystore {path}")


def stored_wallet_signer(
    app: AppContext, address: str | None, *, passphrase_file: Path | None = None, interactive: bool = True
) -> AccountSigner:
    """Unlock the stored wallet for `address` (or the profile's, or the only one)."""
    from loom_cli import wallet

    if passphrase_file is None:
        account = wallet.unlock_account(app, address, interactive=interactive)
        return AccountSigner(account, f"wallet {account.address}")

    from eth_account import Account

    chosen = wallet.resolve_wallet_address(app, address)
    keystore = app.credentials.get_keystore(chosen)
    if keystore is None:
        raise NotFoundError(
            f"no wallet {chosen} is stored in the {app.credentials.wallet_location}",
            hint="see `loom wallet list`, or import the key with `loom wallet import`",
        )
    passphrase = wallet.read_passphrase(app, prompt=f"Passphrase for wallet {chosen}", passphrase_file=passphrase_file)
    account = Account.from_key(wallet.decrypt_key(keystore, passphrase, source=f"of wallet {chosen}"))
    return AccountSigner(account, f"wallet {account.address}")


# -- the token a request carries --------------------------------------------------------------


class TokenProvider:
    """Supplies the bearer token for the profile's API URL, logging in again when needed.

    `source` is where the current token came from: "env" (LOOM_TOKEN),
    "store" (the credential store), or "login" (a login made just now and stored).
    """

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.api_url = app.settings.api_url
        self.profile = app.settings.profile
        self.source: str | None = None
        self.stored: StoredToken | None = None
        self._bearer: BearerToken | None = None
        self._key_address_checked = False
        self._key_address: str | None = None

    def login_hint(self) -> str:
        if self.source == "env":
            return f"{TOKEN_VARIABLE} holds a token the API does not accept; set a fresh one or unset {TOKEN_VARIABLE}"
        return login_hint(self.profile)

    def token(self) -> BearerToken:
        """Return a token for the API URL: LOOM_TOKEN, the stored one, or a new login."""
        from loom_cli.http import BearerToken

        if self._bearer is not None:
            return self._bearer

        env_token = self.app.env.get(TOKEN_VARIABLE, "").strip()
        if env_token:
            self.source = "env"
            self._bearer = BearerToken(env_token, self.api_url)
            return self._bearer

        stored = self.app.credentials.get_token(self.profile)
        if stored is not None and self._is_usable(stored):
            self._use(stored, "store")
        else:
            self._use(self._login_again(rejected=None, previous=stored), "login")
        assert self._bearer is not None
        return self._bearer

    def renew(self, rejected: str) -> BearerToken | None:
        """After a 401 for `rejected`, log in again; None when no key is available to do so."""
        if self.source == "env":
            return None
        renewal = self._renewal_signer(self.stored)
        if renewal is None:
            return None
        self._use(self._login_again(rejected=rejected, previous=self.stored, signer_factory=renewal), "login")
        return self._bearer

    def _use(self, stored: StoredToken, source: str) -> None:
        from loom_cli.http import BearerToken

        self.stored = stored
        self.source = source
        self._bearer = BearerToken(stored.token, stored.api_url)

    def _is_usable(self, stored: StoredToken, *, rejected: str | None = None) -> bool:
        """Tell whether `stored` may be sent: same API URL, over a minute left, the expected wallet."""
        if stored.api_url != self.api_url or stored.token == rejected:
            return False
        expires = parse_timestamp(stored.expires_at)
        if expires is None or expires - self.app.clock() <= RENEW_MARGIN_SECONDS:
            return False
        key_address = self._private_key_address()
        return key_address is None or key_address == stored.address

    def _private_key_address(self) -> str | None:
        # LOOM_PRIVATE_KEY names the identity for this run: a token stored for
        # another wallet is not used in its place.
        if not self._key_address_checked:
            key = private_key_from_env(self.app)
            self._key_address = address_of_key(key) if key is not None else None
            self._key_address_checked = True
        return self._key_address

    def _renewal_signer(self, previous: StoredToken | None) -> Callable[[], Signer] | None:
        """Return a function that builds the signer for an automatic login, or None when none is possible."""
        app = self.app
        if app.env.get(PRIVATE_KEY_VARIABLE, "").strip():
            return lambda: private_key_signer(app)  # type: ignore[return-value]
        # Automatic renewal never prompts, even on a terminal: a command that
        # did not ask to log in must not stop for a passphrase. `loom login` does that.
        if "LOOM_PASSPHRASE" not in app.env:
            return None

        from loom_cli.wallet import resolve_wallet_address

        address = previous.address if previous is not None else None
        try:
            chosen = resolve_wallet_address(app, address)
        except (NotFoundError, UsageError):
            return None
        if app.credentials.get_keystore(chosen) is None:
            return None

        def unlock() -> Signer:
            again = " again" if previous is not None else ""
            app.info(f"Unlocking wallet {chosen} with LOOM_PASSPHRASE to log in to {self.api_url}{again}.")
            return stored_wallet_signer(app, chosen, interactive=False)

        return unlock

    def _login_again(
        self,
        *,
        rejected: str | None,
        previous: StoredToken | None,
        signer_factory: Callable[[], Signer] | None = None,
    ) -> StoredToken:
        """Log in with LOOM_PRIVATE_KEY or the stored wallet under the login lock, and store the token."""
        factory = signer_factory or self._renewal_signer(previous)
        if factory is None:
            raise AuthError(self._why_no_token(previous), hint=login_hint(self.profile))

        credentials = self.app.credentials
        with credentials.lock("login"):
            # Another loom process may have logged in while this one waited for the lock.
            current = credentials.get_token(self.profile)
            if current is not None and self._is_usable(current, rejected=rejected):
                return current
            fresh = login(self.app, factory())
            credentials.set_token(self.profile, fresh)
            return fresh

    def _why_no_token(self, previous: StoredToken | None) -> str:
        if previous is None:
            return f"not logged in to {self.api_url} (profile {self.profile!r})"
        if previous.api_url != self.api_url:
            return f"the token of profile {self.profile!r} was issued by {previous.api_url}, not {self.api_url}, and is never sent there"
        return f"the token of profile {self.profile!r} for {self.api_url} expired or expires within a minute ({previous.expires_at})"
