"""The generated files of the repository, and writing or checking them."""

from __future__ import annotations

import os
from pathlib import Path

REGENERATE_COMMAND = "python -m loom_cli.docs"

MAN_DIR = "man"
COMPLETIONS_DIR = "completions"


def generated_files() -> dict[str, str]:
    """Return {path relative to the repository: content} for every generated file.

    SOURCE_DATE_EPOCH is ignored here: the committed pages carry no date, so
    that regenerating them never changes them unless the commands changed.
    """
    from loom_cli.commands.completion import SCRIPT_FILES, completion_script
    from loom_cli.docs.manpages import render_man_pages

    env = {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}
    files = {f"{MAN_DIR}/{name}": text for name, text in render_man_pages(env).items()}
    for shell, name in SCRIPT_FILES.items():
        files[f"{COMPLETIONS_DIR}/{name}"] = completion_script(shell)
    return files


def _existing_man_pages(root: Path) -> set[str]:
    return {f"{MAN_DIR}/{path.name}" for path in (root / MAN_DIR).glob("*.1")}


def stale_files(root: Path) -> list[str]:
    """Return the generated files under `root` that are missing, different, or no longer generated."""
    expected = generated_files()
    stale = []
    for name, text in expected.items():
        path = root / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    # A man page of a command that no longer exists is stale too.
    stale += sorted(_existing_man_pages(root) - set(expected))
    return sorted(stale)


def write_files(root: Path) -> list[str]:
    """Write every generated file under `root`, delete man pages of removed commands, and return the changed names."""
    expected = generated_files()
    changed = []
    for name, text in expected.items():
        path = root / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(name)
    for name in sorted(_existing_man_pages(root) - set(expected)):
        (root / name).unlink()
        changed.append(name)
    return changed
