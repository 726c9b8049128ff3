"""Typed helpers for the Loom API's job endpoints, over `ApiClient`.

Each helper checks its arguments before any request (a malformed job id or
status is a UsageError, exit 2) and checks the shape of the response: a 2xx
response without a documented field breaks the API contract and raises
ApiUnavailableError (exit 6), so commands can index the fields they print.
Errors from the HTTP layer (404, 409, ...) pass through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loom_cli.errors import ApiUnavailableError, UsageError

if TYPE_CHECKING:
    from loom_cli.http import ApiClient, ApiResponse

JOB_ID = re.compile(r"^job_[A-Za-z0-9_-]{1,64}$")
IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,255}$")
STATUSES = ("Open", "InProgress", "Completed", "Failed", "Cancelled")
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Cancelled"})
MAX_PAGE_SIZE = 100
MAX_IDS = 100
DEFAULT_PAGE_SIZE = 20

# Fields every job object carries, with the JSON types each may have.
_JOB_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "name": (str,),
    "status": (str,),
    "creator": (str,),
    "worker": (str, type(None)),
    "reward": (dict,),
    "spec": (dict,),
    "created_at": (str,),
    "updated_at": (str,),
    "claimed_at": (str, type(None)),
    "finished_at": (str, type(None)),
}
_REWARD_FIELDS: dict[str, tuple[type, ...]] = {"amount": (str,), "currency": (str,)}
_RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "job_id": (str,),
    "outcome": (str,),
    "result_uri": (str, type(None)),
    "sha256": (str, type(None)),
    "message": (str, type(None)),
    "reported_by": (str,),
    "reported_at": (str,),
}


@dataclass
class JobsPage:
    """One page of `GET /jobs`: the jobs, the cursor of the next page (None on the last), and the ETag.

    `not_modified` is true when the API returned 304 to `etag`; `data` is then empty.
    """

    data: list[dict]
    next_cursor: str | None
    etag: str | None
    not_modified: bool = False


# -- argument checks ----------------------------------------------------------------


def validate_job_id(job_id: str) -> str:
    """Return `job_id` when it has the API's form (job_ and 1-64 of [A-Za-z0-9_-]), else raise UsageError."""
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise UsageError(
            f"invalid job id {job_id!r}",
            hint="a job id is 'job_' followed by 1-64 letters, digits, '_' or '-'; list jobs with: loom jobs list",
        )
    return job_id


def validate_idempotency_key(key: str) -> str:
    """Return `key` when it is 1-255 printable ASCII characters without spaces, else raise UsageError."""
    if not IDEMPOTENCY_KEY.match(key):
        raise UsageError(
            f"invalid idempotency key {key!r}",
            hint="use 1-255 printable ASCII characters without spaces, such as a UUID",
        )
    return key


def normalize_status(value: str) -> str:
    """Return the API's spelling of a job status given in any case ("inprogress" → "InProgress")."""
    for status in STATUSES:
        if value.strip().lower() == status.lower():
            return status
    raise UsageError(f"invalid status {value!r}", hint=f"use one of: {', '.join(STATUSES)}")


def validate_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise UsageError(f"invalid limit {limit}: must be 1-{MAX_PAGE_SIZE}", hint="with --all, --limit sets the page size")
    return limit


# -- endpoints ----------------------------------------------------------------------


def list_jobs(
    client: ApiClient,
    *,
    status: str | None = None,
    creator: str | None = None,
    worker: str | None = None,
    ids: list[str] | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    etag: str | None = None,
) -> JobsPage:
    """Fetch one page of `GET /jobs`, newest first; with `etag`, an unchanged page comes back as not_modified."""
    from loom_cli.addresses import normalize_address

    params: dict[str, Any] = {"limit": validate_limit(limit)}
    if status is not None:
        params["status"] = normalize_status(status)
    if creator is not None:
        params["creator"] = normalize_address(creator, what="creator address")
    if worker is not None:
        params["worker"] = normalize_address(worker, what="worker address")
    if ids is not None:
        if not ids or len(ids) > MAX_IDS:
            raise UsageError(f"give 1-{MAX_IDS} job ids per request, got {len(ids)}")
        params["ids"] = ",".join(validate_job_id(job_id) for job_id in ids)
    if cursor is not None:
        params["cursor"] = cursor
    headers = {"If-None-Match": etag} if etag else None

    response = client.get("/jobs", params=params, headers=headers)
    page_etag = response.headers.get("ETag")
    if response.status == 304:
        return JobsPage(data=[], next_cursor=None, etag=page_etag or etag, not_modified=True)

    body = _expect_object(response, "GET /jobs")
    data = body.get("data")
    if not isinstance(data, list):
        raise _broken(response, "GET /jobs", "a body without a 'data' list")
    if "next_cursor" not in body or not isinstance(body["next_cursor"], (str, type(None))):
        raise _broken(response, "GET /jobs", "a body without 'next_cursor'")
    jobs = [_check_job(item, response, "GET /jobs") for item in data]
    return JobsPage(data=jobs, next_cursor=body["next_cursor"] or None, etag=page_etag)


def iter_jobs(
    client: ApiClient,
    *,
    status: str | None = None,
    creator: str | None = None,
    worker: str | None = None,
    ids: list[str] | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    all_pages: bool = False,
) -> Iterator[dict]:
    """Yield jobs page by page; each next page is requested only when the previous one is used up.

    Without `all_pages` only the first page is fetched.
    """
    cursor: str | None = None
    seen_cursors: set[str] = set()
    while True:
        page = list_jobs(client, status=status, creator=creator, worker=worker, ids=ids, limit=limit, cursor=cursor)
        yield from page.data
        if not all_pages or page.next_cursor is None:
            return
        # A cursor seen before would loop forever; a well-behaved API never sends one.
        if page.next_cursor in seen_cursors:
            raise ApiUnavailableError(
                "GET /jobs: the API returned a next_cursor it had already returned, so paging would never end",
                hint="report this to the API's operator",
            )
        seen_cursors.add(page.next_cursor)
        cursor = page.next_cursor


def get_job(client: ApiClient, job_id: str, etag: str | None = None) -> dict | None:
    """Fetch `GET /jobs/{id}` (needs a token); with `etag`, None means the job is unchanged (304)."""
    validate_job_id(job_id)
    headers = {"If-None-Match": etag} if etag else None
    response = client.get(f"/jobs/{job_id}", headers=headers)
    if response.status == 304:
        return None
    return _check_job(_expect_object(response, "GET /jobs/{id}"), response, "GET /jobs/{id}")


def find_job(client: ApiClient, job_id: str) -> dict | None:
    """Look one job up through the public listing (`GET /jobs?ids=`), so no token is needed; None if unknown."""
    validate_job_id(job_id)
    page = list_jobs(client, ids=[job_id], limit=1)
    return next((job for job in page.data if job["id"] == job_id), None)


def create_job(client: ApiClient, spec: dict, idempotency_key: str) -> dict:
    """Create a job from a validated spec with `POST /jobs`; a retry with the same key returns the same job."""
    from loom_cli.output import to_jsonable

    validate_idempotency_key(idempotency_key)
    # NOTE: a Decimal with more significant digits than a float keeps is sent
    # as a string (see to_jsonable), which the API rejects with a clear 422.
    response = client.post("/jobs", json=to_jsonable(spec), idempotency_key=idempotency_key)
    return _check_job(_expect_object(response, "POST /jobs"), response, "POST /jobs")


def claim_job(client: ApiClient, job_id: str, idempotency_key: str) -> dict:
    """Claim an open job as its worker (`POST /jobs/{id}/claim`); the job comes back InProgress."""
    validate_job_id(job_id)
    validate_idempotency_key(idempotency_key)
    response = client.post(f"/jobs/{job_id}/claim", idempotency_key=idempotency_key)
    return _check_job(_expect_object(response, "POST /jobs/{id}/claim"), response, "POST /jobs/{id}/claim")


def cancel_job(client: ApiClient, job_id: str, idempotency_key: str) -> dict:
    """Cancel a job as its creator (`POST /jobs/{id}/cancel`); the job comes back Cancelled."""
    validate_job_id(job_id)
    validate_idempotency_key(idempotency_key)
    response = client.post(f"/jobs/{job_id}/cancel", idempotency_key=idempotency_key)
    return _check_job(_expect_object(response, "POST /jobs/{id}/cancel"), response, "POST /jobs/{id}/cancel")


def report_result(client: ApiClient, job_id: str, body: dict, idempotency_key: str) -> dict:
    """Report a claimed job's outcome as its worker (`POST /jobs/{id}/results`); return the stored result."""
    validate_job_id(job_id)
    validate_idempotency_key(idempotency_key)
    response = client.post(f"/jobs/{job_id}/results", json=body, idempotency_key=idempotency_key)
    return _check_result(_expect_object(response, "POST /jobs/{id}/results"), response, "POST /jobs/{id}/results")


def get_result(client: ApiClient, job_id: str) -> dict:
    """Fetch a job's result (`GET /jobs/{id}/results`) as its creator or worker."""
    validate_job_id(job_id)
    response = client.get(f"/jobs/{job_id}/results")
    return _check_result(_expect_object(response, "GET /jobs/{id}/results"), response, "GET /jobs/{id}/results")


# -- response checks -----------------------------------------------------------------


def _expect_object(response: ApiResponse, endpoint: str) -> dict:
    if not isinstance(response.data, dict):
        raise _broken(response, endpoint, "a body that is not a JSON object")
    return response.data


def _check_fields(item: Any, fields: dict[str, tuple[type, ...]], response: ApiResponse, endpoint: str, what: str) -> dict:
    if not isinstance(item, dict):
        raise _broken(response, endpoint, f"a {what} that is not a JSON object")
    for name, types in fields.items():
        if name not in item:
            raise _broken(response, endpoint, f"a {what} without '{name}'")
        if not isinstance(item[name], types) or isinstance(item[name], bool):
            raise _broken(response, endpoint, f"a {what} whose '{name}' is {type(item[name]).__name__}")
    return item


def _check_job(item: Any, response: ApiResponse, endpoint: str) -> dict:
    job = _check_fields(item, _JOB_FIELDS, response, endpoint, "job")
    _check_fields(job["reward"], _REWARD_FIELDS, response, endpoint, "job reward")
    # Commands print the id in messages and put it in later URLs, so it must have the id's form.
    if not JOB_ID.match(job["id"]):
        raise _broken(response, endpoint, "a job whose 'id' is not 'job_' followed by 1-64 letters, digits, '_' or '-'")
    return job


def _check_result(item: Any, response: ApiResponse, endpoint: str) -> dict:
    result = _check_fields(item, _RESULT_FIELDS, response, endpoint, "result")
    if "output" not in result:
        raise _broken(response, endpoint, "a result without 'output'")
    return result


def _broken(response: ApiResponse, endpoint: str, what: str) -> ApiUnavailableError:
    return ApiUnavailableError(
        f"{endpoint}: the API returned HTTP {response.status} with {what}, which breaks the Loom API contract",
        request_id=response.request_id,
        hint="check that --api-url points at a Loom API",
    )
