"""A small builder of reStructuredText, and help text parsed into blocks.

The man pages are written as reStructuredText and converted to roff by
docutils, so every piece of help text passes through `escape` (or goes into a
literal block) and cannot turn into markup by accident.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

# Every ASCII punctuation character. A backslash before any of them makes it
# literal in reStructuredText, which also stops a line starting with "-", "1."
# or ".." from becoming a list or a directive.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def escape(text: str) -> str:
    """Return `text` as reStructuredText that renders exactly as `text`."""
    return _PUNCTUATION.sub(r"\\\1", text)


def strong(text: str) -> str:
    return f"**{escape(text)}**" if text else ""


def emphasis(text: str) -> str:
    return f"*{escape(text)}*" if text else ""


def plain_text(markup: str) -> str:
    """Return the text that rich shows for Typer help written in rich markup."""
    from rich.text import Text

    return Text.from_markup(markup).plain


@dataclass(frozen=True)
class HelpBlock:
    """A paragraph of prose (lines to rewrap) or a literal block (lines kept as written)."""

    literal: bool
    lines: tuple[str, ...]


def _is_literal_line(line: str) -> bool:
    # Indented lines are examples or tables; command lines count even when
    # their author did not indent them.
    return line.startswith((" ", "\t")) or line.lstrip().startswith(("$ ", "loom "))


def parse_help(text: str | None) -> list[HelpBlock]:
    """Split command help (a docstring in rich markup) into prose and literal blocks.

    Within a paragraph, a literal block starts at the first indented line or
    the first line that starts with `loom ` or `$ `. So an `Examples:` line
    followed by indented commands gives a prose line and a literal block.
    Text after a form feed is dropped, as Click does.
    """
    text = inspect.cleandoc(text or "").partition("\f")[0].replace("\b", "")
    blocks: list[HelpBlock] = []
    for paragraph in re.split(r"\n[ \t]*\n", text):
        lines = [line.rstrip() for line in plain_text(paragraph).strip("\n").split("\n")]
        if not any(line.strip() for line in lines):
            continue
        split = next((i for i, line in enumerate(lines) if _is_literal_line(line)), len(lines))
        if split:
            blocks.append(HelpBlock(literal=False, lines=tuple(lines[:split])))
        if split < len(lines):
            literal = inspect.cleandoc("\n".join(lines[split:]))
            blocks.append(HelpBlock(literal=True, lines=tuple(literal.split("\n"))))
    return blocks


def first_sentence(text: str | None) -> str:
    """Return the first paragraph of `text` as one plain line without its final period."""
    blocks = parse_help(text)
    if not blocks or blocks[0].literal:
        return ""
    return " ".join(line.strip() for line in blocks[0].lines).rstrip(".")


@dataclass
class Document:
    """reStructuredText for one man page, built section by section."""

    parts: list[str] = field(default_factory=list)

    def title(self, name: str, summary: str, *, section: int, manual: str, version: str, date: str | None) -> None:
        # docutils' manpage writer takes the page name from the document title,
        # the NAME line from the subtitle and the .TH fields from docinfo.
        name_line = escape(name)
        summary_line = escape(summary)
        self.parts.append("=" * len(name_line) + "\n" + name_line + "\n" + "=" * len(name_line) + "\n")
        self.parts.append("-" * len(summary_line) + "\n" + summary_line + "\n" + "-" * len(summary_line) + "\n")
        fields = [f":Manual section: {section}", f":Manual group: {escape(manual)}", f":Version: {escape(version)}"]
        if date:
            fields.append(f":Date: {date}")
        self.parts.append("\n".join(fields) + "\n")

    def section(self, heading: str) -> None:
        """Start a top-level section (.SH); `heading` is upper case by man-page convention."""
        line = escape(heading)
        self.parts.append(f"{line}\n{'=' * len(line)}\n")

    def subsection(self, heading: str) -> None:
        """Start a subsection (.SS) of the current section."""
        line = escape(heading)
        self.parts.append(f"{line}\n{'-' * len(line)}\n")

    def paragraph(self, rst: str) -> None:
        """Add a paragraph of reStructuredText that the caller already escaped."""
        self.parts.append(rst + "\n")

    def text(self, text: str) -> None:
        self.paragraph(escape(text))

    def literal(self, lines: list[str] | tuple[str, ...]) -> None:
        body = "\n".join(f"    {line}" if line else "" for line in lines)
        self.parts.append(f"::\n\n{body}\n")

    def help_blocks(self, blocks: list[HelpBlock]) -> None:
        for block in blocks:
            if block.literal:
                self.literal(block.lines)
            else:
                self.text(" ".join(line.strip() for line in block.lines))

    def definitions(self, items: list[tuple[str, list[HelpBlock]]]) -> None:
        """Add a definition list; each term is reStructuredText, each body help blocks."""
        entries = []
        for term, blocks in items:
            body = Document()
            # A definition list item needs a body, so state that there is none.
            blocks = blocks or [HelpBlock(literal=False, lines=("No description.",))]
            body.help_blocks(blocks)
            indented = "\n".join(f"    {line}" if line else "" for line in body.render().rstrip("\n").split("\n"))
            entries.append(f"{term}\n{indented}")
        self.parts.append("\n\n".join(entries) + "\n")

    def render(self) -> str:
        return "\n".join(self.parts)
