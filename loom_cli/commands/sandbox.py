"""`loom sandbox`: serve the Loom API locally for development, demos and tests."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from loom_cli.context import AppContext
from loom_cli.errors import ExitCode, UsageError

DEFAULT_PORT = 8765
DEFAULT_WORK_SECONDS = 3.0

EXAMPLES = """\
Examples:

  loom sandbox                         # data kept in loom's data folder
  loom sandbox --port 0 --db :memory:  # free port, throwaway database
  loom sandbox --seed-demo-data --simulate-workers --work-seconds 5
  loom sandbox --token-ttl 60 --rate-limit 30   # renewal and 429s
  loom sandbox --port 0 > url.txt &    # the first line is the base URL
"""


def sandbox(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on. Only loopback addresses unless --public is given.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TCP port to listen on; 0 picks a free one (the first line of output shows it).")
    ] = DEFAULT_PORT,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH",
            help="SQLite database file, or :memory: for a throwaway one. \\[default: sandbox.db in loom's data folder]",
            show_default=False,
        ),
    ] = None,
    token_ttl: Annotated[
        int, typer.Option("--token-ttl", min=1, max=31_536_000, metavar="SECONDS", help="Lifetime of issued tokens in seconds.")
    ] = 3600,
    seed_demo_data: Annotated[
        bool, typer.Option("--seed-demo-data", help="Fill an empty database with a few open demo jobs.")
    ] = False,
    simulate_workers: Annotated[
        bool,
        typer.Option("--simulate-workers", help="Run built-in workers that log in with their own wallets, claim Open jobs and report results."),
    ] = False,
    fail_rate: Annotated[
        float | None,
        typer.Option(
            "--fail-rate",
            min=0.0,
            max=1.0,
            metavar="R",
            help="With --simulate-workers: probability (0 to 1) that a job ends Failed. \\[default: 0]",
            show_default=False,
        ),
    ] = None,
    work_seconds: Annotated[
        float | None,
        typer.Option(
            "--work-seconds",
            min=0.0,
            max=86_400.0,
            metavar="S",
            help=f"With --simulate-workers: seconds a worker spends on each job. \\[default: {DEFAULT_WORK_SECONDS:g}]",
            show_default=False,
        ),
    ] = None,
    rate_limit: Annotated[
        int | None,
        typer.Option(
            "--rate-limit",
            min=1,
            metavar="N",
            help="Allow N requests per minute per address (per client IP before login); over it, 429. \\[default: no limit]",
            show_default=False,
        ),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Allow --host to be a non-loopback address, reachable from other machines.")
    ] = False,
) -> None:
    """Run the Loom API locally (FastAPI + SQLite).

    Prints the base URL (http://127.0.0.1:PORT/v1) as the first line of output and logs one line per request to stderr. Stop it with Ctrl-C.
    """
    app = AppContext.of(ctx)

    from loom_cli.sandbox.server import ServerOptions, check_sandbox_installed, default_db_path, is_loopback_host, serve

    if not public and not is_loopback_host(host):
        raise UsageError(
            f"refusing to listen on non-loopback host {host!r}: the sandbox has no real security",
            hint="use --host 127.0.0.1, or add --public to serve other machines on purpose",
        )
    if not simulate_workers and (fail_rate is not None or work_seconds is not None):
        raise UsageError("--fail-rate and --work-seconds only apply with --simulate-workers", hint="add --simulate-workers")
    check_sandbox_installed()

    if db is None:
        from loom_cli.paths import Paths

        db = str(default_db_path(Paths.from_env(app.env).data_dir))

    options = ServerOptions(
        host=host,
        port=port,
        db_path=db,
        token_ttl=token_ttl,
        rate_limit=rate_limit,
        seed_demo_data=seed_demo_data,
        simulate_workers=simulate_workers,
        fail_rate=fail_rate or 0.0,
        work_seconds=DEFAULT_WORK_SECONDS if work_seconds is None else work_seconds,
    )
    stop_signal = serve(options, stdout=app.stdout, stderr=app.stderr)
    if stop_signal == signal.SIGINT:
        # Ctrl-C ends every loom command with 130, also after this clean shutdown; SIGTERM ends it with 0.
        raise typer.Exit(int(ExitCode.INTERRUPTED))


def register(root: typer.Typer) -> None:
    root.command("sandbox", no_args_is_help=False, epilog=EXAMPLES)(sandbox)
