"""`loom sandbox` as a process: first line, logs, signals, flags it rejects, and restarts on one database."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys

import httpx
import pytest

from tests.fixtures.sandbox import api_login
from tests.helpers import run_loom


def test_first_line_is_base_url(start_sandbox):
    sandbox = start_sandbox()
    assert sandbox.url.startswith("http://127.0.0.1:")
    assert sandbox.url.endswith("/v1")
    port = int(sandbox.url.split(":")[2].split("/")[0])
    assert port > 0
    response = httpx.get(f"{sandbox.url}/jobs", trust_env=False)
    assert response.status_code == 200


def test_sigterm_exits_zero_without_traceback(start_sandbox):
    sandbox = start_sandbox()
    httpx.get(f"{sandbox.url}/jobs", trust_env=False)
    assert sandbox.stop(signal.SIGTERM) == 0
    log = sandbox.log()
    assert "Traceback" not in log
    assert "sandbox stopped" in log


def test_ctrl_c_exits_130_without_traceback(start_sandbox):
    sandbox = start_sandbox()
    assert sandbox.stop(signal.SIGINT) == 130
    assert "sandbox stopped" in sandbox.log()
    assert "Traceback" not in sandbox.log()
    assert "KeyboardInterrupt" not in sandbox.log()


def test_request_log_lines_carry_no_secrets(start_sandbox, new_account):
    sandbox = start_sandbox()
    account = new_account()
    token = api_login(sandbox.url, account)
    me = httpx.get(f"{sandbox.url}/auth/me", headers={"Authorization": f"Bearer {token}", "X-Request-Id": "trace-42"}, trust_env=False)
    assert me.status_code == 200
    sandbox.stop()
    log = sandbox.log()
    assert "GET /v1/auth/nonce 200" in log
    assert "POST /v1/auth/login 200" in log
    assert "GET /v1/auth/me 200" in log
    assert "trace-42" in log
    assert token not in log
    assert token.split(".")[2] not in log
    assert account.key.hex().removeprefix("0x") not in log
    line = next(line for line in log.splitlines() if "GET /v1/auth/me" in line)
    assert line.rstrip().endswith("trace-42")
    assert "ms " in line


def test_stdout_holds_only_the_url(start_sandbox):
    sandbox = start_sandbox()
    httpx.get(f"{sandbox.url}/jobs", trust_env=False)
    sandbox.proc.send_signal(signal.SIGTERM)
    rest, _ = sandbox.proc.communicate(timeout=15)
    assert rest == b""
    assert sandbox.proc.returncode == 0


def test_database_file_is_private(start_sandbox, tmp_path):
    sandbox = start_sandbox()
    sandbox.stop()
    assert sandbox.db_path is not None
    mode = stat.S_IMODE(os.stat(sandbox.db_path).st_mode)
    assert mode == 0o600


def test_default_database_lives_in_data_folder(isolated_env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "loom_cli", "sandbox", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("http://127.0.0.1:")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0
    database = isolated_env / "data" / "sandbox.db"
    assert database.exists()
    assert str(database) in stderr.decode()


@pytest.mark.slow
def test_tokens_survive_restart_on_same_database(start_sandbox, new_account, tmp_path):
    database = tmp_path / "kept.db"
    first = start_sandbox("--db", str(database))
    account = new_account()
    token = api_login(first.url, account)
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        f"{first.url}/jobs",
        headers=headers,
        json={"name": "kept", "image": "alpine", "resources": {"cpu": 1, "memory": "1G"}, "reward": {"amount": "1"}},
        trust_env=False,
    )
    assert created.status_code == 201
    assert first.stop() == 0

    second = start_sandbox("--db", str(database))
    job = httpx.get(f"{second.url}/jobs/{created.json()['id']}", headers=headers, trust_env=False)
    assert job.status_code == 200
    assert job.json()["name"] == "kept"


def test_port_in_use_is_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_loom("sandbox", "--port", str(port), "--db", str(tmp_path / "s.db"), "--seed-demo-data", timeout=30)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    # Nothing was created or seeded before the port check failed.
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
def test_non_loopback_host_needs_public(host, tmp_path):
    result = run_loom("sandbox", "--host", host, "--db", str(tmp_path / "s.db"), timeout=30)
    assert result.returncode == 2
    assert "non-loopback" in result.stderr
    assert "--public" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "70000"], "--port"),
        (["--token-ttl", "0"], "--token-ttl"),
        (["--rate-limit", "0"], "--rate-limit"),
        (["--fail-rate", "0.5"], "--simulate-workers"),
        (["--work-seconds", "1"], "--simulate-workers"),
        (["--simulate-workers", "--fail-rate", "1.5"], "--fail-rate"),
    ],
)
def test_bad_flags_are_usage_errors(args, fragment, tmp_path):
    result = run_loom("sandbox", "--db", str(tmp_path / "s.db"), *args, timeout=30)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_database_in_missing_folder_is_usage_error(tmp_path):
    result = run_loom("sandbox", "--port", "0", "--db", str(tmp_path / "no" / "such" / "s.db"), timeout=30)
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_database_that_is_not_sqlite_is_usage_error(tmp_path):
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are not the tables you are looking for\n" * 100)
    result = run_loom("sandbox", "--port", "0", "--db", str(bogus), timeout=30)
    assert result.returncode == 2
    assert str(bogus) in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_extra_names_pip_command(tmp_path):
    # Hide fastapi from the child with a meta path finder, as if the extra were not installed.
    script = (
        "import sys, importlib.abc\n"
        "class Hide(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('fastapi', 'uvicorn'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from loom_cli.app import main\n"
        "sys.argv = ['loom', 'sandbox', '--port', '0', '--db', sys.argv[1]]\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "s.db")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "pip install 'loom-cli[sandbox]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_module_imports_no_server_libraries():
    code = (
        "import sys\n"
        "import loom_cli.commands.sandbox\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'jwt', 'eth_account', 'starlette') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_seed_demo_data_fills_empty_database_once(start_sandbox, tmp_path):
    database = tmp_path / "seeded.db"
    first = start_sandbox("--db", str(database), "--seed-demo-data")
    jobs = httpx.get(f"{first.url}/jobs", trust_env=False).json()["data"]
    assert len(jobs) >= 3
    assert {job["status"] for job in jobs} == {"Open"}
    assert len({job["creator"] for job in jobs}) == 1
    first.stop()

    second = start_sandbox("--db", str(database), "--seed-demo-data")
    again = httpx.get(f"{second.url}/jobs", trust_env=False).json()["data"]
    assert [job["id"] for job in again] == [job["id"] for job in jobs]
    assert "already contains jobs" in second.log()
