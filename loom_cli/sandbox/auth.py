"""Wallet login for the sandbox: nonces, EIP-191 signature checks and HS256 JWTs.

A client asks for a nonce for its address, signs the nonce text with `personal_sign`, and
trades the signature for a token. Nonces are single use, bound to one address and live
five minutes; an address may hold up to 16 at once, and expired ones are remembered for a
day so that login can report "expired" rather than "not found".

eth_account and PyJWT are imported inside the functions that use them: eth_account alone
takes about half a second to import, and `warm_up()` does that off the startup path.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loom_cli.addresses import is_valid_address, to_checksum
from loom_cli.sandbox.db import Database
from loom_cli.sandbox.errors import ApiError, unauthorized
from loom_cli.sandbox.timefmt import format_seconds

NONCE_TTL_SECONDS = 5 * 60
NONCE_MEMORY_SECONDS = 24 * 3600
MAX_LIVE_NONCES = 16
NONCE_LENGTH = 32
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9]{16,64}$")
JWT_ALGORITHM = "HS256"
# Verified tokens kept per process; the cache is emptied when full.
MAX_CACHED_TOKENS = 4096
_SIGNATURE = re.compile(r"^(?:0[xX])?([0-9a-fA-F]{130})$")
_NONCE_ALPHABET = string.ascii_letters + string.digits


def random_nonce() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(NONCE_LENGTH))


def parse_signature(text: str) -> bytes | None:
    """Return the 65 signature bytes of `text` (hex, `0x` optional) with v as 27/28, or None when malformed."""
    match = _SIGNATURE.match(text)
    if not match:
        return None
    raw = bytearray(bytes.fromhex(match.group(1)))
    if raw[64] in (0, 1):
        raw[64] += 27
    return bytes(raw)


def recover_signer(nonce: str, signature: bytes) -> str | None:
    """Return the checksummed address that signed `nonce` as EIP-191 text, or None when it cannot be recovered."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    if signature[64] not in (27, 28):
        return None
    try:
        return Account.recover_message(encode_defunct(text=nonce), signature=signature)
    except Exception:  # eth_keys raises several types (BadSignature, ValueError) for a bad r, s or v.
        return None


def warm_up() -> None:
    """Import eth_account and PyJWT now, so the first login does not pay for it."""
    import eth_account.messages  # noqa: F401
    import jwt  # noqa: F401


@dataclass(frozen=True)
class Caller:
    """The account behind a valid token, and when that token expires (epoch seconds)."""

    address: str
    expires_at: int


class Authenticator:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float],
        token_ttl: int,
        nonce_factory: Callable[[], str] = random_nonce,
    ) -> None:
        self.db = db
        self.clock = clock
        self.token_ttl = token_ttl
        self.nonce_factory = nonce_factory
        # One random key per database, so tokens survive a restart on the same file.
        self._secret = db.get_or_set_meta("jwt_secret", lambda: secrets.token_hex(32))
        # Tokens whose signature and claims were checked, by token text. Decoding the JWT on every
        # request held GET /jobs/{id} to about 1,700 requests/s on 2 cores, against about 2,600
        # with this cache (tests/bench/run.py). Claims never change; expiry is checked every time.
        self._verified_tokens: dict[str, Caller] = {}

    # ---- nonces ----------------------------------------------------------------------------

    def issue_nonce(self, address: str) -> dict[str, Any]:
        """Store a fresh nonce for `address` (checksummed), dropping the oldest live one beyond 16."""
        now = self.clock()
        nonce = self.nonce_factory()
        if not NONCE_PATTERN.match(nonce):
            raise RuntimeError("the nonce factory returned a nonce outside [A-Za-z0-9]{16,64}")
        expires_at = now + NONCE_TTL_SECONDS
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM nonces WHERE expires_at <= ?", (now - NONCE_MEMORY_SECONDS,))
            live = conn.execute(
                "SELECT nonce FROM nonces WHERE address = ? AND expires_at > ? ORDER BY issued_at, rowid",
                (address, now),
            ).fetchall()
            for row in live[: max(0, len(live) - MAX_LIVE_NONCES + 1)]:
                conn.execute("DELETE FROM nonces WHERE nonce = ?", (row["nonce"],))
            conn.execute(
                "INSERT INTO nonces (nonce, address, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                (nonce, address, now, expires_at),
            )
        return {"address": address, "nonce": nonce, "expires_at": format_seconds(expires_at)}

    # ---- login -----------------------------------------------------------------------------

    def login(self, address: str, signature: bytes) -> dict[str, Any]:
        """Check `signature` against each live nonce of `address`, consume the one it signed and issue a token."""
        now = self.clock()
        with self.db.transaction() as conn:
            live = [
                row["nonce"]
                for row in conn.execute(
                    "SELECT nonce FROM nonces WHERE address = ? AND expires_at > ? ORDER BY issued_at DESC, rowid DESC",
                    (address, now),
                )
            ]
            if not live:
                expired = conn.execute(
                    "SELECT 1 FROM nonces WHERE address = ? AND expires_at <= ? AND expires_at > ? LIMIT 1",
                    (address, now, now - NONCE_MEMORY_SECONDS),
                ).fetchone()
                if expired:
                    raise unauthorized(
                        f"Every nonce issued to {address} has expired; request a new one from /auth/nonce.",
                        code="nonce_expired",
                    )
                raise unauthorized(
                    f"No unused nonce was issued to {address}; request one from /auth/nonce first.",
                    code="nonce_not_found",
                )

            signed = next((nonce for nonce in live if _same_address(recover_signer(nonce, signature), address)), None)
            if signed is None:
                raise unauthorized(
                    f"The signature does not match any live nonce of {address}; sign the nonce text with that wallet.",
                    code="invalid_signature",
                )
            conn.execute("DELETE FROM nonces WHERE nonce = ?", (signed,))

        return self._issue_token(address, now)

    def _issue_token(self, address: str, now: float) -> dict[str, Any]:
        import jwt

        issued_at = int(now)
        # Rounded up, so a token lives at least token_ttl seconds even with --token-ttl 1.
        expires_at = math.ceil(now + self.token_ttl)
        claims = {"sub": address, "iat": issued_at, "exp": expires_at, "jti": secrets.token_hex(16)}
        token = jwt.encode(claims, self._secret, algorithm=JWT_ALGORITHM)
        return {"token": token, "token_type": "Bearer", "expires_at": format_seconds(expires_at), "address": address}

    # ---- tokens ----------------------------------------------------------------------------

    def verify_token(self, token: str) -> Caller:
        """Return the caller of a valid, unexpired token; raise 401 `unauthorized` for anything else."""
        caller = self._verified_tokens.get(token)
        if caller is None:
            caller = self._decode_token(token)
            if len(self._verified_tokens) >= MAX_CACHED_TOKENS:
                self._verified_tokens.clear()
            self._verified_tokens[token] = caller
        if caller.expires_at <= self.clock():
            raise unauthorized("The bearer token has expired; log in again.")
        return caller

    def _decode_token(self, token: str) -> Caller:
        """Check the token's signature and claims, not its expiry; raise 401 `unauthorized` when they are invalid."""
        import jwt

        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                # Expiry is checked by verify_token against the injectable clock, not PyJWT's own.
                options={"require": ["sub", "iat", "exp", "jti"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidTokenError as exc:
            raise unauthorized("The bearer token is invalid; log in again.") from exc
        subject, expires_at = claims.get("sub"), claims.get("exp")
        if not is_valid_address(subject) or not isinstance(expires_at, int) or isinstance(expires_at, bool):
            raise unauthorized("The bearer token is invalid; log in again.")
        return Caller(address=to_checksum(subject), expires_at=expires_at)


def _same_address(recovered: str | None, address: str) -> bool:
    return recovered is not None and recovered.lower() == address.lower()


def bearer_token(header: str | None) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, None when the header is absent.

    Raise 401 for a header that is present but is not a bearer token.
    """
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "unauthorized",
            "The Authorization header must be 'Bearer <token>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token
