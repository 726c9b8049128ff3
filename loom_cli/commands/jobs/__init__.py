"""`loom jobs`: browse, create, claim, cancel and watch marketplace jobs.

Each module here registers a few related subcommands on the shared group.
"""

from __future__ import annotations

import typer

from loom_cli.commands.jobs import browse, claim, create, watch

jobs_app = typer.Typer(
    name="jobs",
    help="Browse, create, claim, cancel and watch marketplace jobs.",
    no_args_is_help=True,
)

for module in (browse, create, claim, watch):
    module.register(jobs_app)


def register(root: typer.Typer) -> None:
    root.add_typer(jobs_app, name="jobs")
