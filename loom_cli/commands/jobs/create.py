"""`loom jobs create`, `validate`, `schema` and `init`: write, check and post job specs.

A spec is always validated locally first, so every problem is listed with
its FILE:LINE:COLUMN and exit code 2 before any request is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loom_cli.commands.jobs.browse import JOB_FIELDS
from loom_cli.context import AppContext
from loom_cli.errors import ConflictError, ExitCode, UsageError, WatchOutcome
from loom_cli.options import JsonOption, OutputOption, QuietOption, output_value

DEFAULT_SPEC_FILE = "job.yaml"
EXAMPLE_RESOURCE = "example-job.yaml"

CREATE_EXAMPLES = """\
Examples:

  loom jobs create job.yaml                # validate, post, print the job
  loom jobs create job.yaml --dry-run -o json   # print the spec, send nothing
  loom jobs create job.yaml --wait --timeout 3600 && echo Completed
  JOB=$(loom jobs create job.yaml -q)      # only the id, for scripts
  cat job.json | loom jobs create -        # read the spec from stdin
  loom jobs create job.yaml --idempotency-key "$CI_JOB_ID"   # safe to rerun
"""

VALIDATE_EXAMPLES = """\
Examples:

  loom jobs validate job.yaml              # "job.yaml: valid" on stderr, exit 0
  loom jobs validate job.yaml || exit 1    # FILE:LINE:COLUMN problems, exit 2
  generate-spec | loom jobs validate -
"""

SCHEMA_EXAMPLES = """\
Examples:

  loom jobs schema > job-spec.schema.json  # for editors that read JSON Schema
  loom jobs schema | jq '.properties | keys'
"""

INIT_EXAMPLES = """\
Examples:

  loom jobs init                           # writes job.yaml
  loom jobs init render.yaml
  loom jobs init job.yaml --force          # replaces an existing file
  loom jobs init - | less                  # print it instead
"""

SpecArgument = Annotated[
    str,
    typer.Argument(metavar="FILE", help="Job spec in YAML or JSON; - reads stdin.", show_default=False),
]


def register(jobs_app: typer.Typer) -> None:
    jobs_app.command("create", epilog=CREATE_EXAMPLES)(create)
    jobs_app.command("validate", epilog=VALIDATE_EXAMPLES)(validate)
    jobs_app.command("schema", epilog=SCHEMA_EXAMPLES)(schema)
    jobs_app.command("init", epilog=INIT_EXAMPLES)(init)


def create(
    ctx: typer.Context,
    spec_file: SpecArgument,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the normalised spec; send nothing.")] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            metavar="KEY",
            help="Key that makes a rerun return the first job instead of a second one (1-255 printable ASCII characters). \\[default: a new random key]",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Then follow the job like `loom jobs watch`, with its exit codes.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, max=3600, metavar="SECONDS", help="With --wait: seconds between checks.")
    ] = 2.0,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0,
            metavar="SECONDS",
            help="With --wait: stop with exit code 12 after this many seconds. \\[default: no limit]",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Validate a job spec, then post it to the marketplace.

    Every problem in the spec is listed as FILE:LINE:COLUMN with exit code 2
    before anything is sent. Each create carries an Idempotency-Key, so a
    retried request never makes two jobs. With --wait the exit code is
    the job's outcome: 0 Completed, 10 Failed, 11 Cancelled, 12 timed out.
    """
    from loom_cli import api

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    if (interval != 2.0 or timeout is not None) and not wait:
        raise UsageError("--interval and --timeout apply only with --wait", hint="add --wait, or drop them")
    key = api.validate_idempotency_key(idempotency_key) if idempotency_key is not None else None
    spec = _load(app, spec_file)

    if dry_run:
        app.info(f"{_shown_name(spec_file)}: valid; nothing was sent (--dry-run).")
        app.renderer.record(spec, id_key=None)
        return

    if key is None:
        import uuid

        key = str(uuid.uuid4())
    with app.api(auth=True) as client:
        try:
            job = api.create_job(client, spec, key)
        except ConflictError as exc:
            if exc.api_code != "idempotency_key_reused":
                raise
            raise ConflictError(
                exc.message,
                hint="this --idempotency-key was already used with a different spec; use a new key",
                request_id=exc.request_id,
                api_code=exc.api_code,
                details=exc.details,
            ) from exc

    job_id = job["id"]
    # With --wait, json and yaml print the final job once at the end, so stdout stays one document.
    if not (wait and app.renderer.fmt in ("json", "yaml") and not app.renderer.quiet):
        app.renderer.record(job, fields=JOB_FIELDS)
    if not wait:
        app.info(f"Created {job_id}; follow it with: loom jobs watch {job_id}")
        return

    from loom_cli.commands.jobs.watch import watch_jobs

    app.info(f"Created {job_id}; waiting for it to end.")
    code = watch_jobs(app, [job_id], interval=interval, timeout=timeout)
    if code != ExitCode.OK:
        raise WatchOutcome(code)


def validate(
    ctx: typer.Context,
    spec_file: SpecArgument,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Check a job spec offline, without logging in or sending anything.

    Prints "FILE: valid" on stderr with exit code 0 (nothing with -q), or
    every problem as FILE:LINE:COLUMN: field: message with exit code 2.
    """
    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    _load(app, spec_file)
    app.info(f"{_shown_name(spec_file)}: valid")


def schema(
    ctx: typer.Context,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Print the JSON Schema (draft 2020-12) of job specs on stdout, as JSON in every output format.

    Editors use it to complete and check job.yaml as you type. A few rules,
    such as the timeout's 1s-7d range, are checked only by `loom jobs validate`.
    """
    from loom_cli.output import dump_json
    from loom_cli.spec.model import spec_json_schema

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    app.renderer.text(dump_json(spec_json_schema()))


def init(
    ctx: typer.Context,
    spec_file: Annotated[
        str,
        typer.Argument(metavar="[FILE]", help="Where to write the example; - prints it on stdout.", show_default=False),
    ] = DEFAULT_SPEC_FILE,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace FILE if it exists.")] = False,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Write a commented example job spec to start from (job.yaml by default).

    With FILE - the commented YAML goes to stdout, whatever the output format.
    """
    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    text = example_spec()
    if spec_file == "-":
        app.renderer.text(text.rstrip("\n"))
        return

    path = Path(spec_file)
    if path.is_dir():
        raise UsageError(f"{spec_file} is a directory", hint=f"give a file name, such as {path / DEFAULT_SPEC_FILE}")
    try:
        with path.open("w" if force else "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError as exc:
        raise UsageError(f"{spec_file} already exists", hint="pass --force to replace it, or give another name: loom jobs init other.yaml") from exc
    except OSError as exc:
        raise UsageError(f"cannot write {spec_file}: {exc.strerror or exc}") from exc
    app.info(f"Wrote {spec_file}. Edit it, check it with `loom jobs validate {spec_file}`, then run `loom jobs create {spec_file}`.")


def example_spec() -> str:
    """Return the commented example spec shipped in loom_cli/data."""
    from importlib.resources import files

    return files("loom_cli.data").joinpath(EXAMPLE_RESOURCE).read_text(encoding="utf-8")


def _load(app: AppContext, spec_file: str) -> dict:
    from loom_cli.spec.loader import load_spec

    if spec_file == "-" and app.stdin_is_tty:
        app.info("Reading the job spec from stdin; end it with Ctrl-D.")
    return load_spec(spec_file, stdin=app.stdin)


def _shown_name(spec_file: str) -> str:
    return "<stdin>" if spec_file == "-" else spec_file
