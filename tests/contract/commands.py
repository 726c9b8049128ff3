"""The command tree of `loom`, read from the Typer app, so the contract tests notice a new command."""

from __future__ import annotations

from typing import Any

import typer.main

from loom_cli.app import app


def leaf_commands() -> dict[str, Any]:
    """Map each runnable command path ("jobs claim") to its Click command; groups are left out."""
    found: dict[str, Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for name, child in getattr(command, "commands", {}).items():
            if child.hidden:
                continue
            if hasattr(child, "commands"):
                walk(child, (*path, name))
            else:
                found[" ".join((*path, name))] = child

    walk(typer.main.get_command(app), ())
    return found


LEAF_COMMANDS = leaf_commands()
