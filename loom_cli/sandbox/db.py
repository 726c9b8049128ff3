"""The sandbox's storage: one SQLite database (WAL mode for files) behind a lock.

Every handler runs its reads and writes inside `Database.transaction()`, which holds a
process-wide lock and an `IMMEDIATE` SQLite transaction. That makes each check-then-write
step (claim, cancel, report, idempotency) atomic, both between uvicorn's threads and
against another process that opened the same file.

Job times are integer microseconds since the epoch; nonce and idempotency times are
float seconds, as the clock returns them.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loom_cli.paths import FILE_MODE

MEMORY = ":memory:"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    creator TEXT NOT NULL,
    worker TEXT,
    spec TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    claimed_us INTEGER,
    finished_us INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_status_newest ON jobs (status, created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_creator_newest ON jobs (creator, created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS jobs_worker_newest ON jobs (worker, created_us DESC, id DESC);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    outcome TEXT NOT NULL,
    output TEXT NOT NULL,
    result_uri TEXT,
    sha256 TEXT,
    message TEXT,
    reported_by TEXT NOT NULL,
    reported_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_by_address ON nonces (address, issued_at);
CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS idempotency (
    address TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    status INTEGER,
    body BLOB,
    location TEXT,
    PRIMARY KEY (address, method, path, key)
);
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (created_at);
"""


class DatabaseError(Exception):
    """The database file cannot be opened or was written by an incompatible version."""


class Database:
    """A SQLite connection shared by all threads, used only under `transaction()`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        if self.path != MEMORY:
            _create_private_file(Path(self.path))
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._conn.row_factory = sqlite3.Row
            if self.path != MEMORY:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot use {self.path} as the sandbox database: {exc}") from exc

    def _migrate(self) -> None:
        with self.transaction() as conn:
            # executescript() would commit the open transaction, so run the statements one by one.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif row["value"] != SCHEMA_VERSION:
                raise DatabaseError(
                    f"{self.path} contains sandbox schema version {row['value']}, this loom uses {SCHEMA_VERSION}; "
                    "start the sandbox with another --db file"
                )
            # A request that was in flight when the last run stopped will never finish.
            conn.execute("DELETE FROM idempotency WHERE status IS NULL")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one IMMEDIATE transaction under the lock; commit on success, else roll back."""
        with self._lock:
            if self._conn.in_transaction:
                # Nested use (a helper called from inside a transaction) joins the outer one.
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    def get_or_set_meta(self, key: str, make_value) -> str:
        """Return the stored value of `key`, storing `make_value()` first when there is none."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None:
                return row["value"]
            value = make_value()
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _create_private_file(path: Path) -> None:
    """Create the database file with mode 0600, because it stores the token signing key."""
    if not path.parent.is_dir():
        raise DatabaseError(f"cannot create the sandbox database {path}: folder {path.parent} does not exist")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise DatabaseError(f"cannot open the sandbox database {path}: {exc.strerror}") from exc
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, FILE_MODE)
