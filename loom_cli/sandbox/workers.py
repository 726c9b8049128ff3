"""Simulated workers for `loom sandbox --simulate-workers`: threads that act like real workers over HTTP.

Each worker has a fresh wallet and goes through the public API exactly as a remote worker
would: nonce, personal_sign, login, then poll Open jobs, claim one, "work" for a while and
report Completed (or Failed with probability `fail_rate`) with a small made-up output. A
token is renewed shortly before it expires and after any 401.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("loom.sandbox.workers")

DEFAULT_WORKER_COUNT = 2
POLL_SECONDS = 1.0
ERROR_BACKOFF_SECONDS = 2.0
# Log in again when the token has less than this many seconds left (or a quarter of its
# lifetime, for the short-lived tokens of --token-ttl).
RENEW_MARGIN_SECONDS = 10


class SimulatedWorkers:
    def __init__(
        self,
        base_url: str,
        *,
        count: int = DEFAULT_WORKER_COUNT,
        fail_rate: float = 0.0,
        work_seconds: float = 3.0,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.base_url = base_url
        self.count = count
        self.fail_rate = fail_rate
        self.work_seconds = work_seconds
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(1, self.count + 1):
            worker = _Worker(self, number)
            thread = threading.Thread(target=worker.run, name=f"simulated-worker-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Tell every worker to stop after its current request; safe to call from a signal handler."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every worker to stop and wait up to `timeout` seconds in all; a job being worked on stays InProgress."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def stopping(self) -> threading.Event:
        return self._stop


class _AuthExpired(Exception):
    """The server returned 401; the worker logs in again."""


class _Worker:
    def __init__(self, pool: SimulatedWorkers, number: int) -> None:
        self.pool = pool
        self.name = f"worker {number}"
        self.account: Any = None
        self.token: str | None = None
        self.renew_at = 0.0
        self.random = random.Random(secrets.randbits(64))

    def run(self) -> None:
        # Imported here, in the worker's thread, so that creating workers does not delay serving.
        import httpx
        from eth_account import Account

        self.account = Account.create()
        logger.info("%s started with wallet %s", self.name, self.account.address)
        with httpx.Client(base_url=self.pool.base_url, timeout=10.0, trust_env=False) as client:
            while not self.pool.stopping.is_set():
                try:
                    worked = self._step(client)
                except _AuthExpired:
                    self.token = None
                    continue
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    # ValueError and KeyError: a response body that was not the expected JSON.
                    if self.pool.stopping.is_set():
                        break
                    logger.warning("%s: request failed (%s); retrying in %.0fs", self.name, exc, ERROR_BACKOFF_SECONDS)
                    self.pool.stopping.wait(ERROR_BACKOFF_SECONDS)
                    continue
                if not worked:
                    self.pool.stopping.wait(self.pool.poll_seconds * self.random.uniform(0.8, 1.2))
        logger.info("%s stopped", self.name)

    # ---- one round: find an Open job, claim it, work, report -------------------------------

    def _step(self, client: Any) -> bool:
        """Try to take one job; return whether a job was worked on."""
        self._ensure_token(client)
        page = self._call(client, "GET", "/jobs", params={"status": "Open", "limit": "20"})
        for job in page.json()["data"]:
            if job["creator"] == self.account.address:
                continue
            claim = self._call(client, "POST", f"/jobs/{job['id']}/claim", headers={"Idempotency-Key": secrets.token_hex(16)})
            if claim.status_code != 200:
                # Another worker won the claim, or the job was cancelled meanwhile.
                continue
            logger.info("%s claimed %s", self.name, job["id"])
            if self.pool.stopping.wait(self.pool.work_seconds):
                logger.info("%s stopped while working on %s; the job stays InProgress", self.name, job["id"])
                return True
            self._report(client, job)
            return True
        return False

    def _report(self, client: Any, job: dict[str, Any]) -> None:
        failed = self.random.random() < self.pool.fail_rate
        body = self._result(job, failed)
        key = secrets.token_hex(16)
        # The token may have expired during the work; renew it and send the same report again.
        for _ in range(2):
            try:
                self._ensure_token(client)
                response = self._call(client, "POST", f"/jobs/{job['id']}/results", json=body, headers={"Idempotency-Key": key})
                break
            except _AuthExpired:
                self.token = None
        else:
            logger.warning("%s could not report %s: the token kept being rejected", self.name, job["id"])
            return
        if response.status_code == 201:
            logger.info("%s reported %s for %s", self.name, body["outcome"], job["id"])
        else:
            code = response.json().get("error", {}).get("code")
            logger.info("%s could not report %s: %s %s", self.name, job["id"], response.status_code, code)

    def _result(self, job: dict[str, Any], failed: bool) -> dict[str, Any]:
        seconds = round(self.pool.work_seconds, 3)
        finished = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if failed:
            return {
                "outcome": "Failed",
                "output": {"exit_code": 1, "duration_seconds": seconds, "stderr_tail": "simulated failure: the container exited with status 1"},
                "message": "Simulated failure (loom sandbox --fail-rate).",
            }
        artifact = hashlib.sha256(f"{job['id']}:{finished}".encode()).hexdigest()
        outputs = job.get("spec", {}).get("outputs") or [{"path": "/out"}]
        return {
            "outcome": "Completed",
            "output": {
                "exit_code": 0,
                "duration_seconds": seconds,
                "finished_at": finished,
                "stdout_tail": f"{job['name'][:60]}: done",
                "artifacts": [{"path": item["path"], "bytes": self.random.randint(1_000, 50_000_000)} for item in outputs],
            },
            "sha256": artifact,
            "message": "Completed by a simulated worker.",
        }

    # ---- HTTP and login --------------------------------------------------------------------

    def _call(self, client: Any, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self.token}"}
        response = client.request(method, path, headers=headers, **kwargs)
        if response.status_code == 401:
            raise _AuthExpired()
        if response.status_code >= 500 or response.status_code == 429:
            response.raise_for_status()
        return response

    def _ensure_token(self, client: Any) -> None:
        if self.token is not None and time.time() < self.renew_at:
            return
        from eth_account.messages import encode_defunct

        nonce = client.get("/auth/nonce", params={"address": self.account.address})
        nonce.raise_for_status()
        signature = self.account.sign_message(encode_defunct(text=nonce.json()["nonce"])).signature.hex()
        login = client.post("/auth/login", json={"address": self.account.address, "signature": signature})
        login.raise_for_status()
        data = login.json()
        self.token = data["token"]
        expires = datetime.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        lifetime = expires.timestamp() - time.time()
        self.renew_at = expires.timestamp() - min(RENEW_MARGIN_SECONDS, lifetime / 4)
        logger.info("%s logged in; token valid until %s", self.name, data["expires_at"])
