"""Man pages generated from loom's command tree.

`loom.1` documents the global options, exit status, environment, files and
common examples. Each `loom-<command>.1` documents one top-level command, and
a group's page (`loom-jobs.1`) documents every subcommand in it, as git does.

Why docutils: click-man 0.6 finds options with `isinstance(x, click.Option)`,
and Typer 0.26+ builds them from its private copy `typer._click`, so click-man
drops every option; its writer also leaves roff control characters in help
text unescaped and has no EXIT STATUS, ENVIRONMENT or FILES sections. pandoc
would need a large system binary in CI, and its output changes between
releases. docutils is pure Python and ships a maintained roff writer (with tbl
tables), so this module writes reStructuredText and lets docutils write roff.

The pages are deterministic: no date unless SOURCE_DATE_EPOCH is set (the
version identifies the release in the footer), and no terminal width.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from loom_cli.docs.rst import Document, HelpBlock, emphasis, escape, first_sentence, parse_help, strong
from loom_cli.errors import ExitCode

MANUAL = "loom manual"
EXAMPLES_HEADINGS = {"examples:", "example:"}
GLOBAL_OPTIONS_NOTE = "loom's global options, such as --profile and --api-url, go before the command name: see loom(1)."
SECTION = 1

# Description of each exit code for the EXIT STATUS section. Generation fails
# when an ExitCode member is missing here, so a new code cannot go undocumented.
EXIT_STATUS: dict[ExitCode, str] = {
    ExitCode.OK: "Success. For jobs watch: every job ended Completed.",
    ExitCode.BUG: "An unexpected error, which is a bug in loom: please report it with the command line that caused it.",
    ExitCode.USAGE: "Usage error or invalid input: a bad flag or value, an invalid job spec, an unreadable file.",
    ExitCode.AUTH: "Not logged in, login failed, or the token expired and could not be renewed. Also when a passphrase or key is needed and stdin is not a terminal.",
    ExitCode.NOT_FOUND: "Not found: no such job, result, wallet or profile.",
    ExitCode.CONFLICT: "Conflict or forbidden: the job is not open, already finished or not yours, or an idempotency key was reused with another request.",
    ExitCode.API_UNAVAILABLE: "The API could not be reached, kept failing after retries, or sent an answer that breaks the API contract.",
    ExitCode.JOB_FAILED: "jobs watch: a job ended Failed.",
    ExitCode.JOB_CANCELLED: "jobs watch: a job ended Cancelled.",
    ExitCode.WATCH_TIMEOUT: "jobs watch: --timeout passed before every job ended.",
    ExitCode.INTERRUPTED: "Interrupted with Ctrl-C.",
}

# Variables that are not a global option's envvar (those are listed from the
# command tree). The help test checks that every LOOM_* variable the code
# reads appears in the ENVIRONMENT section.
ENVIRONMENT: list[tuple[str, str]] = [
    ("LOOM_TOKEN", "A JWT to use as is. loom stores nothing when it is set."),
    (
        "LOOM_PRIVATE_KEY",
        "A hex private key for signing without a prompt: any command that needs a token logs in with it when no valid token is stored. Never stored.",
    ),
    ("LOOM_PASSPHRASE", "Passphrase of the stored wallet, so that loom can renew a token or unlock the key without a prompt."),
    (
        "LOOM_CONFIG_DIR",
        "Folder that replaces both the config and the data folder (see FILES); useful to isolate tests and CI jobs.",
    ),
    (
        "LOOM_KEYRING_BACKEND",
        "Where secrets are kept: auto (the default: the OS keyring, or files when it is unusable), file (only the files), or keyring (only the OS keyring, without the file fallback).",
    ),
    ("LOOM_KEYRING_TIMEOUT", "Seconds each OS keyring call may take before loom treats the keyring as unusable."),
    (
        "LOOM_SIGNER_ADDRESS",
        "Set by loom, not read: the process of loom login --signer-command finds the address to sign for in it. "
        "LOOM_TOKEN, LOOM_PRIVATE_KEY and LOOM_PASSPHRASE are removed from that process's environment.",
    ),
    ("NO_COLOR", "When set to any value, loom prints without colour."),
    ("TERM", "When dumb, loom prints without colour or terminal effects."),
]

FILES: list[tuple[str, str]] = [
    (
        "~/.config/loom/config.toml",
        "Settings, one table per profile, written by loom config set. The folder is the platform's user config folder: $XDG_CONFIG_HOME/loom on Linux, ~/Library/Application Support/loom on macOS.",
    ),
    (
        "~/.local/share/loom/",
        "The data folder ($XDG_DATA_HOME/loom on Linux). It holds login tokens and encrypted wallet keys only when the OS keyring is unusable or LOOM_KEYRING_BACKEND=file: files of mode 0600 in folders of mode 0700.",
    ),
    ("$LOOM_CONFIG_DIR/config.toml", "The config file when LOOM_CONFIG_DIR is set."),
    ("$LOOM_CONFIG_DIR/data/", "The data folder when LOOM_CONFIG_DIR is set."),
]

EXAMPLES: list[tuple[str, list[str]]] = [
    ("Create a wallet, log in, and post a job, waiting until it ends:", ["loom wallet new", "loom login", "loom jobs init job.yaml", "loom jobs create job.yaml --wait"]),
    ("List the open jobs as JSON for a script:", ["loom jobs list --status Open -o json | jq -r '.[].id'"]),
    ("Run a local sandbox in one terminal, and use it from another:", ["loom sandbox --port 8765", "export LOOM_API_URL=http://127.0.0.1:8765/v1", "loom login"]),
    ("Log in without prompts in CI:", ["LOOM_PRIVATE_KEY=$(cat key.hex) loom --profile ci whoami"]),
    ("Call the API with the current token:", ['curl -H "Authorization: Bearer $(loom auth token)" https://api.the-loom.io/v1/auth/me']),
]


def manual_date(env: dict[str, str] | os._Environ[str]) -> str | None:
    """Return the page date from SOURCE_DATE_EPOCH (reproducible builds), or None for no date."""
    epoch = env.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return None
    try:
        seconds = int(epoch)
    except ValueError as exc:
        raise ValueError(f"invalid SOURCE_DATE_EPOCH {epoch!r}: expected whole seconds since 1970") from exc
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


@dataclass(frozen=True)
class PageContext:
    version: str
    date: str | None


def _visible_params(command: Any, ctx: Any) -> list[Any]:
    # Leave out Click's --help, because every command has it and loom(1) mentions it once.
    return [param for param in command.get_params(ctx) if not getattr(param, "hidden", False) and param.name != "help"]


def _param_entry(param: Any, ctx: Any) -> tuple[str, list[HelpBlock]]:
    """Return the definition-list term and body for one option or argument, as --help shows it."""
    record = param.get_help_record(ctx)
    name, full_help = record if record else (param.name, "")
    raw_help = param.help or ""
    # get_help_record appends "[env var: X; default: Y; ...]" after the help;
    # that suffix is plain text, while the help itself is rich markup.
    extras = full_help[len(raw_help) :].strip() if full_help.startswith(raw_help) else ""
    blocks = parse_help(raw_help)
    if extras:
        extras = extras.replace("\\[", "[")
        if blocks and not blocks[-1].literal:
            blocks[-1] = HelpBlock(literal=False, lines=(*blocks[-1].lines, extras))
        else:
            blocks.append(HelpBlock(literal=False, lines=(extras,)))

    if param.param_type_name == "argument":
        label, _, metavar = name.partition(" ")
        term = emphasis(label.upper()) + (" " + escape(metavar) if metavar else "")
    else:
        # "-o, --output <table|json>" or "--yes / --no": flags in bold, the value in italics.
        words = name.split(" ")
        flags = [word for word in words if word.startswith("-") or word in {"/", ";"}]
        value = " ".join(word for word in words if word not in flags)
        term = " ".join(strong(word) if word.startswith("-") else escape(word) for word in flags)
        if value:
            term += " " + emphasis(value)
    return term, blocks


def _usage(command: Any, ctx: Any) -> str:
    pieces = " ".join(command.collect_usage_pieces(ctx))
    return strong(ctx.command_path) + (" " + escape(pieces) if pieces else "")


def _prose(text: str) -> list[HelpBlock]:
    return [HelpBlock(literal=False, lines=(text,))]


def _child_context(command: Any, name: str, parent: Any) -> Any:
    import typer

    return typer.Context(command, info_name=name, parent=parent)


def _subcommands(group: Any) -> list[tuple[str, Any]]:
    return [(name, command) for name, command in group.commands.items() if not command.hidden]


def split_examples(blocks: list[HelpBlock]) -> tuple[list[HelpBlock], list[HelpBlock]]:
    """Split help blocks at an `Examples:` line into (description, examples)."""
    for index, block in enumerate(blocks):
        if not block.literal and block.lines[-1].strip().lower() in EXAMPLES_HEADINGS:
            head = HelpBlock(literal=False, lines=block.lines[:-1])
            return [*blocks[:index], *([head] if head.lines else [])], blocks[index + 1 :]
    return blocks, []


def _help_of(command: Any) -> list[HelpBlock]:
    return parse_help(command.help) + parse_help(command.epilog)


def _options(doc: Document, command: Any, ctx: Any) -> None:
    params = _visible_params(command, ctx)
    if params:
        doc.definitions([_param_entry(param, ctx) for param in params])


def render_root_page(root: Any, root_ctx: Any, page: PageContext) -> str:
    doc = Document()
    doc.title("loom", first_sentence(root.help), section=SECTION, manual=MANUAL, version=f"loom {page.version}", date=page.date)

    doc.section("SYNOPSIS")
    doc.paragraph(f"{strong('loom')} [{emphasis('GLOBAL OPTIONS')}] {emphasis('COMMAND')} [{emphasis('ARGS')}]...")
    doc.paragraph(f"{strong('loom --version')} | {strong('loom --help')}")

    doc.section("DESCRIPTION")
    doc.help_blocks(parse_help(root.help))
    doc.text(
        "Data goes to standard output and everything else (progress, warnings, errors) to standard error. "
        "Without a terminal on standard input loom never prompts: it fails and names the variable or flag "
        "that supplies what was missing."
    )

    doc.section("GLOBAL OPTIONS")
    doc.text(
        "Global options go before COMMAND. --output, --json and --quiet are also accepted after the command. "
        "A flag wins over its environment variable, and the variable over the profile's setting in the config file. "
        "Every command also takes -h, --help."
    )
    doc.definitions([_param_entry(param, root_ctx) for param in _visible_params(root, root_ctx)])

    doc.section("COMMANDS")
    doc.definitions(
        [
            (strong(name), _prose(f"{first_sentence(command.help)}. See loom-{name}(1)."))
            for name, command in _subcommands(root)
        ]
    )

    doc.section("EXIT STATUS")
    missing = [code.name for code in ExitCode if code not in EXIT_STATUS]
    if missing:
        raise RuntimeError(f"exit codes without a description in EXIT_STATUS: {', '.join(missing)}")
    doc.definitions([(strong(str(int(code))), _prose(EXIT_STATUS[code])) for code in ExitCode])

    doc.section("ENVIRONMENT")
    variables = [
        (param.envvar, f"Default for {max(param.opts, key=len)}.")
        for param in _visible_params(root, root_ctx)
        if isinstance(getattr(param, "envvar", None), str)
    ]
    doc.definitions([(strong(name), _prose(meaning)) for name, meaning in [*variables, *ENVIRONMENT]])

    doc.section("FILES")
    doc.definitions([(strong(path), _prose(meaning)) for path, meaning in FILES])

    doc.section("EXAMPLES")
    for text, lines in EXAMPLES:
        doc.text(text)
        doc.literal(lines)

    doc.section("SEE ALSO")
    doc.paragraph(", ".join(f"{strong(f'loom-{name}')}\\(1)" for name, _ in _subcommands(root)))
    return doc.render()


def render_command_page(name: str, command: Any, root_ctx: Any, page: PageContext) -> str:
    ctx = _child_context(command, name, root_ctx)
    doc = Document()
    doc.title(f"loom-{name}", first_sentence(command.help), section=SECTION, manual=MANUAL, version=f"loom {page.version}", date=page.date)
    subcommands = _subcommands(command) if hasattr(command, "commands") else []

    doc.section("SYNOPSIS")
    if subcommands:
        for sub_name, sub in subcommands:
            doc.paragraph(_usage(sub, _child_context(sub, sub_name, ctx)))
    else:
        doc.paragraph(_usage(command, ctx))

    doc.section("DESCRIPTION")
    if subcommands:
        doc.help_blocks(_help_of(command))
        doc.text(GLOBAL_OPTIONS_NOTE)
        doc.section("COMMANDS")
        for sub_name, sub in subcommands:
            sub_ctx = _child_context(sub, sub_name, ctx)
            doc.subsection(sub_ctx.command_path)
            doc.paragraph(_usage(sub, sub_ctx))
            doc.help_blocks(_help_of(sub))
            if _visible_params(sub, sub_ctx):
                doc.paragraph(strong("Options:"))
                _options(doc, sub, sub_ctx)
    else:
        description, examples = split_examples(_help_of(command))
        doc.help_blocks(description)
        doc.text(GLOBAL_OPTIONS_NOTE)
        if _visible_params(command, ctx):
            doc.section("OPTIONS")
            _options(doc, command, ctx)
        if examples:
            doc.section("EXAMPLES")
            doc.help_blocks(examples)

    doc.section("SEE ALSO")
    doc.paragraph(f"{strong('loom')}\\(1)")
    return doc.render()


def rst_to_roff(source: str) -> str:
    """Convert a page's reStructuredText to roff with docutils' manpage writer.

    Any docutils warning (for example unbalanced markup from help text) is an
    error, so a broken page fails generation instead of being written.
    """
    from docutils.core import publish_string

    roff = publish_string(
        source,
        writer="manpage",
        settings_overrides={"report_level": 2, "halt_level": 2, "input_encoding": "unicode", "output_encoding": "unicode"},
    )
    # The header comment names the docutils version; drop it so that a docutils
    # patch release does not make every committed page stale.
    return re.sub(r"^(\.\\\" by the Docutils) \S+ (manpage writer\.)$", r"\1 \2", roff, count=1, flags=re.MULTILINE)


def render_man_pages(env: dict[str, str] | os._Environ[str] | None = None) -> dict[str, str]:
    """Return every man page as {file name: roff text}, generated from the command tree."""
    import typer.main

    from loom_cli import __version__
    from loom_cli.app import app

    page = PageContext(version=__version__, date=manual_date(os.environ if env is None else env))
    root = typer.main.get_command(app)
    root_ctx = _child_context(root, "loom", None)

    pages = {"loom.1": rst_to_roff(render_root_page(root, root_ctx, page))}
    for name, command in _subcommands(root):
        pages[f"loom-{name}.1"] = rst_to_roff(render_command_page(name, command, root_ctx, page))
    return pages
