"""Ctrl-C (SIGINT) ends a long-running command with exit code 130, quietly; SIGTERM stops the sandbox with 0."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from loom_cli import api
from loom_cli.commands.demo import Demo
from loom_cli.context import AppContext, GlobalOptions
from tests.contract.world import World, assert_no_traceback
from tests.helpers import loom_env

pytestmark = pytest.mark.e2e


def start(w: World, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "loom_cli", *args],
        env=loom_env({"LOOM_API_URL": w.url, **(env or {})}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str], sig: int) -> subprocess.CompletedProcess[str]:
    """Send `sig` once the command has printed its first stdout line; return how it ended."""
    assert process.stdout is not None
    first_line = process.stdout.readline()
    assert first_line, process.stderr.read() if process.stderr else ""
    process.send_signal(sig)
    rest, stderr = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, first_line + rest, stderr)


@pytest.mark.parametrize("flags", [[], ["-o", "jsonl"]], ids=["lines", "jsonl"])
def test_watch_ctrl_c_exits_130(flags: list[str], world: World):
    job_id = world.open_job()
    watch = start(world, ["jobs", "watch", job_id, "--interval", "0.2", *flags])

    result = stop(watch, signal.SIGINT)

    assert result.returncode == 130, result.stderr
    assert_no_traceback(result)
    assert "KeyboardInterrupt" not in result.stderr
    assert f"jobs watch {job_id}" in result.stderr


def test_create_wait_ctrl_c_exits_130(world: World):
    create = start(world, ["jobs", "create", world.spec_file(), "--wait", "--interval", "0.2", "-q"], world.creator.token_env)

    result = stop(create, signal.SIGINT)

    assert result.returncode == 130, result.stderr
    assert_no_traceback(result)
    assert result.stdout.startswith("job_")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 0)], ids=["SIGINT", "SIGTERM"])
def test_sandbox_signal_exit_code(sig: int, code: int, world: World):
    sandbox = start(world, ["sandbox", "--port", "0", "--db", ":memory:"])

    result = stop(sandbox, sig)

    assert result.returncode == code, result.stderr
    assert_no_traceback(result)
    assert "KeyboardInterrupt" not in result.stderr
    assert result.stdout.startswith("http://127.0.0.1:")
    assert "sandbox stopped" in result.stderr


def test_demo_step_ctrl_c_stops_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Ctrl-C during a step that the demo runs in-process must stop the demo, not only that step."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "list_jobs", interrupted)
    demo = Demo(AppContext(GlobalOptions(), stdin=io.StringIO(), stdout=io.StringIO(), stderr=io.StringIO()))
    demo.folder = tmp_path
    demo.api_url = "http://127.0.0.1:9/v1"

    with pytest.raises(KeyboardInterrupt):
        demo.loom(["jobs", "list", "--limit", "5"], None)


def test_ctrl_c_while_importing_exits_130(monkeypatch: pytest.MonkeyPatch):
    """Ctrl-C that lands while loom imports its commands ends with 130 and no traceback."""
    import builtins

    from loom_cli import __main__ as entry_point

    real_import = builtins.__import__

    def interrupted_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "loom_cli.app":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted_import)
    monkeypatch.setattr(sys, "argv", ["loom", "jobs", "list"])

    with pytest.raises(SystemExit) as exit_info:
        entry_point.main()
    assert exit_info.value.code == 130
