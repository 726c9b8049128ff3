"""The sandbox over real loopback HTTP: the `loom sandbox` subprocess, and the app under uvicorn in a thread.

Everything here signs with real keys and talks through real sockets. The uvicorn-in-a-thread
server is for the cases that need an injected nonce or clock.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from eth_account.messages import encode_defunct

from tests.fixtures.sandbox import api_login, sign_nonce
from tests.sandbox.conftest import FakeClock, job_spec


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class ThreadedSandbox:
    """The sandbox app served by uvicorn on a free loopback port, in a background thread."""

    def __init__(self, **app_options) -> None:
        import uvicorn

        from loom_cli.sandbox.app import create_app

        self.app = create_app(":memory:", **app_options)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ThreadedSandbox:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.server.started
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
        self.app.state.db.close()


# ---- the scripted walkthrough ----------------------------------------------------------------


def test_walkthrough_list_login_create_status(sandbox_url, http, new_account):
    listing = http.get(f"{sandbox_url}/jobs", params={"limit": "5"})
    assert listing.status_code == 200
    assert set(listing.json()) == {"data", "next_cursor"}

    account = new_account()
    nonce = http.get(f"{sandbox_url}/auth/nonce", params={"address": account.address})
    assert nonce.status_code == 200
    signature = account.sign_message(encode_defunct(text=nonce.json()["nonce"])).signature.hex()
    login = http.post(f"{sandbox_url}/auth/login", json={"address": account.address, "signature": signature})
    assert login.status_code == 200
    token = login.json()["token"]

    created = http.post(f"{sandbox_url}/jobs", json=job_spec(name="walkthrough"), headers=bearer(token))
    assert created.status_code == 201
    job_id = created.json()["id"]
    assert created.headers["location"] == f"/v1/jobs/{job_id}"

    status = http.get(f"{sandbox_url}/jobs/{job_id}", headers=bearer(token))
    assert status.status_code == 200
    assert status.json()["status"] == "Open"
    assert status.json()["creator"] == account.address
    assert status.json()["reward"] == {"amount": "12.5", "currency": "LOOM"}

    mine = http.get(f"{sandbox_url}/jobs", params={"creator": account.address.lower()})
    assert [job["id"] for job in mine.json()["data"]] == [job_id]


def test_full_job_lifecycle(sandbox_url, http, new_account):
    creator, worker = new_account(), new_account()
    creator_headers = bearer(api_login(sandbox_url, creator))
    worker_headers = bearer(api_login(sandbox_url, worker))
    job = http.post(f"{sandbox_url}/jobs", json=job_spec(), headers=creator_headers).json()

    claim = http.post(f"{sandbox_url}/jobs/{job['id']}/claim", headers={**worker_headers, "Idempotency-Key": "c1"})
    assert claim.status_code == 200
    assert claim.json()["worker"] == worker.address

    report = http.post(
        f"{sandbox_url}/jobs/{job['id']}/results",
        json={"outcome": "Completed", "output": {"frames": 120}},
        headers={**worker_headers, "Idempotency-Key": "r1"},
    )
    assert report.status_code == 201

    result = http.get(f"{sandbox_url}/jobs/{job['id']}/results", headers=creator_headers)
    assert result.status_code == 200
    assert result.json()["output"] == {"frames": 120}
    final = http.get(f"{sandbox_url}/jobs/{job['id']}", headers=creator_headers).json()
    assert final["status"] == "Completed"
    assert final["finished_at"] is not None


# ---- auth over HTTP --------------------------------------------------------------------------


def test_address_forms_and_v_forms(sandbox_url, http, new_account):
    account = new_account()
    digits = account.address[2:]
    for address, v_offset in (("0x" + digits.lower(), 0), ("0x" + digits.upper(), -27), (account.address, 0)):
        nonce = http.get(f"{sandbox_url}/auth/nonce", params={"address": address}).json()["nonce"]
        raw = bytearray(account.sign_message(encode_defunct(text=nonce)).signature)
        raw[64] += v_offset
        login = http.post(f"{sandbox_url}/auth/login", json={"address": address, "signature": raw.hex()})
        assert login.status_code == 200, login.text
        assert login.json()["address"] == account.address


def test_login_rejections_over_http(sandbox_url, http, new_account):
    alice, mallory = new_account(), new_account()
    nonce = http.get(f"{sandbox_url}/auth/nonce", params={"address": alice.address}).json()["nonce"]

    stolen = http.post(f"{sandbox_url}/auth/login", json={"address": mallory.address, "signature": sign_nonce(mallory, nonce)})
    assert stolen.status_code == 401
    assert stolen.json()["error"]["code"] == "nonce_not_found"

    wrong_signer = http.post(f"{sandbox_url}/auth/login", json={"address": alice.address, "signature": sign_nonce(mallory, nonce)})
    assert wrong_signer.status_code == 401
    assert wrong_signer.json()["error"]["code"] == "invalid_signature"

    short = http.post(f"{sandbox_url}/auth/login", json={"address": alice.address, "signature": "0x1234"})
    assert short.status_code == 422

    signature = sign_nonce(alice, nonce)
    assert http.post(f"{sandbox_url}/auth/login", json={"address": alice.address, "signature": signature}).status_code == 200
    reused = http.post(f"{sandbox_url}/auth/login", json={"address": alice.address, "signature": signature})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "nonce_not_found"


def test_tampered_and_unsigned_tokens_over_http(sandbox_url, http, new_account):
    token = api_login(sandbox_url, new_account())
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = new_account().address
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    for forged in (f"{header}.{forged_payload}.{signature}", f"{none_header}.{forged_payload}.", token[:-3] + "AAA"):
        response = http.get(f"{sandbox_url}/auth/me", headers=bearer(forged))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_short_token_ttl_expires(start_sandbox, http, new_account):
    sandbox = start_sandbox("--token-ttl", "1")
    token = api_login(sandbox.url, new_account())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = http.get(f"{sandbox.url}/auth/me", headers=bearer(token))
        if response.status_code == 401:
            break
        time.sleep(0.2)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "expired" in response.json()["error"]["message"]


def test_hex_looking_nonce_over_http(http, new_account):
    nonce = "0x1234567890abcdef1234567890abcdef"
    with ThreadedSandbox(nonce_factory=lambda: nonce) as sandbox:
        account = new_account()
        issued = http.get(f"{sandbox.url}/auth/nonce", params={"address": account.address}).json()["nonce"]
        assert issued == nonce
        as_bytes = account.sign_message(encode_defunct(hexstr=nonce)).signature.hex()
        rejected = http.post(f"{sandbox.url}/auth/login", json={"address": account.address, "signature": as_bytes})
        assert rejected.status_code == 401
        assert rejected.json()["error"]["code"] == "invalid_signature"
        accepted = http.post(f"{sandbox.url}/auth/login", json={"address": account.address, "signature": sign_nonce(account, nonce)})
        assert accepted.status_code == 200


def test_expired_nonce_over_http(http, new_account):
    clock = FakeClock()
    with ThreadedSandbox(clock=clock) as sandbox:
        account = new_account()
        nonce = http.get(f"{sandbox.url}/auth/nonce", params={"address": account.address}).json()["nonce"]
        clock.advance(301)
        response = http.post(f"{sandbox.url}/auth/login", json={"address": account.address, "signature": sign_nonce(account, nonce)})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "nonce_expired"


# ---- concurrency -----------------------------------------------------------------------------


def test_concurrent_claims_have_one_winner(sandbox_url, new_account):
    creator = new_account()
    creator_headers = bearer(api_login(sandbox_url, creator))
    workers = [bearer(api_login(sandbox_url, new_account())) for _ in range(4)]
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        jobs = [client.post(f"{sandbox_url}/jobs", json=job_spec(), headers=creator_headers).json()["id"] for _ in range(5)]

    def claim(job_id: str, headers: dict[str, str], barrier: threading.Barrier) -> int:
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            barrier.wait()
            return client.post(f"{sandbox_url}/jobs/{job_id}/claim", headers=headers).status_code

    for job_id in jobs:
        barrier = threading.Barrier(len(workers))
        with ThreadPoolExecutor(max_workers=len(workers)) as pool:
            statuses = list(pool.map(lambda headers: claim(job_id, headers, barrier), workers))
        assert sorted(statuses) == [200, 409, 409, 409], (job_id, statuses)


def test_concurrent_idempotent_creates_make_one_job(sandbox_url, new_account):
    account = new_account()
    headers = {**bearer(api_login(sandbox_url, account)), "Idempotency-Key": "burst-create"}
    barrier = threading.Barrier(6)

    def create() -> httpx.Response:
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            barrier.wait()
            return client.post(f"{sandbox_url}/jobs", json=job_spec(name="burst"), headers=headers)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: create(), range(6)))
    created_ids = {response.json()["id"] for response in responses if response.status_code == 201}
    assert len(created_ids) == 1
    assert all(response.status_code in (201, 409) for response in responses)
    listing = httpx.get(f"{sandbox_url}/jobs", params={"creator": account.address}, trust_env=False).json()["data"]
    assert [job["id"] for job in listing] == list(created_ids)


# ---- paging ----------------------------------------------------------------------------------


def test_paging_250_jobs_over_http(sandbox_url, http, new_account):
    account = new_account()
    headers = bearer(api_login(sandbox_url, account))
    created = [http.post(f"{sandbox_url}/jobs", json=job_spec(name=f"page {n}"), headers=headers).json()["id"] for n in range(250)]

    seen: list[str] = []
    cursor = None
    while True:
        params = {"creator": account.address, "limit": "33"}
        if cursor:
            params["cursor"] = cursor
        page = http.get(f"{sandbox_url}/jobs", params=params).json()
        seen += [job["id"] for job in page["data"]]
        # New jobs posted while paging must not shift or repeat what is left.
        http.post(f"{sandbox_url}/jobs", json=job_spec(name="late"), headers=headers)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


# ---- limits and HTTP rules -------------------------------------------------------------------


def test_oversized_body_gets_413_response(sandbox_url, http, new_account):
    headers = bearer(api_login(sandbox_url, new_account()))
    body = json.dumps(job_spec(description="x" * (3 * 1024 * 1024))).encode()
    response = http.post(f"{sandbox_url}/jobs", content=body, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    # The connection stays usable for the next request.
    assert http.get(f"{sandbox_url}/jobs", params={"limit": "1"}).status_code == 200


def test_oversized_body_with_bad_token_gets_401(sandbox_url, http):
    body = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    response = http.post(f"{sandbox_url}/jobs", content=body, headers={**bearer("bad"), "Content-Type": "application/json"})
    assert response.status_code == 401


def test_deep_body_is_400_over_http(sandbox_url, http, new_account):
    headers = bearer(api_login(sandbox_url, new_account()))
    response = http.post(f"{sandbox_url}/jobs", content=b"[" * 100_000, headers={**headers, "Content-Type": "application/json"})
    assert response.status_code == 400


def test_http_rules_over_http(sandbox_url, http):
    moved = http.get(f"{sandbox_url}/jobs/", follow_redirects=False)
    assert moved.status_code == 404
    assert "location" not in moved.headers

    wrong = http.delete(f"{sandbox_url}/jobs")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, POST"

    echoed = http.get(f"{sandbox_url}/jobs", headers={"X-Request-Id": "ci:run-7.step_2"})
    assert echoed.headers["x-request-id"] == "ci:run-7.step_2"
    replaced = http.get(f"{sandbox_url}/jobs", headers={"X-Request-Id": "bad id!"})
    assert replaced.headers["x-request-id"].startswith("req_")
