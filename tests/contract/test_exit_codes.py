"""Exit codes, one row per command and way of ending, as shell scripts in CI see them.

The rows are in cases.py. Each runs the real `loom` as a subprocess with stdin
closed against the shared sandbox, a server that returns HTML, or a closed
loopback port.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.contract.cases import CASES, CLOSED_PORT_CASES, OK, UNAVAILABLE, Case
from tests.contract.world import World, assert_clean_failure, assert_no_traceback
from tests.helpers import loom_env

pytestmark = pytest.mark.e2e

# Codes after which stdout may still carry data: watch's outcomes print the jobs they followed.
OUTCOME_CODES = {10, 11, 12}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_exit_code(case: Case, world: World):
    result = case.run(world)

    assert result.returncode == case.code, f"stdout: {result.stdout!r}\nstderr: {result.stderr!r}"
    if case.code == OK or case.code in OUTCOME_CODES:
        assert_no_traceback(result)
    else:
        assert_clean_failure(result)
    if case.says is not None:
        assert case.says in result.stderr, result.stderr
    for secret in world.secrets():
        assert secret not in result.stderr, "a key or token reached stderr"
        if case.command != "auth token":
            assert secret not in result.stdout, "a key or token reached stdout"


# Results of CLOSED_PORT_CASES by case id, filled once per test process; see `closed_port_results`.
_closed_port_results: dict[str, subprocess.CompletedProcess[str]] = {}


@pytest.fixture
def closed_port_results(world: World) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every closed-port case at once, the first time a test requests them, and keep the results.

    Each run spends about 5 s in the HTTP layer's retry backoff before it gives
    up, so running them one after another would add a minute of sleeping. They
    run in the first requesting test's isolated folder (a function-scoped
    fixture, so the autouse isolation of LOOM_* variables applies).
    """
    if not _closed_port_results:
        with ThreadPoolExecutor(max_workers=len(CLOSED_PORT_CASES)) as pool:
            futures = {case.id: pool.submit(case.run, world) for case in CLOSED_PORT_CASES}
        _closed_port_results.update({case_id: future.result() for case_id, future in futures.items()})
    return _closed_port_results


@pytest.mark.slow
@pytest.mark.parametrize("case", CLOSED_PORT_CASES, ids=lambda case: case.id)
def test_exit_code_closed_port(case: Case, closed_port_results: dict[str, subprocess.CompletedProcess[str]]):
    result = closed_port_results[case.id]

    assert result.returncode == UNAVAILABLE, f"stdout: {result.stdout!r}\nstderr: {result.stderr!r}"
    assert_clean_failure(result)
    assert case.says is not None and case.says in result.stderr, result.stderr


@pytest.mark.parametrize("outcome, code", [("Completed", OK), ("Failed", 10), ("Cancelled", 11)], ids=["Completed", "Failed", "Cancelled"])
def test_create_wait_exit_code(outcome: str, code: int, world: World):
    """`jobs create --wait` ends with watch's code for the outcome that another party gives the job."""
    args = ["-m", "loom_cli", "jobs", "create", world.spec_file(), "--wait", "--interval", "0.2", "--timeout", "60", "-q"]
    create = subprocess.Popen(
        [sys.executable, *args],
        env=loom_env({"LOOM_API_URL": world.url, **world.creator.token_env}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert create.stdout is not None
    job_id = create.stdout.readline().strip()

    if outcome == "Cancelled":
        world.market.cancel(world.creator, job_id)
    else:
        world.market.claim(world.worker, job_id)
        world.market.report(world.worker, job_id, outcome)
    rest, stderr = create.communicate(timeout=60)

    assert job_id.startswith("job_"), stderr
    assert create.returncode == code, stderr
    assert rest == ""
    assert_no_traceback(subprocess.CompletedProcess(args, code, rest, stderr))
