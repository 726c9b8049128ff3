"""`loom jobs` subcommands: watch."""

from __future__ import annotations

import typer


def register(jobs_app: typer.Typer) -> None:
    pass
