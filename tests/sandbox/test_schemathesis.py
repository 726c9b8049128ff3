"""Property-based checks of a live `loom sandbox` against its own OpenAPI document, with schemathesis.

Schemathesis generates requests for every operation from the document, sends them over
loopback HTTP with a valid token, and checks that no response is a 5xx and that every
response's status, headers and body conform to the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from loom_cli.sandbox.openapi import build_openapi
from tests.fixtures.sandbox import SandboxProcess, api_login, launch_sandbox

pytestmark = pytest.mark.slow

# Bounded so that the whole module runs well under a minute on a loaded 2-core machine.
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def live_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    folder: Path = tmp_path_factory.mktemp("schemathesis")
    sandbox = launch_sandbox("--seed-demo-data", db_path=folder / "sandbox.db", log_path=folder / "sandbox.log")
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture(scope="module")
def auth_headers(live_sandbox: SandboxProcess) -> dict[str, str]:
    from eth_account import Account

    # A long-lived worker-like account: the token lasts the sandbox's default hour.
    return {"Authorization": f"Bearer {api_login(live_sandbox.url, Account.create())}"}


# Loaded eagerly: schemathesis 4.32's lazy loader (`from_fixture`) sets a private attribute that
# pytest 9 no longer has. Every call passes the live sandbox's base_url, so the document's own
# servers, which include the public service, are never contacted.
schema = schemathesis.openapi.from_dict(build_openapi())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_sandbox_conforms_to_its_openapi(case, auth_headers, live_sandbox):
    # The API checks more than a schema can state: EIP-55 checksums of mixed-case addresses,
    # the timeout's 1s-7d range, that a cursor came from this server, that a signature signs a
    # live nonce. So a schema-valid request may rightly get a 4xx, and that check is left out.
    case.call_and_validate(base_url=live_sandbox.url, headers=auth_headers, excluded_checks=[positive_data_acceptance])
