"""`loom completion`: print the shell completion script for bash, zsh or fish.

The scripts come from Typer's own templates. On TAB they run `loom` again with
`_LOOM_COMPLETE=complete_<shell>` in the environment, and Typer prints the
subcommands, options and values that fit the words typed so far, before any
command callback runs. `register` installs Typer's completion classes for that,
because the root app is built with `add_completion=False` (loom offers this
command instead of Typer's `--install-completion`).

Dynamic values: `--profile` completes the profile names in the config file
(one small TOML read per TAB). Job ids are not completed, because the only
source of them is the API and a network request on every TAB would make the
shell hang whenever the API is slow or unreachable.
"""

from __future__ import annotations

import os
from enum import Enum
from typing import Annotated

import typer
from typer import completion as typer_completion

PROG_NAME = "loom"
COMPLETE_VAR = "_LOOM_COMPLETE"


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


# The file each script is committed as under completions/, named as each
# shell's completion loader looks it up once installed.
SCRIPT_FILES: dict[Shell, str] = {
    Shell.bash: "loom.bash",
    Shell.zsh: "_loom",
    Shell.fish: "loom.fish",
}

# Typer's zsh script registers its function with `compdef` at the end. That is
# right when the script is sourced, but when zsh autoloads `_loom` from $fpath
# (the usual install) the first TAB would only register the function and offer
# nothing. This ending calls the function directly in that case.
_ZSH_COMPDEF = "compdef _loom_completion loom"
_ZSH_AUTOLOAD_ENDING = """\
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  # Autoloaded from $fpath: complete the current word now.
  _loom_completion "$@"
else
  # Sourced or evaluated: register the function for later TABs.
  compdef _loom_completion loom
fi"""


def completion_script(shell: Shell) -> str:
    """Return the completion script for `shell`, ending with a newline."""
    script = typer_completion.get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_VAR, shell=shell.value)
    if shell is Shell.zsh:
        if not script.endswith(_ZSH_COMPDEF):
            # A Typer upgrade changed the template; fail loudly rather than ship
            # a script that needs two TABs.
            raise RuntimeError(f"unexpected end of Typer's zsh completion script: {script[-80:]!r}")
        script = script[: -len(_ZSH_COMPDEF)] + _ZSH_AUTOLOAD_ENDING
    return script + "\n"


def complete_profile(incomplete: str) -> list[tuple[str, str]]:
    """Return the profile names starting with `incomplete`, each with its API URL as help.

    Reads only the config file; a missing or broken file completes just `default`.
    """
    from loom_cli.errors import UsageError
    from loom_cli.paths import Paths
    from loom_cli.settings import DEFAULT_API_URL, DEFAULT_PROFILE, ConfigFile

    try:
        profiles = ConfigFile.load(Paths.from_env(os.environ)).profiles
    except UsageError:
        profiles = {}
    names = sorted(set(profiles) | {DEFAULT_PROFILE})
    return [(name, str(profiles.get(name, {}).get("api_url", DEFAULT_API_URL))) for name in names if name.startswith(incomplete)]


def completion(
    shell: Annotated[Shell, typer.Argument(metavar="SHELL", help="Shell to print the script for: bash, zsh or fish.", case_sensitive=False, show_default=False)],
) -> None:
    """Print the shell completion script for bash, zsh or fish.

    The script completes commands, options, choices and the profile names in the
    config file. Save it where your shell loads completions from, or evaluate it
    in the running shell. Installing loom from a wheel (pipx, uv tool, pip) also
    places the scripts under the environment's share/ folder.

    Examples:
      loom completion bash > ~/.local/share/bash-completion/completions/loom
      loom completion zsh > ~/.zfunc/_loom    # with fpath+=(~/.zfunc) before compinit in ~/.zshrc
      loom completion fish > ~/.config/fish/completions/loom.fish
      eval "$(loom completion bash)"          # this bash session only
    """
    typer.echo(completion_script(shell), nl=False)


def register(root: typer.Typer) -> None:
    # Typer registers its bash/zsh/fish completion classes only for apps with
    # add_completion=True. Without them `_LOOM_COMPLETE=complete_bash loom`
    # fails with "Shell bash not supported", so register them here. This costs
    # a few dict inserts: typer.main has already imported typer.completion.
    typer_completion.completion_init()
    root.command("completion")(completion)
