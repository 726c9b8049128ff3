"""The command matrix has no gaps: every command has its exit codes, output formats and examples tested."""

from __future__ import annotations

import pytest

from tests.contract.cases import AUTH, OK, UNAVAILABLE, USAGE
from tests.contract.commands import LEAF_COMMANDS
from tests.contract.matrix import API_COMMANDS, LOGIN_COMMANDS, NO_DATA, exit_codes, json_commands

COMMANDS = sorted(LEAF_COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_output_is_tested_or_not_data(command: str):
    in_json = command in json_commands()

    assert in_json != (command in NO_DATA), f"`loom {command}` must be either in test_output_formats.py or in NO_DATA with a reason"


@pytest.mark.parametrize("command", COMMANDS)
def test_success_and_usage_error_tested(command: str):
    codes = exit_codes().get(command, {})

    assert OK in codes, f"no test shows `loom {command}` succeeding"
    assert USAGE in codes, f"no test shows `loom {command}` rejecting bad input with exit code 2"


@pytest.mark.parametrize("command", sorted(API_COMMANDS))
def test_unreachable_api_tested(command: str):
    whys = set(_whys(command, UNAVAILABLE))

    assert {"closed port", "garbage API"} <= whys, f"`loom {command}`: exit code 6 tested only for {sorted(whys)}"


@pytest.mark.parametrize("command", sorted(LOGIN_COMMANDS))
def test_missing_login_tested(command: str):
    assert AUTH in exit_codes().get(command, {}), f"no test shows `loom {command}` failing with exit code 3"


def test_command_lists_name_real_commands():
    assert API_COMMANDS <= set(LEAF_COMMANDS)
    assert LOGIN_COMMANDS <= set(LEAF_COMMANDS)
    assert set(NO_DATA) <= set(LEAF_COMMANDS)


def _whys(command: str, code: int) -> list[str]:
    from tests.contract.cases import CASES, CLOSED_PORT_CASES

    return [case.why for case in CASES + CLOSED_PORT_CASES if case.command == command and case.code == code]
