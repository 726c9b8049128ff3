"""Without a terminal loom never prompts: each question it would ask fails fast and names its flag or variable.

Every command runs in a new session, so it has no controlling terminal that
getpass could open. Its stdin is an open pipe that never receives a byte, so
a command that tried to read input would hang until the timeout instead of
failing. Commands that read data from stdin by design (`wallet import` reads
a hex key, `login --manual` a signature) get a closed stdin instead.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.contract.world import World, assert_clean_failure
from tests.helpers import loom_env

pytestmark = pytest.mark.e2e

# A command that waits this long for input it will never get is hanging on a prompt.
HANG_SECONDS = 30


def run_without_terminal(w: World, args: list[str], env: dict[str, str], *, stdin_open: bool) -> subprocess.CompletedProcess[str]:
    output = w.tmp_path / "stdout.txt"
    errors = w.tmp_path / "stderr.txt"
    with output.open("w") as stdout, errors.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "loom_cli", *args],
            env=loom_env({"LOOM_API_URL": w.url, **env}),
            stdin=subprocess.PIPE if stdin_open else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            process.wait(timeout=HANG_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"loom {' '.join(args)} waited for input without a terminal")
        finally:
            if process.stdin is not None:
                process.stdin.close()
    return subprocess.CompletedProcess(process.args, process.returncode, output.read_text(), errors.read_text())


@dataclass(frozen=True)
class Prompt:
    command: str
    question: str  # what loom would ask on a terminal
    code: int
    names: tuple[str, ...]  # the flags or variables the error must name
    prepare: Callable[[World], tuple[list[str], dict[str, str]]]
    stdin_open: bool = True


def _remove_stored(w: World) -> tuple[list[str], dict[str, str]]:
    return ["wallet", "remove", w.stored_wallet("pw").address], {}


def _login_stored(w: World) -> tuple[list[str], dict[str, str]]:
    w.stored_wallet("pw")
    return ["login"], {}


def _renew_for_create(w: World) -> tuple[list[str], dict[str, str]]:
    # A stored wallet but no token: the command would need the passphrase to log in again.
    w.stored_wallet("pw")
    return ["jobs", "create", w.spec_file()], {}


def _renew_for_whoami(w: World) -> tuple[list[str], dict[str, str]]:
    w.stored_wallet("pw")
    return ["whoami"], {}


PROMPTS = [
    Prompt("wallet new", "passphrase", 3, ("LOOM_PASSPHRASE", "--passphrase-file"), lambda w: (["wallet", "new"], {})),
    Prompt("wallet import", "new passphrase for a hex key", 3, ("LOOM_PASSPHRASE", "--passphrase-file"),
           lambda w: (["wallet", "import", "--private-key-file", w.file("key.hex", w.creator.key_hex)], {})),
    Prompt("wallet import", "keystore passphrase", 3, ("LOOM_PASSPHRASE", "--passphrase-file"),
           lambda w: (["wallet", "import", "--keystore", w.keystore_file(w.creator.account, "pw")], {})),
    Prompt("wallet import", "hidden hex key", 2, ("--private-key-file", "--keystore"), lambda w: (["wallet", "import"], {}), stdin_open=False),
    Prompt("wallet remove", "confirmation", 2, ("--yes",), _remove_stored),
    Prompt("login", "stored wallet passphrase", 3, ("LOOM_PASSPHRASE", "--passphrase-file", "LOOM_PRIVATE_KEY"),
           _login_stored),
    Prompt("login", "keystore passphrase", 3, ("LOOM_PASSPHRASE", "--passphrase-file"),
           lambda w: (["login", "--keystore", w.keystore_file(w.creator.account, "pw")], {})),
    Prompt("login", "pasted signature", 3, ("--manual",), lambda w: (["login", "--manual", "--address", w.creator.address], {}), stdin_open=False),
    Prompt("jobs cancel", "confirmation", 2, ("--yes",), lambda w: (["jobs", "cancel", w.open_job()], w.creator.token_env)),
    Prompt("jobs create", "passphrase to renew the login", 3, ("LOOM_PASSPHRASE", "LOOM_PRIVATE_KEY"),
           _renew_for_create),
    Prompt("whoami", "passphrase to renew the login", 3, ("LOOM_PASSPHRASE", "LOOM_PRIVATE_KEY"), _renew_for_whoami),
]


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda prompt: f"{prompt.command}: {prompt.question}")
def test_prompt_fails_without_terminal(prompt: Prompt, world: World):
    args, env = prompt.prepare(world)

    result = run_without_terminal(world, args, env, stdin_open=prompt.stdin_open)

    assert result.returncode == prompt.code, result.stderr
    assert_clean_failure(result)
    for name in prompt.names:
        assert name in result.stderr, f"the error does not name {name}: {result.stderr!r}"


@pytest.mark.parametrize(
    "args, env",
    [
        (["wallet", "new"], {"LOOM_PASSPHRASE": "pw"}),
        (["login"], {"LOOM_PASSPHRASE": "pw"}),
        (["jobs", "cancel", "{job}", "--yes"], {}),
        (["wallet", "export", "--keystore", "-"], {}),
        (["whoami"], {"LOOM_PASSPHRASE": "pw"}),
    ],
    ids=["wallet new", "login", "jobs cancel", "wallet export", "whoami renews"],
)
def test_flag_or_variable_replaces_prompt(args: list[str], env: dict[str, str], world: World):
    world.stored_wallet("pw")
    if "{job}" in args:
        args = [world.open_job() if arg == "{job}" else arg for arg in args]
        env = world.creator.token_env

    result = run_without_terminal(world, args, env, stdin_open=True)

    assert result.returncode == 0, result.stderr
