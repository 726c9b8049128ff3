"""The sandbox's endpoints under /v1.

Each handler checks a request in the contract's order of errors: a bad token (401) first,
then the request itself (413 body size, 400, 413 output, 422), then login's own 401s, then
404, 403 and 409. Bodies are read and parsed here rather than by FastAPI, which would
respond with its own 422 shape and binary floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from loom_cli.addresses import is_valid_address, to_checksum
from loom_cli.sandbox import jsonio
from loom_cli.sandbox.auth import Authenticator, Caller, bearer_token, parse_signature
from loom_cli.sandbox.errors import ApiError, bad_request, unauthorized, unprocessable
from loom_cli.sandbox.idempotency import IdempotencyStore, StoredResponse, parse_key
from loom_cli.sandbox.jobs import JobService, check_spec, entity_tag, etag_matches, parse_list_query, validate_result
from loom_cli.sandbox.ratelimit import RateLimiter
from loom_cli.sandbox.timefmt import format_seconds

PREFIX = "/v1"
LOGIN_FIELDS = ("address", "signature")


@dataclass
class SandboxState:
    """Everything a handler needs, kept on `app.state.sandbox`."""

    auth: Authenticator
    jobs: JobService
    idempotency: IdempotencyStore
    limiter: RateLimiter | None


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(jsonio.dumps(body).encode("utf-8"), status_code=status, media_type="application/json", headers=headers)


def error_response(error: ApiError) -> Response:
    return json_response(error.status, error.body(), error.headers)


class Call:
    """One request as the handlers see it: its caller, its body, the rate limit and idempotency."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.sandbox: SandboxState = request.app.state.sandbox

    def caller(self, *, required: bool = True) -> Caller | None:
        """Return the token's caller; 401 for a bad token, and for a missing one when `required`."""
        try:
            token = bearer_token(self.request.headers.get("authorization"))
            caller = self.sandbox.auth.verify_token(token) if token is not None else None
            if caller is None and required:
                raise unauthorized("This endpoint needs 'Authorization: Bearer <token>'; log in through /auth/nonce and /auth/login.")
        except ApiError:
            # Rejected requests count against the client's IP, so guessing tokens is rate limited too.
            self.count_request(None)
            raise
        self.count_request(caller)
        return caller

    def count_request(self, caller: Caller | None) -> None:
        limiter = self.sandbox.limiter
        if limiter is None:
            return
        if caller is not None:
            limiter.check("address:" + caller.address)
        else:
            client = self.request.client
            limiter.check("ip:" + (client.host if client else "unknown"))

    async def raw_body(self) -> bytes:
        """Read the body, raising 413 as soon as it passes the size limit."""
        too_large = ApiError(
            413,
            "payload_too_large",
            f"The request body is larger than {jsonio.MAX_BODY_BYTES} bytes.",
        )
        declared = self.request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > jsonio.MAX_BODY_BYTES:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.request.stream():
            size += len(chunk)
            if size > jsonio.MAX_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def json_body(self) -> object:
        return jsonio.parse_body(await self.raw_body())

    def idempotency_key(self) -> str | None:
        return parse_key(self.request.headers.get("idempotency-key"))

    def run_idempotent(self, caller: Caller, key: str | None, body: object, action: Callable[[], Response]) -> Response:
        """Run `action`, or replay its stored response when `key` was seen before with the same body."""
        if key is None:
            return action()
        store: IdempotencyStore = self.sandbox.idempotency
        outcome = store.begin(caller.address, self.request.method, self.request.url.path, key, body)
        if isinstance(outcome, StoredResponse):
            headers = {"Idempotent-Replayed": "true"}
            if outcome.location:
                headers["Location"] = outcome.location
            return Response(outcome.body, status_code=outcome.status, media_type="application/json", headers=headers)
        try:
            response = action()
        except BaseException:
            store.release(outcome)
            raise
        store.finish(outcome, response.status_code, bytes(response.body), response.headers.get("location"))
        return response


def _conditional(request: Request, body: Any) -> Response:
    """Return 200 with an ETag, or 304 without a body when If-None-Match already contains that ETag."""
    content = jsonio.dumps(body).encode("utf-8")
    etag = entity_tag(content)
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(content, status_code=200, media_type="application/json", headers={"ETag": etag})


# ---- auth ------------------------------------------------------------------------------------


async def get_nonce(request: Request) -> Response:
    call = Call(request)
    # /auth/nonce and /auth/login ignore Authorization, so they count against the client's IP.
    call.count_request(None)
    values = request.query_params.getlist("address")
    if not values or not values[0]:
        raise bad_request("The query parameter address is required: /auth/nonce?address=0x...", field="address", code="invalid_address")
    if len(values) > 1:
        raise bad_request("The query parameter address was given more than once; give it once.", field="address", code="invalid_address")
    address = values[0]
    if not is_valid_address(address):
        raise bad_request(
            f"Invalid address {address!r}; give 0x and 40 hex digits (mixed case must be a valid EIP-55 checksum).",
            field="address",
            code="invalid_address",
        )
    return json_response(200, call.sandbox.auth.issue_nonce(to_checksum(address)))


async def login(request: Request) -> Response:
    call = Call(request)
    call.count_request(None)
    body = await call.json_body()
    if not isinstance(body, dict):
        raise unprocessable("The login body must be a JSON object with address and signature.", field="")
    unknown = next((key for key in body if key not in LOGIN_FIELDS), None)
    if unknown is not None:
        raise unprocessable(f"{unknown!r} is not a login field; send only address and signature.", field=unknown)

    address = body.get("address")
    if not isinstance(address, str) or not is_valid_address(address):
        problem = "missing" if address is None else f"invalid: {jsonio.dumps(address)[:60]}"
        raise unprocessable(
            f"address is {problem}; give 0x and 40 hex digits (mixed case must be a valid EIP-55 checksum).",
            field="address",
            code="invalid_address",
        )
    text = body.get("signature")
    signature = parse_signature(text) if isinstance(text, str) else None
    if signature is None:
        raise unprocessable("signature must be 65 bytes as 130 hex digits, with or without 0x.", field="signature")
    return json_response(200, call.sandbox.auth.login(to_checksum(address), signature))


async def me(request: Request) -> Response:
    caller = Call(request).caller()
    assert caller is not None
    return json_response(200, {"address": caller.address, "expires_at": format_seconds(caller.expires_at)})


# ---- jobs ------------------------------------------------------------------------------------


async def list_jobs(request: Request) -> Response:
    call = Call(request)
    call.caller(required=False)
    query = parse_list_query(request.query_params, call.sandbox.jobs.cursors)
    jobs, next_cursor = call.sandbox.jobs.list(query)
    return _conditional(request, {"data": jobs, "next_cursor": next_cursor})


async def create_job(request: Request) -> Response:
    call = Call(request)
    caller = call.caller()
    assert caller is not None
    body = await call.json_body()
    key = call.idempotency_key()
    spec = check_spec(body)

    def create() -> Response:
        job = call.sandbox.jobs.create(caller.address, spec)
        return json_response(201, job, {"Location": f"{PREFIX}/jobs/{job['id']}"})

    return call.run_idempotent(caller, key, body, create)


async def get_job(request: Request) -> Response:
    call = Call(request)
    call.caller()
    job = call.sandbox.jobs.get(request.path_params["job_id"])
    return _conditional(request, job)


async def _transition(request: Request, operation: Callable[[JobService, str, str], dict]) -> Response:
    call = Call(request)
    caller = call.caller()
    assert caller is not None
    # These endpoints take no body; it is read only to enforce the size limit.
    await call.raw_body()
    key = call.idempotency_key()
    job_id = request.path_params["job_id"]

    def act() -> Response:
        return json_response(200, operation(call.sandbox.jobs, caller.address, job_id))

    return call.run_idempotent(caller, key, None, act)


async def claim_job(request: Request) -> Response:
    return await _transition(request, JobService.claim)


async def cancel_job(request: Request) -> Response:
    return await _transition(request, JobService.cancel)


async def report_result(request: Request) -> Response:
    call = Call(request)
    caller = call.caller()
    assert caller is not None
    body = await call.json_body()
    key = call.idempotency_key()
    result = validate_result(body)
    job_id = request.path_params["job_id"]

    def report() -> Response:
        stored = call.sandbox.jobs.report(caller.address, job_id, result)
        return json_response(201, stored, {"Location": f"{PREFIX}/jobs/{job_id}/results"})

    return call.run_idempotent(caller, key, body, report)


async def get_result(request: Request) -> Response:
    call = Call(request)
    caller = call.caller()
    assert caller is not None
    return json_response(200, call.sandbox.jobs.get_result(caller.address, request.path_params["job_id"]))


ROUTES: list[tuple[str, str, Callable[[Request], Any]]] = [
    ("GET", "/auth/nonce", get_nonce),
    ("POST", "/auth/login", login),
    ("GET", "/auth/me", me),
    ("GET", "/jobs", list_jobs),
    ("POST", "/jobs", create_job),
    ("GET", "/jobs/{job_id}", get_job),
    ("POST", "/jobs/{job_id}/claim", claim_job),
    ("POST", "/jobs/{job_id}/cancel", cancel_job),
    ("POST", "/jobs/{job_id}/results", report_result),
    ("GET", "/jobs/{job_id}/results", get_result),
]
