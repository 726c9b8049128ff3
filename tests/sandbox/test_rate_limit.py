"""`--rate-limit N`: N requests per minute per address, per client IP before login, 429 with Retry-After."""

from __future__ import annotations

import httpx
import pytest

from loom_cli.sandbox.app import create_app
from tests.fixtures.sandbox import _make_client_class, api_login
from tests.sandbox.conftest import bearer, error_of, login


def test_no_limit_by_default(api):
    statuses = {api.get("/v1/jobs").status_code for _ in range(150)}
    assert statuses == {200}


def test_limit_per_ip_before_login(make_client, clock):
    client = make_client(rate_limit=3)
    for _ in range(3):
        assert client.get("/v1/jobs").status_code == 200
    clock.advance(15.2)
    limited = client.get("/v1/jobs")
    assert limited.status_code == 429
    error = error_of(limited)
    assert error["code"] == "rate_limited"
    assert limited.headers["retry-after"] == "45"
    assert error["details"]["retry_after"] == 45
    assert limited.headers["x-request-id"]


def test_window_resets_after_a_minute(make_client, clock):
    client = make_client(rate_limit=2)
    assert client.get("/v1/jobs").status_code == 200
    assert client.get("/v1/jobs").status_code == 200
    assert client.get("/v1/jobs").status_code == 429
    clock.advance(59.5)
    limited = client.get("/v1/jobs")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    clock.advance(0.5)
    assert client.get("/v1/jobs").status_code == 200


def test_addresses_have_their_own_budget(make_client, new_account, clock):
    client = make_client(rate_limit=100)
    alice, bob = new_account(), new_account()
    alice_headers = login(client, alice)
    bob_headers = login(client, bob)
    # Logging in spent four of the IP's requests; each address starts with the full budget.
    client.app.state.sandbox.limiter.limit = 3
    for _ in range(3):
        assert client.get("/v1/auth/me", headers=alice_headers).status_code == 200
    assert client.get("/v1/auth/me", headers=alice_headers).status_code == 429
    assert client.get("/v1/auth/me", headers=bob_headers).status_code == 200


def test_signed_in_requests_do_not_use_ip_budget(make_client, new_account):
    client = make_client(rate_limit=100)
    headers = login(client, new_account())
    client.app.state.sandbox.limiter.limit = 2
    for _ in range(5):
        client.get("/v1/jobs", headers=headers)
    # Login's two requests used up the IP budget; the five signed-in ones did not touch it.
    assert client.get("/v1/jobs").status_code == 429


def test_ips_have_their_own_budget(clock):
    app = create_app(":memory:", rate_limit=1, clock=clock)
    client_class = _make_client_class()
    with client_class(app, client=("192.0.2.1", 1000)) as first, client_class(app, client=("192.0.2.2", 1000)) as second:
        assert first.get("/v1/jobs").status_code == 200
        assert first.get("/v1/jobs").status_code == 429
        assert second.get("/v1/jobs").status_code == 200
    app.state.db.close()


def test_bad_tokens_count_against_ip(make_client):
    client = make_client(rate_limit=2)
    assert client.get("/v1/auth/me", headers=bearer("guess-1")).status_code == 401
    assert client.get("/v1/auth/me", headers=bearer("guess-2")).status_code == 401
    assert client.get("/v1/auth/me", headers=bearer("guess-3")).status_code == 429


@pytest.mark.parametrize("path", ["/v1/auth/nonce?address=0x52908400098527886e0f7030069857d2e4169ee7", "/v1/jobs"])
def test_unauthenticated_endpoints_are_limited(make_client, path):
    client = make_client(rate_limit=1)
    assert client.get(path).status_code == 200
    assert client.get(path).status_code == 429


def test_rate_limit_over_http(start_sandbox, new_account):
    sandbox = start_sandbox("--rate-limit", "5")
    account = new_account()
    token = api_login(sandbox.url, account)
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        statuses = [client.get(f"{sandbox.url}/auth/me", headers=bearer(token)).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        limited = client.get(f"{sandbox.url}/auth/me", headers=bearer(token))
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Login used two of the IP's five requests; three are left before login is limited too.
        anonymous = [client.get(f"{sandbox.url}/jobs").status_code for _ in range(4)]
        assert anonymous == [200, 200, 200, 429]
