"""The sandbox's job queries read through indexes, so pages cost the same at any depth.

Each test runs the sandbox's own job service on a real SQLite file, records
every statement it sends (the trace callback gets the SQL with its values
bound) and checks SQLite's `EXPLAIN QUERY PLAN` for each query on `jobs`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from loom_cli.sandbox.db import Database
from loom_cli.sandbox.jobs import JobService, ListQuery, decode_cursor
from loom_cli.spec.model import validate_spec

CREATOR = "0x" + "ab" * 20
WORKER = "0x" + "cd" * 20


@pytest.fixture
def service(tmp_path: Path) -> JobService:
    database = Database(tmp_path / "sandbox.db")
    jobs = JobService(database, clock=time.time)
    spec, problems = validate_spec(
        {"name": "plan", "image": "ubuntu", "resources": {"cpu": 1, "memory": "1Gi"}, "reward": {"amount": "1"}}
    )
    assert problems == []
    for _ in range(30):
        jobs.create(CREATOR, spec)
    yield jobs
    database.close()


def traced_selects(service: JobService, action: Callable[[], object]) -> list[str]:
    """Run `action` and return the SELECT statements it sent that read the jobs table."""
    statements: list[str] = []
    with service.db.transaction() as connection:
        connection.set_trace_callback(statements.append)
    try:
        action()
    finally:
        with service.db.transaction() as connection:
            connection.set_trace_callback(None)
    return [sql for sql in statements if sql.lstrip().upper().startswith("SELECT") and " jobs" in sql]


def query_plan(service: JobService, sql: str) -> list[str]:
    with service.db.transaction() as connection:
        return [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}")]


def first_page_cursor(service: JobService, **filters: object) -> tuple[int, str]:
    _, cursor = service.list(ListQuery(limit=5, **filters))
    assert cursor is not None
    return decode_cursor(cursor)


LISTINGS = {
    "newest": {},
    "status": {"status": "Open"},
    "creator": {"creator": CREATOR},
    "worker": {"worker": WORKER},
    "status and creator": {"status": "Open", "creator": CREATOR},
}


@pytest.mark.parametrize("filters", LISTINGS.values(), ids=LISTINGS.keys())
@pytest.mark.parametrize("paged", [False, True], ids=["first page", "later page"])
def test_listing_reads_an_index_in_order(service: JobService, filters: dict, paged: bool):
    after = first_page_cursor(service, **{k: v for k, v in filters.items() if k != "worker"}) if paged else None
    statements = traced_selects(service, lambda: service.list(ListQuery(limit=5, after=after, **filters)))
    assert statements, "the listing sent no SELECT on jobs"

    for sql in statements:
        plan = query_plan(service, sql)
        joined = " | ".join(plan)
        # A bare "SCAN jobs" reads every row; "SCAN jobs USING INDEX" walks the index in order and stops at LIMIT.
        assert not any(step == "SCAN jobs" for step in plan), f"full table scan: {joined}\n{sql}"
        assert "USING INDEX" in joined or "USING COVERING INDEX" in joined, f"no index: {joined}\n{sql}"
        assert "TEMP B-TREE" not in joined, f"sorts every matching row before LIMIT: {joined}\n{sql}"
        if paged:
            # The cursor must bound the index search, or page N re-reads the N-1 pages before it.
            assert "created_us<" in joined.replace(" ", ""), f"cursor does not bound the index search: {joined}\n{sql}"


def test_listing_by_ids_uses_primary_key(service: JobService):
    ids = tuple(job["id"] for job in service.list(ListQuery(limit=3))[0])
    statements = traced_selects(service, lambda: service.list(ListQuery(ids=ids, limit=5)))
    assert statements

    for sql in statements:
        joined = " | ".join(query_plan(service, sql))
        assert "(id=?)" in joined, f"ids are not looked up by primary key: {joined}\n{sql}"
        assert not any(step == "SCAN jobs" for step in joined.split(" | ")), f"full table scan: {joined}\n{sql}"


def test_get_job_uses_primary_key(service: JobService):
    job_id = service.list(ListQuery(limit=1))[0][0]["id"]
    selects = traced_selects(service, lambda: service.get(job_id))
    assert selects

    for sql in selects:
        joined = " | ".join(query_plan(service, sql))
        assert "USING INDEX" in joined or "USING PRIMARY KEY" in joined, f"no index: {joined}\n{sql}"
