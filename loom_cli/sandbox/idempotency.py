"""Idempotency keys: replay the first 2xx response to a repeated request instead of acting twice.

A key is scoped to (address, method, path) and kept 24 hours. The request body is compared
as canonical JSON (sorted keys, no whitespace). A row whose status is NULL marks a request
still being processed; a second request with that key meanwhile is a conflict.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from loom_cli.sandbox import jsonio
from loom_cli.sandbox.db import Database
from loom_cli.sandbox.errors import bad_request, conflict

KEY_TTL_SECONDS = 24 * 3600
_KEY = re.compile(r"^[!-~]{1,255}$")


def parse_key(header: str | None) -> str | None:
    """Return the Idempotency-Key header's value, None when absent or empty; 400 when malformed."""
    if header is None or header == "":
        return None
    if not _KEY.match(header):
        raise bad_request(
            "The Idempotency-Key header must be 1-255 printable ASCII characters without spaces.",
            field="Idempotency-Key",
        )
    return header


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    location: str | None


@dataclass(frozen=True)
class Reservation:
    """A claimed key: `finish()` stores the response, `release()` forgets the key again."""

    address: str
    method: str
    path: str
    key: str


class IdempotencyStore:
    def __init__(self, db: Database, *, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def begin(self, address: str, method: str, path: str, key: str, body: object) -> StoredResponse | Reservation:
        """Return the stored response for a repeated request, or reserve the key for a new one.

        Raise 409 `idempotency_key_reused` when the key was used with another body or its
        first request is still in flight.
        """
        request_hash = hashlib.sha256(jsonio.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()
        now = self.clock()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM idempotency WHERE created_at <= ? AND status IS NOT NULL", (now - KEY_TTL_SECONDS,))
            row = conn.execute(
                "SELECT request_hash, status, body, location FROM idempotency "
                "WHERE address = ? AND method = ? AND path = ? AND key = ?",
                (address, method, path, key),
            ).fetchone()
            if row is not None:
                if row["status"] is None:
                    raise conflict(
                        "idempotency_key_reused",
                        "A request with this Idempotency-Key is still being processed; retry when it has finished.",
                    )
                if row["request_hash"] != request_hash:
                    raise conflict(
                        "idempotency_key_reused",
                        "This Idempotency-Key was already used with a different request body; use a new key.",
                    )
                return StoredResponse(status=row["status"], body=bytes(row["body"]), location=row["location"])
            conn.execute(
                "INSERT INTO idempotency (address, method, path, key, request_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (address, method, path, key, request_hash, now),
            )
        return Reservation(address, method, path, key)

    def finish(self, reservation: Reservation, status: int, body: bytes, location: str | None) -> None:
        """Store a 2xx response for replay; forget the key after any other status."""
        if not 200 <= status < 300:
            self.release(reservation)
            return
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE idempotency SET status = ?, body = ?, location = ? "
                "WHERE address = ? AND method = ? AND path = ? AND key = ?",
                (status, body, location, reservation.address, reservation.method, reservation.path, reservation.key),
            )

    def release(self, reservation: Reservation) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM idempotency WHERE address = ? AND method = ? AND path = ? AND key = ?",
                (reservation.address, reservation.method, reservation.path, reservation.key),
            )
