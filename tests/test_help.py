"""`--help` quality: every command explains itself, shows examples, and names its environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from loom_cli.app import app
from loom_cli.docs.manpages import render_man_pages

ROOT = Path(__file__).resolve().parents[1]


def walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Return (command path, command) for every visible group and command below `command`."""
    found = []
    for name, child in getattr(command, "commands", {}).items():
        if child.hidden:
            continue
        found.append(((*path, name), child))
        found.extend(walk(child, (*path, name)))
    return found


COMMANDS = walk(typer.main.get_command(app))
LEAVES = [(path, command) for path, command in COMMANDS if not hasattr(command, "commands")]


def show_help(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="loom")
    assert result.exit_code == 0, result.output
    return result.output


def command_id(entry: tuple[tuple[str, ...], Any]) -> str:
    return " ".join(entry[0])


@pytest.mark.parametrize("entry", COMMANDS, ids=command_id)
def test_command_has_help(entry: tuple[tuple[str, ...], Any]):
    path, command = entry
    assert (command.help or "").strip(), f"`loom {' '.join(path)}` has no help text: give it a docstring or help="


@pytest.mark.parametrize("entry", LEAVES, ids=command_id)
def test_command_help_has_examples(entry: tuple[tuple[str, ...], Any]):
    path, _ = entry
    output = show_help(*path)
    assert "Examples:" in output, f"`loom {' '.join(path)} --help` has no Examples: section; end its docstring with one"


@pytest.mark.parametrize("entry", LEAVES, ids=command_id)
def test_command_options_have_help(entry: tuple[tuple[str, ...], Any]):
    path, command = entry
    missing = [param.name for param in command.params if not getattr(param, "hidden", False) and not (getattr(param, "help", None) or "").strip()]
    assert missing == [], f"`loom {' '.join(path)}`: no help for {', '.join(missing)}"


@pytest.mark.parametrize("variable", ["LOOM_PROFILE", "LOOM_API_URL", "LOOM_OUTPUT"])
def test_root_help_shows_environment_variable(variable: str):
    assert f"env var: {variable}" in show_help()


def test_python_module_help_works():
    from tests.helpers import run_loom

    result = run_loom("--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: loom" in result.stdout


def test_every_loom_variable_is_documented():
    # Variables the code reads, found as string literals such as "LOOM_TOKEN".
    used = set()
    for path in (ROOT / "loom_cli").rglob("*.py"):
        used.update(re.findall(r"[\"'](LOOM_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    environment = render_man_pages({})["loom.1"].split(".SH ENVIRONMENT")[1].split(".SH ")[0]
    missing = sorted(name for name in used if name not in environment)
    assert missing == [], f"add {', '.join(missing)} to ENVIRONMENT in loom_cli/docs/manpages.py"
