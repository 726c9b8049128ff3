"""Output formats: every command that prints data, in every format, with the flags after the subcommand and before it.

stdout must hold only the data, parseable in the chosen format and keyed by
the API's field names; progress and hints go to stderr. A piped table keeps
every character of every value, never pads past the data and carries no ANSI
escapes, even when the terminal would allow colour.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import yaml

from loom_cli.settings import KNOWN_KEYS
from tests.contract.world import World, assert_no_traceback

pytestmark = pytest.mark.e2e

# The API's field names of a job and of a result.
JOB_KEYS = {"id", "name", "status", "creator", "worker", "reward", "spec", "created_at", "updated_at", "claimed_at", "finished_at"}
RESULT_KEYS = {"job_id", "outcome", "output", "result_uri", "sha256", "message", "reported_by", "reported_at"}
SPEC_KEYS = {"name", "image", "command", "resources", "reward", "timeout"}

ANSI = re.compile(r"\x1b[\[\]]")

# (variant id, flags), each given after the subcommand (`loom jobs list -o json`).
FORMAT_FLAGS = [
    ("table", ["-o", "table"]),
    ("json", ["-o", "json"]),
    ("yaml", ["-o", "yaml"]),
    ("jsonl", ["-o", "jsonl"]),
    ("json-flag", ["--json"]),
    ("quiet", ["-q"]),
]

# The variants also given before the subcommand, as global options (`loom --json jobs list`).
# Every format reaches the renderer the same way from there, so three of them show
# that each command honours the global options: a flag, -o with a value, and -q.
GLOBAL_FORMAT_FLAGS = [("json-flag", ["--json"]), ("yaml", ["-o", "yaml"]), ("quiet", ["-q"])]
VARIANTS = [(variant, flags, "after") for variant, flags in FORMAT_FLAGS] + [
    (variant, flags, "before") for variant, flags in GLOBAL_FORMAT_FLAGS
]


@dataclass
class Invocation:
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # What -q must print: one line per expected id; [] means nothing at all.
    quiet_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DataCommand:
    command: str
    prepare: Callable[[World], Invocation]  # called once per run, so each run gets fresh state
    shape: str  # "record": one object; "records": a list of objects
    keys: frozenset[str]  # the field names every object must have (exactly, when `exact`)
    exact: bool = True


def _login(w: World) -> Invocation:
    return Invocation(["login"], w.creator.key_env, [w.creator.address])


def _whoami(w: World) -> Invocation:
    return Invocation(["whoami"], w.creator.token_env, [w.creator.address])


def _wallet_new(w: World) -> Invocation:
    return Invocation(["wallet", "new"], {"LOOM_PASSPHRASE": "pw"}, quiet_lines=[r"0x[0-9a-fA-F]{40}"])


def _wallet_import(w: World) -> Invocation:
    path = w.keystore_file(w.creator.account, "pw")
    return Invocation(["wallet", "import", "--keystore", path], {"LOOM_PASSPHRASE": "pw"}, [w.creator.address])


def _wallet_list(w: World) -> Invocation:
    account = w.stored_wallet()
    return Invocation(["wallet", "list"], {}, [account.address])


def _jobs_list(w: World) -> Invocation:
    first, second = w.open_job(), w.open_job()
    return Invocation(["jobs", "list", "--creator", w.creator.address], {}, [second, first])


def _jobs_status(w: World) -> Invocation:
    return Invocation(["jobs", "status", w.in_progress_job()], {}, ["InProgress"])


def _jobs_create(w: World) -> Invocation:
    return Invocation(["jobs", "create", w.spec_file()], w.creator.token_env, [r"job_[A-Za-z0-9_-]+"])


def _jobs_create_dry_run(w: World) -> Invocation:
    return Invocation(["jobs", "create", w.spec_file(), "--dry-run"], {}, [])


def _jobs_claim(w: World) -> Invocation:
    job_id = w.open_job()
    return Invocation(["jobs", "claim", job_id], w.worker.token_env, [job_id])


def _jobs_cancel(w: World) -> Invocation:
    job_id = w.open_job()
    return Invocation(["jobs", "cancel", job_id, "--yes"], w.creator.token_env, [job_id])


def _results_report(w: World) -> Invocation:
    job_id = w.in_progress_job()
    return Invocation(["results", "report", job_id, "--output-json", '{"score": 0.97}'], w.worker.token_env, [job_id])


def _results_get(w: World) -> Invocation:
    job_id = w.finished_job()
    return Invocation(["results", "get", job_id], w.creator.token_env, [job_id])


def _config_list(w: World) -> Invocation:
    return Invocation(["config", "list"], {}, list(KNOWN_KEYS))


def _config_get(w: World) -> Invocation:
    return Invocation(["config", "get", "api_url"], {}, [re.escape(w.url)])


def _config_profiles(w: World) -> Invocation:
    return Invocation(["config", "profiles"], {}, ["default"])


DATA_COMMANDS = [
    DataCommand("login", _login, "record", frozenset({"address", "api_url", "expires_at"})),
    DataCommand("whoami", _whoami, "record", frozenset({"address", "api_url", "expires_at", "token_store"})),
    DataCommand("wallet new", _wallet_new, "record", frozenset({"address", "default", "location"})),
    DataCommand("wallet import", _wallet_import, "record", frozenset({"address", "default", "location"})),
    DataCommand("wallet list", _wallet_list, "records", frozenset({"address", "default"})),
    DataCommand("jobs list", _jobs_list, "records", frozenset(JOB_KEYS)),
    DataCommand("jobs status", _jobs_status, "record", frozenset(JOB_KEYS)),
    DataCommand("jobs create", _jobs_create, "record", frozenset(JOB_KEYS)),
    DataCommand("jobs create --dry-run", _jobs_create_dry_run, "record", frozenset(SPEC_KEYS)),
    DataCommand("jobs claim", _jobs_claim, "record", frozenset(JOB_KEYS)),
    DataCommand("jobs cancel", _jobs_cancel, "record", frozenset(JOB_KEYS)),
    DataCommand("results report", _results_report, "record", frozenset(RESULT_KEYS)),
    DataCommand("results get", _results_get, "record", frozenset(RESULT_KEYS)),
    DataCommand("config list", _config_list, "records", frozenset({"key", "value", "source", "profile"})),
    DataCommand("config get", _config_get, "record", frozenset({"key", "value", "source", "profile"})),
    DataCommand("config profiles", _config_profiles, "records", frozenset({"profile", "current"})),
]


def _run(w: World, data_command: DataCommand, flags: list[str], position: str) -> tuple[subprocess.CompletedProcess[str], Invocation]:
    invocation = data_command.prepare(w)
    if position == "before":
        args = [*flags, *invocation.args]
    else:
        args = [*invocation.args, *flags]
    return w.loom(*args, env=invocation.env), invocation


def parse(fmt: str, stdout: str) -> object:
    """Parse stdout in `fmt`; jsonl gives the list of its lines' values."""
    if fmt in ("json", "json-flag"):
        return json.loads(stdout)
    if fmt == "yaml":
        return yaml.safe_load(stdout)
    if fmt == "jsonl":
        lines = stdout.splitlines()
        assert lines and all(line.strip() for line in lines), f"blank or missing lines: {stdout!r}"
        return [json.loads(line) for line in lines]
    raise ValueError(fmt)


def check_objects(data_command: DataCommand, fmt: str, value: object) -> None:
    if data_command.shape == "record":
        objects = value if fmt == "jsonl" else [value]
        assert isinstance(objects, list) and len(objects) == 1, value
    else:
        objects = value
        assert isinstance(objects, list) and objects, value
    for item in objects:
        assert isinstance(item, dict), item
        if data_command.exact:
            assert set(item) == data_command.keys, f"fields {sorted(item)} differ from {sorted(data_command.keys)}"
        else:
            assert data_command.keys <= set(item), item


def check_table(stdout: str) -> None:
    assert stdout.strip(), "the table is empty"
    assert not ANSI.search(stdout), f"ANSI escapes in piped output: {stdout!r}"
    assert "…" not in stdout, f"a piped table truncated a value: {stdout!r}"
    for line in stdout.splitlines():
        assert line == line.rstrip(), f"a piped line is padded past its data: {line!r}"


def check_quiet(stdout: str, expected: list[str]) -> None:
    lines = stdout.splitlines()
    assert len(lines) == len(expected), f"-q printed {lines!r}, expected {expected!r}"
    for line, pattern in zip(lines, expected):
        assert re.fullmatch(pattern, line), f"-q printed {line!r}, expected {pattern!r}"


@pytest.mark.parametrize("variant, flags, position", VARIANTS, ids=[f"{variant}-{position}" for variant, _, position in VARIANTS])
@pytest.mark.parametrize("data_command", DATA_COMMANDS, ids=lambda data_command: data_command.command)
def test_format(data_command: DataCommand, variant: str, flags: list[str], position: str, world: World):
    result, invocation = _run(world, data_command, flags, position)

    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    if variant == "table":
        check_table(result.stdout)
    elif variant == "quiet":
        check_quiet(result.stdout, invocation.quiet_lines)
    else:
        check_objects(data_command, variant, parse(variant, result.stdout))
    # stderr carries progress, hints and warnings, never the data itself.
    assert '{"' not in result.stderr, result.stderr
    assert "- id:" not in result.stderr, result.stderr


@pytest.mark.parametrize("variant, flags", FORMAT_FLAGS, ids=[variant for variant, _ in FORMAT_FLAGS])
def test_every_format_as_global_option(variant: str, flags: list[str], world: World):
    result = world.loom(*flags, "config", "list")

    assert result.returncode == 0, result.stderr
    if variant == "table":
        check_table(result.stdout)
    elif variant == "quiet":
        check_quiet(result.stdout, list(KNOWN_KEYS))
    else:
        rows = parse(variant, result.stdout)
        assert [row["key"] for row in rows] == list(KNOWN_KEYS)


def test_loom_output_variable_sets_format(world: World):
    job_id = world.open_job()

    result = world.loom("jobs", "status", job_id, env={"LOOM_OUTPUT": "yaml"})

    assert result.returncode == 0, result.stderr
    assert set(yaml.safe_load(result.stdout)) == JOB_KEYS


def test_flag_wins_over_loom_output(world: World):
    job_id = world.open_job()

    result = world.loom("jobs", "status", job_id, "-o", "json", env={"LOOM_OUTPUT": "yaml"})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == job_id


def test_json_flag_wins_over_loom_output(world: World):
    result = world.loom("--json", "config", "profiles", env={"LOOM_OUTPUT": "yaml"})

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"profile": "default", "current": True}]


def test_json_conflicts_with_other_output(world: World):
    result = world.loom("jobs", "list", "--json", "-o", "yaml")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "--json" in result.stderr


# -- jobs watch: events and final jobs ------------------------------------------------------------


@pytest.mark.parametrize("variant, flags, position", VARIANTS, ids=[f"{variant}-{position}" for variant, _, position in VARIANTS])
def test_watch_format(variant: str, flags: list[str], position: str, world: World):
    job_id = world.finished_job()
    args = [*flags, "jobs", "watch", job_id] if position == "before" else ["jobs", "watch", job_id, *flags]

    result = world.loom(*args)

    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)
    if variant == "table":
        check_table(result.stdout)
        assert re.fullmatch(rf"\S+Z {job_id} Completed {world.worker.address} contract test job\n", result.stdout), result.stdout
    elif variant == "quiet":
        assert result.stdout == ""
    elif variant == "jsonl":
        events = parse(variant, result.stdout)
        assert [event["event"] for event in events] == ["status", "final", "end"]
        assert set(events[1]["job"]) == JOB_KEYS
        assert events[2] == {"event": "end", "exit_code": 0, "reason": "completed"}
    else:
        jobs = parse(variant, result.stdout)
        assert [job["id"] for job in jobs] == [job_id]
        assert set(jobs[0]) == JOB_KEYS


# -- piped tables: never wrapped, truncated or coloured ---------------------------------------------

LONG_NAME = "a very long job name " * 4 + "that ends here"


@pytest.mark.parametrize(
    "command",
    [
        lambda w, job_id: ["jobs", "list", "--creator", w.creator.address],
        lambda w, job_id: ["jobs", "status", job_id],
        lambda w, job_id: ["jobs", "watch", job_id],
        lambda w, job_id: ["results", "get", job_id],
    ],
    ids=["jobs list", "jobs status", "jobs watch", "results get"],
)
def test_piped_table_keeps_long_values(command: Callable[[World, str], list[str]], world: World, monkeypatch: pytest.MonkeyPatch):
    job_id = world.finished_job(name=LONG_NAME, output={"text": "x" * 1000})
    # A narrow colour terminal is what rich would wrap and colour for; a pipe must get neither.
    monkeypatch.delenv("NO_COLOR")
    args = command(world, job_id)

    result = world.loom(*args, env={**world.creator.token_env, "COLUMNS": "40", "TERM": "xterm-256color"})

    assert result.returncode == 0, result.stderr
    check_table(result.stdout)
    expected = "x" * 1000 if args[0] == "results" else LONG_NAME
    assert expected in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) > 40


@pytest.mark.parametrize("variant, flags", FORMAT_FLAGS, ids=[variant for variant, _ in FORMAT_FLAGS])
def test_create_wait_format(variant: str, flags: list[str], world: World):
    """`jobs create --wait` prints the job and then follows it; stdout stays parseable in every format."""
    args = ["jobs", "create", world.spec_file(), "--wait", "--timeout", "0.5", "--interval", "0.2", *flags]

    result = world.loom(*args, env=world.creator.token_env)

    assert result.returncode == 12, result.stderr
    assert_no_traceback(result)
    if variant == "table":
        check_table(result.stdout)
    elif variant == "quiet":
        check_quiet(result.stdout, [r"job_[A-Za-z0-9_-]+"])
    elif variant == "jsonl":
        lines = parse(variant, result.stdout)
        assert set(lines[0]) == JOB_KEYS
        assert lines[-1] == {"event": "end", "exit_code": 12, "reason": "timeout"}
    else:
        jobs = parse(variant, result.stdout)
        assert isinstance(jobs, list) and len(jobs) == 1, jobs
        assert set(jobs[0]) == JOB_KEYS


@pytest.mark.parametrize("verbosity", ["-v", "-vv"])
def test_verbose_log_stays_on_stderr(verbosity: str, world: World):
    job_id = world.open_job()

    result = world.loom(verbosity, "jobs", "cancel", job_id, "--yes", "-o", "json", env=world.creator.token_env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "Cancelled"
    assert f"/jobs/{job_id}/cancel" in result.stderr
    assert world.creator.token not in result.stderr
