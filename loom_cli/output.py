"""The one renderer every command prints data through.

Data goes to stdout in the format the user chose; nothing else does. `table`
is for people: a rich table on a terminal, and plain aligned columns that
never wrap, truncate or colour when stdout is a pipe, so `awk` and `cut` see
one record per line. `json`, `yaml` and `jsonl` are for scripts and are
written with `json.dumps` and `yaml.safe_dump`, never through rich, because
rich wraps long lines. `--quiet` prints only ids.

Marketplace text is untrusted. Table cells and key/value views show control
characters, ANSI/OSC sequences and bidi overrides as visible escapes, and rich
never interprets markup in them. JSON and YAML keep the raw values but write
every non-ASCII character as an escape, so a bidi override cannot reorder
what a terminal shows there either.
"""

from __future__ import annotations

import functools

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TextIO

from loom_cli.text import escape_control

FORMATS = ("table", "json", "yaml", "jsonl")

# Shown in a table cell for a missing value (null or an absent key).
EMPTY_CELL = "-"

# Spaces between columns of a piped table.
COLUMN_GAP = "  "

# Python (3.11 and later) refuses to convert ints of more digits than this to text
# (sys.int_info.default_max_str_digits).
MAX_INT_DIGITS = 4300

# The API's timestamp form; only values of this shape are shown as "3m ago".
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Column:
    """One column of a table, or one line of a key/value view.

    `key` is a dotted path into the record ("reward.amount") or a function of
    the record. `time` marks an RFC 3339 timestamp, shown as "3m ago" on a
    terminal; None means "when the key is a path ending in `_at`".
    """

    header: str
    key: str | Callable[[dict], object]
    time: bool | None = None
    # A wallet address, shown as 0x1a64…14F1 in tables on a terminal; key/value views and pipes keep it whole.
    address: bool = False
    # Columns a terminal too narrow for the table leaves out, lowest number first; None is never left out.
    drop_order: int | None = None

    def value(self, item: dict) -> object:
        if callable(self.key):
            return self.key(item)
        return lookup(item, self.key)

    @property
    def is_time(self) -> bool:
        if self.time is not None:
            return self.time
        return isinstance(self.key, str) and self.key.endswith("_at")


# Spaces between table columns on a terminal (rich's right padding), and the
# narrowest a wrapping column gets before columns are left out.
_COLUMN_GAP = 2
_MIN_WRAPPED_WIDTH = 12


def _keeps_whole(index: int, column: Column) -> bool:
    """Tell whether a terminal table keeps this column's cells on one line: ids (the first column) and addresses."""
    return index == 0 or column.address


def short_address(address: str) -> str:
    """Shorten a long address to its first 6 and last 4 characters, as 0x1a64…14F1."""
    return f"{address[:6]}…{address[-4:]}" if len(address) > 12 else address


def lookup(item: Any, path: str) -> object:
    """Follow a dotted path through nested dicts; None when any step is missing."""
    value = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def to_jsonable(value: Any) -> Any:
    """Replace each Decimal by an equal int or float, else by its string.

    json and yaml cannot write Decimal. A float is used only when its repr
    reads back as the same number, so no value is ever rounded.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        # A whole number that has too many digits stays text: int() of 1E+999999999 would take
        # minutes and gigabytes, and json refuses ints over 4300 digits anyway.
        if value.as_tuple().exponent >= 0 and value.adjusted() < MAX_INT_DIGITS:
            return int(value)
        as_float = float(value)
        if Decimal(repr(as_float)) == value:
            return as_float
        return str(value)
    if isinstance(value, dict):
        return {key: to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    return value


def dump_json(value: Any, *, indent: int | None = 2) -> str:
    """JSON text of `value`; ensure_ascii keeps control and bidi characters as \\u escapes.

    Every number is written exactly. json cannot write a Decimal, so a Decimal
    that no float equals is first replaced by a unique placeholder string,
    whose quoted form is then swapped for the number's digits.
    """
    exact_numbers: list[str] = []
    marker = secrets.token_hex(8)

    def swap_inexact(item: Any) -> Any:
        if isinstance(item, Decimal):
            plain = to_jsonable(item)
            if isinstance(plain, str) and item.is_finite():
                exact_numbers.append(str(item))
                return f"\x00{marker}:{len(exact_numbers) - 1}"
            return plain
        if isinstance(item, dict):
            return {key: swap_inexact(child) for key, child in item.items()}
        if isinstance(item, (list, tuple)):
            return [swap_inexact(child) for child in item]
        return item

    separators = (",", ": ") if indent is not None else (",", ":")
    text = json.dumps(swap_inexact(value), indent=indent, ensure_ascii=True, separators=separators)
    if exact_numbers:
        # One pass over the text: a replace() per number would be quadratic in a large page.
        placeholder = re.compile(r'"\\u0000' + marker + r':([0-9]+)"')
        text = placeholder.sub(lambda match: exact_numbers[int(match.group(1))], text)
    return text


def dump_yaml(value: Any) -> str:
    """YAML text of `value` in key order; non-ASCII characters are written as escapes."""
    import yaml

    # A width that never folds long strings: piped output must not wrap.
    return yaml.dump(
        to_jsonable(value), Dumper=_yaml_dumper(), sort_keys=False, allow_unicode=False,
        default_flow_style=False, width=2**31 - 1,
    )


@functools.cache
def _yaml_dumper() -> type:
    """Build, once, a SafeDumper that writes multi-line strings as literal blocks.

    PyYAML falls back to a quoted string where a block cannot be exact
    (trailing spaces, control characters).
    """
    import yaml

    class BlockDumper(yaml.SafeDumper):
        pass

    def represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    BlockDumper.add_representer(str, represent_str)
    return BlockDumper


def format_cell(value: object, *, multiline: bool = False) -> str:
    """Show one value in a table cell: escaped, never markup, one line unless `multiline`.

    With `multiline` (the key/value view of one record) a string keeps its
    newlines, less a trailing one; every other control character is escaped.
    """
    if multiline and isinstance(value, str) and "\n" in value.rstrip("\n"):
        lines = value.rstrip("\n").split("\n")
        return "\n".join(escape_control(line).replace("\t", "\\t") for line in lines)
    if value is None:
        return EMPTY_CELL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, Decimal)) for v in value):
            text = ", ".join(str(v) for v in value)
        else:
            text = json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    # A tab would break the alignment of a piped table.
    return escape_control(text).replace("\t", "\\t")


def parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def humanize_age(moment: datetime, now: float) -> str:
    """Say how long ago `moment` was, as "just now", "42s ago", "3m ago", "5h ago" or "12d ago".

    Past 30 days the date itself ("2024-01-31") is clearer; a moment in the
    future (clock skew) reads "in 3m".
    """
    seconds = int(now - moment.timestamp())
    if seconds < 0:
        return "in " + _short_duration(-seconds)
    if seconds < 5:
        return "just now"
    if seconds >= 30 * 86400:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d")
    return _short_duration(seconds) + " ago"


def _short_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Renderer:
    """Write records to stdout in one format: table, json, yaml or jsonl.

    `terminal` is whether stdout is a terminal (asked of the stream when
    None); `width` fixes a terminal table's width (COLUMNS or the
    terminal's width when None); `now` is the clock for "3m ago".
    """

    def __init__(
        self,
        *,
        fmt: str,
        quiet: bool,
        stdout: TextIO,
        stderr: TextIO,
        color: bool,
        terminal: bool | None = None,
        width: int | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}")
        self.fmt = fmt
        self.quiet = quiet
        self.stdout = stdout
        self.stderr = stderr
        self.color = color
        self.terminal = _isatty(stdout) if terminal is None else terminal
        self.width = width
        self.now = now

    # -- public interface ---------------------------------------------------

    def record(self, item: dict, *, fields: list[Column] | None = None, id_key: str | None = "id") -> None:
        """Print one object: a key/value view, an indented JSON object, YAML, or one JSON line."""
        if self.quiet:
            if id_key is not None:
                self._write_id(item, id_key)
            return
        if self.fmt == "json":
            self._write(dump_json(item) + "\n")
        elif self.fmt == "jsonl":
            self._write(dump_json(item, indent=None) + "\n")
        elif self.fmt == "yaml":
            self._write(dump_yaml(item))
        else:
            self._key_value_view(item, fields or _columns_for(item))

    def records(self, items: Iterable[dict], *, columns: list[Column], id_key: str | None = "id") -> None:
        """Print many objects; `items` may be a lazy iterator and is consumed once, item by item.

        Every format but a table writes each item as it arrives. A table needs
        every row to size its columns, so it is written at the end.
        """
        if self.quiet:
            for item in items:
                if id_key is not None:
                    self._write_id(item, id_key)
            return
        if self.fmt == "json":
            self._json_array(items)
        elif self.fmt == "jsonl":
            for item in items:
                self._write(dump_json(item, indent=None) + "\n")
        elif self.fmt == "yaml":
            self._yaml_list(items)
        else:
            self._table(items, columns)

    def text(self, line: str) -> None:
        """Write one raw data line to stdout, whatever the format."""
        self._write(line + "\n")

    # -- writers -------------------------------------------------------------

    def _write(self, text: str) -> None:
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except BrokenPipeError:
            self._stop_on_closed_pipe()

    def _stop_on_closed_pipe(self) -> None:
        """End the command with exit code 0 when the reader closed stdout (`loom jobs list | head -1`).

        Click would turn the BrokenPipeError into exit code 1, and the
        interpreter would report a failed flush at exit. Pointing stdout at
        /dev/null and raising typer.Exit avoids both.
        """
        import typer

        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
        raise typer.Exit(0)

    def _write_id(self, item: dict, id_key: str) -> None:
        value = lookup(item, id_key)
        if value is not None:
            self._write(escape_control(str(value)) + "\n")

    def _json_array(self, items: Iterable[dict]) -> None:
        # Byte for byte what json.dumps(list, indent=2) writes, one item at a time.
        opened = False
        for item in items:
            body = dump_json(item).replace("\n", "\n  ")
            self._write(("[\n  " if not opened else ",\n  ") + body)
            opened = True
        self._write("\n]\n" if opened else "[]\n")

    def _yaml_list(self, items: Iterable[dict]) -> None:
        # Each chunk is a one-item YAML list; written one after another they form one list.
        wrote = False
        for item in items:
            self._write(dump_yaml([item]))
            wrote = True
        if not wrote:
            self._write("[]\n")

    def _cell(self, column: Column, item: dict, *, exact_time: bool = False, multiline: bool = False) -> str:
        """Format one cell; on a terminal a timestamp reads "3m ago", after the exact time when `exact_time`."""
        value = column.value(item)
        if column.is_time and self.terminal:
            moment = parse_timestamp(value)
            if moment is not None:
                age = humanize_age(moment, self.now())
                return f"{value} ({age})" if exact_time else age
        if column.address and self.terminal and not exact_time and isinstance(value, str):
            value = short_address(value)
        return format_cell(value, multiline=multiline)

    def _table(self, items: Iterable[dict], columns: list[Column]) -> None:
        rows = [[self._cell(column, item) for column in columns] for item in items]
        if self.terminal:
            columns, rows = self._fit_columns(columns, rows)
        headers = [column.header for column in columns]
        if self.terminal:
            self._rich_table(headers, rows, no_wrap=[_keeps_whole(index, column) for index, column in enumerate(columns)])
        else:
            self._write("".join(line + "\n" for line in _aligned(headers, rows)))

    def _fit_columns(self, columns: list[Column], rows: list[list[str]]) -> tuple[list[Column], list[list[str]]]:
        """Leave out droppable columns, lowest `drop_order` first, until the table's narrowest layout fits the terminal."""
        from rich.cells import cell_len

        width = self.width or _terminal_width(self.stdout)
        # The narrowest each column can get: whole columns need their full width, the others can wrap.
        needed = []
        for index, column in enumerate(columns):
            natural = max([cell_len(column.header), *(cell_len(row[index]) for row in rows)])
            needed.append(natural if _keeps_whole(index, column) else min(natural, _MIN_WRAPPED_WIDTH))

        keep = list(range(len(columns)))
        droppable = sorted((column.drop_order, index) for index, column in enumerate(columns) if column.drop_order is not None)
        for _, index in droppable:
            if sum(needed[kept] for kept in keep) + _COLUMN_GAP * (len(keep) - 1) <= width:
                break
            keep.remove(index)
        return [columns[index] for index in keep], [[row[index] for index in keep] for row in rows]

    def _key_value_view(self, item: dict, fields: list[Column]) -> None:
        labels = [f"{column.header}:" for column in fields]
        values = [self._cell(column, item, exact_time=True, multiline=True) for column in fields]
        if self.terminal:
            self._rich_grid(labels, values)
            return
        # Continuation lines of a multi-line value start under its first line.
        indent = " " * (max((len(label) for label in labels), default=0) + len(COLUMN_GAP))
        first_lines = [value.split("\n", 1)[0] for value in values]
        out = []
        for line, value in zip(_aligned([], list(zip(labels, first_lines))), values):
            out.append(line + "\n")
            out.extend(indent + rest + "\n" for rest in value.split("\n")[1:])
        self._write("".join(out))

    # -- rich, on a terminal only ---------------------------------------------

    def _console(self) -> Any:
        from rich.console import Console

        # rich assumes 80 columns under TERM=dumb unless it is given both
        # dimensions; the height is unused for printing.
        return Console(
            file=self.stdout,
            force_terminal=True,
            color_system="standard" if self.color else None,
            no_color=not self.color,
            width=self.width or _terminal_width(self.stdout),
            height=25,
            markup=False,
            emoji=False,
            highlight=False,
        )

    def _rich_table(self, headers: list[str], rows: list[list[str]], *, no_wrap: list[bool] | None = None) -> None:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold" if self.color else "")
        for index, header in enumerate(headers):
            # fold keeps every character of a long value, on more lines if needed.
            table.add_column(header, overflow="fold", no_wrap=bool(no_wrap and no_wrap[index]))
        for row in rows:
            # Text cells are never parsed as markup, so "[bold]" shows literally.
            table.add_row(*(Text(cell) for cell in row))
        try:
            self._console().print(table)
            self.stdout.flush()
        except BrokenPipeError:
            self._stop_on_closed_pipe()

    def _rich_grid(self, labels: list[str], values: list[str]) -> None:
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold" if self.color else "", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, value in zip(labels, values):
            grid.add_row(Text(label), Text(value))
        try:
            self._console().print(grid)
            self.stdout.flush()
        except BrokenPipeError:
            self._stop_on_closed_pipe()


def _columns_for(item: dict) -> list[Column]:
    """Build the key/value view of every key, with nested objects flattened to dotted labels."""
    return [
        Column(
            escape_control(".".join(str(part) for part in parts)),
            _path_getter(parts),
            time=str(parts[-1]).endswith("_at"),
        )
        for parts in _flat_paths(item, ())
    ]


def _flat_paths(item: dict, prefix: tuple) -> Iterator[tuple]:
    for key, value in item.items():
        if isinstance(value, dict) and value:
            yield from _flat_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


def _path_getter(parts: tuple) -> Callable[[dict], object]:
    # Keys may contain dots themselves, so the path is kept as parts, not a string.
    def get(item: dict) -> object:
        value: Any = item
        for part in parts:
            value = value.get(part) if isinstance(value, dict) else None
        return value

    return get


def _aligned(headers: list[str], rows: list[list[str]] | list[tuple[str, str]]) -> Iterator[str]:
    """Lines of left-aligned columns, sized by display cells; the last column is not padded."""
    from rich.cells import cell_len

    table = ([headers] if headers else []) + [list(row) for row in rows]
    if not table:
        return
    widths = [max(cell_len(row[index]) for row in table) for index in range(len(table[0]))]
    for row in table:
        cells = [cell + " " * (widths[index] - cell_len(cell)) for index, cell in enumerate(row[:-1])]
        yield COLUMN_GAP.join([*cells, row[-1]])


def _terminal_width(stream: TextIO) -> int:
    """Return COLUMNS when set (the usual override), else the terminal's width, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 80


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
