"""HTTP rules that hold for every endpoint: 404 and 405 bodies, no redirects, request ids, error shape."""

from __future__ import annotations

import logging

import pytest

from tests.sandbox.conftest import error_of, login

ENDPOINTS = {
    "/v1/auth/nonce": {"GET"},
    "/v1/auth/login": {"POST"},
    "/v1/auth/me": {"GET"},
    "/v1/jobs": {"GET", "POST"},
    "/v1/jobs/job_abc": {"GET"},
    "/v1/jobs/job_abc/claim": {"POST"},
    "/v1/jobs/job_abc/cancel": {"POST"},
    "/v1/jobs/job_abc/results": {"GET", "POST"},
}


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_wrong_method_is_405_with_allow(api, path, method):
    if method in ENDPOINTS[path]:
        return
    response = api.request(method, path)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert set(response.headers["allow"].split(", ")) == ENDPOINTS[path]
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "path",
    ["/v1/jobs/", "/v1/auth/nonce/", "/jobs", "/", "/v1", "/v1/", "/v2/jobs", "/v1/jobs/job_abc/", "/v1/jobs/job_abc/claim/", "/v1/jobs/a/b/c"],
)
def test_unknown_paths_are_404_without_redirect(api, path):
    response = api.get(path, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert error_of(response)["code"] == "not_found"


def test_trailing_slash_post_is_404(api, new_account):
    headers = login(api, new_account())
    response = api.post("/v1/jobs/", json={}, headers=headers, follow_redirects=False)
    assert response.status_code == 404


@pytest.mark.parametrize("request_id", ["abc", "A.b_c:d-9", "x" * 128, "0123456789"])
def test_valid_request_id_is_echoed(api, request_id):
    response = api.get("/v1/jobs", headers={"X-Request-Id": request_id})
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize("request_id", ["x" * 129, "has space", "semi;colon", "slash/", "ünï", "a\tb", ""])
def test_invalid_request_id_is_replaced(api, request_id):
    response = api.get("/v1/jobs", headers={"X-Request-Id": request_id.encode("utf-8")})
    generated = response.headers["x-request-id"]
    assert generated != request_id
    assert generated.startswith("req_")


def test_generated_request_ids_are_unique(api):
    ids = {api.get("/v1/jobs").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/nowhere", 404),
        ("DELETE", "/v1/jobs", 405),
        ("GET", "/v1/auth/me", 401),
        ("GET", "/v1/jobs?limit=0", 400),
        ("POST", "/v1/auth/login", 400),
    ],
)
def test_errors_carry_request_id(api, method, path, status):
    response = api.request(method, path, headers={"X-Request-Id": "trace-1"})
    assert response.status_code == status
    assert response.headers["x-request-id"] == "trace-1"
    assert response.headers["content-type"] == "application/json"
    error_of(response)


def test_unexpected_error_is_500_body(make_client, caplog):
    client = make_client()

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    client.app.state.sandbox.jobs.list = explode
    with caplog.at_level(logging.ERROR, logger="loom.sandbox"):
        response = client.get("/v1/jobs", headers={"X-Request-Id": "trace-500"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-500"
    error = error_of(response)
    assert error["code"] == "internal"
    assert "trace-500" in error["message"]
    assert "boom" not in response.text
    assert any("trace-500" in record.getMessage() for record in caplog.records)


def test_request_logged_once(api, caplog):
    with caplog.at_level(logging.INFO, logger="loom.sandbox"):
        api.get("/v1/jobs?limit=5&note=private", headers={"X-Request-Id": "log-me"})
    lines = [record.getMessage() for record in caplog.records if "log-me" in record.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith("GET /v1/jobs 200 ")
    assert "private" not in lines[0]


def test_control_characters_in_path_are_escaped_in_log(api, caplog):
    with caplog.at_level(logging.INFO, logger="loom.sandbox"):
        api.get("/v1/jobs/job_%1b%5b31m")
    messages = [record.getMessage() for record in caplog.records]
    assert not any("\x1b" in message for message in messages)
    assert any("\\x1b" in message for message in messages)


def test_openapi_document_is_served(api):
    response = api.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.1")
