"""`loom jobs claim` and `loom jobs cancel`: take an open job as a worker, or withdraw one as its creator.

Both are POSTs sent with an `Idempotency-Key`, so the HTTP layer may retry
them after a lost connection without claiming or cancelling twice.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

import typer

from loom_cli.context import AppContext
from loom_cli.errors import ConflictError, LoomError, UsageError
from loom_cli.options import JsonOption, OutputOption, QuietOption, YesOption, output_value

LoomErrorT = TypeVar("LoomErrorT", bound=LoomError)

IdempotencyKeyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        metavar="KEY",
        help="Key that makes a retried request safe (1-255 printable ASCII characters). \\[default: a new random key]",
        show_default=False,
    ),
]

CLAIM_EXAMPLES = """\
Examples:

  loom jobs claim job_8fK2x             # prints the job, now InProgress
  loom jobs claim job_8fK2x -q          # prints only the id
  LOOM_PRIVATE_KEY=... loom jobs claim job_8fK2x -o json   # in a script
"""

CANCEL_EXAMPLES = """\
Examples:

  loom jobs cancel job_8fK2x            # prompts first on a terminal
  loom jobs cancel job_8fK2x --yes      # no question, for scripts
  loom jobs cancel job_8fK2x --yes -q   # prints only the id
"""


def register(jobs_app: typer.Typer) -> None:
    jobs_app.command("claim", epilog=CLAIM_EXAMPLES)(claim)
    jobs_app.command("cancel", epilog=CANCEL_EXAMPLES)(cancel)


def claim(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the open job to claim.", show_default=False)],
    idempotency_key: IdempotencyKeyOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Claim an open job as its worker.

    The job moves to InProgress with you as the worker; run it, then report
    with `loom results report`. A job another worker claimed first, or one
    you created yourself, is refused with exit code 5.
    """
    from loom_cli import api

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    key = resolve_idempotency_key(idempotency_key)

    with app.api(auth=True) as client:
        try:
            job = api.claim_job(client, job_id, key)
        except ConflictError as exc:
            raise with_hint(exc, _claim_hint(exc, job_id)) from exc

    app.renderer.record(job, fields=job_fields())


def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the job to cancel.", show_default=False)],
    yes: YesOption = False,
    idempotency_key: IdempotencyKeyOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Cancel a job you created, whether it is Open or InProgress.

    On a terminal loom shows the job and prompts for confirmation. Without
    a terminal, pass --yes. A job that already ended is refused with exit
    code 5.
    """
    from loom_cli import api

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    key = resolve_idempotency_key(idempotency_key)
    api.validate_job_id(job_id)
    if not yes and not app.stdin_is_tty:
        raise UsageError(
            f"refusing to cancel {job_id} without confirmation: stdin is not a terminal",
            hint=f"pass --yes to cancel without a question: loom jobs cancel {job_id} --yes",
        )

    with app.api(auth=True) as client:
        if not yes and not _confirm_cancel(app, api.get_job(client, job_id)):
            app.warn(f"Not cancelled: {job_id} is unchanged.")
            return
        try:
            job = api.cancel_job(client, job_id, key)
        except ConflictError as exc:
            raise with_hint(exc, _cancel_hint(exc, job_id)) from exc

    app.renderer.record(job, fields=job_fields())


def job_fields() -> list:
    """Return the key/value fields of one job, the same as `loom jobs status` shows."""
    from loom_cli.commands.jobs.browse import JOB_FIELDS

    return JOB_FIELDS


def resolve_idempotency_key(key: str | None) -> str:
    """Return the --idempotency-key value after checking it, or a new random key when it is None."""
    import uuid

    from loom_cli import api

    if key is None:
        return uuid.uuid4().hex
    return api.validate_idempotency_key(key)


def _confirm_cancel(app: AppContext, job: dict) -> bool:
    """Show the job on stderr and ask; only "y" or "yes" confirms."""
    from loom_cli.text import escape_control

    name = escape_control(str(job.get("name", "")))
    status = escape_control(str(job.get("status", "")))
    app.stderr.write(f"Cancel job {job.get('id')} \"{name}\" ({status})? [y/N] ")
    app.stderr.flush()
    try:
        answer = app.stdin.readline()
    except KeyboardInterrupt:
        app.stderr.write("\n")
        raise
    return answer.strip().lower() in ("y", "yes")


def with_hint(exc: LoomErrorT, hint: str | None) -> LoomErrorT:
    """Return a copy of `exc` with `hint` added, keeping the server's message, request id and code.

    An error that already carries a hint is returned unchanged.
    """
    if hint is None or exc.hint:
        return exc
    return type(exc)(exc.message, hint=hint, request_id=exc.request_id, api_code=exc.api_code, details=exc.details)


def _claim_hint(exc: ConflictError, job_id: str) -> str | None:
    if exc.api_code == "job_not_open":
        return f"another worker claimed it first, or it ended; see: loom jobs status {job_id}"
    if exc.api_code == "forbidden":
        return "a creator cannot claim their own job; claim it with another wallet"
    return None


def _cancel_hint(exc: ConflictError, job_id: str) -> str | None:
    if exc.api_code == "job_finished":
        return f"the job already ended; see its outcome with: loom jobs status {job_id}"
    if exc.api_code == "forbidden":
        return "only the job's creator can cancel it; check the wallet with: loom whoami"
    return None
