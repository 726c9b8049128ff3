"""Jobs and their results: the marketplace's state machine and the listing with keyset paging.

    Open ──claim──> InProgress ──report──> Completed | Failed
      └──────cancel────┴──────> Cancelled            (creator only)

Each operation checks and writes inside one database transaction, so of two workers
claiming one job exactly one finds `status = 'Open'` and wins.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from loom_cli.addresses import is_valid_address, to_checksum
from loom_cli.sandbox import jsonio
from loom_cli.sandbox.db import Database
from loom_cli.sandbox.errors import ApiError, bad_request, conflict, forbidden, not_found, unprocessable
from loom_cli.sandbox.timefmt import format_micros, to_micros
from loom_cli.spec.model import validate_spec

STATUSES = ("Open", "InProgress", "Completed", "Failed", "Cancelled")
TERMINAL_STATUSES = ("Completed", "Failed", "Cancelled")
OUTCOMES = ("Completed", "Failed")
JOB_ID = re.compile(r"^job_[A-Za-z0-9_-]{1,64}$")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_IDS = 100
MAX_OUTPUT_BYTES = 1_048_576
MAX_OUTPUT_DEPTH = 64
RESULT_FIELDS = ("outcome", "output", "result_uri", "sha256", "message")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DIGITS = re.compile(r"^[0-9]{1,6}$")
_CURSOR = re.compile(r"^([0-9]{1,20}):(job_[A-Za-z0-9_-]{1,64}):([0-9a-f]{16})$")


def new_job_id() -> str:
    return "job_" + secrets.token_urlsafe(12)


def entity_tag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Apply If-None-Match's weak comparison: `*`, or any listed tag equal to `etag` ignoring `W/`."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.removeprefix("W/") == etag:
            return True
    return False


# ---- listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListQuery:
    status: str | None = None
    creator: str | None = None
    worker: str | None = None
    ids: tuple[str, ...] | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[int, str] | None = None


_INVALID_CURSOR = "The cursor is invalid; pass the next_cursor value of a previous page unchanged."


def _cursor_parts(cursor: str) -> re.Match[str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    match = _CURSOR.match(text)
    if not match:
        raise bad_request(_INVALID_CURSOR, field="cursor")
    return match


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Return the (created_us, id) position inside a cursor without checking its HMAC; 400 when malformed."""
    match = _cursor_parts(cursor)
    return int(match.group(1)), match.group(2)


class CursorCodec:
    """Opaque page cursors: the (created_us, id) of the last job shown, with an HMAC so a changed cursor is a 400."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _tag(self, position: str) -> str:
        return hmac.new(self._key, position.encode("ascii"), hashlib.sha256).hexdigest()[:16]

    def encode(self, created_us: int, job_id: str) -> str:
        position = f"{created_us}:{job_id}"
        return base64.urlsafe_b64encode(f"{position}:{self._tag(position)}".encode("ascii")).decode("ascii").rstrip("=")

    def decode(self, cursor: str) -> tuple[int, str]:
        """Return the position a cursor points after; raise 400 when this sandbox did not make it."""
        match = _cursor_parts(cursor)
        if not hmac.compare_digest(match.group(3), self._tag(f"{match.group(1)}:{match.group(2)}")):
            raise bad_request(_INVALID_CURSOR, field="cursor")
        return int(match.group(1)), match.group(2)


def _single(params: Any, name: str) -> str | None:
    values = params.getlist(name)
    if len(values) > 1:
        raise bad_request(f"The query parameter {name} was given {len(values)} times; give it once.", field=name)
    return values[0] if values else None


def _address_param(params: Any, name: str) -> str | None:
    value = _single(params, name)
    if value is None:
        return None
    if not is_valid_address(value):
        raise bad_request(
            f"The query parameter {name} is not a valid address: {value!r}; give 0x and 40 hex digits "
            "(mixed case must be a valid EIP-55 checksum).",
            field=name,
            code="invalid_address",
        )
    return to_checksum(value)


def parse_list_query(params: Any, cursors: CursorCodec) -> ListQuery:
    """Read GET /jobs's query parameters; 400 for any bad value (nothing is clamped). Unknown ones are ignored."""
    status = _single(params, "status")
    if status is not None and status not in STATUSES:
        raise bad_request(f"Unknown status {status!r}; use one of {', '.join(STATUSES)}.", field="status")
    creator = _address_param(params, "creator")
    worker = _address_param(params, "worker")

    ids = None
    ids_text = _single(params, "ids")
    if ids_text is not None:
        parts = ids_text.split(",")
        if len(parts) > MAX_IDS:
            raise bad_request(f"ids lists {len(parts)} job ids; give at most {MAX_IDS}.", field="ids")
        bad = next((part for part in parts if not JOB_ID.match(part)), None)
        if bad is not None:
            raise bad_request(f"ids contains an invalid job id {bad!r}; job ids look like job_abc123.", field="ids")
        ids = tuple(dict.fromkeys(parts))

    limit = DEFAULT_LIMIT
    limit_text = _single(params, "limit")
    if limit_text is not None:
        if not _DIGITS.match(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise bad_request(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {limit_text!r}.", field="limit")
        limit = int(limit_text)

    cursor = _single(params, "cursor")
    after = cursors.decode(cursor) if cursor is not None else None
    return ListQuery(status=status, creator=creator, worker=worker, ids=ids, limit=limit, after=after)


# ---- results ---------------------------------------------------------------------------------


def validate_result(body: object) -> dict[str, Any]:
    """Check a POST /jobs/{id}/results body: 413 for an oversized output first, then 422 for schema problems."""
    if not isinstance(body, dict):
        raise unprocessable("The result body must be a JSON object with at least an outcome.", field="")
    if body.get("output") is not None:
        size = len(jsonio.dumps(body["output"]).encode("utf-8"))
        if size > MAX_OUTPUT_BYTES:
            raise ApiError(
                413,
                "payload_too_large",
                f"output is {size} bytes as compact JSON; the limit is {MAX_OUTPUT_BYTES} bytes. "
                "Upload large results elsewhere and report result_uri and sha256.",
                field="output",
            )

    unknown = next((key for key in body if key not in RESULT_FIELDS), None)
    if unknown is not None:
        raise unprocessable(f"{unknown!r} is not a known result field; use {', '.join(RESULT_FIELDS)}.", field=unknown)
    outcome = body.get("outcome")
    if "outcome" not in body:
        raise unprocessable("outcome is required: Completed or Failed.", field="outcome")
    if outcome not in OUTCOMES:
        raise unprocessable(f"outcome must be Completed or Failed, got {jsonio.dumps(outcome)[:40]}.", field="outcome")

    if jsonio.nesting_depth(body.get("output")) > MAX_OUTPUT_DEPTH:
        raise unprocessable(f"output nests arrays and objects more than {MAX_OUTPUT_DEPTH} levels deep.", field="output")
    for name in ("result_uri", "message"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise unprocessable(f"{name} must be a string or null.", field=name)
    sha256 = body.get("sha256")
    if sha256 is not None and (not isinstance(sha256, str) or not _SHA256.match(sha256)):
        raise unprocessable("sha256 must be 64 lowercase hex digits or null.", field="sha256")
    return {name: body.get(name) for name in RESULT_FIELDS}


# ---- the service -----------------------------------------------------------------------------


def _spec_problem_error(problems: list) -> ApiError:
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return unprocessable(
        f"The job spec is invalid: {first}{more}.",
        field=first.path,
        details={"problems": [{"field": problem.path, "message": problem.message} for problem in problems]},
    )


def check_spec(body: object) -> dict:
    """Return the normalised job spec, or raise 422 naming every problem (details.problems)."""
    spec, problems = validate_spec(body)
    if spec is None:
        raise _spec_problem_error(problems)
    return spec


def job_json(row: Any) -> dict[str, Any]:
    spec = json.loads(row["spec"], parse_float=Decimal)
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "creator": row["creator"],
        "worker": row["worker"],
        "reward": {"amount": spec["reward"]["amount"], "currency": spec["reward"]["currency"]},
        "spec": spec,
        "created_at": format_micros(row["created_us"]),
        "updated_at": format_micros(row["updated_us"]),
        "claimed_at": None if row["claimed_us"] is None else format_micros(row["claimed_us"]),
        "finished_at": None if row["finished_us"] is None else format_micros(row["finished_us"]),
    }


def result_json(row: Any) -> dict[str, Any]:
    return {
        "job_id": row["job_id"],
        "outcome": row["outcome"],
        "output": json.loads(row["output"], parse_float=Decimal),
        "result_uri": row["result_uri"],
        "sha256": row["sha256"],
        "message": row["message"],
        "reported_by": row["reported_by"],
        "reported_at": format_micros(row["reported_us"]),
    }


class JobService:
    def __init__(self, db: Database, *, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock
        self.cursors = CursorCodec(bytes.fromhex(db.get_or_set_meta("cursor_key", lambda: secrets.token_hex(32))))

    def create(self, creator: str, spec: dict) -> dict[str, Any]:
        """Store a new Open job for an already validated spec."""
        now = to_micros(self.clock())
        with self.db.transaction() as conn:
            # Creation times strictly increase, so a job created while a client pages
            # always sorts before that client's cursor and never lands inside the pages left.
            newest = conn.execute("SELECT MAX(created_us) AS newest FROM jobs").fetchone()["newest"]
            created = now if newest is None or now > newest else newest + 1
            job_id = new_job_id()
            conn.execute(
                "INSERT INTO jobs (id, name, status, creator, worker, spec, created_us, updated_us) "
                "VALUES (?, ?, 'Open', ?, NULL, ?, ?, ?)",
                (job_id, spec["name"], creator, jsonio.dumps(spec), created, created),
            )
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return job_json(row)

    def get(self, job_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = self._fetch(conn, job_id)
        return job_json(row)

    def list(self, query: ListQuery) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page, newest first, and the cursor of the next page (None on the last)."""
        clauses: list[str] = []
        values: list[Any] = []
        for column, value in (("status", query.status), ("creator", query.creator), ("worker", query.worker)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        if query.ids is not None:
            clauses.append(f"id IN ({', '.join('?' for _ in query.ids)})")
            values.extend(query.ids)
        if query.after is not None:
            clauses.append("(created_us < ? OR (created_us = ? AND id < ?))")
            values.extend([query.after[0], query.after[0], query.after[1]])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM jobs {where} ORDER BY created_us DESC, id DESC LIMIT ?"
        with self.db.transaction() as conn:
            rows = conn.execute(sql, (*values, query.limit + 1)).fetchall()
        page = rows[: query.limit]
        next_cursor = None
        if len(rows) > query.limit:
            last = page[-1]
            next_cursor = self.cursors.encode(last["created_us"], last["id"])
        return [job_json(row) for row in page], next_cursor

    def claim(self, worker: str, job_id: str) -> dict[str, Any]:
        now = to_micros(self.clock())
        with self.db.transaction() as conn:
            row = self._fetch(conn, job_id)
            if row["creator"] == worker:
                raise forbidden(f"You created job {job_id}; a creator cannot claim their own job.")
            claimed = conn.execute(
                "UPDATE jobs SET status = 'InProgress', worker = ?, claimed_us = ?, updated_us = ? "
                "WHERE id = ? AND status = 'Open'",
                (worker, now, now, job_id),
            ).rowcount
            if not claimed:
                raise conflict("job_not_open", f"Job {job_id} is {row['status']}, not Open, so it cannot be claimed.")
            row = self._fetch(conn, job_id)
        return job_json(row)

    def cancel(self, caller: str, job_id: str) -> dict[str, Any]:
        now = to_micros(self.clock())
        with self.db.transaction() as conn:
            row = self._fetch(conn, job_id)
            if row["creator"] != caller:
                raise forbidden(f"Only the creator of job {job_id} can cancel it.")
            if row["status"] in TERMINAL_STATUSES:
                raise conflict("job_finished", f"Job {job_id} is already {row['status']} and cannot be cancelled.")
            conn.execute(
                "UPDATE jobs SET status = 'Cancelled', updated_us = ?, finished_us = ? WHERE id = ?",
                (now, now, job_id),
            )
            row = self._fetch(conn, job_id)
        return job_json(row)

    def report(self, caller: str, job_id: str, result: dict[str, Any]) -> dict[str, Any]:
        now = to_micros(self.clock())
        with self.db.transaction() as conn:
            row = self._fetch(conn, job_id)
            if row["worker"] != caller:
                raise forbidden(f"Only the worker assigned to job {job_id} can report its result.")
            if row["status"] != "InProgress":
                raise conflict("job_not_in_progress", f"Job {job_id} is {row['status']}, not InProgress, so no result can be reported.")
            conn.execute(
                "UPDATE jobs SET status = ?, updated_us = ?, finished_us = ? WHERE id = ?",
                (result["outcome"], now, now, job_id),
            )
            conn.execute(
                "INSERT INTO results (job_id, outcome, output, result_uri, sha256, message, reported_by, reported_us) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    result["outcome"],
                    jsonio.dumps(result["output"]),
                    result["result_uri"],
                    result["sha256"],
                    result["message"],
                    caller,
                    now,
                ),
            )
            stored = conn.execute("SELECT * FROM results WHERE job_id = ?", (job_id,)).fetchone()
        return result_json(stored)

    def get_result(self, caller: str, job_id: str) -> dict[str, Any]:
        with self.db.transaction() as conn:
            row = self._fetch(conn, job_id)
            if caller not in (row["creator"], row["worker"]):
                raise forbidden(f"Only the creator or the worker of job {job_id} can read its result.")
            stored = conn.execute("SELECT * FROM results WHERE job_id = ?", (job_id,)).fetchone()
        if stored is None:
            raise not_found(f"Job {job_id} has no result yet; it is {row['status']}.")
        return result_json(stored)

    @staticmethod
    def _fetch(conn: Any, job_id: str) -> Any:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone() if JOB_ID.match(job_id) else None
        if row is None:
            raise not_found(f"No job has the id {job_id!r}.")
        return row
