"""Option definitions shared by several commands, so each flag reads the same everywhere."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"
    jsonl = "jsonl"


OUTPUT_HELP = "Output format: table for people; json, yaml or jsonl for scripts."

# The per-command copies of -o/--json/-q, so `loom jobs list -o json` works
# as well as `loom -o json jobs list`.
OutputOption = Annotated[
    OutputFormat | None,
    typer.Option("--output", "-o", help=OUTPUT_HELP, case_sensitive=False, show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --output json.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids, or nothing.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal).")]


def output_value(output: OutputFormat | None) -> str | None:
    return output.value if output is not None else None
