"""The sandbox's OpenAPI document, written out by hand so that it states the whole contract.

The handlers parse requests themselves (see `routes`), so FastAPI cannot infer the schemas;
this module describes every endpoint, body, header and error response instead. A copy is kept
in `openapi.json` next to this file; regenerate it with

    python -m loom_cli.sandbox.openapi > loom_cli/sandbox/openapi.json
"""

from __future__ import annotations

import copy
import json
import sys
from functools import cache
from typing import Any

from loom_cli.sandbox.jobs import MAX_IDS, MAX_LIMIT, OUTCOMES, STATUSES
from loom_cli.spec.model import spec_json_schema

TIMESTAMP = {
    "type": "string",
    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
    "description": "UTC time, always with six fraction digits: 2024-05-01T12:00:00.000000Z.",
}
ADDRESS = {
    "type": "string",
    "pattern": "^0x[0-9a-fA-F]{40}$",
    "description": "20-byte hex address with 0x. Output is EIP-55 checksummed. Input may be all lowercase, all uppercase, or a valid checksum.",
}
JOB_ID = {"type": "string", "pattern": "^job_[A-Za-z0-9_-]{1,64}$"}

ERROR_CODES = [
    "invalid_request",
    "invalid_address",
    "unauthorized",
    "invalid_signature",
    "nonce_not_found",
    "nonce_expired",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "job_not_open",
    "job_not_in_progress",
    "job_finished",
    "idempotency_key_reused",
    "payload_too_large",
    "rate_limited",
    "internal",
]

_ERROR_DESCRIPTIONS = {
    "400": "A bad query parameter or header, or a body that is not JSON (or nests deeper than 256 levels).",
    "401": "Missing, invalid or expired bearer token.",
    "403": "The caller may not do this to this job.",
    "404": "No such job.",
    "409": "The job's status does not allow this, or the Idempotency-Key was reused.",
    "413": "The request body is larger than 2 MiB.",
    "422": "The JSON body breaks the schema; details.field names the value at fault.",
    "429": "Rate limit exceeded (only when the sandbox runs with --rate-limit).",
}


def _error(description: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return response


def _errors(*statuses: str, **overrides: str) -> dict[str, Any]:
    responses = {status: _error(overrides.get(f"e{status}", _ERROR_DESCRIPTIONS[status])) for status in statuses}
    if "429" in responses:
        responses["429"]["headers"]["Retry-After"] = {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer", "minimum": 1},
        }
    if "401" in responses:
        responses["401"]["headers"]["WWW-Authenticate"] = {"schema": {"type": "string"}}
    return responses


def _ok(status: str, description: str, schema_ref: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}, **(headers or {})},
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
        }
    }


def _not_modified() -> dict[str, Any]:
    return {
        "304": {
            "description": "Not modified: If-None-Match holds the current ETag. No body.",
            "headers": {"ETag": {"$ref": "#/components/headers/ETag"}, "X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
        }
    }


def _json_body(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_REQUEST_ID_PARAMETER = {"$ref": "#/components/parameters/RequestId"}
_JOB_ID_PARAMETER = {"$ref": "#/components/parameters/JobId"}
_IDEMPOTENCY_PARAMETER = {"$ref": "#/components/parameters/IdempotencyKey"}
_IF_NONE_MATCH_PARAMETER = {"$ref": "#/components/parameters/IfNoneMatch"}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
_OPTIONAL_BEARER: list[dict[str, list[str]]] = [{}, {"bearer": []}]


def _paths() -> dict[str, Any]:
    job_headers = {"ETag": {"$ref": "#/components/headers/ETag"}}
    created_headers = {"Location": {"description": "Path of the new resource.", "schema": {"type": "string"}}}
    return {
        "/auth/nonce": {
            "get": {
                "operationId": "getNonce",
                "summary": "Issue a login nonce for an address",
                "description": "The nonce is 16-64 characters of [A-Za-z0-9], single use, bound to the address and valid "
                "for 5 minutes. An address holds at most 16 live nonces; a 17th drops the oldest.",
                "tags": ["auth"],
                "security": [{}],
                "parameters": [
                    {"name": "address", "in": "query", "required": True, "schema": ADDRESS},
                    _REQUEST_ID_PARAMETER,
                ],
                "responses": {**_ok("200", "A fresh nonce.", "Nonce"), **_errors("400", "429")},
            }
        },
        "/auth/login": {
            "post": {
                "operationId": "login",
                "summary": "Trade a signed nonce for a token",
                "description": "The signature is EIP-191 personal_sign over the nonce text. It is checked against every "
                "live nonce of the address, and the one it signed is consumed.",
                "tags": ["auth"],
                "security": [{}],
                "parameters": [_REQUEST_ID_PARAMETER],
                "requestBody": _json_body("LoginRequest", "The address and its signature of one of its nonces."),
                "responses": {
                    **_ok("200", "A bearer token.", "Token"),
                    **_errors(
                        "400", "401", "413", "422", "429",
                        e401="nonce_not_found (no unused nonce), nonce_expired (only expired ones) or invalid_signature.",
                        e422="The body is not {address, signature}, the address is invalid, or the signature is not 65 bytes of hex.",
                    ),
                },
            }
        },
        "/auth/me": {
            "get": {
                "operationId": "getMe",
                "summary": "Show the caller of a token",
                "tags": ["auth"],
                "security": _BEARER,
                "parameters": [_REQUEST_ID_PARAMETER],
                "responses": {**_ok("200", "The token's address and expiry.", "Me"), **_errors("401", "429")},
            }
        },
        "/jobs": {
            "get": {
                "operationId": "listJobs",
                "summary": "List jobs, newest first",
                "description": "Public: a missing token is fine, an invalid or expired one is 401. Paging is by keyset: "
                "pass next_cursor back as cursor; a cursor skips nothing while new jobs are added.",
                "tags": ["jobs"],
                "security": _OPTIONAL_BEARER,
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUSES)}},
                    {"name": "creator", "in": "query", "schema": ADDRESS},
                    {"name": "worker", "in": "query", "schema": ADDRESS},
                    {
                        "name": "ids",
                        "in": "query",
                        "description": f"Comma-separated job ids, at most {MAX_IDS}.",
                        "schema": {"type": "string", "pattern": "^job_[A-Za-z0-9_-]{1,64}(,job_[A-Za-z0-9_-]{1,64}){0,99}$"},
                    },
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 20}},
                    {"name": "cursor", "in": "query", "description": "next_cursor of the previous page.", "schema": {"type": "string"}},
                    _IF_NONE_MATCH_PARAMETER,
                    _REQUEST_ID_PARAMETER,
                ],
                "responses": {**_ok("200", "One page of jobs.", "JobPage", job_headers), **_not_modified(), **_errors("400", "401", "429")},
            },
            "post": {
                "operationId": "createJob",
                "summary": "Post a job",
                "tags": ["jobs"],
                "security": _BEARER,
                "parameters": [_IDEMPOTENCY_PARAMETER, _REQUEST_ID_PARAMETER],
                "requestBody": _json_body("JobSpec", "The job spec; amounts may be strings or numbers."),
                "responses": {
                    **_ok("201", "The new job, Open.", "Job", created_headers),
                    **_errors("400", "401", "409", "413", "422", "429", e409="The Idempotency-Key was used with another body, or is in flight."),
                },
            },
        },
        "/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "Show one job",
                "tags": ["jobs"],
                "security": _BEARER,
                "parameters": [_JOB_ID_PARAMETER, _IF_NONE_MATCH_PARAMETER, _REQUEST_ID_PARAMETER],
                "responses": {**_ok("200", "The job.", "Job", job_headers), **_not_modified(), **_errors("401", "404", "429")},
            }
        },
        "/jobs/{job_id}/claim": {
            "post": {
                "operationId": "claimJob",
                "summary": "Claim an Open job as its worker",
                "description": "Atomic: of two workers claiming one job, exactly one wins and the other gets 409 job_not_open.",
                "tags": ["jobs"],
                "security": _BEARER,
                "parameters": [_JOB_ID_PARAMETER, _IDEMPOTENCY_PARAMETER, _REQUEST_ID_PARAMETER],
                "responses": {
                    **_ok("200", "The job, now InProgress with the caller as worker.", "Job"),
                    **_errors("400", "401", "403", "404", "409", "413", "429", e403="The caller created this job.", e409="job_not_open, or idempotency_key_reused."),
                },
            }
        },
        "/jobs/{job_id}/cancel": {
            "post": {
                "operationId": "cancelJob",
                "summary": "Cancel an Open or InProgress job as its creator",
                "tags": ["jobs"],
                "security": _BEARER,
                "parameters": [_JOB_ID_PARAMETER, _IDEMPOTENCY_PARAMETER, _REQUEST_ID_PARAMETER],
                "responses": {
                    **_ok("200", "The job, now Cancelled.", "Job"),
                    **_errors("400", "401", "403", "404", "409", "413", "429", e403="The caller did not create this job.", e409="job_finished, or idempotency_key_reused."),
                },
            }
        },
        "/jobs/{job_id}/results": {
            "post": {
                "operationId": "reportResult",
                "summary": "Report the outcome of a job as its worker",
                "tags": ["results"],
                "security": _BEARER,
                "parameters": [_JOB_ID_PARAMETER, _IDEMPOTENCY_PARAMETER, _REQUEST_ID_PARAMETER],
                "requestBody": _json_body("ResultReport", "The outcome; every other field defaults to null."),
                "responses": {
                    **_ok("201", "The stored result; the job takes the outcome as its status.", "Result", created_headers),
                    **_errors(
                        "400", "401", "403", "404", "409", "413", "422", "429",
                        e403="The caller is not the job's worker.",
                        e409="job_not_in_progress, or idempotency_key_reused.",
                        e413="The body is larger than 2 MiB, or output is larger than 1,048,576 bytes as compact JSON.",
                    ),
                },
            },
            "get": {
                "operationId": "getResult",
                "summary": "Read a job's result as its creator or worker",
                "tags": ["results"],
                "security": _BEARER,
                "parameters": [_JOB_ID_PARAMETER, _REQUEST_ID_PARAMETER],
                "responses": {
                    **_ok("200", "The result.", "Result"),
                    **_errors("401", "403", "404", "429", e403="The caller is neither creator nor worker.", e404="No such job, or no result yet."),
                },
            },
        },
    }


def _schemas() -> dict[str, Any]:
    job_spec = spec_json_schema()
    for key in ("$schema", "$id"):
        job_spec.pop(key, None)
    nullable_string = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "enum": ERROR_CODES},
                        "message": {"type": "string", "description": "One human sentence."},
                        "details": {
                            "type": "object",
                            "description": "field: path of the value at fault, such as inputs[0].path. problems: every "
                            "problem of an invalid job spec.",
                            "properties": {
                                "field": {"type": "string"},
                                "problems": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["field", "message"],
                                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
        "Nonce": {
            "type": "object",
            "required": ["address", "nonce", "expires_at"],
            "additionalProperties": False,
            "properties": {"address": ADDRESS, "nonce": {"type": "string", "pattern": "^[A-Za-z0-9]{16,64}$"}, "expires_at": TIMESTAMP},
        },
        "LoginRequest": {
            "type": "object",
            "required": ["address", "signature"],
            "additionalProperties": False,
            "properties": {
                "address": ADDRESS,
                "signature": {
                    "type": "string",
                    "pattern": "^(0[xX])?[0-9a-fA-F]{130}$",
                    "description": "65-byte signature r || s || v as hex; v is 27/28 or 0/1.",
                },
            },
        },
        "Token": {
            "type": "object",
            "required": ["token", "token_type", "expires_at", "address"],
            "additionalProperties": False,
            "properties": {
                "token": {"type": "string", "description": "JWT (HS256) with sub, iat, exp and jti."},
                "token_type": {"type": "string", "const": "Bearer"},
                "expires_at": TIMESTAMP,
                "address": ADDRESS,
            },
        },
        "Me": {
            "type": "object",
            "required": ["address", "expires_at"],
            "additionalProperties": False,
            "properties": {"address": ADDRESS, "expires_at": TIMESTAMP},
        },
        "JobSpec": job_spec,
        "Job": {
            "type": "object",
            "required": ["id", "name", "status", "creator", "worker", "reward", "spec", "created_at", "updated_at", "claimed_at", "finished_at"],
            "additionalProperties": False,
            "properties": {
                "id": JOB_ID,
                "name": {"type": "string"},
                "status": {"type": "string", "enum": list(STATUSES)},
                "creator": ADDRESS,
                "worker": {"anyOf": [ADDRESS, {"type": "null"}]},
                "reward": {
                    "type": "object",
                    "required": ["amount", "currency"],
                    "additionalProperties": False,
                    "properties": {
                        "amount": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]*[1-9])?$", "description": "Canonical decimal string."},
                        "currency": {"type": "string"},
                    },
                },
                "spec": {"$ref": "#/components/schemas/JobSpec"},
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
                "claimed_at": {"anyOf": [TIMESTAMP, {"type": "null"}]},
                "finished_at": {"anyOf": [TIMESTAMP, {"type": "null"}]},
            },
        },
        "JobPage": {
            "type": "object",
            "required": ["data", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "data": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                "next_cursor": nullable_string,
            },
        },
        "ResultReport": {
            "type": "object",
            "required": ["outcome"],
            "additionalProperties": False,
            "properties": {
                "outcome": {"type": "string", "enum": list(OUTCOMES)},
                "output": {"description": "Any JSON, at most 1,048,576 bytes as compact UTF-8 JSON and 64 levels deep."},
                "result_uri": nullable_string,
                "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                "message": nullable_string,
            },
        },
        "Result": {
            "type": "object",
            "required": ["job_id", "outcome", "output", "result_uri", "sha256", "message", "reported_by", "reported_at"],
            "additionalProperties": False,
            "properties": {
                "job_id": JOB_ID,
                "outcome": {"type": "string", "enum": list(OUTCOMES)},
                "output": {"description": "The reported JSON, or null."},
                "result_uri": nullable_string,
                "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"},
                "message": nullable_string,
                "reported_by": ADDRESS,
                "reported_at": TIMESTAMP,
            },
        },
    }


def _components() -> dict[str, Any]:
    return {
        "schemas": _schemas(),
        "parameters": {
            "JobId": {"name": "job_id", "in": "path", "required": True, "schema": JOB_ID},
            "IdempotencyKey": {
                "name": "Idempotency-Key",
                "in": "header",
                "description": "Repeat the request safely: the same key and body within 24 hours returns the first 2xx "
                "response again. 1-255 printable ASCII characters; an empty value counts as no key.",
                "schema": {"type": "string", "pattern": "^[!-~]{0,255}$"},
            },
            "IfNoneMatch": {
                "name": "If-None-Match",
                "in": "header",
                "description": "An ETag from an earlier response; 304 when it still matches.",
                "schema": {"type": "string"},
            },
            "RequestId": {
                "name": "X-Request-Id",
                "in": "header",
                "description": "Your id for this request. It is echoed back when it is 1-128 characters of "
                "[A-Za-z0-9._:-]; any other value is replaced by a generated id, never rejected.",
                "schema": {"type": "string"},
            },
        },
        "headers": {
            "RequestId": {"description": "The request's id, for support and logs.", "schema": {"type": "string"}},
            "ETag": {"description": "Entity tag of the returned representation.", "schema": {"type": "string"}},
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    }


@cache
def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "The Loom API",
            "version": "1",
            "summary": "Jobs marketplace API, as served by `loom sandbox`.",
            "description": "Post jobs, claim and run them as a worker, and report results. Log in by signing a nonce "
            "with an Ethereum wallet (EIP-191 personal_sign) to get a JWT. Every error has the body "
            '{"error": {"code", "message", "details"}} and every response an X-Request-Id header.',
        },
        "servers": [
            {"url": "https://api.the-loom.io/v1", "description": "The Loom"},
            {"url": "http://127.0.0.1:{port}/v1", "description": "loom sandbox", "variables": {"port": {"default": "8765"}}},
        ],
        "security": _BEARER,
        "tags": [{"name": "auth"}, {"name": "jobs"}, {"name": "results"}],
        "paths": _paths(),
        "components": _components(),
    }


def build_openapi() -> dict[str, Any]:
    """Return a fresh copy of the OpenAPI 3.1 document."""
    return copy.deepcopy(_document())


def render_openapi() -> str:
    return json.dumps(build_openapi(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_openapi())
