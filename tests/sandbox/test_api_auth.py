"""Login through the in-process app: nonces, signatures, tokens, and every rejection's code."""

from __future__ import annotations

import base64
import json
import re
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from tests.fixtures.sandbox import sign_nonce
from tests.sandbox.conftest import bearer, error_of, get_nonce, login, login_response

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def signature_with_v(account, nonce: str, v: int) -> str:
    signed = account.sign_message(encode_defunct(text=nonce))
    raw = bytearray(signed.signature)
    raw[64] = v
    return raw.hex()


def decode_unverified(token: str) -> tuple[dict, dict]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


# ---- nonce -----------------------------------------------------------------------------------


def test_nonce_for_lowercase_address(api, new_account):
    account = new_account()
    response = api.get("/v1/auth/nonce", params={"address": account.address.lower()})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"address", "nonce", "expires_at"}
    assert body["address"] == account.address
    assert re.fullmatch(r"[A-Za-z0-9]{16,64}", body["nonce"])
    assert TIMESTAMP.match(body["expires_at"])
    assert body["expires_at"] == "2026-01-01T00:05:00.000000Z"


def test_nonces_are_unique(api, new_account):
    address = new_account().address
    nonces = {get_nonce(api, address) for _ in range(10)}
    assert len(nonces) == 10


@pytest.mark.parametrize("form", ["lower", "upper", "checksum"])
def test_nonce_accepts_address_forms(api, new_account, form):
    account = new_account()
    digits = account.address[2:]
    address = {"lower": "0x" + digits.lower(), "upper": "0x" + digits.upper(), "checksum": account.address}[form]
    response = api.get("/v1/auth/nonce", params={"address": address})
    assert response.status_code == 200
    assert response.json()["address"] == account.address


@pytest.mark.parametrize(
    "address",
    [
        "0x52908400098527886E0F7030069857D2E4169EE7".replace("E7", "e7"),  # mixed case, bad checksum
        "0x123",
        "52908400098527886e0f7030069857d2e4169ee7",
        "0x52908400098527886e0f7030069857d2e4169eeg",
        "0x52908400098527886e0f7030069857d2e4169ee7 ",
        "0X52908400098527886E0F7030069857D2E4169EE7",
    ],
)
def test_nonce_rejects_invalid_address(api, address):
    response = api.get("/v1/auth/nonce", params={"address": address})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_address"
    assert error["details"]["field"] == "address"


@pytest.mark.parametrize("query", ["", "?address=", "?addr=0x52908400098527886e0f7030069857d2e4169ee7"])
def test_nonce_missing_address_is_400(api, query):
    response = api.get("/v1/auth/nonce" + query)
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_address"


def test_nonce_ignores_authorization(api, new_account):
    response = api.get("/v1/auth/nonce", params={"address": new_account().address}, headers=bearer("not-a-token"))
    assert response.status_code == 200


# ---- login -----------------------------------------------------------------------------------


def test_login_issues_hs256_token(api, new_account, clock):
    account = new_account()
    nonce = get_nonce(api, account.address)
    response = login_response(api, account.address, sign_nonce(account, nonce))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "token_type", "expires_at", "address"}
    assert body["token_type"] == "Bearer"
    assert body["address"] == account.address
    assert body["expires_at"] == "2026-01-01T01:00:00.000000Z"
    header, claims = decode_unverified(body["token"])
    assert header["alg"] == "HS256"
    assert claims["sub"] == account.address
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] == int(clock.now) + 3600
    assert re.fullmatch(r"[0-9a-f]{32}", claims["jti"])


def test_token_ttl_is_configurable(make_client, new_account, clock):
    client = make_client(token_ttl=90)
    headers = login(client, new_account())
    _, claims = decode_unverified(headers["Authorization"].split()[1])
    assert claims["exp"] - claims["iat"] == 90


def test_each_login_gets_a_new_jti(api, new_account):
    account = new_account()
    first = login(api, account)["Authorization"].split()[1]
    second = login(api, account)["Authorization"].split()[1]
    assert decode_unverified(first)[1]["jti"] != decode_unverified(second)[1]["jti"]


@pytest.mark.parametrize("v_form", ["27/28", "0/1"])
@pytest.mark.parametrize("prefix", ["0x", "", "0X"])
def test_login_accepts_signature_forms(api, new_account, v_form, prefix):
    account = new_account()
    nonce = get_nonce(api, account.address)
    signed = account.sign_message(encode_defunct(text=nonce))
    v = signed.v if v_form == "27/28" else signed.v - 27
    signature = prefix + signature_with_v(account, nonce, v)
    response = login_response(api, account.address, signature)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("case", ["upper", "lower"])
def test_login_accepts_hex_case(api, new_account, case):
    account = new_account()
    nonce = get_nonce(api, account.address)
    hex_signature = sign_nonce(account, nonce)[2:]
    hex_signature = hex_signature.upper() if case == "upper" else hex_signature.lower()
    assert login_response(api, account.address, "0x" + hex_signature).status_code == 200


def test_address_forms_are_one_account(api, new_account):
    account = new_account()
    digits = account.address[2:]
    subjects = set()
    for address in ("0x" + digits.lower(), "0x" + digits.upper(), account.address):
        nonce = get_nonce(api, address)
        response = login_response(api, address, sign_nonce(account, nonce))
        assert response.status_code == 200, response.text
        assert response.json()["address"] == account.address
        subjects.add(decode_unverified(response.json()["token"])[1]["sub"])
    assert subjects == {account.address}


def test_nonce_for_one_form_logs_in_with_another(api, new_account):
    account = new_account()
    nonce = get_nonce(api, account.address.lower())
    response = login_response(api, "0x" + account.address[2:].upper(), sign_nonce(account, nonce))
    assert response.status_code == 200


@pytest.mark.parametrize("nonce", ["1234567890123456", "0x1234567890abcdef1234", "0xdeadbeefdeadbeefdeadbeefdeadbeef", "00000000000000000000"])
def test_hex_looking_nonce_is_signed_as_text(make_client, new_account, nonce):
    client = make_client(nonce_factory=lambda: nonce)
    account = new_account()
    assert get_nonce(client, account.address) == nonce

    # A signature over the bytes the nonce would decode to, as if it were hex, is not a login.
    raw = bytes.fromhex(nonce.removeprefix("0x")) if len(nonce.removeprefix("0x")) % 2 == 0 else nonce.encode()
    as_bytes = account.sign_message(encode_defunct(primitive=raw)).signature.hex()
    rejected = login_response(client, account.address, as_bytes)
    assert rejected.status_code == 401
    assert error_of(rejected)["code"] == "invalid_signature"

    accepted = login_response(client, account.address, sign_nonce(account, nonce))
    assert accepted.status_code == 200, accepted.text


def test_used_nonce_is_rejected(api, new_account):
    account = new_account()
    nonce = get_nonce(api, account.address)
    signature = sign_nonce(account, nonce)
    assert login_response(api, account.address, signature).status_code == 200
    again = login_response(api, account.address, signature)
    assert again.status_code == 401
    assert error_of(again)["code"] == "nonce_not_found"


def test_used_nonce_beside_live_one(api, new_account):
    account = new_account()
    first = get_nonce(api, account.address)
    signature = sign_nonce(account, first)
    assert login_response(api, account.address, signature).status_code == 200
    get_nonce(api, account.address)
    again = login_response(api, account.address, signature)
    assert again.status_code == 401
    assert error_of(again)["code"] == "invalid_signature"


def test_never_issued_nonce_is_not_found(api, new_account):
    account = new_account()
    response = login_response(api, account.address, sign_nonce(account, "abcdefghijklmnop"))
    assert response.status_code == 401
    assert error_of(response)["code"] == "nonce_not_found"


def test_nonce_of_another_address_is_rejected(api, new_account):
    alice, mallory = new_account(), new_account()
    alice_nonce = get_nonce(api, alice.address)

    # Mallory has no nonce, so there is nothing to check her signature against.
    stolen = login_response(api, mallory.address, sign_nonce(mallory, alice_nonce))
    assert stolen.status_code == 401
    assert error_of(stolen)["code"] == "nonce_not_found"

    # With a nonce of her own, a signature over Alice's nonce still matches nothing.
    get_nonce(api, mallory.address)
    stolen = login_response(api, mallory.address, sign_nonce(mallory, alice_nonce))
    assert stolen.status_code == 401
    assert error_of(stolen)["code"] == "invalid_signature"

    # Alice's nonce was not consumed by either attempt.
    assert login_response(api, alice.address, sign_nonce(alice, alice_nonce)).status_code == 200


def test_signature_by_another_wallet_is_invalid(api, new_account):
    alice, mallory = new_account(), new_account()
    nonce = get_nonce(api, alice.address)
    response = login_response(api, alice.address, sign_nonce(mallory, nonce))
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_signature"
    assert login_response(api, alice.address, sign_nonce(alice, nonce)).status_code == 200


def test_expired_nonce_is_rejected(api, new_account, clock):
    account = new_account()
    nonce = get_nonce(api, account.address)
    clock.advance(300)
    response = login_response(api, account.address, sign_nonce(account, nonce))
    assert response.status_code == 401
    assert error_of(response)["code"] == "nonce_expired"


def test_nonce_valid_until_just_before_expiry(api, new_account, clock):
    account = new_account()
    nonce = get_nonce(api, account.address)
    clock.advance(299.9)
    assert login_response(api, account.address, sign_nonce(account, nonce)).status_code == 200


def test_expired_nonce_forgotten_after_a_day(api, new_account, clock):
    account = new_account()
    nonce = get_nonce(api, account.address)
    clock.advance(300 + 24 * 3600 + 1)
    response = login_response(api, account.address, sign_nonce(account, nonce))
    assert response.status_code == 401
    assert error_of(response)["code"] == "nonce_not_found"


def test_live_nonce_wins_over_expired_one(api, new_account, clock):
    account = new_account()
    old = get_nonce(api, account.address)
    clock.advance(301)
    fresh = get_nonce(api, account.address)
    expired = login_response(api, account.address, sign_nonce(account, old))
    assert expired.status_code == 401
    assert error_of(expired)["code"] == "invalid_signature"
    assert login_response(api, account.address, sign_nonce(account, fresh)).status_code == 200


def test_sixteen_live_nonces_all_log_in(api, new_account):
    account = new_account()
    nonces = [get_nonce(api, account.address) for _ in range(16)]
    for nonce in reversed(nonces):
        response = login_response(api, account.address, sign_nonce(account, nonce))
        assert response.status_code == 200, response.text


def test_seventeenth_nonce_drops_the_oldest(api, new_account):
    account = new_account()
    nonces = [get_nonce(api, account.address) for _ in range(17)]
    dropped = login_response(api, account.address, sign_nonce(account, nonces[0]))
    assert dropped.status_code == 401
    assert error_of(dropped)["code"] == "invalid_signature"
    for nonce in nonces[1:]:
        assert login_response(api, account.address, sign_nonce(account, nonce)).status_code == 200


def test_expired_nonces_do_not_count_toward_limit(api, new_account, clock):
    account = new_account()
    for _ in range(16):
        get_nonce(api, account.address)
    clock.advance(301)
    fresh = [get_nonce(api, account.address) for _ in range(16)]
    for nonce in fresh:
        assert login_response(api, account.address, sign_nonce(account, nonce)).status_code == 200


def test_parallel_logins_from_one_wallet(api, new_account):
    account = new_account()
    nonces = [get_nonce(api, account.address) for _ in range(8)]
    signatures = [sign_nonce(account, nonce) for nonce in nonces]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda signature: login_response(api, account.address, signature).status_code, signatures))
    assert statuses == [200] * 8


@pytest.mark.parametrize(
    "signature",
    ["", "0x", "0x1234", "zz" * 65, "0x" + "ab" * 64, "0x" + "ab" * 66, "ab" * 65 + " ", 12345, None, ["0x00"]],
)
def test_malformed_signature_is_422_and_consumes_nothing(api, new_account, signature):
    account = new_account()
    nonce = get_nonce(api, account.address)
    response = api.post("/v1/auth/login", json={"address": account.address, "signature": signature})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["details"]["field"] == "signature"
    assert login_response(api, account.address, sign_nonce(account, nonce)).status_code == 200


def test_signature_with_unknown_v_is_invalid(api, new_account):
    account = new_account()
    nonce = get_nonce(api, account.address)
    response = login_response(api, account.address, signature_with_v(account, nonce, 37))
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_signature"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"signature": "0x" + "00" * 65}, "invalid_address", "address"),
        ({"address": "0x1234", "signature": "0x" + "00" * 65}, "invalid_address", "address"),
        ({"address": "0x52908400098527886E0F7030069857D2E4169Ee7", "signature": "0x" + "00" * 65}, "invalid_address", "address"),
        ({"address": 5, "signature": "0x" + "00" * 65}, "invalid_address", "address"),
        ({"address": "0x52908400098527886e0f7030069857d2e4169ee7"}, "invalid_request", "signature"),
        ({"address": "0x52908400098527886e0f7030069857d2e4169ee7", "signature": "0x" + "00" * 65, "nonce": "x"}, "invalid_request", "nonce"),
    ],
)
def test_login_body_schema_errors(api, body, code, field):
    response = api.post("/v1/auth/login", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == code
    assert error["details"]["field"] == field


@pytest.mark.parametrize("content", [b"[]", b'"0xabc"', b"1", b"null"])
def test_login_body_not_object_is_422(api, content):
    response = api.post("/v1/auth/login", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422


@pytest.mark.parametrize("content", [b"", b"{", b"address=0x1", b'{"address": NaN}', b"\xff\xfe"])
def test_login_body_not_json_is_400(api, content):
    response = api.post("/v1/auth/login", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


def test_login_ignores_authorization(api, new_account):
    account = new_account()
    nonce = get_nonce(api, account.address)
    response = api.post(
        "/v1/auth/login",
        json={"address": account.address, "signature": sign_nonce(account, nonce)},
        headers=bearer("garbage"),
    )
    assert response.status_code == 200


# ---- tokens ----------------------------------------------------------------------------------


def test_me_returns_address_and_expiry(api, new_account):
    account = new_account()
    response = api.get("/v1/auth/me", headers=login(api, account))
    assert response.status_code == 200
    assert response.json() == {"address": account.address, "expires_at": "2026-01-01T01:00:00.000000Z"}


def test_me_without_token_is_401(api):
    response = api.get("/v1/auth/me")
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_expired_token_is_401(api, new_account, clock):
    headers = login(api, new_account())
    clock.advance(3599)
    assert api.get("/v1/auth/me", headers=headers).status_code == 200
    clock.advance(1)
    response = api.get("/v1/auth/me", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert "expired" in error_of(response)["message"]


def _tamper(token: str, **changes) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{encoded}.{signature}"


def test_tampered_token_is_401(api, new_account):
    victim = new_account()
    token = login(api, new_account())["Authorization"].split()[1]
    forged = _tamper(token, sub=victim.address)
    response = api.get("/v1/auth/me", headers=bearer(forged))
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_token_with_extended_expiry_is_401(api, new_account):
    token = login(api, new_account())["Authorization"].split()[1]
    forged = _tamper(token, exp=4_000_000_000)
    assert api.get("/v1/auth/me", headers=bearer(forged)).status_code == 401


def test_alg_none_token_is_401(api, new_account, clock):
    account = new_account()
    claims = {"sub": account.address, "iat": int(clock.now), "exp": int(clock.now) + 3600, "jti": "0" * 32}
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).decode().rstrip("=")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        response = api.get("/v1/auth/me", headers=bearer(token))
        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthorized"


def test_token_signed_with_other_key_is_401(api, new_account, clock):
    account = new_account()
    claims = {"sub": account.address, "iat": int(clock.now), "exp": int(clock.now) + 3600, "jti": "0" * 32}
    forged = jwt.encode(claims, "a guessed secret that is long enough", algorithm="HS256")
    assert api.get("/v1/auth/me", headers=bearer(forged)).status_code == 401


def test_token_from_another_sandbox_is_401(make_client, new_account):
    first, second = make_client(), make_client()
    headers = login(first, new_account())
    assert second.get("/v1/auth/me", headers=headers).status_code == 401


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token abc", "Bearerabc"])
def test_malformed_authorization_is_401(api, header):
    response = api.get("/v1/auth/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_bearer_scheme_is_case_insensitive(api, new_account):
    token = login(api, new_account())["Authorization"].split()[1]
    assert api.get("/v1/auth/me", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_list_jobs_token_optional(api, new_account, clock):
    assert api.get("/v1/jobs").status_code == 200
    bad = api.get("/v1/jobs", headers=bearer("nope"))
    assert bad.status_code == 401
    assert error_of(bad)["code"] == "unauthorized"
    headers = login(api, new_account())
    assert api.get("/v1/jobs", headers=headers).status_code == 200
    clock.advance(3600)
    assert api.get("/v1/jobs", headers=headers).status_code == 401


def test_account_recovery_matches_eth_account(new_account):
    # The login check recovers with eth_account exactly as a client library signs.
    from loom_cli.sandbox.auth import parse_signature, recover_signer

    account = Account.create()
    signature = parse_signature(sign_nonce(account, "SomeNonce1234567"))
    assert signature is not None
    assert recover_signer("SomeNonce1234567", signature) == account.address
    assert recover_signer("OtherNonce123456", signature) != account.address
