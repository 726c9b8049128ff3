"""Regenerate (or check) the committed man pages and completion scripts.

    python -m loom_cli.docs            # rewrite man/ and completions/
    python -m loom_cli.docs --check    # list out-of-date files, exit 1 if any
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loom_cli.docs.generate import REGENERATE_COMMAND, stale_files, write_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loom_cli.docs", description="Regenerate loom's man pages and shell completion scripts.")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository folder holding man/ and completions/ (default: the current folder)")
    parser.add_argument("--check", action="store_true", help="write nothing; list the files that differ and exit 1 if any")
    args = parser.parse_args(argv)

    if args.check:
        stale = stale_files(args.root)
        for name in stale:
            print(f"out of date: {name}", file=sys.stderr)
        if stale:
            print(f"regenerate with: {REGENERATE_COMMAND}", file=sys.stderr)
        return 1 if stale else 0

    for name in write_files(args.root):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
