"""`loom jobs` end to end: the real CLI as a subprocess against a real `loom sandbox` over loopback.

Each test signs with a fresh wallet (LOOM_PRIVATE_KEY), so `--mine` lists only
that test's jobs even on the shared sandbox.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loom_cli.commands.jobs.create import example_spec
from tests.fixtures.sandbox import api_login
from tests.helpers import loom_env, run_loom

pytestmark = pytest.mark.e2e

SMALL_SPEC = """\
name: {name}
image: python:3.12-slim
command: [python, -c, "print('hello')"]
resources:
  cpu: 0.5
  memory: 256Mi
reward:
  amount: "2.50"
"""

HOSTILE_NAME = "[bold]boss[/bold] \x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07link\x1b]8;;\x07 \u202egnp.exe\x00end"


class Cli:
    """Runs loom as one user: a fresh wallet, its own config folder and one API URL."""

    def __init__(self, api_url: str, account, tmp_path: Path) -> None:
        self.account = account
        self.api_url = api_url
        self.tmp_path = tmp_path
        self.env = {
            "LOOM_API_URL": api_url,
            "LOOM_PRIVATE_KEY": account.key.hex(),
            "LOOM_KEYRING_BACKEND": "file",
            "LOOM_CONFIG_DIR": str(tmp_path / f"config-{account.address}"),
        }

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_loom(*args, env=self.env, input=input)

    def spec(self, name: str, text: str | None = None) -> Path:
        path = self.tmp_path / f"{name.replace(' ', '-')}.yaml"
        path.write_text(text if text is not None else SMALL_SPEC.format(name=name), encoding="utf-8")
        return path

    def create(self, name: str) -> str:
        result = self("jobs", "create", str(self.spec(name)), "-q")
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def seed(self, count: int) -> list[str]:
        """Create `count` jobs over plain HTTP, faster than one loom process each; return their ids, oldest first."""
        return seed_jobs(self.api_url, self.account, [f"seeded job {number}" for number in range(count)])


def seed_jobs(api_url: str, account, names: list[str]) -> list[str]:
    import httpx

    token = api_login(api_url, account)
    ids = []
    with httpx.Client(timeout=10.0, trust_env=False, headers={"Authorization": f"Bearer {token}"}) as http:
        for name in names:
            spec = {"name": name, "image": "ubuntu", "resources": {"cpu": 1, "memory": "1Gi"}, "reward": {"amount": "1"}}
            response = http.post(f"{api_url}/jobs", json=spec)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
    return ids


@pytest.fixture
def cli(sandbox_url, new_account, tmp_path) -> Cli:
    return Cli(sandbox_url, new_account(), tmp_path)


@pytest.mark.slow
def test_create_from_example_then_list_and_status(cli):
    spec = cli.tmp_path / "job.yaml"
    spec.write_text(example_spec(), encoding="utf-8")

    created = cli("jobs", "create", str(spec))
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert lines[0].startswith("ID:")
    job_id = lines[0].split()[1]
    assert job_id.startswith("job_")
    assert "Status:       Open" in lines
    assert f"Creator:      {cli.account.address}" in lines
    assert f"Created {job_id}; follow it with: loom jobs watch {job_id}" in created.stderr

    table = cli("jobs", "list", "--mine")
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "STATUS", "REWARD", "CREATOR", "WORKER", "CREATED"]
    assert row.startswith(f"{job_id}  Sentiment scores for March support tickets  Open    12.5 LOOM  {cli.account.address}  -  ")
    assert "\x1b" not in table.stdout

    as_json = cli("jobs", "list", "--mine", "-o", "json")
    jobs = json.loads(as_json.stdout)
    assert [job["id"] for job in jobs] == [job_id]
    assert jobs[0]["spec"]["env"]["BATCH_SIZE"] == "64"
    assert jobs[0]["spec"]["resources"] == {"cpu": 4, "memory": "8Gi", "disk": "20Gi"}
    assert jobs[0]["reward"] == {"amount": "12.5", "currency": "LOOM"}

    as_jsonl = cli("jobs", "list", "--mine", "-o", "jsonl")
    assert [json.loads(line)["id"] for line in as_jsonl.stdout.splitlines()] == [job_id]

    as_yaml = cli("jobs", "list", "--mine", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == jobs

    quiet = cli("jobs", "list", "--mine", "-q")
    assert quiet.stdout == f"{job_id}\n"

    status = cli("jobs", "status", job_id)
    assert status.returncode == 0, status.stderr
    assert "Status:       Open\n" in status.stdout
    assert "Labels:       team=support-analytics, month=2024-03\n" in status.stdout

    assert cli("jobs", "status", job_id, "-q").stdout == "Open\n"
    assert json.loads(cli("jobs", "status", job_id, "--json").stdout) == jobs[0]


def test_status_of_missing_job_exits_4(cli):
    result = cli("jobs", "status", "job_doesnotexist")
    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr.startswith("error: job job_doesnotexist not found\n")


def test_list_pages(cli):
    ids = cli.seed(3)
    newest_first = list(reversed(ids))
    # --creator needs no key, so these runs skip the cost of loading eth-account.
    mine = ("--creator", cli.account.address)

    first_page = cli("jobs", "list", *mine, "--limit", "2", "-o", "jsonl")
    assert [json.loads(line)["id"] for line in first_page.stdout.splitlines()] == newest_first[:2]
    assert "More jobs exist; list every page with --all" in first_page.stderr

    every_page = cli("jobs", "list", *mine, "--all", "--limit", "2", "-o", "jsonl")
    assert [json.loads(line)["id"] for line in every_page.stdout.splitlines()] == newest_first
    assert "More jobs exist" not in every_page.stderr

    as_json = cli("jobs", "list", *mine, "--all", "--limit", "1", "-o", "json")
    assert [job["id"] for job in json.loads(as_json.stdout)] == newest_first

    last_page_only = cli("jobs", "list", *mine, "--limit", "3")
    assert "More jobs exist" not in last_page_only.stderr


def test_list_filters_by_status_in_any_case(cli):
    [job_id] = cli.seed(1)
    open_jobs = cli("jobs", "list", "--mine", "--status", "oPeN", "-q")
    assert open_jobs.returncode == 0, open_jobs.stderr
    assert open_jobs.stdout == f"{job_id}\n"
    assert cli("jobs", "list", "--mine", "--status", "completed", "-q").stdout == ""


def test_list_by_creator_address(cli):
    [job_id] = cli.seed(1)
    lowercase = cli.account.address.lower()
    result = cli("jobs", "list", "--creator", lowercase, "-q")
    assert result.stdout == f"{job_id}\n"


@pytest.fixture(scope="module")
def three_jobs_env(sandbox_url, tmp_path_factory) -> dict[str, str]:
    """The environment of a user who created three jobs, shared by the tests that only read them."""
    from eth_account import Account

    account = Account.create()
    seed_jobs(sandbox_url, account, ["head job 1", "head job 2", "head job 3"])
    env = Cli(sandbox_url, account, tmp_path_factory.mktemp("three-jobs")).env
    env["CREATOR"] = account.address
    return env


@pytest.mark.parametrize("output", ["table", "jsonl", "json", "yaml"])
def test_list_all_into_head_ends_quietly(three_jobs_env, output):
    command = f'"{sys.executable}" -m loom_cli jobs list --creator "$CREATOR" --all --limit 1 -o {output} | head -1'
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        env=loom_env(three_jobs_env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1


def test_invalid_spec_exits_2_and_sends_nothing(cli):
    path = cli.spec(
        "invalid",
        "name: ok\nimage: Ubuntu:22.04\nresources:\n  cpu: 0\n  memory: 1Gi\nreward:\n  amount: '1'\n  currency: NO\ntimeout: 1:30\n",
    )
    result = cli("jobs", "create", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: invalid job spec {path}: 4 problems",
        f"  {path}:2:1: image: repository must be lowercase, got 'Ubuntu:22.04'",
        f"  {path}:4:3: resources.cpu: must be a number greater than 0, got 0",
        f"  {path}:8:13: reward.currency: NO is a boolean in YAML 1.1 but text in YAML 1.2; quote it ('NO') if you meant text, or true or false if you meant a boolean",
        f"  {path}:9:10: timeout: YAML 1.1 reads 1:30 as a base-60 number (90); quote it ('1:30') if you meant text",
        "hint: see every field and rule with: loom jobs schema",
    ]
    assert cli("jobs", "list", "--mine", "-q").stdout == ""


def test_dry_run_sends_nothing(cli):
    path = cli.spec("dry run job")
    result = cli("jobs", "create", str(path), "--dry-run", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reward"] == {"amount": "2.5", "currency": "LOOM"}
    assert cli("jobs", "list", "--mine", "-q").stdout == ""


def test_create_from_stdin(cli):
    text = SMALL_SPEC.format(name="from stdin")
    result = cli("jobs", "create", "-", "-o", "json", input=text)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    assert job["name"] == "from stdin"
    assert job["spec"]["timeout"] == "1h"


def test_idempotency_key_makes_one_job(cli):
    path = cli.spec("idempotent job")
    first = cli("jobs", "create", str(path), "--idempotency-key", "build-42", "-q")
    second = cli("jobs", "create", str(path), "--idempotency-key", "build-42", "-q")
    assert first.returncode == 0, first.stderr
    assert second.stdout == first.stdout
    assert cli("jobs", "list", "--mine", "-q").stdout == first.stdout

    other = cli.spec("another job")
    reused = cli("jobs", "create", str(other), "--idempotency-key", "build-42")
    assert reused.returncode == 5
    assert "hint: this --idempotency-key was already used with a different spec; use a new key" in reused.stderr


@pytest.mark.slow
def test_hostile_name_escaped_in_table_only(start_sandbox, new_account, tmp_path):
    sandbox = start_sandbox()
    cli = Cli(sandbox.url, new_account(), tmp_path)
    job_id = cli.create("placeholder")
    # The API rejects control characters in names, so the text is planted in
    # the database, as a compromised or non-conforming marketplace would serve it.
    with sqlite3.connect(sandbox.db_path, timeout=10) as db:
        db.execute("UPDATE jobs SET name = ? WHERE id = ?", (HOSTILE_NAME, job_id))

    table = cli("jobs", "list", "--mine")
    assert table.returncode == 0, table.stderr
    for raw in ("\x1b", "\x07", "\x00", "\u202e"):
        assert raw not in table.stdout
    escaped = "[bold]boss[/bold] \\x1b[31mred\\x1b[0m \\x1b]8;;https://evil.example\\x07link\\x1b]8;;\\x07 \\u202egnp.exe\\x00end"
    assert escaped in table.stdout

    status = cli("jobs", "status", job_id)
    assert f"Name:         {escaped}\n" in status.stdout

    as_json = cli("jobs", "list", "--mine", "-o", "json")
    assert json.loads(as_json.stdout)[0]["name"] == HOSTILE_NAME
    assert "\x1b" not in as_json.stdout
    assert "\\u202e" in as_json.stdout

    as_jsonl = cli("jobs", "list", "--mine", "-o", "jsonl")
    assert json.loads(as_jsonl.stdout)["name"] == HOSTILE_NAME

    as_yaml = cli("jobs", "list", "--mine", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout)[0]["name"] == HOSTILE_NAME
    assert "\x1b" not in as_yaml.stdout


@pytest.mark.slow
def test_create_wait_follows_job_to_completion(start_sandbox, new_account, tmp_path):
    sandbox = start_sandbox("--simulate-workers", "--work-seconds", "0.5")
    cli = Cli(sandbox.url, new_account(), tmp_path)
    path = cli.spec("waited job")
    result = cli("jobs", "create", str(path), "--wait", "--interval", "0.2", "--timeout", "60", "-q")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert job_id.startswith("job_")
    assert cli("jobs", "status", job_id, "-q").stdout == "Completed\n"


@pytest.mark.parametrize("args", [("jobs", "list"), ("jobs", "list", "-o", "json"), ("jobs", "status", "job_unknown")], ids=" ".join)
def test_read_commands_skip_heavy_packages(sandbox_url, args):
    from tests.bench.imports import NOT_ON_READ_COMMANDS, snapshot_imports

    snapshot = snapshot_imports(*args, env=loom_env({"LOOM_API_URL": sandbox_url}))
    assert snapshot.returncode in (0, 4), snapshot.stderr
    assert snapshot.loaded(NOT_ON_READ_COMMANDS) == []


def test_api_url_without_v1_gets_hint(sandbox_url: str):
    bare = sandbox_url.removesuffix("/v1")

    result = run_loom("--api-url", bare, "jobs", "list")

    assert result.returncode == 4
    assert f"pass --api-url {bare}/v1" in result.stderr
    assert "Traceback" not in result.stderr
