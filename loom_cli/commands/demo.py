"""`loom demo`: the whole marketplace workflow against a throwaway local sandbox.

The demo starts `loom sandbox` as a child process on a free loopback port,
with its database in a new temporary folder, and makes two wallets that
live only in memory. Every step then runs the real loom command in this
process, as the creator or the worker, each with its own settings folder
inside the temporary one and file-based credentials. The user's profiles,
config and keyring are never read or written. Step headings go to stderr and
the commands' data to stdout. The folder is removed and the sandbox stopped
at the end, also after an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import io
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import typer

from loom_cli.context import AppContext, GlobalOptions
from loom_cli.errors import ExitCode, LoomError, WatchOutcome

if TYPE_CHECKING:
    import subprocess

    from eth_account.signers.local import LocalAccount

DEMO_EXAMPLES = """\
Examples:

  loom demo                      # a few seconds, then everything is removed
  loom demo 2>/dev/null          # only the data the commands print
  loom demo > data.txt           # steps on the terminal, data in a file
"""

# How long the sandbox may take to print its URL before the demo gives up.
SANDBOX_START_SECONDS = 30.0
# How long the sandbox gets to stop after SIGTERM before it is killed.
SANDBOX_STOP_SECONDS = 5.0

# The worker reports this long after watch starts, so watch shows the change happen.
WORK_SECONDS = 1.0
WATCH_INTERVAL = 0.5
WATCH_TIMEOUT = 60.0

DEMO_OUTPUT = '{"frames_rendered": 120, "mean_frame_seconds": 3.42, "note": "rendered by the loom demo"}'


TOTAL_STEPS = 8


def register(root: typer.Typer) -> None:
    root.command("demo", epilog=DEMO_EXAMPLES)(demo)


def demo(ctx: typer.Context) -> None:
    """Run the whole marketplace workflow against a private, throwaway sandbox.

    Starts a local sandbox, makes two wallets, browses the marketplace, logs
    in by signature, creates a job from the example spec, claims it and
    reports a result as a second wallet, watches it complete and reads the
    result back. Nothing outside a temporary folder is touched, and the
    folder is removed at the end. Needs the sandbox extra (FastAPI, uvicorn).
    """
    app = AppContext.of(ctx)
    Demo(app).run()


@dataclass
class Wallet:
    role: str
    account: LocalAccount
    config_dir: Path
    token: str | None = None


class Demo:
    """One demo run: the temporary folder, the sandbox process and the steps."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.folder: Path | None = None
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.api_url = ""
        self.step_number = 0

    def run(self) -> None:
        import signal
        import tempfile

        from loom_cli.sandbox.server import check_sandbox_installed

        check_sandbox_installed()
        started = time.monotonic()
        # SIGTERM ends the demo like Ctrl-C, so the cleanup below still runs.
        previous_handler = None
        if threading.current_thread() is threading.main_thread():
            previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            self.folder = Path(tempfile.mkdtemp(prefix="loom-demo-"))
            self._steps()
        except KeyboardInterrupt:
            self._cleanup()
            self.app.warn("Demo interrupted; the sandbox is stopped and its temporary folder removed.")
            raise
        except BaseException:
            self._cleanup()
            raise
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGTERM, previous_handler)
        self._cleanup()
        self.say(f"\nDemo finished in {time.monotonic() - started:.1f} s; the sandbox is stopped and its folder removed.")
        self.say("Try it against your own sandbox: `loom sandbox` in one terminal, then `loom --help` in another.")

    # -- the workflow ------------------------------------------------------------------------

    def _steps(self) -> None:
        assert self.folder is not None
        self.step("Start a private sandbox: the Loom API on a free loopback port", "loom sandbox --port 0 --seed-demo-data")
        self._start_sandbox()
        self.say(f"    Listening at {self.api_url}; temporary data in {self.folder}")

        self.step("Make two throwaway wallets (their keys stay in this process's memory)")
        creator = self._new_wallet("creator")
        worker = self._new_wallet("worker")
        self.say(f"    creator {creator.account.address}")
        self.say(f"    worker  {worker.account.address}")

        self.step("Browse the marketplace; listing jobs needs no login", "loom jobs list --limit 5")
        self.loom(["jobs", "list", "--limit", "5"], None)

        self.step("Log in as the creator by signing a one-time nonce", "loom login")
        self._login(creator)

        spec_path = self.folder / "example-job.yaml"
        spec_path.write_text(_example_spec(), encoding="utf-8")
        self.step("Create a job from the example spec (`loom jobs init` writes the same file)", "loom jobs create example-job.yaml -q")
        job_id = self._create_job(creator, spec_path)

        self.step("Log in as the worker, then claim the job", f"loom jobs claim {job_id}")
        self._login(worker)
        self.loom(["jobs", "claim", job_id], worker)

        report_args = ["results", "report", job_id, "--output-json", DEMO_OUTPUT, "--message", "120 frames"]
        self.step(
            "Watch the job; the worker reports its result a moment later",
            f"loom jobs watch {job_id}    (meanwhile the worker runs: loom results report {job_id} --output-json ...)",
        )
        self._watch_while_reporting(job_id, worker, report_args)

        self.step("Read the result back as the creator", f"loom results get {job_id}")
        self.loom(["results", "get", job_id], creator)

    def _start_sandbox(self) -> None:
        import subprocess
        import sys

        assert self.folder is not None
        log_path = self.folder / "sandbox.log"
        env = self._base_env()
        env["LOOM_CONFIG_DIR"] = str(self.folder / "sandbox")
        command = [
            sys.executable, "-m", "loom_cli", "sandbox",
            "--host", "127.0.0.1", "--port", "0",
            "--db", str(self.folder / "sandbox.db"),
            "--seed-demo-data",
        ]  # fmt: skip
        with log_path.open("wb") as log:
            # A session of its own: Ctrl-C on the terminal reaches only the
            # demo, which then stops the sandbox in order.
            self.sandbox = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        line = _read_first_line(self.sandbox, SANDBOX_START_SECONDS)
        if not line.startswith("http://127.0.0.1:"):
            log_tail = _tail(log_path)
            raise LoomError(
                f"the demo sandbox did not start: {line or 'it printed no URL'}",
                hint=f"its log ends with: {log_tail}" if log_tail else "run `loom sandbox --port 0` to see why",
            )
        self.api_url = line

    def _new_wallet(self, role: str) -> Wallet:
        from eth_account import Account

        assert self.folder is not None
        return Wallet(role=role, account=Account.create(), config_dir=self.folder / role)

    def _login(self, wallet: Wallet) -> None:
        from loom_cli.auth import AccountSigner, login

        signer = _NarratingSigner(AccountSigner(wallet.account, f"the {wallet.role}'s demo key"), self.say)
        stored = login(self._context(wallet), signer)
        wallet.token = stored.token
        self.say(f"    POST /auth/login accepted the signature: token for {stored.address}, valid until {stored.expires_at}")

    def _create_job(self, creator: Wallet, spec_path: Path) -> str:
        captured = io.StringIO()
        self.loom(["jobs", "create", str(spec_path), "-q"], creator, stdout=_Tee(self.app.stdout, captured))
        job_id = captured.getvalue().strip()
        if not job_id.startswith("job_"):
            raise LoomError(f"jobs create printed {job_id!r} instead of a job id")
        return job_id

    def _watch_while_reporting(self, job_id: str, worker: Wallet, report_args: list[str]) -> None:
        """Watch the job here while a thread reports its result as the worker after WORK_SECONDS.

        This calls what `loom jobs watch` runs, minus its "watch again" hint:
        the sandbox is gone once the demo ends. A failed report interrupts
        the watch at once instead of leaving it to time out.
        """
        import _thread

        from loom_cli.commands.jobs.watch import watch_jobs

        failure: list[BaseException] = []
        stop = threading.Event()

        def report_later() -> None:
            if stop.wait(WORK_SECONDS):
                return
            try:
                # The worker's copy of the result is not shown; the next step reads it back.
                self.loom(report_args, worker, stdout=io.StringIO())
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
                failure.append(exc)
                _thread.interrupt_main()

        reporter = threading.Thread(target=report_later, name="demo-worker", daemon=True)
        reporter.start()
        try:
            code = watch_jobs(self._context(None), [job_id], interval=WATCH_INTERVAL, timeout=WATCH_TIMEOUT, resume_hint=False)
        finally:
            stop.set()
            reporter.join(timeout=30)
        if failure:
            raise failure[0]
        if code == ExitCode.INTERRUPTED:
            raise KeyboardInterrupt
        if code != ExitCode.OK:
            raise LoomError(f"the demo job did not complete: watch ended with exit code {int(code)}")

    # -- running loom commands -----------------------------------------------------------------

    def loom(self, args: list[str], wallet: Wallet | None, *, stdout: TextIO | None = None) -> ExitCode:
        """Run one loom command in this process, as `wallet` (None: logged out); return its watch code.

        Errors other than a watch outcome propagate, so a failing step ends the demo with its exit code.
        """
        from loom_cli.app import app as root_app

        command = typer.main.get_command(root_app)
        global_args = ["--no-color"] if not self.app.color else []
        try:
            returned = command.main(
                args=[*global_args, *args],
                prog_name="loom",
                obj=self._context(wallet, stdout=stdout),
                standalone_mode=False,
            )
        except WatchOutcome as outcome:
            return outcome.exit_code
        if returned == ExitCode.INTERRUPTED:
            # Outside standalone mode Typer turns Ctrl-C into a returned 130
            # instead of raising; raise it again so the demo stops too.
            raise KeyboardInterrupt
        return ExitCode.OK

    def _context(self, wallet: Wallet | None, *, stdout: TextIO | None = None) -> AppContext:
        assert self.folder is not None
        env = self._base_env()
        env["LOOM_API_URL"] = self.api_url
        env["LOOM_CONFIG_DIR"] = str(wallet.config_dir if wallet else self.folder / "visitor")
        # Files under the temporary folder, never the user's OS keyring.
        env["LOOM_KEYRING_BACKEND"] = "file"
        if wallet is not None:
            env["LOOM_PRIVATE_KEY"] = wallet.account.key.hex()
            if wallet.token:
                env["LOOM_TOKEN"] = wallet.token
        return AppContext(
            GlobalOptions(),
            env=env,
            stdin=io.StringIO(),
            stdout=stdout or self.app.stdout,
            stderr=self.app.stderr,
            clock=self.app.clock,
            sleep=self.app.sleep,
        )

    def _base_env(self) -> dict[str, str]:
        """This process's environment without LOOM_* variables, which would point at the user's API, wallet or files."""
        return {name: value for name, value in os.environ.items() if not name.startswith("LOOM_")}

    # -- output and cleanup -------------------------------------------------------------------

    def step(self, title: str, command: str | None = None) -> None:
        self.step_number += 1
        self.say(f"\n==> [{self.step_number}/{TOTAL_STEPS}] {title}")
        if command:
            self.say(f"    $ {command}")

    def say(self, line: str) -> None:
        self.app.warn(line)

    def _cleanup(self) -> None:
        import shutil

        self._stop_sandbox()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def _stop_sandbox(self) -> None:
        import subprocess

        process, self.sandbox = self.sandbox, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(SANDBOX_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


class _NarratingSigner:
    """A signer that prints on stderr the nonce it signs (never the signature), then signs like the wrapped one."""

    def __init__(self, inner: Any, say: Any) -> None:
        self.inner = inner
        self.say = say
        self.address = inner.address
        self.source = inner.source

    def sign(self, nonce: str) -> str:
        from loom_cli.text import escape_control

        self.say(f"    GET /auth/nonce issued the nonce {escape_control(nonce)}")
        signature = self.inner.sign(nonce)
        self.say(f"    signed it with personal_sign (EIP-191) as {self.address}")
        return signature


class _Tee(io.TextIOBase):
    """A text stream that copies writes to two streams; `isatty` reports on the first."""

    def __init__(self, first: TextIO, second: TextIO) -> None:
        self.first = first
        self.second = second

    def write(self, text: str) -> int:
        self.first.write(text)
        self.second.write(text)
        return len(text)

    def flush(self) -> None:
        self.first.flush()

    def isatty(self) -> bool:
        return self.first.isatty()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _example_spec() -> str:
    from loom_cli.commands.jobs.create import example_spec

    return example_spec()


def _read_first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    """Return the first stdout line of `process`, or "" when it exits or `timeout` passes first."""
    import selectors

    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return ""
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()


def _tail(path: Path, lines: int = 3) -> str:
    from loom_cli.text import escape_control

    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return escape_control(" | ".join(text.strip().splitlines()[-lines:]))

