"""The root `loom` command: global options, the command groups, and exit-code mapping.

This module only wires things together; each command lives in
`loom_cli/commands/<noun>.py` and registers itself through `register(app)`.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from loom_cli import __version__
from loom_cli.commands import auth, completion, config, demo, jobs, results, sandbox, wallet
from loom_cli.context import AppContext, GlobalOptions
from loom_cli.errors import ExitCode, LoomError, UsageError, WatchOutcome, exit_on_write_error
from loom_cli.options import OUTPUT_HELP, OutputFormat, output_value

app = typer.Typer(
    name="loom",
    help="Work with The Loom computing marketplace: post jobs, run them as a worker, and script it all.",
    epilog="Run `loom demo` for a guided tour against a local sandbox. Docs: `man loom`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"loom {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option("--profile", envvar="LOOM_PROFILE", help="Settings and credentials profile to use. \\[default: default]", show_default=False, autocompletion=completion.complete_profile),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", envvar="LOOM_API_URL", help="Base URL of the Loom API. \\[default: https://api.the-loom.io/v1]", show_default=False),
    ] = None,
    output: Annotated[
        OutputFormat | None,
        typer.Option("--output", "-o", envvar="LOOM_OUTPUT", help=OUTPUT_HELP, case_sensitive=False, show_default=False),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Same as --output json.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids, or nothing.")] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, metavar="", show_default=False, help="Log HTTP requests and timings to stderr (secrets redacted); -vv adds headers.")
    ] = 0,
    no_color: Annotated[bool, typer.Option("--no-color", help="Plain output without colour (also NO_COLOR or TERM=dumb).")] = False,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.1, max=3600, help="Per-request timeout in seconds. \\[default: 30]", show_default=False),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print loom's version and exit.")
    ] = False,
) -> None:
    output_source = ctx.get_parameter_source("output")
    if json_ and output is not None and output.value != "json" and (output_source is None or output_source.name != "ENVIRONMENT"):
        # As after the subcommand; a LOOM_OUTPUT value yields to --json like any variable to a flag.
        raise UsageError(f"--json conflicts with --output {output.value}", hint="give only one of them")
    options = GlobalOptions(
        profile=profile,
        api_url=api_url,
        output="json" if json_ else output_value(output),
        quiet=quiet,
        verbose=verbose,
        no_color=no_color,
        timeout=timeout,
    )
    # Tests pass a prepared AppContext as obj; keep its replacements, update its options.
    if isinstance(ctx.obj, AppContext):
        ctx.obj.options = options
    else:
        ctx.obj = AppContext(options)
    ctx.obj.require_known_profile = ctx.invoked_subcommand != "config"


for module in (auth, wallet, jobs, results, config, sandbox, demo, completion):
    module.register(app)


def _exit_on_usage_error(exc: typer.TyperException) -> None:
    """Print a Click usage error (unknown command or option, invalid value) as loom's error and hint lines."""
    from loom_cli.text import escape_control

    exit_code = getattr(exc, "exit_code", None)
    format_message = getattr(exc, "format_message", None)
    if not isinstance(exit_code, int) or format_message is None:
        raise exc
    # A group run without a command has already printed its help page.
    if type(exc).__name__ == "NoArgsIsHelpError":
        sys.exit(exit_code)
    lines = [f"error: {format_message()}"]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        lines.append(f"hint: see the usage with: {ctx.command_path} --help")
    sys.stderr.write(escape_control("\n".join(lines), keep_newlines=True) + "\n")
    sys.exit(exit_code)


def _exit_quietly_on_broken_pipe() -> None:
    # Point stdout at /dev/null so the interpreter's final flush cannot raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _stdout_identity() -> tuple[int, int] | None:
    try:
        status = os.fstat(sys.__stdout__.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return (status.st_dev, status.st_ino)


def _stdout_reader_gone(identity_at_start: tuple[int, int] | None) -> bool:
    """Check whether stdout was a pipe whose reading end closed, as in `loom --help | head -1`.

    rich handles a broken pipe itself by pointing stdout at /dev/null before
    exiting with 1, so a stdout that is no longer the file it was at start
    counts too. Otherwise poll() reports POLLERR (Linux) or POLLHUP (BSD,
    macOS) for the writing end of such a pipe.
    """
    import select

    if _stdout_identity() != identity_at_start:
        return True
    try:
        poller = select.poll()
        poller.register(sys.__stdout__.fileno(), select.POLLOUT)
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):
        return False
    return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in events)


def main(argv: list[str] | None = None) -> None:
    """Run loom and exit with the documented code; only bugs exit 1."""
    stdout_at_start = _stdout_identity()
    try:
        # Outside standalone mode, Click's usage errors reach loom, which prints
        # them in its own one-line form instead of Typer's framed panel.
        result = app(args=argv, prog_name="loom", standalone_mode=False)
        sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)
    except typer.TyperException as exc:
        _exit_on_usage_error(exc)
    except typer.Abort:
        # Click raises Abort when a prompt meets the end of input.
        sys.stderr.write("error: the input ended before a response was given\n")
        sys.exit(int(ExitCode.USAGE))
    except SystemExit as exc:
        # Typer and rich exit with status 1 when help or a completion script
        # meets a closed pipe. Like a data command, loom then ends quietly with 0.
        if exc.code == 1 and _stdout_reader_gone(stdout_at_start):
            _exit_quietly_on_broken_pipe()
            sys.exit(0)
        raise
    except LoomError as exc:
        from loom_cli.text import escape_control

        sys.stderr.write(escape_control(exc.render(), keep_newlines=True) + "\n")
        sys.exit(int(exc.exit_code))
    except WatchOutcome as outcome:
        sys.exit(int(outcome.exit_code))
    except BrokenPipeError:
        _exit_quietly_on_broken_pipe()
        sys.exit(0)
    except OSError as exc:
        exit_on_write_error(exc)
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
