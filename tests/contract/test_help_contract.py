"""--help as a contract: examples for every command, environment variables for global options,
and the output flags accepted after every subcommand."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from loom_cli.app import app
from tests.contract.commands import LEAF_COMMANDS
from tests.contract.matrix import NO_OUTPUT_FLAGS

# Each global option that a variable can also set, with that variable.
GLOBAL_OPTION_VARIABLES = {
    "--profile": "LOOM_PROFILE",
    "--api-url": "LOOM_API_URL",
    "--output": "LOOM_OUTPUT",
    "--no-color": "NO_COLOR",
}


def show_help(*path: str) -> str:
    # A wide terminal keeps each option's help on one line, next to the option.
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="loom", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", sorted(LEAF_COMMANDS))
def test_help_has_runnable_example(command: str):
    output = show_help(*command.split())

    assert "Examples:" in output, f"`loom {command} --help` has no Examples: section"
    examples = output.split("Examples:", 1)[1]
    lines = [line.strip(" │") for line in examples.splitlines()]
    assert any(re.search(rf"\bloom( -\S+( \S+)?)* {re.escape(command)}\b", line) for line in lines), (
        f"no example of `loom {command}` under Examples:\n{examples}"
    )


@pytest.mark.parametrize("option, variable", sorted(GLOBAL_OPTION_VARIABLES.items()))
def test_global_option_shows_variable(option: str, variable: str):
    output = show_help()
    row = next((line for line in output.splitlines() if f" {option} " in line), None)

    assert row is not None, f"{option} is missing from `loom --help`"
    assert variable in row, f"`loom --help` does not show {variable} next to {option}: {row!r}"


@pytest.mark.parametrize("command", sorted(set(LEAF_COMMANDS) - set(NO_OUTPUT_FLAGS)))
def test_output_flags_after_subcommand(command: str):
    names = {param.name for param in LEAF_COMMANDS[command].params}

    assert {"output", "json_", "quiet"} <= names, f"`loom {command}` does not take -o/--json/-q after the subcommand"


def test_output_flag_exceptions_are_commands():
    assert set(NO_OUTPUT_FLAGS) <= set(LEAF_COMMANDS)
