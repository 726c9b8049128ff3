"""`loom demo` as a subprocess: every step runs, nothing is left behind, Ctrl-C cleans up too."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import loom_env, run_loom

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.")


def test_demo_runs_every_step(tmp_path: Path, isolated_env: Path):
    result = run_loom("demo", env={"TMPDIR": str(tmp_path)}, timeout=120)

    assert result.returncode == 0, result.stderr
    for step in range(1, 9):
        assert f"==> [{step}/8] " in result.stderr
    assert re.search(r"GET /auth/nonce issued the nonce [A-Za-z0-9]{16,64}\n", result.stderr)
    assert re.search(r"signed it with personal_sign \(EIP-191\) as 0x[0-9a-fA-F]{40}\n", result.stderr)
    # The data: the marketplace listing, the claimed job, watch's lines and the result.
    assert "Render Blender scene" in result.stdout
    assert re.search(r"^job_\S+$", result.stdout, re.MULTILINE)
    assert re.search(r" job_\S+ Completed 0x", result.stdout)
    assert "Outcome:      Completed" in result.stdout
    assert "Demo finished" in result.stderr
    # No token reaches the screen, and nothing is left behind.
    assert not JWT.search(result.stdout + result.stderr)
    assert list(tmp_path.glob("loom-demo-*")) == []
    assert not isolated_env.exists()


def test_demo_ctrl_c_stops_and_cleans_up(tmp_path: Path):
    demo = subprocess.Popen(
        [sys.executable, "-m", "loom_cli", "demo"],
        env=loom_env({"TMPDIR": str(tmp_path)}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stderr is not None
    url = None
    seen = []
    for line in demo.stderr:
        seen.append(line)
        match = re.search(r"Listening at (http://127\.0\.0\.1:\d+/v1)", line)
        if match:
            url = match.group(1)
        if "==> [3/8]" in line:
            break
    assert url, "".join(seen)
    assert len(list(tmp_path.glob("loom-demo-*"))) == 1

    demo.send_signal(signal.SIGINT)
    rest = demo.stderr.read()
    demo.wait(timeout=60)

    assert demo.returncode == 130
    assert "Traceback" not in rest
    assert "Demo interrupted; the sandbox is stopped and its temporary folder removed." in rest
    assert list(tmp_path.glob("loom-demo-*")) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/jobs", timeout=5, trust_env=False)
