"""Commands that behave differently on a terminal, run on a real pseudo-terminal.

`jobs cancel` asks for confirmation only on a terminal, and `jobs watch` draws
a live table only there; loom runs with a pty as stdin, stdout and stderr.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest

# make_party is a fixture, found by pytest through this import.
from tests.e2e.test_workflow import PartyFactory, make_party  # noqa: F401
from tests.helpers import loom_env, run_loom

pytestmark = pytest.mark.e2e


class TerminalSession:
    """loom running on a pseudo-terminal; `expect` waits for text, `send` types a line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, replica = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loom_cli", *args],
            env=loom_env({**env, "TERM": "xterm-256color"}),
            stdin=replica,
            stdout=replica,
            stderr=replica,
            start_new_session=True,
        )
        os.close(replica)
        self.output = ""

    def _read(self, timeout: float) -> bool:
        """Read what is available within `timeout`; return False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the terminal has exited
            return False
        if not chunk:
            return False
        self.output += chunk.decode("utf-8", errors="replace")
        return True

    def expect(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or not self._read(0.2):
                self.process.kill()
                pytest.fail(f"the terminal never showed {text!r}; it showed:\n{self.output}")

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode("utf-8"))

    def finish(self, timeout: float = 60) -> int:
        """Read until the process exits; return its exit status."""
        deadline = time.monotonic() + timeout
        while self._read(0.2) and time.monotonic() < deadline:
            if self.process.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                break
        code = self.process.wait(max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return code


def test_cancel_asks_and_yes_cancels(make_party: PartyFactory):
    creator = make_party("creator")
    job_id = creator.post_job()

    session = TerminalSession(["jobs", "cancel", job_id], creator.env)
    session.expect(f'Cancel job {job_id} "Score support tickets" (Open)? [y/N] ')
    session.send("y")

    assert session.finish() == 0, session.output
    assert creator.status(job_id) == "Cancelled"


def test_cancel_asks_and_no_keeps_job(make_party: PartyFactory):
    creator = make_party("creator")
    job_id = creator.post_job()

    session = TerminalSession(["jobs", "cancel", job_id], creator.env)
    session.expect("[y/N] ")
    session.send("n")

    assert session.finish() == 0, session.output
    assert f"Not cancelled: {job_id} is unchanged." in session.output
    assert creator.status(job_id) == "Open"


def test_watch_draws_live_table(make_party: PartyFactory):
    creator = make_party("creator")
    job_id = creator.post_job()

    session = TerminalSession(["jobs", "watch", job_id, "--interval", "0.2"], creator.env)
    session.expect("ELAPSED")
    session.expect("Open")
    creator.post(f"/jobs/{job_id}/cancel")

    assert session.finish() == 11, session.output
    for text in ("ID", "NAME", "STATUS", "WORKER", job_id, "Score support tickets", "Cancelled", "Done: 1 Cancelled."):
        assert text in session.output
    assert "Traceback" not in session.output


def test_manual_login_reads_signature_unechoed(make_party: PartyFactory):
    from eth_account import Account
    from eth_account.messages import encode_defunct

    party = make_party("manual", token=False)
    env = {name: value for name, value in party.env.items() if name != "LOOM_PRIVATE_KEY"}

    session = TerminalSession(["login", "--address", party.address, "--manual"], env)
    session.expect("Signature (0x followed by 130 hex digits): ")
    nonce = re.search(r"^  ([A-Za-z0-9]{16,64})\r?$", session.output, re.MULTILINE)
    assert nonce, session.output
    signed = Account.sign_message(encode_defunct(text=nonce.group(1)), party.account.key)
    signature = "0x" + bytes(signed.signature).hex()
    session.send(signature)

    assert session.finish() == 0, session.output
    assert "Logged in." in session.output
    # The terminal does not echo the pasted signature.
    assert signature[2:] not in session.output
    whoami = run_loom("whoami", "-o", "json", env=env)
    assert whoami.returncode == 0, whoami.stderr
    assert party.address in whoami.stdout
