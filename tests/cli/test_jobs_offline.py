"""`loom jobs` commands that work offline, and argument checks that stop before any request.

The API URL points at a closed loopback port: a command that sent a request
would exit 6, so exit 2 shows that the input was rejected first.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import yaml

from loom_cli.app import main
from loom_cli.spec.model import spec_json_schema
from tests.cli.test_spec_loader import VALID

CLOSED_PORT_URL = "http://127.0.0.1:9/v1"



def invoke(capsys, monkeypatch, *args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run loom's entry point in-process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    monkeypatch.setenv("LOOM_API_URL", CLOSED_PORT_URL)
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def loom(capsys, monkeypatch):
    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        return invoke(capsys, monkeypatch, *args, stdin=stdin)

    return run


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(VALID, encoding="utf-8")
    return path


def test_validate_valid_spec(loom, spec_file):
    code, out, err = loom("jobs", "validate", str(spec_file))
    assert code == 0
    assert out == ""
    assert err == f"{spec_file}: valid\n"


def test_validate_lists_every_problem(loom, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nimage: Ubuntu\ncurrency: NO\n", encoding="utf-8")
    code, out, err = loom("jobs", "validate", str(path))
    assert code == 2
    assert out == ""
    assert err == (
        f"error: invalid job spec {path}: 5 problems\n"
        f"  {path}:1:1: resources: is required\n"
        f"  {path}:1:1: reward: is required\n"
        f"  {path}:2:1: image: repository must be lowercase, got 'Ubuntu'\n"
        f"  {path}:3:1: currency: is not a known field (known fields: name, description, image, command, env, "
        "resources, inputs, outputs, reward, timeout, labels)\n"
        f"  {path}:3:11: currency: NO is a boolean in YAML 1.1 but text in YAML 1.2; quote it ('NO') if you meant text, "
        "or true or false if you meant a boolean\n"
        "hint: see every field and rule with: loom jobs schema\n"
    )


def test_validate_stdin(loom):
    code, out, err = loom("jobs", "validate", "-", stdin=VALID)
    assert code == 0
    assert err == "<stdin>: valid\n"


def test_validate_missing_file(loom, tmp_path):
    code, out, err = loom("jobs", "validate", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert err.startswith(f"error: job spec {tmp_path / 'nope.yaml'} not found\n")
    assert "Traceback" not in err


def test_validate_escapes_control_characters_in_problems(loom, tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(VALID.replace("render frames", '"\\e[31mred\\u202e"'), encoding="utf-8")
    code, out, err = loom("jobs", "validate", str(path))
    assert code == 2
    assert "\x1b" not in err
    assert "\u202e" not in err


def test_schema_prints_json_schema(loom):
    code, out, err = loom("jobs", "schema")
    assert code == 0
    assert json.loads(out) == spec_json_schema()
    assert err == ""


def test_init_writes_example(loom, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = loom("jobs", "init")
    assert code == 0
    assert out == ""
    assert "Wrote job.yaml" in err
    code, out, err = loom("jobs", "validate", "job.yaml")
    assert code == 0


def test_init_refuses_to_overwrite(loom, spec_file):
    code, out, err = loom("jobs", "init", str(spec_file))
    assert code == 2
    assert err.startswith(f"error: {spec_file} already exists\nhint: pass --force")
    assert spec_file.read_text(encoding="utf-8") == VALID


def test_init_force_overwrites(loom, spec_file):
    code, out, err = loom("jobs", "init", str(spec_file), "--force")
    assert code == 0
    assert spec_file.read_text(encoding="utf-8").startswith("# A Loom job spec")


def test_init_stdout(loom):
    code, out, err = loom("jobs", "init", "-")
    assert code == 0
    assert out.startswith("# A Loom job spec")
    assert yaml.safe_load(out)["name"] == "Sentiment scores for March support tickets"


def test_init_into_directory_is_rejected(loom, tmp_path):
    code, out, err = loom("jobs", "init", str(tmp_path))
    assert code == 2
    assert err.startswith(f"error: {tmp_path} is a directory")


def test_create_dry_run_prints_normalised_json(loom, spec_file):
    code, out, err = loom("jobs", "create", str(spec_file), "--dry-run", "-o", "json")
    assert code == 0
    assert json.loads(out) == {
        "name": "render frames",
        "image": "python:3.12-slim",
        "resources": {"cpu": 0.5, "memory": "512Mi"},
        "reward": {"amount": "12.5", "currency": "LOOM"},
        "timeout": "1h",
    }
    assert "nothing was sent" in err


def test_create_dry_run_yaml(loom, spec_file):
    code, out, err = loom("jobs", "create", str(spec_file), "--dry-run", "-o", "yaml")
    assert code == 0
    assert out == (
        "name: render frames\n"
        "image: python:3.12-slim\n"
        "resources:\n"
        "  cpu: 0.5\n"
        "  memory: 512Mi\n"
        "reward:\n"
        "  amount: '12.5'\n"
        "  currency: LOOM\n"
        "timeout: 1h\n"
    )


def test_create_dry_run_table(loom, spec_file):
    code, out, err = loom("jobs", "create", str(spec_file), "--dry-run")
    assert code == 0
    assert out == (
        "name:              render frames\n"
        "image:             python:3.12-slim\n"
        "resources.cpu:     0.5\n"
        "resources.memory:  512Mi\n"
        "reward.amount:     12.5\n"
        "reward.currency:   LOOM\n"
        "timeout:           1h\n"
    )


def test_create_invalid_spec_sends_nothing(loom, tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(VALID + "timeout: 8d\n", encoding="utf-8")
    code, out, err = loom("jobs", "create", str(path))
    assert code == 2
    assert out == ""
    assert f"  {path}:8:1: timeout: must be between 1s and 7d, got '8d'\n" in err


def test_create_rejects_bad_idempotency_key(loom, spec_file):
    code, out, err = loom("jobs", "create", str(spec_file), "--idempotency-key", "has space")
    assert code == 2
    assert err.startswith("error: invalid idempotency key 'has space'")


def test_create_interval_needs_wait(loom, spec_file):
    code, out, err = loom("jobs", "create", str(spec_file), "--timeout", "5")
    assert code == 2
    assert err.startswith("error: --interval and --timeout apply only with --wait")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--status", "done"), "error: invalid status 'done'\nhint: use one of: Open, InProgress, Completed, Failed, Cancelled\n"),
        (("--creator", "0x123"), "error: invalid creator address '0x123'\n"),
        (("--worker", "nobody"), "error: invalid worker address 'nobody'\n"),
        (("--mine", "--creator", "0x" + "a" * 40), "error: --mine and --creator both set the creator\n"),
    ],
)
def test_list_rejects_bad_filters_before_any_request(loom, args, message):
    code, out, err = loom("jobs", "list", *args)
    assert code == 2
    assert out == ""
    assert err.startswith(message)


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_list_rejects_bad_limit(loom, limit):
    code, out, err = loom("jobs", "list", "--limit", limit)
    assert code == 2
    assert "--limit" in err
    assert "Traceback" not in err


def test_list_mine_without_login_is_auth_error(loom):
    code, out, err = loom("jobs", "list", "--mine")
    assert code == 3
    assert err.startswith("error: --mine needs your address, but this profile is not logged in\n")


@pytest.mark.parametrize("job_id", ["job_", "123", "job_a/b", "job_" + "x" * 65, "job_\x1b[31m"])
def test_status_rejects_malformed_id(loom, job_id):
    code, out, err = loom("jobs", "status", job_id)
    assert code == 2
    assert err.startswith("error: invalid job id ")
    assert "\x1b" not in err


def test_list_against_closed_port_is_unavailable(loom):
    code, out, err = loom("jobs", "list")
    assert code == 6
    assert out == ""


@pytest.mark.parametrize("command", ["list", "status", "create", "validate", "schema", "init"])
def test_help_has_examples(loom, command):
    code, out, err = loom("jobs", command, "--help")
    assert code == 0
    assert "Examples:" in out
