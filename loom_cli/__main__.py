"""Entry point for `python -m loom_cli` and the `loom` console script."""

from __future__ import annotations

import sys


def main() -> None:
    _fill_closed_std_streams()
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
        except OSError as exc:
            from loom_cli.errors import exit_on_write_error

            exit_on_write_error(exc)
        return

    # The root help is replayed from a cache when nothing it depends on has
    # changed, which spares importing Typer and rich (loom_cli/helpcache.py).
    cache = None
    if sys.argv[1:] in ([], ["--help"], ["-h"]):
        import os

        from loom_cli.helpcache import HelpCache, replay

        try:
            cache = HelpCache.for_invocation(sys.argv[1:], os.environ)
            stored = cache.read() if cache is not None else None
            if stored is not None:
                code, text = stored
                # A closed pipe ends quietly with 0, as for any other command.
                sys.exit(code if replay(text) else 0)
        except KeyboardInterrupt:
            sys.exit(130)
        except OSError as exc:
            from loom_cli.errors import exit_on_write_error

            exit_on_write_error(exc)

    _leave_out_httpx_cli()
    try:
        from loom_cli.app import main as app_main
    except KeyboardInterrupt:
        # Ctrl-C while loom is still importing: exit like any interrupted command, without a traceback.
        sys.exit(130)
    if cache is None:
        app_main()
    else:
        with cache.recording():
            app_main()


def _fill_closed_std_streams() -> None:
    """Point a closed standard stream (`loom ... >&-`, `<&-`) at /dev/null, and refuse to run without stdout.

    Python sets a closed stream to None, and every read or print would then
    raise. A closed stdin reads as empty and a closed stderr drops its
    messages. A closed stdout ends loom with exit 1 before any command runs,
    so that, say, a created job's id is never lost. Filling each descriptor
    also keeps a file opened later from taking its number.
    """
    import os

    stdout_closed = sys.stdout is None
    for fd, name, mode, flags in ((0, "stdin", "r", os.O_RDONLY), (1, "stdout", "w", os.O_WRONLY), (2, "stderr", "w", os.O_WRONLY)):
        if getattr(sys, name) is not None:
            continue
        devnull = os.open(os.devnull, flags)
        if devnull != fd:
            os.dup2(devnull, fd)
            os.close(devnull)
        setattr(sys, name, open(fd, mode, encoding="utf-8", closefd=False))
    if stdout_closed:
        sys.stderr.write("error: cannot write the output: stdout is closed\nhint: run loom with stdout open, or send it to /dev/null with >/dev/null\n")
        sys.exit(1)


def _leave_out_httpx_cli() -> None:
    """Keep httpx from importing its own command-line client, which loom never runs.

    httpx loads that client (Click, Pygments, rich.progress: about 35 ms) at
    import time whenever Click is installed, as it is with the sandbox extra's
    uvicorn. A stand-in module under the same name spares every API command that cost.
    """
    import types

    def main() -> None:
        raise SystemExit("httpx's command-line client is not loaded inside loom; run the httpx command instead")

    stand_in = types.ModuleType("httpx._main", "Stand-in for httpx's command-line client inside loom.")
    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules.setdefault("httpx._main", stand_in)


if __name__ == "__main__":
    try:
        main()
    finally:
        # Under `python -m`, CPython exits by SIGINT instead of with loom's code
        # (130 after Ctrl-C) when the last exec() or eval() of a string ended in
        # a KeyboardInterrupt, even one loom caught. Creating a dataclass or a
        # namedtuple runs such a call, so Ctrl-C can land in one. A new string
        # exec() clears that record. The `loom` script does not need this.
        exec("pass")
