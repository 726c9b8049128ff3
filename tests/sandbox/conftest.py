"""Helpers for the sandbox's own tests: an in-process app with a hand-driven clock, and sample specs."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.fixtures.sandbox import _make_client_class, sign_nonce

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z

JOB_SPEC: dict[str, Any] = {
    "name": "render frames",
    "image": "ubuntu:22.04",
    "command": ["echo", "hello"],
    "resources": {"cpu": 2, "memory": "4Gi"},
    "reward": {"amount": "12.50"},
}


def job_spec(**overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(JOB_SPEC)
    spec.update(overrides)
    return spec


class FakeClock:
    """Epoch seconds that move only when a test calls `advance`."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_client(clock: FakeClock) -> Iterator[Callable[..., Any]]:
    """Build in-process sandbox clients: `make_client(token_ttl=..., rate_limit=..., nonce_factory=...)`.

    All of them share the test's `clock`.
    """
    from loom_cli.sandbox.app import create_app

    clients: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        app = create_app(kwargs.pop("db_path", ":memory:"), **kwargs)
        client = _make_client_class()(app, base_url="http://testserver")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
        client.app.state.db.close()


@pytest.fixture
def api(make_client: Callable[..., Any]) -> Any:
    """An in-process sandbox client on a fresh database, driven by the `clock` fixture."""
    return make_client()


@pytest.fixture
def signed_in(api: Any, new_account: Callable[[], Any]) -> Callable[[], tuple[Any, dict[str, str]]]:
    """Return a factory of fresh accounts logged in to `api`: `account, headers = signed_in()`."""

    def make() -> tuple[Any, dict[str, str]]:
        account = new_account()
        return account, login(api, account)

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_nonce(client: Any, address: str) -> str:
    response = client.get("/v1/auth/nonce", params={"address": address})
    assert response.status_code == 200, response.text
    return response.json()["nonce"]


def login_response(client: Any, address: str, signature: str) -> Any:
    return client.post("/v1/auth/login", json={"address": address, "signature": signature})


def login(client: Any, account: Any) -> dict[str, str]:
    """Log `account` in through the app and return its Authorization header."""
    nonce = get_nonce(client, account.address)
    response = login_response(client, account.address, sign_nonce(account, nonce))
    assert response.status_code == 200, response.text
    return bearer(response.json()["token"])


def create_job(client: Any, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=job_spec(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response: Any) -> dict[str, Any]:
    """Return the contract's error object of a 4xx/5xx response, checking the body's shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"]
    return error
