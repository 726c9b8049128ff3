"""Nonce checks, signatures, and which token a request carries.

Login against a real server is tested end to end in tests/e2e/test_login.py;
here a MockTransport replaces the server only where it misbehaves (odd nonces)
or to prove that no request was sent at all.
"""

from __future__ import annotations

import io
import sys
import textwrap
import time
from pathlib import Path

import httpx
import jwt
import pytest
from eth_account import Account

from loom_cli.auth import (
    AccountSigner,
    CommandSigner,
    TokenProvider,
    check_nonce,
    login,
    parse_signature,
    recover_signer,
    sign_nonce,
    token_expiry,
)
from loom_cli.context import AppContext, GlobalOptions
from loom_cli.credentials import StoredToken
from loom_cli.errors import ApiUnavailableError, AuthError, UsageError
from tests.fixtures.keyring import TEST_KEYS, fast_keystore

API = "https://api.example.invalid/v1"
OTHER_API = "https://other.example.invalid/v1"
NOW = 2_000_000_000.0


def make_jwt(address: str, exp: float) -> str:
    return jwt.encode({"sub": address, "iat": int(exp) - 3600, "exp": int(exp), "jti": "t1"}, "test-secret-of-32-bytes-or-more!!", algorithm="HS256")


def make_app(tmp_path: Path, handler, *, api_url: str = API, **env: str) -> AppContext:
    base_env = {"LOOM_CONFIG_DIR": str(tmp_path / "config"), "LOOM_KEYRING_BACKEND": "file"}
    return AppContext(
        GlobalOptions(api_url=api_url),
        env={**base_env, **env},
        stdin=io.StringIO(""),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        transport=httpx.MockTransport(handler),
        clock=lambda: NOW,
        sleep=lambda seconds: None,
    )


class Requests:
    """A MockTransport handler that records requests and returns `answer(request)`."""

    def __init__(self, answer=None) -> None:
        self.seen: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(200, json={"address": "0x0", "expires_at": "x"}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.answer(request)


def store_token(app: AppContext, *, api_url: str = API, expires_in: float = 3600, address: str | None = None) -> StoredToken:
    address = address or Account.from_key(TEST_KEYS[0]).address
    stored = StoredToken(
        token=make_jwt(address, NOW + expires_in),
        api_url=api_url,
        address=address,
        expires_at=time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(NOW + expires_in)),
    )
    app.credentials.set_token("default", stored)
    return stored


# -- nonces ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nonce", ["a" * 16, "Z9" * 32, "0123456789abcdefABCDEF"])
def test_check_nonce_accepts_plain_nonces(nonce: str):
    assert check_nonce(nonce) == nonce


SIWE_MESSAGE = textwrap.dedent(
    """\
    evil.example.invalid wants you to sign in with your Ethereum account:
    0x0000000000000000000000000000000000000001

    URI: https://evil.example.invalid
    Version: 1
    Chain ID: 1
    Nonce: abcdefgh12345678
    Issued At: 2030-01-01T00:00:00Z"""
)


@pytest.mark.parametrize(
    ("nonce", "described"),
    [
        (SIWE_MESSAGE, "EIP-4361 sign-in message"),
        ("abcdefgh12345678\nTransfer 100 LOOM to 0x01", "text of 2 lines"),
        ("a" * 65, "string of 65 characters"),
        ("a" * 15, "only 15 characters"),
        ("abcdefgh 12345678", "characters other than letters and digits"),
        ("abcdefgh1234567８", "characters other than letters and digits"),
        ("abcdefgh12345678\x1b[2J", "characters other than letters and digits"),
        (None, "null"),
        (12345678901234567890, "JSON int"),
    ],
    ids=["siwe", "multi-line", "overlong", "short", "space", "fullwidth-digit", "escape", "null", "number"],
)
def test_check_nonce_rejects_anything_else(nonce: object, described: str):
    with pytest.raises(AuthError) as caught:
        check_nonce(nonce)

    assert caught.value.exit_code == 3
    assert described in caught.value.message
    assert "authorise something else" in (caught.value.hint or "")
    assert "\x1b" not in caught.value.message


def test_sign_nonce_is_personal_sign():
    account = Account.from_key(TEST_KEYS[0])

    signature = sign_nonce(account, "abcdefgh12345678")

    assert signature.startswith("0x")
    assert len(signature) == 132
    assert recover_signer("abcdefgh12345678", signature) == account.address


def test_sign_nonce_refuses_plain_text():
    account = Account.from_key(TEST_KEYS[0])

    with pytest.raises(AuthError):
        sign_nonce(account, "Transfer everything")


def test_parse_signature_normalises_recovery_id():
    account = Account.from_key(TEST_KEYS[0])
    signature = sign_nonce(account, "abcdefgh12345678")
    raw = bytes.fromhex(signature[2:])
    low_v = (raw[:64] + bytes([raw[64] - 27])).hex()

    assert parse_signature(low_v, source="test") == signature
    assert parse_signature(f"  {signature.upper().replace('0X', '0x')}\n", source="test") == signature


@pytest.mark.parametrize("text", ["", "0x1234", "zz" * 65, "0x" + "ab" * 66])
def test_parse_signature_rejects_other_text(text: str):
    with pytest.raises(AuthError) as caught:
        parse_signature(text, source="the signer command")

    assert caught.value.exit_code == 3
    assert "not a signature" in caught.value.message
    if text:
        assert text not in caught.value.message


def test_parse_signature_rejects_bad_recovery_id():
    with pytest.raises(AuthError, match="recovery id 5"):
        parse_signature("ab" * 64 + "05", source="stdin")


def test_token_expiry_reads_exp_without_the_key():
    assert token_expiry(make_jwt("0x01", NOW + 10)) == NOW + 10
    assert token_expiry("not-a-jwt") is None
    assert token_expiry(jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256")) is None


# -- login against a misbehaving server ----------------------------------------------------


class CountingSigner(AccountSigner):
    def __init__(self) -> None:
        super().__init__(Account.from_key(TEST_KEYS[0]), "the test key")
        self.calls = 0

    def sign(self, nonce: str) -> str:
        self.calls += 1
        return super().sign(nonce)


@pytest.mark.parametrize("nonce", [SIWE_MESSAGE, "abcdefgh12345678\nsecond line", "n" * 65, "x" * 4000])
def test_login_refuses_nonce_that_is_not_plain(tmp_path: Path, nonce: str):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/nonce"):
            return httpx.Response(200, json={"address": request.url.params["address"], "nonce": nonce, "expires_at": "2030-01-01T00:00:00.000000Z"})
        return httpx.Response(200, json={"token": "unused", "token_type": "Bearer", "expires_at": "x", "address": "x"})

    requests = Requests(answer)
    app = make_app(tmp_path, requests)
    signer = CountingSigner()

    with pytest.raises(AuthError) as caught:
        login(app, signer)

    assert caught.value.exit_code == 3
    assert signer.calls == 0
    assert [request.method for request in requests.seen] == ["GET"]


def test_login_refuses_signature_from_another_wallet(tmp_path: Path):
    other = Account.from_key(TEST_KEYS[1])

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"address": "x", "nonce": "abcdefgh12345678", "expires_at": "x"})

    requests = Requests(answer)
    app = make_app(tmp_path, requests)
    script = tmp_path / "signer.py"
    script.write_text(
        "import sys\n"
        "from eth_account import Account\n"
        "from eth_account.messages import encode_defunct\n"
        f"key = bytes.fromhex({TEST_KEYS[1].hex()!r})\n"
        "nonce = sys.stdin.readline().strip()\n"
        "print(Account.sign_message(encode_defunct(text=nonce), key).signature.hex())\n"
    )
    address = Account.from_key(TEST_KEYS[0]).address
    signer = CommandSigner(f"{sys.executable} {script}", address, dict(app.env))

    with pytest.raises(AuthError) as caught:
        login(app, signer)

    assert other.address in caught.value.message
    assert address in caught.value.message
    assert [request.method for request in requests.seen] == ["GET"]


def login_answering(token: str, expires_at: object):
    """A server whose login returns `token` and `expires_at` for the test key's address."""
    address = Account.from_key(TEST_KEYS[0]).address

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/nonce"):
            return httpx.Response(200, json={"address": address, "nonce": "abcdefgh12345678", "expires_at": "2030-01-01T00:00:00.000000Z"})
        return httpx.Response(200, json={"token": token, "token_type": "Bearer", "expires_at": expires_at, "address": address})

    return answer


def test_login_expiry_from_expires_at(tmp_path: Path):
    # An opaque token: the expiry can come only from the response field.
    app = make_app(tmp_path, Requests(login_answering("opaque-token", "2031-02-03T04:05:06Z")))

    stored = login(app, Account.from_key(TEST_KEYS[0]))

    assert stored.expires_at == "2031-02-03T04:05:06.000000Z"


@pytest.mark.parametrize("expires_at", ["x", None, 12345])
def test_login_expiry_falls_back_to_jwt_exp(tmp_path: Path, expires_at: object):
    exp = 1_900_000_000
    token = make_jwt(Account.from_key(TEST_KEYS[0]).address, exp)
    app = make_app(tmp_path, Requests(login_answering(token, expires_at)))

    stored = login(app, Account.from_key(TEST_KEYS[0]))

    assert stored.expires_at == time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(exp))


def test_login_without_any_expiry_fails(tmp_path: Path):
    app = make_app(tmp_path, Requests(login_answering("opaque-token", "soon")))

    with pytest.raises(ApiUnavailableError) as caught:
        login(app, Account.from_key(TEST_KEYS[0]))

    assert "without a readable expiry" in caught.value.message


@pytest.mark.parametrize(
    ("code", "hint"),
    [("nonce_expired", "valid for 5 minutes"), ("nonce_not_found", "already used"), ("invalid_signature", "personal_sign (EIP-191)")],
)
def test_login_rejection_gets_a_hint(tmp_path: Path, code: str, hint: str):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/nonce"):
            return httpx.Response(200, json={"address": "x", "nonce": "abcdefgh12345678", "expires_at": "x"})
        return httpx.Response(401, json={"error": {"code": code, "message": "Login failed."}})

    app = make_app(tmp_path, Requests(answer))

    with pytest.raises(AuthError) as caught:
        login(app, Account.from_key(TEST_KEYS[0]))

    assert caught.value.exit_code == 3
    assert caught.value.message == "Login failed."
    assert hint in (caught.value.hint or "")


def test_command_signer_failures_are_clear(tmp_path: Path):
    address = Account.from_key(TEST_KEYS[0]).address
    failing = tmp_path / "fail.py"
    failing.write_text("import sys\nsys.exit(4)\n")
    slow = tmp_path / "slow.py"
    slow.write_text("import time\ntime.sleep(30)\n")

    with pytest.raises(UsageError, match="signer command not found: /nonexistent/signer"):
        CommandSigner("/nonexistent/signer", address, {}).sign("abcdefgh12345678")
    with pytest.raises(AuthError, match="failed with exit status 4"):
        CommandSigner(f"{sys.executable} {failing}", address, {}).sign("abcdefgh12345678")
    with pytest.raises(AuthError, match="did not finish within 0.5 s"):
        CommandSigner(f"{sys.executable} {slow}", address, {}, timeout=0.5).sign("abcdefgh12345678")
    with pytest.raises(UsageError, match="cannot parse --signer-command"):
        CommandSigner("signer 'unbalanced", address, {}).sign("abcdefgh12345678")


def test_command_signer_gets_no_loom_secrets(tmp_path: Path):
    script = tmp_path / "env.py"
    script.write_text(
        "import os, sys\n"
        "leaked = [name for name in ('LOOM_TOKEN', 'LOOM_PRIVATE_KEY', 'LOOM_PASSPHRASE') if name in os.environ]\n"
        "sys.exit(7 if leaked else 3)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "LOOM_TOKEN": "t", "LOOM_PRIVATE_KEY": "k", "LOOM_PASSPHRASE": "p"}

    with pytest.raises(AuthError, match="exit status 3"):
        CommandSigner(f"{sys.executable} {script}", "0x" + "1" * 40, env).sign("abcdefgh12345678")


# -- which token a request carries ---------------------------------------------------------


def test_loom_token_is_sent_and_never_stored(tmp_path: Path):
    requests = Requests()
    app = make_app(tmp_path, requests, LOOM_TOKEN="env-token-value")

    with app.api(auth=True) as client:
        client.get("/auth/me")
        assert client.tokens is not None
        assert client.tokens.source == "env"

    assert requests.seen[0].headers["Authorization"] == "Bearer env-token-value"
    assert app.credentials.get_token("default") is None


def test_stored_token_is_sent_to_its_api(tmp_path: Path):
    requests = Requests()
    app = make_app(tmp_path, requests)
    stored = store_token(app)

    with app.api(auth=True) as client:
        client.get("/auth/me")

    assert [request.url.path for request in requests.seen] == ["/v1/auth/me"]
    assert requests.seen[0].headers["Authorization"] == f"Bearer {stored.token}"


def test_unauthenticated_request_carries_no_token(tmp_path: Path):
    requests = Requests(lambda request: httpx.Response(200, json={"data": [], "next_cursor": None}))
    app = make_app(tmp_path, requests)
    store_token(app)

    with app.api(auth=False) as client:
        client.get("/jobs")
    with app.api(auth=True) as client:
        client.get("/jobs", auth=False)

    assert all("Authorization" not in request.headers for request in requests.seen)


def test_stored_token_is_never_sent_to_another_api(tmp_path: Path):
    requests = Requests()
    app = make_app(tmp_path, requests, api_url=OTHER_API)
    store_token(app, api_url=API)

    with pytest.raises(AuthError) as caught, app.api(auth=True) as client:
        client.get("/auth/me")

    assert caught.value.exit_code == 3
    assert f"issued by {API}" in caught.value.message
    assert "loom login" in (caught.value.hint or "")
    assert "LOOM_PRIVATE_KEY" in (caught.value.hint or "")
    assert requests.seen == []


def test_token_expiring_within_a_minute_is_not_sent(tmp_path: Path):
    requests = Requests()
    app = make_app(tmp_path, requests)
    store_token(app, expires_in=59)

    with pytest.raises(AuthError) as caught, app.api(auth=True) as client:
        client.get("/auth/me")

    assert "expire" in caught.value.message
    assert requests.seen == []


def test_not_logged_in_names_login_command(tmp_path: Path):
    requests = Requests()
    app = make_app(tmp_path, requests)

    with pytest.raises(AuthError) as caught, app.api(auth=True) as client:
        client.get("/auth/me")

    assert f"not logged in to {API}" in caught.value.message
    assert caught.value.hint is not None
    assert "run: loom login" in caught.value.hint
    assert requests.seen == []


def test_rejected_env_token_is_not_renewed(tmp_path: Path):
    requests = Requests(lambda request: httpx.Response(401, json={"error": {"code": "unauthorized", "message": "The token expired."}}))
    app = make_app(tmp_path, requests, LOOM_TOKEN="stale")

    with pytest.raises(AuthError) as caught, app.api(auth=True) as client:
        client.get("/auth/me")

    assert "The token expired." in caught.value.message
    assert "LOOM_TOKEN" in (caught.value.hint or "")
    assert len(requests.seen) == 1


def test_rejected_stored_token_without_key_gives_login_hint(tmp_path: Path):
    requests = Requests(lambda request: httpx.Response(401, json={"error": {"code": "unauthorized", "message": "Unknown token."}}))
    app = make_app(tmp_path, requests)
    store_token(app)

    with pytest.raises(AuthError) as caught, app.api(auth=True) as client:
        client.get("/auth/me")

    assert caught.value.exit_code == 3
    assert "Unknown token." in caught.value.message
    assert "loom login" in (caught.value.hint or "")
    assert len(requests.seen) == 1


class TerminalInput(io.StringIO):
    """A stdin that claims to be a terminal, and fails the test if anything reads it."""

    def isatty(self) -> bool:
        return True

    def readline(self, *args: object) -> str:
        raise AssertionError("loom prompted during automatic renewal")


def test_renewal_never_prompts_on_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import getpass

    monkeypatch.setattr(getpass, "getpass", TerminalInput().readline)
    requests = Requests()
    app = make_app(tmp_path, requests)
    app.stdin = TerminalInput()
    address = Account.from_key(TEST_KEYS[0]).address
    app.credentials.set_keystore(address, fast_keystore(TEST_KEYS[0], "right passphrase"))
    store_token(app, expires_in=-10, address=address)

    with pytest.raises(AuthError) as caught, app.api(auth=True) as client:
        client.get("/auth/me")

    assert caught.value.exit_code == 3
    assert "loom login" in (caught.value.hint or "")
    assert requests.seen == []


def test_provider_caches_token_for_the_process(tmp_path: Path):
    requests = Requests()
    app = make_app(tmp_path, requests)
    store_token(app)
    provider = TokenProvider(app)

    first = provider.token()
    app.credentials.delete_token("default")

    assert provider.token() is first
    assert provider.source == "store"


# -- login and renewal against the in-process sandbox ----------------------------------------

# The in-process transport ignores the host; a loopback URL keeps plain http allowed.
SANDBOX_API = "http://127.0.0.1:9/v1"


class CountingTransport(httpx.BaseTransport):
    """Passes requests to the sandbox app and counts them by method and path."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        return self.inner.handle_request(request)


def sandbox_app(tmp_path: Path, sandbox_client, **env: str) -> tuple[AppContext, CountingTransport]:
    transport = CountingTransport(sandbox_client.transport)
    app = AppContext(
        GlobalOptions(api_url=SANDBOX_API),
        env={"LOOM_CONFIG_DIR": str(tmp_path / "config"), "LOOM_KEYRING_BACKEND": "file", **env},
        stdin=io.StringIO(""),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        transport=transport,
    )
    return app, transport


def test_login_returns_token_bound_to_api(tmp_path: Path, sandbox_client):
    account = Account.create()
    app, transport = sandbox_app(tmp_path, sandbox_client)

    stored = login(app, account)

    assert stored.address == account.address
    assert stored.api_url == SANDBOX_API
    assert transport.calls == ["GET /v1/auth/nonce", "POST /v1/auth/login"]
    claims = jwt.decode(stored.token, options={"verify_signature": False})
    assert stored.expires_at == time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(claims["exp"]))


def test_private_key_login_is_stored_and_reused(tmp_path: Path, sandbox_client):
    account = Account.create()
    key = "0x" + bytes(account.key).hex()
    first_app, first_transport = sandbox_app(tmp_path, sandbox_client, LOOM_PRIVATE_KEY=key)
    second_app, second_transport = sandbox_app(tmp_path, sandbox_client, LOOM_PRIVATE_KEY=key)

    with first_app.api(auth=True) as client:
        me = client.get("/auth/me").data
    with second_app.api(auth=True) as client:
        client.get("/auth/me")

    assert me["address"] == account.address
    assert first_transport.calls == ["GET /v1/auth/nonce", "POST /v1/auth/login", "GET /v1/auth/me"]
    assert second_transport.calls == ["GET /v1/auth/me"]
    assert first_app.credentials.get_token("default").address == account.address  # type: ignore[union-attr]
    assert bytes(account.key).hex() not in (tmp_path / "config" / "data" / "tokens.json").read_text()


def test_private_key_skips_other_wallet_token(tmp_path: Path, sandbox_client):
    stored_for, key_owner = Account.create(), Account.create()
    app, transport = sandbox_app(tmp_path, sandbox_client, LOOM_PRIVATE_KEY="0x" + bytes(key_owner.key).hex())
    app.credentials.set_token("default", login(app, stored_for))
    transport.calls.clear()

    with app.api(auth=True) as client:
        me = client.get("/auth/me").data

    assert me["address"] == key_owner.address
    assert transport.calls == ["GET /v1/auth/nonce", "POST /v1/auth/login", "GET /v1/auth/me"]


@pytest.mark.parametrize("value", ["0x1234", "not hex at all", "0x" + "00" * 32])
def test_invalid_private_key_is_usage_error(tmp_path: Path, sandbox_client, value: str):
    app, transport = sandbox_app(tmp_path, sandbox_client, LOOM_PRIVATE_KEY=value)

    with pytest.raises(UsageError) as caught, app.api(auth=True) as client:
        client.get("/auth/me")

    assert caught.value.exit_code == 2
    assert "LOOM_PRIVATE_KEY" in caught.value.message
    assert value not in caught.value.message
    assert transport.calls == []


def test_renewal_is_logged_with_verbose(tmp_path: Path, sandbox_client):
    account = Account.create()
    app, _ = sandbox_app(tmp_path, sandbox_client, LOOM_PRIVATE_KEY="0x" + bytes(account.key).hex())
    app.options.verbose = 1
    forged = make_jwt(account.address, time.time() + 3000)
    app.credentials.set_token("default", StoredToken(token=forged, api_url=SANDBOX_API, address=account.address, expires_at="2099-01-01T00:00:00.000000Z"))

    with app.api(auth=True) as client:
        client.get("/auth/me")

    log = app.stderr.getvalue()  # type: ignore[attr-defined]
    assert "/auth/me -> 401" in log
    assert "retrying GET" in log
    assert "/auth/me -> 200" in log
    assert forged not in log
