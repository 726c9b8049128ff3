"""Which part of the scripting contract each command has, and which test shows it.

`python -m tests.contract.matrix` prints the command matrix as a Markdown
table; test_matrix.py fails when a command is missing from it.
"""

from __future__ import annotations

from collections import defaultdict

from tests.contract.cases import CASES, CLOSED_PORT_CASES, INTERRUPTED, JOB_CANCELLED, JOB_FAILED, OK

# Commands that do not take -o/--json/-q after the subcommand, and why.
NO_OUTPUT_FLAGS = {
    "sandbox": "a server: stdout carries only its base URL, stderr its request log",
    "demo": "a guided tour: each step prints its command's data in the default format",
    "completion": "prints a shell script",
}

# Commands that print no data record, so -o json does not apply, and why.
NO_DATA = {
    "logout": "prints nothing on stdout",
    "auth token": "prints the bare token, for $(loom auth token)",
    "wallet export": "writes a keystore file; --keystore - prints the keystore JSON itself",
    "wallet remove": "prints nothing on stdout",
    "jobs validate": "prints nothing on stdout; problems go to stderr",
    "jobs schema": "prints the JSON Schema, which is JSON whatever -o says",
    "jobs init": "writes the commented YAML template, or prints it with -",
    "config set": "prints nothing on stdout",
    "config unset": "prints nothing on stdout",
    **NO_OUTPUT_FLAGS,
}

# Commands that send requests to the API, so exit code 6 applies.
API_COMMANDS = {
    "login", "whoami", "auth token", "jobs list", "jobs status", "jobs create", "jobs claim",
    "jobs cancel", "jobs watch", "results report", "results get",
}  # fmt: skip

# Commands that need a login, so exit code 3 applies.
LOGIN_COMMANDS = {"login", "whoami", "auth token", "jobs create", "jobs claim", "jobs cancel", "results report", "results get"}

# Exit codes shown by tests outside cases.py, with their file.
OTHER_EXIT_TESTS = {
    ("jobs watch", INTERRUPTED): "tests/contract/test_interrupt.py",
    ("jobs create", INTERRUPTED): "tests/contract/test_interrupt.py",
    ("jobs create", JOB_FAILED): "tests/contract/test_exit_codes.py",
    ("jobs create", JOB_CANCELLED): "tests/contract/test_exit_codes.py",
    ("sandbox", OK): "tests/contract/test_interrupt.py",
    ("sandbox", INTERRUPTED): "tests/contract/test_interrupt.py",
    # `loom demo` runs for about 10 s; its success and its Ctrl-C are tested there.
    ("demo", OK): "tests/e2e/test_demo.py",
    ("demo", INTERRUPTED): "tests/e2e/test_demo.py",
}


def exit_codes() -> dict[str, dict[int, set[str]]]:
    """Map each command to its tested exit codes, each with the files that test it."""
    codes: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for case in CASES + CLOSED_PORT_CASES:
        codes[case.command][case.code].add("tests/contract/test_exit_codes.py")
    for (command, code), path in OTHER_EXIT_TESTS.items():
        codes[command][code].add(path)
    return codes


def json_commands() -> set[str]:
    """Return the commands whose data test_output_formats.py checks in every format."""
    from tests.contract.test_output_formats import DATA_COMMANDS

    return {" ".join(word for word in data.command.split() if not word.startswith("-")) for data in DATA_COMMANDS} | {"jobs watch"}


def has_examples(command: str) -> bool:
    from typer.testing import CliRunner

    from loom_cli.app import app

    result = CliRunner().invoke(app, [*command.split(), "--help"], prog_name="loom")
    return result.exit_code == 0 and "Examples:" in result.output


def other_test_files(command: str) -> list[str]:
    """Return the contract test files besides the exit-code table that run `command`."""
    from tests.contract.test_broken_pipe import CLOSED_PIPE_COMMANDS
    from tests.contract.test_no_tty import PROMPTS

    files = []
    if command in json_commands():
        files.append("tests/contract/test_output_formats.py")
    if any(prompt.command == command for prompt in PROMPTS):
        files.append("tests/contract/test_no_tty.py")
    if any(" ".join(args).startswith(command) for args in CLOSED_PIPE_COMMANDS):
        files.append("tests/contract/test_broken_pipe.py")
    return files


def markdown() -> str:
    from tests.contract.commands import LEAF_COMMANDS

    codes = exit_codes()
    with_json = json_commands()
    lines = [
        "| command | help has Examples: | json output | exit codes tested | test files |",
        "| --- | --- | --- | --- | --- |",
    ]
    for command in LEAF_COMMANDS:
        json_cell = "yes" if command in with_json else f"n.a.: {NO_DATA.get(command, 'MISSING')}"
        tested = codes.get(command, {})
        files = sorted({path for paths in tested.values() for path in paths} | set(other_test_files(command)))
        code_cell = ", ".join(str(code) for code in sorted(tested))
        lines.append(f"| {command} | {'yes' if has_examples(command) else 'NO'} | {json_cell} | {code_cell} | {', '.join(files)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
