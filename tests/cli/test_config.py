"""`loom config`: list, get, set, unset and profiles, run in-process through loom's entry point."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.cli.test_wallet_commands import in_process_runner

LOCAL_API = "http://127.0.0.1:8765/v1"
ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


@pytest.fixture
def loom(capsys, monkeypatch):
    return in_process_runner(capsys, monkeypatch)


@pytest.fixture
def config_file(isolated_env: Path) -> Path:
    return isolated_env / "config.toml"


def settings_by_key(loom, *args: str, **env: str) -> dict[str, dict]:
    code, out, _ = loom(*args, "config", "list", "-o", "json", **env)
    assert code == 0
    return {row["key"]: row for row in json.loads(out)}


@pytest.mark.parametrize("command", ["list", "get", "set", "unset", "profiles"])
def test_config_help_has_examples(loom, command):
    code, out, _ = loom("config", command, "--help")
    assert code == 0
    assert "Examples:" in out


def test_list_defaults(loom):
    rows = settings_by_key(loom)
    assert rows["api_url"]["source"] == "default"
    assert rows["api_url"]["value"] == "https://api.the-loom.io/v1"
    assert rows["output"] == {"key": "output", "value": "table", "source": "default", "profile": "default"}
    assert rows["timeout"]["value"] == 30.0
    assert rows["address"]["source"] == "unset"
    assert rows["address"]["value"] is None


def test_list_sources(loom):
    loom("config", "set", "api_url", LOCAL_API)
    loom("config", "set", "timeout", "12")

    rows = settings_by_key(loom)
    assert (rows["api_url"]["value"], rows["api_url"]["source"]) == (LOCAL_API, "profile")
    assert (rows["timeout"]["value"], rows["timeout"]["source"]) == (12.0, "profile")

    rows = settings_by_key(loom, LOOM_API_URL="http://127.0.0.1:1/v1", LOOM_OUTPUT="yaml")
    assert (rows["api_url"]["value"], rows["api_url"]["source"]) == ("http://127.0.0.1:1/v1", "env")
    assert (rows["output"]["value"], rows["output"]["source"]) == ("yaml", "env")

    rows = settings_by_key(loom, "--api-url", "http://127.0.0.1:2/v1", "--timeout", "3")
    assert (rows["api_url"]["value"], rows["api_url"]["source"]) == ("http://127.0.0.1:2/v1", "flag")
    assert (rows["timeout"]["value"], rows["timeout"]["source"]) == (3.0, "flag")


def test_list_table(loom):
    loom("config", "set", "timeout", "12")
    code, out, _ = loom("config", "list")
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["KEY", "VALUE", "SOURCE"]
    assert ["timeout", "12", "profile"] in lines
    assert ["address", "-", "unset"] in lines


def test_list_shows_invalid_stored_value(loom, config_file):
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text('[profiles.default]\napi_url = "ftp://nowhere"\ncolour = "blue"\n')
    rows = settings_by_key(loom)
    assert rows["api_url"]["value"] == "ftp://nowhere"
    assert rows["colour"]["source"] == "profile (unknown setting)"


def test_get_prints_value(loom):
    loom("config", "set", "api_url", LOCAL_API + "/")
    code, out, _ = loom("config", "get", "api_url")
    assert code == 0
    assert out == LOCAL_API + "\n"


def test_get_json(loom):
    code, out, _ = loom("config", "get", "timeout", "--json")
    assert code == 0
    assert json.loads(out) == {"key": "timeout", "value": 30.0, "source": "default", "profile": "default"}


def test_get_unset_is_exit_4(loom):
    code, out, err = loom("config", "get", "address")
    assert code == 4
    assert out == ""
    assert "not set" in err


def test_get_unknown_is_exit_2(loom):
    code, _, err = loom("config", "get", "colour")
    assert code == 2
    assert "unknown setting 'colour'" in err
    assert "api_url" in err


def test_set_writes_private_toml(loom, config_file):
    code, _, err = loom("config", "set", "address", ADDRESS.lower())
    assert code == 0
    assert "Set address" in err
    assert tomllib.loads(config_file.read_text()) == {"profiles": {"default": {"address": ADDRESS}}}
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("output", "xml", "invalid output format"),
        ("timeout", "0", "invalid timeout"),
        ("timeout", "3601", "invalid timeout"),
        ("timeout", "soon", "invalid timeout"),
        ("api_url", "ftp://example.invalid", "invalid API URL"),
        ("address", "0x1234", "invalid address"),
        ("colour", "blue", "unknown setting"),
    ],
)
def test_set_rejects_invalid_value(loom, config_file, key, value, message):
    code, _, err = loom("config", "set", key, value)
    assert code == 2
    assert message in err
    assert not config_file.exists()


def test_set_negative_value_after_double_dash(loom):
    code, _, err = loom("config", "set", "timeout", "--", "-1")
    assert code == 2
    assert "invalid timeout '-1'" in err


def test_set_notes_overriding_variable(loom):
    code, _, err = loom("config", "set", "api_url", LOCAL_API, LOOM_API_URL="http://127.0.0.1:1/v1")
    assert code == 0
    assert "LOOM_API_URL overrides" in err


def test_set_repairs_invalid_profile(loom, config_file):
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text('[profiles.default]\napi_url = "ftp://nowhere"\n')
    code, _, _ = loom("config", "set", "api_url", LOCAL_API)
    assert code == 0
    assert settings_by_key(loom)["api_url"]["value"] == LOCAL_API


def test_profile_option_local_and_global(loom, config_file):
    assert loom("config", "set", "output", "json", "--profile", "ci")[0] == 0
    assert loom("--profile", "staging", "config", "set", "output", "yaml")[0] == 0
    assert loom("config", "set", "output", "jsonl", LOOM_PROFILE="nightly")[0] == 0

    profiles = tomllib.loads(config_file.read_text())["profiles"]
    assert profiles == {"ci": {"output": "json"}, "staging": {"output": "yaml"}, "nightly": {"output": "jsonl"}}
    assert loom("config", "get", "output", "--profile", "staging")[1] == "yaml\n"
    assert loom("config", "get", "output")[1] == "table\n"


def test_invalid_profile_name(loom):
    code, _, err = loom("config", "list", "--profile", "../etc")
    assert code == 2
    assert "invalid profile name" in err


def test_unset(loom, config_file):
    loom("config", "set", "api_url", LOCAL_API)
    loom("config", "set", "output", "json")

    code, _, err = loom("config", "unset", "api_url")
    assert code == 0
    assert "Removed api_url" in err
    assert tomllib.loads(config_file.read_text()) == {"profiles": {"default": {"output": "json"}}}

    code, _, err = loom("config", "unset", "api_url")
    assert code == 0
    assert "was not set" in err


def test_unset_unknown_key(loom):
    code, _, err = loom("config", "unset", "colour")
    assert code == 2
    assert "unknown setting" in err


def test_unset_removes_stored_unknown_key(loom, config_file):
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text('[profiles.default]\ncolour = "blue"\n')
    code, _, _ = loom("config", "unset", "colour")
    assert code == 0
    assert tomllib.loads(config_file.read_text()) == {"profiles": {}}


def test_profiles(loom):
    loom("config", "set", "output", "json", "--profile", "ci")

    code, out, _ = loom("config", "profiles", "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(out) == [{"profile": "ci", "current": False}, {"profile": "default", "current": True}]

    code, out, _ = loom("--profile", "ci", "config", "profiles", "-q")
    assert code == 0
    assert out.split() == ["ci"]


def test_corrupt_config_file(loom, config_file):
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text("[profiles.default\n")
    code, _, err = loom("config", "list")
    assert code == 2
    assert str(config_file) in err


def test_unknown_profile_is_a_usage_error(tmp_path):
    from tests.helpers import run_loom

    env = {"LOOM_CONFIG_DIR": str(tmp_path / "cfg"), "LOOM_KEYRING_BACKEND": "file"}

    configuring = run_loom("--profile", "worker", "config", "set", "output", "json", env=env)
    typo = run_loom("--profile", "wokrer", "jobs", "list", env=env)
    with_url = run_loom("--profile", "ci", "--api-url", "http://127.0.0.1:9/v1", "whoami", env=env)

    assert configuring.returncode == 0
    assert "error" not in configuring.stderr
    assert typo.returncode == 2
    assert "error: profile 'wokrer' has no settings in" in typo.stderr
    assert "(profiles: default, worker)" in typo.stderr
    assert "loom --profile wokrer config set api_url URL" in typo.stderr
    assert "has no settings" not in with_url.stderr


def test_retry_settings_apply_to_requests(tmp_path):
    from tests.helpers import run_loom

    env = {"LOOM_CONFIG_DIR": str(tmp_path / "cfg"), "LOOM_KEYRING_BACKEND": "file"}
    assert run_loom("config", "set", "retries", "1", env=env).returncode == 0
    assert run_loom("config", "set", "retry_budget", "0", env=env).returncode == 0

    # Port 9 (discard) on loopback is closed here, so the one attempt is refused at once.
    result = run_loom("--api-url", "http://127.0.0.1:9/v1", "jobs", "list", env=env)

    assert result.returncode == 6
    assert "gave up after 1 attempt" in result.stderr


@pytest.mark.parametrize(("key", "value"), [("retries", "0"), ("retries", "11"), ("retries", "two"), ("retry_budget", "soon"), ("retry_budget", "601")])
def test_retry_settings_reject_bad_values(tmp_path, key, value):
    from tests.helpers import run_loom

    result = run_loom("config", "set", key, value, env={"LOOM_CONFIG_DIR": str(tmp_path / "cfg")})

    assert result.returncode == 2
    assert f"invalid {key} {value!r}" in result.stderr


def test_api_url_without_version_gets_a_notice(tmp_path):
    from tests.helpers import run_loom

    env = {"LOOM_CONFIG_DIR": str(tmp_path / "cfg")}

    bare = run_loom("config", "set", "api_url", "http://127.0.0.1:8765", env=env)
    versioned = run_loom("config", "set", "api_url", "http://127.0.0.1:8765/v1", env=env)

    assert bare.returncode == 0
    assert "run: loom config set api_url http://127.0.0.1:8765/v1" in bare.stderr
    assert "notice" not in versioned.stderr
