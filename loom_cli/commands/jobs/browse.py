"""`loom jobs list` and `loom jobs status`: browse the public marketplace.

Both read the public listing (`GET /jobs`), so neither needs a login; only
`--mine` needs to know the user's address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from loom_cli.context import AppContext
from loom_cli.errors import AuthError, NotFoundError, UsageError
from loom_cli.options import JsonOption, OutputOption, QuietOption, output_value
from loom_cli.output import Column

if TYPE_CHECKING:
    from loom_cli.http import ApiClient

STATUS_CHOICES = "Open, InProgress, Completed, Failed or Cancelled"
# Page sizes the API allows: 20 by default, at most 100.
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

LIST_EXAMPLES = """\
Examples:

  loom jobs list                           # the 20 newest jobs
  loom jobs list --status open --limit 50  # the status may be in any case
  loom jobs list --mine                    # jobs you created
  loom jobs list --worker 0x52908400098527886E0F7030069857D2E4169EE7
  loom jobs list --all -o jsonl | jq -r .id   # every page, streamed
  loom jobs list -q --status inprogress    # ids only
"""

STATUS_EXAMPLES = """\
Examples:

  loom jobs status job_8fK2x               # key/value view
  loom jobs status job_8fK2x -o json | jq .spec
  loom jobs status job_8fK2x -q            # only the status, such as InProgress
"""


def _reward(job: dict) -> str:
    reward = job.get("reward") or {}
    return f"{reward.get('amount')} {reward.get('currency')}"


def _resources(job: dict) -> str | None:
    resources = (job.get("spec") or {}).get("resources")
    if not isinstance(resources, dict):
        return None
    parts = [f"{name} {resources[name]}" for name in ("cpu", "memory", "disk") if name in resources]
    gpu = resources.get("gpu")
    if isinstance(gpu, dict):
        parts.append(f"gpu {gpu.get('count')}x {gpu.get('model')}")
    return ", ".join(parts)


def _labels(job: dict) -> str | None:
    labels = (job.get("spec") or {}).get("labels")
    if not isinstance(labels, dict) or not labels:
        return None
    return ", ".join(f"{key}={value}" for key, value in labels.items())


LIST_COLUMNS = [
    Column("ID", "id"),
    Column("NAME", "name"),
    Column("STATUS", "status"),
    Column("REWARD", _reward),
    # A narrow terminal leaves out the creator first, then the age, then the worker.
    Column("CREATOR", "creator", address=True, drop_order=1),
    Column("WORKER", "worker", address=True, drop_order=3),
    Column("CREATED", "created_at", drop_order=2),
]

# The key/value view of one job, shared by `status`, `create`, `claim` and `cancel`.
JOB_FIELDS = [
    Column("ID", "id"),
    Column("Name", "name"),
    Column("Description", "spec.description"),
    Column("Status", "status"),
    Column("Reward", _reward),
    Column("Creator", "creator"),
    Column("Worker", "worker"),
    Column("Image", "spec.image"),
    Column("Resources", _resources),
    Column("Timeout", "spec.timeout"),
    Column("Labels", _labels),
    Column("Created", "created_at"),
    Column("Claimed", "claimed_at"),
    Column("Finished", "finished_at"),
]


def register(jobs_app: typer.Typer) -> None:
    jobs_app.command("list", epilog=LIST_EXAMPLES)(list_jobs)
    jobs_app.command("status", epilog=STATUS_EXAMPLES)(status)


def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option("--status", metavar="STATUS", help=f"Only jobs in this status: {STATUS_CHOICES} (any case).", show_default=False),
    ] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only jobs you created (the logged-in address).")] = False,
    creator: Annotated[
        str | None, typer.Option("--creator", metavar="ADDRESS", help="Only jobs created by this address.", show_default=False)
    ] = None,
    worker: Annotated[
        str | None, typer.Option("--worker", metavar="ADDRESS", help="Only jobs claimed by this address.", show_default=False)
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, max=100, metavar="N",
            help="Jobs per page, 1-100. \\[default: 20, or 100 per request with --all]",
            show_default=False,
        ),
    ] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page and stream the jobs as they arrive.")] = False,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """List marketplace jobs, newest first.

    Without --all one page is shown, with a hint on stderr when more exist.
    No login is needed, except to find your address for --mine.
    """
    from loom_cli import api
    from loom_cli.addresses import normalize_address

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    canonical_status = api.normalize_status(status) if status is not None else None
    if mine and creator is not None:
        raise UsageError("--mine and --creator both set the creator", hint="give only one of them")
    if creator is not None:
        creator = normalize_address(creator, what="creator address")
    if worker is not None:
        worker = normalize_address(worker, what="worker address")
    if mine:
        creator = current_address(app)

    # --all pages through everything, so it requests the largest page the API serves:
    # 10,000 jobs then take 100 requests instead of 500.
    if limit is None:
        limit = MAX_PAGE_SIZE if all_pages else DEFAULT_PAGE_SIZE
    filters = {"status": canonical_status, "creator": creator, "worker": worker, "limit": limit}
    with app.api(auth=False) as client:
        if all_pages:
            app.renderer.records(api.iter_jobs(client, all_pages=True, **filters), columns=LIST_COLUMNS)
            return
        page = api.list_jobs(client, **filters)
        app.renderer.records(page.data, columns=LIST_COLUMNS)
    if page.next_cursor is not None:
        app.info("More jobs exist; list every page with --all (or show up to 100 per page with --limit 100).")


def status(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the job, such as job_8fK2x.", show_default=False)],
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Show one job: its status, reward, creator, worker and times.

    No login is needed. With -q only the status is printed, for scripts.
    """
    from loom_cli import api

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    api.validate_job_id(job_id)

    with app.api(auth=False) as client:
        job = fetch_job(client, job_id)
    app.renderer.record(job, fields=JOB_FIELDS, id_key="status")


def fetch_job(client: ApiClient, job_id: str) -> dict:
    """Return the job `job_id` from the public listing, or raise NotFoundError (exit 4)."""
    from loom_cli import api

    job = api.find_job(client, job_id)
    if job is None:
        raise NotFoundError(f"job {job_id} not found", hint="list your jobs with: loom jobs list --mine")
    return job


def current_address(app: AppContext) -> str:
    """Return the address `--mine` means: whoever this profile is logged in as.

    In order: the `sub` of LOOM_TOKEN, the profile's stored token, the
    address of LOOM_PRIVATE_KEY, then the profile's `address` setting.
    """
    from loom_cli.addresses import normalize_address

    token = app.env.get("LOOM_TOKEN")
    if token:
        return normalize_address(_token_subject(token), what="address in LOOM_TOKEN")

    stored = app.credentials.get_token(app.settings.profile)
    if stored is not None and stored.api_url == app.settings.api_url:
        return normalize_address(stored.address, what="address of the stored token")

    private_key = app.env.get("LOOM_PRIVATE_KEY")
    if private_key:
        return _key_address(private_key)

    if app.settings.address:
        return normalize_address(app.settings.address, what="address setting")
    raise AuthError(
        "--mine needs your address, but this profile is not logged in",
        hint="run: loom login (or pass --creator 0x...; scripts can set LOOM_PRIVATE_KEY)",
    )


def _token_subject(token: str) -> str:
    """Read the `sub` claim of a JWT without checking its signature; only the API can check that."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError("LOOM_TOKEN is not a valid JWT", hint="set LOOM_TOKEN to the output of: loom auth token") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str):
        raise AuthError("LOOM_TOKEN has no address in its 'sub' claim", hint="set LOOM_TOKEN to the output of: loom auth token")
    return subject


def _key_address(private_key: str) -> str:
    from loom_cli.auth import address_of_key
    from loom_cli.wallet import parse_private_key

    # A malformed key is invalid input (exit code 2), as in every command that reads
    # LOOM_PRIVATE_KEY; the message never includes the key itself.
    return address_of_key(parse_private_key(private_key, source="LOOM_PRIVATE_KEY"))
