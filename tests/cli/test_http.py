"""Faults of the HTTP layer that a real sandbox cannot produce, through httpx.MockTransport.

Hostnames under `.invalid` never resolve, and every client here has a mock
transport or a loopback URL, so no test opens a connection outside 127.0.0.1.
"""

from __future__ import annotations

import email.utils
import io
import json
import sys
from collections.abc import Callable

import httpx
import pytest

from loom_cli.context import AppContext, GlobalOptions
from loom_cli.errors import ApiUnavailableError, AuthError, ConflictError, NotFoundError, UsageError
from loom_cli.http import MAX_BODY_BYTES, ApiClient, is_loopback_host, parse_retry_after

API = "https://api.example.invalid/v1"


def error_body(code: str, message: str, **details: object) -> dict:
    body: dict = {"error": {"code": code, "message": message}}
    if details:
        body["error"]["details"] = details
    return body


class Recorder:
    """A MockTransport handler that returns a list of responses in turn and records each request."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def make_client(handler: Recorder, *, base_url: str = API, verbose: int = 0, **kwargs: object) -> tuple[ApiClient, list[float], io.StringIO]:
    slept: list[float] = []
    log = io.StringIO()
    client = ApiClient(
        base_url,
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
        clock=lambda: 1_000_000.0,
        verbose=verbose,
        log_stream=log,
        **kwargs,  # type: ignore[arg-type]
    )
    return client, slept, log


def test_success_returns_parsed_json_and_request_id():
    handler = Recorder(httpx.Response(200, json={"data": [], "next_cursor": None}, headers={"X-Request-Id": "req-1"}))
    client, _, _ = make_client(handler)

    response = client.get("/jobs", params={"limit": 5, "cursor": None})

    assert response.status == 200
    assert response.data == {"data": [], "next_cursor": None}
    assert response.request_id == "req-1"
    sent = handler.requests[0]
    assert str(sent.url) == f"{API}/jobs?limit=5"
    assert sent.headers["User-Agent"].startswith("loom/")
    assert len(sent.headers["X-Request-Id"]) == 32
    assert "Authorization" not in sent.headers


def test_request_id_differs_per_attempt():
    handler = Recorder(httpx.Response(503, json=error_body("internal", "Busy.")), httpx.Response(200, json={}))
    client, _, _ = make_client(handler)

    client.get("/jobs")

    ids = [request.headers["X-Request-Id"] for request in handler.requests]
    assert len(set(ids)) == 2


def test_not_modified_has_no_data():
    handler = Recorder(httpx.Response(304, headers={"ETag": '"abc"'}))
    client, _, _ = make_client(handler)

    response = client.get("/jobs", headers={"If-None-Match": '"abc"'})

    assert response.status == 304
    assert response.data is None
    assert handler.requests[0].headers["If-None-Match"] == '"abc"'


@pytest.mark.parametrize(
    ("status", "code", "error_class", "exit_code"),
    [
        (400, "invalid_request", UsageError, 2),
        (413, "payload_too_large", UsageError, 2),
        (422, "invalid_request", UsageError, 2),
        (401, "unauthorized", AuthError, 3),
        (403, "forbidden", ConflictError, 5),
        (404, "not_found", NotFoundError, 4),
        (409, "job_not_open", ConflictError, 5),
        (500, "internal", ApiUnavailableError, 6),
        (405, "method_not_allowed", ApiUnavailableError, 6),
    ],
)
def test_error_statuses_map_to_exit_codes(status: int, code: str, error_class: type, exit_code: int):
    handler = Recorder(httpx.Response(status, json=error_body(code, "The server says no."), headers={"X-Request-Id": "req-9"}))
    client, _, _ = make_client(handler)

    with pytest.raises(error_class) as caught:
        client.post("/jobs", json={"name": "x"})

    assert caught.value.exit_code == exit_code
    assert "The server says no." in caught.value.message
    assert caught.value.request_id == "req-9"
    assert caught.value.api_code == code
    assert len(handler.requests) == 1


def test_error_message_is_escaped_and_names_field():
    body = error_body("invalid_request", "Bad \x1b]0;title\x07 value.", field="inputs[0].path")
    handler = Recorder(httpx.Response(422, json=body))
    client, _, _ = make_client(handler)

    with pytest.raises(UsageError) as caught:
        client.post("/jobs", json={})

    assert "\x1b" not in caught.value.message
    assert "\\x1b]0;title\\x07" in caught.value.message
    assert "field inputs[0].path" in caught.value.message
    assert caught.value.details == {"field": "inputs[0].path"}


@pytest.mark.parametrize(
    ("response", "described"),
    [
        (httpx.Response(404, text="<html><body>Not Found</body></html>", headers={"Content-Type": "text/html"}), "an HTML page"),
        (httpx.Response(400, text="{not json", headers={"Content-Type": "application/json"}), "not valid JSON"),
        (httpx.Response(409, json={"detail": "Conflict"}), "not a Loom API error"),
        (httpx.Response(422, json={"error": {"code": "invalid_request"}}), "not a Loom API error"),
        (httpx.Response(401, json={"error": {"code": 3, "message": "x"}}), "not a Loom API error"),
        (httpx.Response(404, json={"error": {"code": "x", "message": "y", "details": [1]}}), "not a Loom API error"),
        (httpx.Response(404, json=["error"]), "not a Loom API error"),
        (httpx.Response(500, content=b""), "an empty body"),
        (httpx.Response(403, content=b"\xff\xfe not utf-8"), "not valid JSON"),
    ],
    ids=["html", "invalid-json", "other-shape", "missing-message", "code-not-string", "details-list", "array", "empty", "not-utf8"],
)
def test_error_body_of_wrong_shape_is_api_failure(response: httpx.Response, described: str):
    response.headers["X-Request-Id"] = "req-shape"
    handler = Recorder(response)
    client, _, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.post("/jobs", json={})

    assert caught.value.exit_code == 6
    assert described in caught.value.message
    assert f"HTTP {response.status_code}" in caught.value.message
    assert caught.value.request_id == "req-shape"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>welcome</html>", headers={"Content-Type": "text/html"}),
        httpx.Response(200, text="[1, 2"),
        httpx.Response(201, content=b"[" * 100_000 + b"]" * 100_000),
    ],
    ids=["html", "truncated", "deeply-nested"],
)
def test_success_that_is_not_json_is_api_failure(response: httpx.Response):
    handler = Recorder(response)
    client, _, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.get("/jobs")

    assert f"HTTP {response.status_code}" in caught.value.message
    assert "instead of JSON" in caught.value.message
    assert caught.value.request_id


def test_deep_json_is_rejected_before_parsing():
    # eth-account raises the recursion limit this high; json's C parser would then overflow the C stack.
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        handler = Recorder(httpx.Response(200, content=b'{"a":' * 60_000 + b"1" + b"}" * 60_000))
        client, _, _ = make_client(handler)
        with pytest.raises(ApiUnavailableError) as caught:
            client.get("/jobs")
    finally:
        sys.setrecursionlimit(previous)

    assert "nested deeper than 128 levels" in caught.value.message


def test_brackets_inside_strings_do_not_count():
    body = json.dumps({"name": "[" * 2000 + '\\"{' * 100}).encode()
    handler = Recorder(httpx.Response(200, content=body))
    client, _, _ = make_client(handler)

    assert client.get("/jobs").data == json.loads(body)


def test_huge_body_is_not_read_past_the_cap():
    chunks_sent = 0

    def stream():
        nonlocal chunks_sent
        for _ in range(40):
            chunks_sent += 1
            yield b" " * (1024 * 1024)

    handler = Recorder(lambda request: httpx.Response(200, content=stream()))
    client, _, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.get("/jobs")

    assert "larger than 10 MiB" in caught.value.message
    assert chunks_sent <= MAX_BODY_BYTES // (1024 * 1024) + 1
    assert len(handler.requests) == 1


def test_declared_huge_body_is_refused_before_reading():
    handler = Recorder(httpx.Response(200, content=b"{}", headers={"Content-Length": str(MAX_BODY_BYTES + 1)}))
    client, _, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError, match="larger than 10 MiB"):
        client.get("/jobs")


def test_redirect_is_not_followed():
    handler = Recorder(httpx.Response(301, headers={"Location": "https://elsewhere.example.invalid/v1/jobs"}))
    client, _, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.get("/jobs")

    assert len(handler.requests) == 1
    assert "redirect to https://elsewhere.example.invalid/v1/jobs" in caught.value.message
    assert "--api-url" in (caught.value.hint or "")


# -- retries ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_get_retries_retryable_status(status: int):
    handler = Recorder(httpx.Response(status, json=error_body("internal", "Try later.")), httpx.Response(200, json={"ok": True}))
    client, slept, _ = make_client(handler)

    assert client.get("/jobs").data == {"ok": True}
    assert len(handler.requests) == 2
    assert len(slept) == 1


def test_get_gives_up_after_four_attempts():
    handler = Recorder(httpx.Response(503, json=error_body("unavailable", "Down for maintenance."), headers={"X-Request-Id": "last"}))
    client, slept, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.get("/jobs")

    assert len(handler.requests) == 4
    assert len(slept) == 3
    assert sum(slept) <= 30
    assert "gave up after 4 attempts" in caught.value.message
    assert "Down for maintenance." in caught.value.message
    assert caught.value.request_id == "last"


def test_status_500_is_not_retried():
    handler = Recorder(httpx.Response(500, json=error_body("internal", "Bug.")))
    client, slept, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError):
        client.get("/jobs")

    assert len(handler.requests) == 1
    assert slept == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("Connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("Connection reset by peer"),
    ],
    ids=["refused", "read-timeout", "connect-timeout", "closed-before-response", "reset"],
)
def test_transient_network_errors_are_retried(failure: Exception):
    handler = Recorder(failure, httpx.Response(200, json={"ok": True}))
    client, slept, _ = make_client(handler)

    assert client.get("/jobs").data == {"ok": True}
    assert len(handler.requests) == 2
    assert len(slept) == 1


def test_persistent_connection_failure_names_attempts():
    handler = Recorder(httpx.ConnectError("Connection refused"))
    client, _, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.get("/jobs")

    assert len(handler.requests) == 4
    assert "could not connect" in caught.value.message
    assert "Connection refused" in caught.value.message
    assert "gave up after 4 attempts" in caught.value.message
    assert caught.value.request_id == handler.requests[-1].headers["X-Request-Id"]


def test_timeout_message_names_seconds():
    handler = Recorder(httpx.ReadTimeout("timed out"))
    client, _, _ = make_client(handler, timeout=7.5)

    with pytest.raises(ApiUnavailableError, match=r"no response within 7\.5 s"):
        client.get("/jobs")


def test_post_without_idempotency_key_is_not_retried():
    handler = Recorder(httpx.Response(503, json=error_body("unavailable", "Busy.")), httpx.Response(201, json={}))
    client, slept, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.post("/jobs", json={"name": "x"})

    assert len(handler.requests) == 1
    assert slept == []
    assert "not retried" in caught.value.message
    assert "Idempotency-Key" in caught.value.message


def test_post_connection_error_without_key_is_not_retried():
    handler = Recorder(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    client, _, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.post("/jobs/job_1/claim")

    assert len(handler.requests) == 1
    assert "closed before a complete response" in caught.value.message


def test_post_with_idempotency_key_is_retried_with_same_key():
    handler = Recorder(httpx.ConnectError("Connection refused"), httpx.Response(503, json=error_body("x", "Busy.")), httpx.Response(201, json={"id": "job_1"}))
    client, _, _ = make_client(handler)

    response = client.post("/jobs", json={"name": "x"}, idempotency_key="key-123")

    assert response.status == 201
    assert len(handler.requests) == 3
    assert {request.headers["Idempotency-Key"] for request in handler.requests} == {"key-123"}
    assert {request.content for request in handler.requests} == {b'{"name":"x"}'}


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "café"])
def test_invalid_idempotency_key_is_usage_error(key: str):
    handler = Recorder(httpx.Response(201, json={}))
    client, _, _ = make_client(handler)

    with pytest.raises(UsageError, match="invalid idempotency key"):
        client.post("/jobs", json={}, idempotency_key=key)

    assert handler.requests == []


def test_retry_after_seconds_is_honoured():
    handler = Recorder(httpx.Response(429, json=error_body("rate_limited", "Slow down."), headers={"Retry-After": "7"}), httpx.Response(200, json={}))
    client, slept, _ = make_client(handler)

    client.get("/jobs")

    assert slept == [7.0]


def test_retry_after_http_date_is_honoured():
    # The injected clock says 1_000_000; this date is 12 seconds later.
    retry_at = email.utils.formatdate(1_000_012, usegmt=True)
    handler = Recorder(httpx.Response(503, json=error_body("unavailable", "Busy."), headers={"Retry-After": retry_at}), httpx.Response(200, json={}))
    client, slept, _ = make_client(handler)

    client.get("/jobs")

    assert slept == [12.0]


def test_retry_after_beyond_budget_gives_up_at_once():
    handler = Recorder(httpx.Response(429, json=error_body("rate_limited", "Slow down."), headers={"Retry-After": "120"}))
    client, slept, _ = make_client(handler)

    with pytest.raises(ApiUnavailableError) as caught:
        client.get("/jobs")

    assert len(handler.requests) == 1
    assert slept == []
    assert "asked to wait 120 s" in caught.value.message
    assert "Slow down." in caught.value.message
    assert "wait a minute" in (caught.value.hint or "")


def test_backoff_total_stays_within_budget():
    handler = Recorder(httpx.Response(503, json=error_body("unavailable", "Busy."), headers={"Retry-After": "12"}))
    client, slept, _ = make_client(handler, max_attempts=10)

    with pytest.raises(ApiUnavailableError) as caught:
        client.get("/jobs")

    # 12 + 12 fit in 30 s; a third wait of 12 would not.
    assert slept == [12.0, 12.0]
    assert len(handler.requests) == 3
    assert "retry budget" in caught.value.message


def test_exponential_backoff_is_capped_by_budget():
    handler = Recorder(httpx.ConnectError("Connection refused"))
    client, slept, _ = make_client(handler, max_attempts=50, max_backoff=5.0)

    with pytest.raises(ApiUnavailableError, match="5 s retry budget is used up"):
        client.get("/jobs")

    assert sum(slept) == pytest.approx(5.0)
    assert all(seconds >= 0 for seconds in slept)


def test_attempts_and_budget_are_configurable():
    handler = Recorder(httpx.Response(502, json=error_body("bad_gateway", "Upstream down.")))
    client, slept, _ = make_client(handler, max_attempts=2)

    with pytest.raises(ApiUnavailableError, match="gave up after 2 attempts"):
        client.get("/jobs")

    assert len(handler.requests) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0", 0.0), ("Thu, 01 Jan 1970 00:00:10 GMT", 0.0), ("soon", None), ("", None), (None, None), ("-5", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None):
    assert parse_retry_after(value, now=100.0) == expected


# -- where requests may go ---------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url",
    ["http://api.example.invalid/v1", "http://10.1.2.3:8765/v1", "http://127.example.invalid/v1", "http://localhost.example.invalid/v1"],
)
def test_plain_http_to_other_hosts_is_refused(base_url: str):
    handler = Recorder(httpx.Response(200, json={}))
    client, _, _ = make_client(handler, base_url=base_url)

    with pytest.raises(UsageError) as caught:
        client.get("/jobs")

    assert caught.value.exit_code == 2
    assert "plain http" in caught.value.message
    assert "use https" in (caught.value.hint or "")
    assert handler.requests == []


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8765/v1", "http://127.3.4.5/v1", "http://localhost:9/v1", "http://[::1]:9/v1"])
def test_plain_http_to_loopback_is_allowed(base_url: str):
    handler = Recorder(httpx.Response(200, json={}))
    client, _, _ = make_client(handler, base_url=base_url)

    assert client.get("/jobs").status == 200


@pytest.mark.parametrize(
    ("host", "expected"),
    [("localhost", True), ("LOCALHOST.", True), ("127.0.0.1", True), ("127.255.0.9", True), ("::1", True),
     ("[::1]", True), ("128.0.0.1", False), ("localhost.example.invalid", False), ("0.0.0.0", False), ("::", False)],
)
def test_is_loopback_host(host: str, expected: bool):
    assert is_loopback_host(host) is expected


def test_from_context_uses_settings_and_transport():
    handler = Recorder(httpx.Response(200, json={}))
    app = AppContext(
        GlobalOptions(api_url="https://api.example.invalid/v2/", timeout=4.0),
        transport=httpx.MockTransport(handler),
        env={},
    )

    with app.api(auth=False) as client:
        assert client.base_url == "https://api.example.invalid/v2"
        client.get("/jobs")

    assert str(handler.requests[0].url) == "https://api.example.invalid/v2/jobs"
    assert handler.requests[0].extensions["timeout"]["read"] == 4.0


# -- -v and -vv logging ------------------------------------------------------------------


def test_verbose_logs_one_line_per_attempt():
    handler = Recorder(httpx.Response(503, json=error_body("x", "Busy."), headers={"X-Request-Id": "r1"}), httpx.Response(200, json={}, headers={"X-Request-Id": "r2"}))
    client, _, log = make_client(handler, verbose=1)

    client.get("/jobs", params={"limit": 2})

    lines = log.getvalue().splitlines()
    assert lines[0].startswith(f"http: GET {API}/jobs?limit=2 -> 503")
    assert "request id r1, attempt 1/4" in lines[0]
    assert " ms, " in lines[0]
    assert lines[1].startswith("http: retrying in ")
    assert lines[2].startswith(f"http: GET {API}/jobs?limit=2 -> 200")
    assert "request id r2, attempt 2/4" in lines[2]
    assert len(lines) == 3


def test_verbose_logs_connection_failures():
    handler = Recorder(httpx.ConnectError("Connection refused"), httpx.Response(200, json={}))
    client, _, log = make_client(handler, verbose=1)

    client.get("/jobs")

    assert "-> ConnectError: Connection refused" in log.getvalue()


def test_quiet_client_logs_nothing():
    handler = Recorder(httpx.Response(200, json={}))
    client, _, log = make_client(handler, verbose=0)

    client.get("/jobs")

    assert log.getvalue() == ""


def test_very_verbose_redacts_secrets():
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIweDEyMyJ9.c2lnbmF0dXJl"
    signature = "0x" + "ab" * 65
    answer = {"token": token, "token_type": "Bearer", "expires_at": "2030-01-01T00:00:00.000000Z", "note": f"copy {token}"}
    handler = Recorder(httpx.Response(200, json=answer, headers={"Set-Cookie": "session=secret-cookie"}))
    client, _, log = make_client(handler, verbose=2)

    client.post(
        "/auth/login",
        json={"address": "0x" + "1" * 40, "signature": signature, "nested": [{"private_key": "0xdeadbeef"}]},
        headers={"Authorization": f"Bearer {token}"},
        idempotency_key="visible-key",
    )

    text = log.getvalue()
    assert token not in text
    assert signature not in text
    assert "deadbeef" not in text
    assert "secret-cookie" not in text
    assert "[redacted]" in text
    assert "idempotency-key: visible-key" in text
    assert "2030-01-01T00:00:00.000000Z" in text
    assert "0x" + "1" * 40 in text


def test_very_verbose_escapes_server_text():
    handler = Recorder(httpx.Response(200, json={"name": "\x1b[2Jwiped"}, headers={"X-Evil": "a\x1b[31mb"}))
    client, _, log = make_client(handler, verbose=2)

    client.get("/jobs")

    assert "\x1b" not in log.getvalue()
    assert "\\u001b[2Jwiped" in log.getvalue()


def test_request_body_is_compact_json():
    handler = Recorder(httpx.Response(201, json={}))
    client, _, _ = make_client(handler)

    client.post("/jobs", json={"name": "ünï", "reward": {"amount": "1.5"}})

    sent = handler.requests[0]
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.content) == {"name": "ünï", "reward": {"amount": "1.5"}}
