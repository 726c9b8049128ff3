"""`loom completion`: the committed scripts, the completion protocol, and the scripts in real shells."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer.main

from loom_cli.app import app
from loom_cli.commands.completion import SCRIPT_FILES, Shell
from loom_cli.docs.generate import REGENERATE_COMMAND
from tests.helpers import loom_env, run_loom

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """\
[profiles.staging]
api_url = "http://127.0.0.1:9/v1"

[profiles.prod]
output = "json"
"""


def visible_commands() -> list[str]:
    root = typer.main.get_command(app)
    return [name for name, command in root.commands.items() if not command.hidden]


def bash_protocol(*words: str) -> list[str]:
    """Return what loom offers for the last of `words`, requested as the bash script does."""
    result = run_loom(env={"_LOOM_COMPLETE": "complete_bash", "COMP_WORDS": " ".join(("loom", *words)), "COMP_CWORD": str(len(words))})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def require_program(name: str, in_ci: bool) -> str:
    path = shutil.which(name)
    if path is None:
        if in_ci:
            pytest.fail(f"{name} is not installed; .ci/run installs it with apt-get")
        pytest.skip(f"{name} is not installed")
    return path


@pytest.fixture
def loom_on_path(tmp_path: Path) -> dict[str, str]:
    """Put a `loom` that runs this checkout first on PATH, as an installed loom would be."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "loom"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m loom_cli "$@"\n')
    shim.chmod(0o755)
    return loom_env({"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})


@pytest.fixture
def profiles(isolated_env: Path) -> Path:
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "config.toml").write_text(CONFIG)
    return isolated_env


@pytest.mark.parametrize("shell", list(Shell), ids=lambda shell: shell.value)
def test_committed_script_is_current(shell: Shell):
    committed = ROOT / "completions" / SCRIPT_FILES[shell]
    result = run_loom("completion", shell.value)
    assert result.returncode == 0, result.stderr
    assert committed.is_file(), f"{committed.relative_to(ROOT)} is missing; regenerate with: {REGENERATE_COMMAND}"
    assert result.stdout == committed.read_text(), f"{committed.relative_to(ROOT)} is out of date; regenerate with: {REGENERATE_COMMAND}"


def test_unknown_shell_is_usage_error():
    result = run_loom("completion", "tcsh")
    assert result.returncode == 2
    assert "tcsh" in result.stderr
    assert "Traceback" not in result.stderr


def test_zsh_script_completes_when_autoloaded():
    script = run_loom("completion", "zsh").stdout
    assert script.startswith("#compdef loom\n")
    assert "loadautofunc" in script


def test_protocol_offers_top_level_commands():
    offered = bash_protocol("")
    assert offered == visible_commands()
    assert "completion" in offered
    assert "jobs" in offered


def test_protocol_offers_global_options():
    offered = bash_protocol("--")
    for flag in ("--profile", "--api-url", "--output", "--json", "--quiet", "--verbose", "--no-color", "--timeout", "--version", "--help"):
        assert flag in offered


def test_protocol_offers_output_formats():
    assert bash_protocol("-o", "") == ["table", "json", "yaml", "jsonl"]


def test_protocol_offers_shells():
    assert sorted(bash_protocol("completion", "")) == ["bash", "fish", "zsh"]


def test_protocol_offers_profiles_from_config(profiles: Path):
    assert bash_protocol("--profile", "") == ["default", "prod", "staging"]
    assert bash_protocol("--profile", "st") == ["staging"]


def test_file_argument_falls_back_to_files():
    # Nothing offered means the bash script's `complete -o default` lists
    # file names, and the zsh script calls _files.
    assert bash_protocol("jobs", "create", "j") == []
    zsh = run_loom(env={"_LOOM_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "loom jobs create j"})
    assert zsh.stdout.strip() == "_files"


def test_profile_completion_without_config():
    assert bash_protocol("--profile", "") == ["default"]


def test_profile_completion_with_broken_config(isolated_env: Path):
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "config.toml").write_text("[profiles\n")
    assert bash_protocol("--profile", "") == ["default"]


def run_bash(script: str, env: dict[str, str]) -> str:
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run([bash, "--norc", "--noprofile", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bash_script_completes_in_bash(loom_on_path: dict[str, str], profiles: Path):
    script = ROOT / "completions" / "loom.bash"
    output = run_bash(
        f"""
        source '{script}'
        complete -p loom
        COMP_WORDS=(loom --profile st); COMP_CWORD=2; _loom_completion loom
        printf 'profiles: %s\\n' "${{COMPREPLY[*]}}"
        COMP_WORDS=(loom comp); COMP_CWORD=1; _loom_completion loom
        printf 'commands: %s\\n' "${{COMPREPLY[*]}}"
        COMP_WORDS=(loom --no-c); COMP_CWORD=1; _loom_completion loom
        printf 'options: %s\\n' "${{COMPREPLY[*]}}"
        """,
        loom_on_path,
    )
    assert "complete -o default -F _loom_completion loom" in output
    assert "profiles: staging\n" in output
    assert "commands: completion\n" in output
    assert "options: --no-color\n" in output


def test_bash_completion_loads_installed_script(tmp_path: Path, loom_on_path: dict[str, str], in_ci: bool):
    # The wheel installs the script as share/bash-completion/completions/loom;
    # bash-completion finds it there on the first TAB after `loom`.
    loader = Path("/usr/share/bash-completion/bash_completion")
    if not loader.is_file():
        if in_ci:
            pytest.fail("bash-completion is not installed; .ci/run installs it with apt-get")
        pytest.skip("bash-completion is not installed")
    data_home = tmp_path / "share"
    (data_home / "bash-completion" / "completions").mkdir(parents=True)
    shutil.copy(ROOT / "completions" / "loom.bash", data_home / "bash-completion" / "completions" / "loom")
    output = run_bash(
        f"""
        source '{loader}'
        __load_completion loom
        COMP_WORDS=(loom completion z); COMP_CWORD=2; _loom_completion loom
        printf 'shells: %s\\n' "${{COMPREPLY[*]}}"
        """,
        {**loom_on_path, "XDG_DATA_HOME": str(data_home), "BASH_COMPLETION_USER_DIR": ""},
    )
    assert "shells: zsh\n" in output


def test_fish_script_completes_in_fish(loom_on_path: dict[str, str], profiles: Path, in_ci: bool):
    fish = require_program("fish", in_ci)
    (profiles / "job.yaml").write_text("name: example\n")
    script = ROOT / "completions" / "loom.fish"
    result = subprocess.run(
        [fish, "--no-config", "-c", f"source '{script}'; complete -C 'loom --profile '; echo ---; complete -C 'loom comp'; echo ---; complete -C 'loom jobs create j'"],
        cwd=profiles,
        env=loom_on_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    profiles_part, commands_part, files_part = result.stdout.split("---\n")
    assert profiles_part.splitlines() == ["default\thttps://api.the-loom.io/v1", "prod\thttps://api.the-loom.io/v1", "staging\thttp://127.0.0.1:9/v1"]
    assert commands_part.startswith("completion\t")
    assert files_part.splitlines() == ["job.yaml"]


@pytest.mark.slow
def test_zsh_script_completes_on_first_tab(tmp_path: Path, loom_on_path: dict[str, str], profiles: Path, in_ci: bool):
    # Drives an interactive zsh through zpty: the script is autoloaded from
    # $fpath, as when installed in site-functions, and one TAB must complete.
    zsh = require_program("zsh", in_ci)
    functions = tmp_path / "zfunc"
    functions.mkdir()
    shutil.copy(ROOT / "completions" / "_loom", functions / "_loom")
    driver = tmp_path / "drive.zsh"
    driver.write_text(
        f"""
zmodload zsh/zpty
zpty shell '{zsh} -f -i'
zpty -w shell 'PS1="%% "; fpath=({functions} $fpath); autoload -Uz compinit; compinit -u -D'
zpty -w -n shell $'loom --profile st\\t'
screen=""
for attempt in {{1..100}}; do
  while zpty -r -t shell chunk; do screen+=$chunk; done
  [[ $screen == *"--profile staging"* ]] && break
  sleep 0.1
done
print -r -- "$screen"
zpty -d shell
"""
    )
    started = time.monotonic()
    result = subprocess.run([zsh, "-f", str(driver)], env=loom_on_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "loom --profile staging" in result.stdout, f"zsh did not complete after {time.monotonic() - started:.1f} s:\n{result.stdout[-500:]}"
