"""Fixtures for the scripting-contract tests; the helpers they build on are in world.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.contract.world import GarbageHandler, Market, World


@pytest.fixture(scope="session")
def market(sandbox_url: str) -> Iterator[Market]:
    shared = Market(sandbox_url)
    yield shared
    shared.close()


@pytest.fixture
def world(market: Market, tmp_path: Path, garbage_url: str, closed_port_url: str) -> World:
    return World(market, tmp_path, garbage_url=garbage_url, closed_url=closed_port_url)


# -- APIs that fail ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def closed_port_url() -> Iterator[str]:
    """The URL of a loopback port that refuses connections.

    The port stays bound, without listening, for the whole session, so no
    server started meanwhile (another test's sandbox on port 0) can take it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture(scope="session")
def garbage_url() -> Iterator[str]:
    """The URL of a loopback HTTP server that returns 200 and HTML for every request."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), GarbageHandler)
    thread = threading.Thread(target=server.serve_forever, name="garbage-api", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()

