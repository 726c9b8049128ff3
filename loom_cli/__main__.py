"""Entry point for `python -m loom_cli` and the `loom` console script."""

from __future__ import annotations

import sys


def main() -> None:
    # `loom --version` is called in tight loops by scripts checking for loom;
    # printing the version before Typer is imported keeps it at interpreter start-up cost.
    if sys.argv[1:] == ["--version"]:
        import os

        from loom_cli import __version__

        try:
            sys.stdout.write(f"loom {__version__}\n")
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`loom --version | true`): end quietly, and keep
            # the interpreter's last flush from raising again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return

    try:
        from loom_cli.app import main as app_main
    except KeyboardInterrupt:
        # Ctrl-C while loom is still importing: exit like any interrupted command, without a traceback.
        sys.exit(130)
    app_main()


if __name__ == "__main__":
    main()
