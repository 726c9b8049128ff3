"""Helpers for the scripting-contract tests: the real CLI as a subprocess against a real sandbox.

Every command runs as `python -m loom_cli` with stdin closed (no terminal), its
own LOOM_CONFIG_DIR and the shared session sandbox. Jobs, logins and results
that a case needs beforehand are made over HTTP with httpx, because that is
much faster than a CLI call. The command under test is always the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.sandbox import api_login
from tests.helpers import run_loom

# A small valid job spec; tests change single fields of it.
SPEC: dict[str, Any] = {
    "name": "contract test job",
    "image": "alpine:3.20",
    "command": ["echo", "hello"],
    "resources": {"cpu": 1, "memory": "256Mi"},
    "reward": {"amount": "1.5"},
}

# Cheap scrypt parameters for keystores the tests write, so unlocking one takes
# milliseconds instead of the second that eth-account's default costs.
CHEAP_SCRYPT_N = 1024


def spec_yaml(**changes: Any) -> str:
    """Return SPEC with `changes` applied, as YAML text."""
    import yaml

    return yaml.safe_dump({**SPEC, **changes}, sort_keys=False)


def assert_clean_failure(result: subprocess.CompletedProcess[str]) -> None:
    """Check what every failure shares: no data on stdout, an error message on stderr, no traceback."""
    assert result.stdout == "", f"a failure printed data on stdout: {result.stdout!r}"
    assert_no_traceback(result)
    assert "error" in result.stderr.lower(), f"no error message on stderr: {result.stderr!r}"


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    for marker in ("Traceback (most recent call last)", "Exception ignored"):
        assert marker not in result.stderr, result.stderr


@dataclass
class Actor:
    """A fresh wallet logged in over HTTP; `token_env` and `key_env` let the CLI act as it without a stored login."""

    account: Any
    token: str

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def key_hex(self) -> str:
        return self.account.key.hex()

    @property
    def token_env(self) -> dict[str, str]:
        return {"LOOM_TOKEN": self.token}

    @property
    def key_env(self) -> dict[str, str]:
        return {"LOOM_PRIVATE_KEY": self.key_hex}


class Market:
    """Arranges marketplace state over HTTP, as the API's own clients would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30.0, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def actor(self) -> Actor:
        from eth_account import Account

        account = Account.create()
        return Actor(account, api_login(self.url, account, client=self.http))

    def _post(self, actor: Actor, path: str, body: Any = None, **headers: str) -> dict:
        response = self.http.post(path, json=body, headers={"Authorization": f"Bearer {actor.token}", **headers})
        assert response.status_code in (200, 201), response.text
        return response.json()

    def create_job(self, creator: Actor, **changes: Any) -> str:
        return self._post(creator, "/jobs", {**SPEC, **changes})["id"]

    def claim(self, worker: Actor, job_id: str) -> None:
        self._post(worker, f"/jobs/{job_id}/claim")

    def cancel(self, creator: Actor, job_id: str) -> None:
        self._post(creator, f"/jobs/{job_id}/cancel")

    def report(self, worker: Actor, job_id: str, outcome: str = "Completed", output: Any = None) -> None:
        self._post(worker, f"/jobs/{job_id}/results", {"outcome": outcome, "output": output if output is not None else {"ok": True}})

    def job(self, job_id: str) -> dict:
        response = self.http.get("/jobs", params={"ids": job_id, "limit": 1})
        assert response.status_code == 200, response.text
        return response.json()["data"][0]


class World:
    """One test's view of the marketplace: two actors, jobs in any state, and a `loom` runner."""

    def __init__(self, market: Market, tmp_path: Path, *, garbage_url: str, closed_url: str) -> None:
        self.market = market
        self.url = market.url
        self.tmp_path = tmp_path
        self.garbage_url = garbage_url
        self.closed_url = closed_url
        # The autouse isolation fixture of tests/conftest.py points this at a fresh folder.
        self.config_dir = Path(os.environ["LOOM_CONFIG_DIR"])

    @cached_property
    def creator(self) -> Actor:
        return self.market.actor()

    @cached_property
    def worker(self) -> Actor:
        return self.market.actor()

    @cached_property
    def stranger(self) -> Actor:
        return self.market.actor()

    def loom(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        api_url: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI against this world's sandbox (or `api_url`), stdin closed unless `input`."""
        return run_loom(*args, env={"LOOM_API_URL": api_url or self.url, **(env or {})}, input=input, timeout=timeout)

    def secrets(self) -> list[str]:
        """Return the keys and tokens of the actors this test used, which no output may contain."""
        actors = [self.__dict__[name] for name in ("creator", "worker", "stranger") if name in self.__dict__]
        return [secret for actor in actors for secret in (actor.token, actor.key_hex, actor.key_hex.removeprefix("0x"))]

    # -- jobs in every state, made over HTTP ------------------------------------------------

    def open_job(self, **changes: Any) -> str:
        return self.market.create_job(self.creator, **changes)

    def in_progress_job(self, **changes: Any) -> str:
        job_id = self.open_job(**changes)
        self.market.claim(self.worker, job_id)
        return job_id

    def finished_job(self, outcome: str = "Completed", *, output: Any = None, **changes: Any) -> str:
        job_id = self.in_progress_job(**changes)
        self.market.report(self.worker, job_id, outcome, output)
        return job_id

    def cancelled_job(self) -> str:
        job_id = self.open_job()
        self.market.cancel(self.creator, job_id)
        return job_id

    # -- files ------------------------------------------------------------------------------

    def file(self, name: str, text: str) -> str:
        path = self.tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    def spec_text(self, **changes: Any) -> str:
        return spec_yaml(**changes)

    def spec_file(self, filename: str = "job.yaml", **changes: Any) -> str:
        return self.file(filename, spec_yaml(**changes))

    def keystore_file(self, account: Any, passphrase: str, name: str = "keystore.json") -> str:
        """Write `account`'s key as a keystore v3 file with cheap scrypt parameters."""
        from loom_cli.wallet import encrypt_key

        keystore = encrypt_key(bytes(account.key), passphrase, kdf="scrypt", iterations=CHEAP_SCRYPT_N)
        return self.file(name, json.dumps(keystore))

    def stored_wallet(self, passphrase: str = "correct horse") -> Any:
        """Store a fresh wallet in this test's LOOM_CONFIG_DIR through `loom wallet import --keystore`."""
        from eth_account import Account

        account = Account.create()
        path = self.keystore_file(account, passphrase, name=f"{account.address}.json")
        result = self.loom("wallet", "import", "--keystore", path, "-q", env={"LOOM_PASSPHRASE": passphrase})
        assert result.returncode == 0, result.stderr
        return account


class GarbageHandler(BaseHTTPRequestHandler):
    """Return 200 and an HTML page for every request, like a web server that is not a Loom API."""

    def _garbage(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"<html><body>It works!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _garbage

    def log_message(self, format: str, *args: Any) -> None:
        pass
