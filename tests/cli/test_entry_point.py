"""`python -m loom_cli` exits with loom's own code after Ctrl-C.

CPython's `-m` runner exits by SIGINT when the last exec() of a string ended
in a KeyboardInterrupt, even when the program caught it and chose another
exit code. Ctrl-C can land inside such an exec() (dataclass creation runs
one), so these tests put a caught KeyboardInterrupt there on purpose.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import loom_env, run_loom

# Loaded by Python at start-up (sitecustomize): replaces loom's main with one
# that catches a KeyboardInterrupt raised inside exec() and exits 130, as
# loom does after Ctrl-C.
SITECUSTOMIZE = """\
import loom_cli.app


def interrupted_main(argv=None):
    try:
        exec("raise KeyboardInterrupt", {})
    except KeyboardInterrupt:
        raise SystemExit(130)


loom_cli.app.main = interrupted_main
"""


def test_module_run_exits_130_after_interrupt(tmp_path: Path):
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = loom_env({"PYTHONPATH": str(tmp_path)})

    result = subprocess.run([sys.executable, "-m", "loom_cli", "jobs", "list"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    ("args", "cached_help"),
    [(("--version",), False), (("--help",), False), (("--help",), True), (("jobs", "schema"), False), (("jobs", "init", "-"), False)],
    ids=["version", "help rendered", "help from cache", "schema", "init"],
)
def test_full_device_gives_one_line_error(args: tuple[str, ...], cached_help: bool):
    if cached_help:
        run_loom("--help")

    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "loom_cli", *args], env=loom_env(), stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)

    assert result.returncode == 1
    assert result.stderr == "error: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("jobs", "schema"), ("jobs", "init", "-")], ids=" ".join)
def test_closed_stdout_fails_before_running(args: tuple[str, ...]):
    # `exec >&-` starts loom with file descriptor 1 closed, so Python sets sys.stdout to None.
    command = " ".join(shlex.quote(part) for part in (sys.executable, "-m", "loom_cli", *args)) + " >&-"
    result = subprocess.run(["sh", "-c", f"exec {command}"], env=loom_env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=60)

    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot write the output: stdout is closed\n")
    assert "Traceback" not in result.stderr


def test_closed_stdin_reads_as_empty():
    command = " ".join(shlex.quote(part) for part in (sys.executable, "-m", "loom_cli", "jobs", "validate", "-")) + " <&-"
    result = subprocess.run(["sh", "-c", f"exec {command}"], env=loom_env(), capture_output=True, text=True, timeout=60)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
