"""Read a job spec from a YAML or JSON file, or stdin, and validate it with positions.

Every problem is reported as `FILE:LINE:COLUMN: field.path: message`, all at
once, so a user fixes a spec in one pass. Lines and columns count from 1;
columns count characters.

YAML is read with PyYAML's composer only: the node tree keeps every node's
position, and this module turns nodes into values itself instead of using
PyYAML's YAML 1.1 constructors. A plain scalar that YAML 1.1 and YAML 1.2
(or JSON) read differently never changes meaning silently:

    yes/no/on/off/y/n (any case)   problem: quote it, or write true/false
    true/false/True/FALSE          booleans (the same in YAML 1.1, 1.2 and JSON)
    1:30, 0755, 0b101, 1_000       problem: quote it, or write a decimal number
    1e5, 09, 0o17                  problem: text in YAML 1.1, a number in YAML 1.2
    .inf, .nan                     problem: no spec field takes them
    2024-01-01 (dates, times)      kept as the text written
    ~, null, empty                 null (the validator rejects null fields)
    12.50                          decimal.Decimal("12.50"), exact

Mapping keys are always the text written (`on:` is the key "on"). Anchors,
aliases and tags other than `!!str` are rejected, and so are duplicate keys,
files over MAX_SPEC_BYTES and nesting deeper than MAX_DEPTH.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any, TextIO

from loom_cli.errors import SpecValidationError, UsageError
from loom_cli.output import MAX_INT_DIGITS

MAX_SPEC_BYTES = 1024 * 1024
# A valid spec nests four levels (resources.gpu.count); the limit leaves room
# for mistakes while keeping PyYAML's recursive composer far from Python's
# recursion limit.
MAX_DEPTH = 32
STDIN_NAME = "<stdin>"
# Hexadecimal integers of up to this many bits have at most MAX_INT_DIGITS decimal digits.
_MAX_INT_BITS = int(MAX_INT_DIGITS * 3.32)

_STR_TAG = "tag:yaml.org,2002:str"
_YAML11_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n", "true", "false"}
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = {"", "~", "null", "Null", "NULL"}
# Plain scalars that YAML 1.2's core schema reads as numbers.
_YAML12_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_YAML12_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
_DECIMAL_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_HEX_INT = re.compile(r"^0x[0-9a-fA-F]+$")
_SURROGATE = re.compile("[\ud800-\udfff]")
# The closing quote is optional, so an unterminated string runs to the end of the text, as a JSON
# parser reads it. A required quote made the scan quadratic on text of many unterminated strings.
_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
# A field path as `validate_spec` writes it: name, .name, [3] or ["any key"].
_PATH_TOKEN = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]|\[("(?:[^"\\]|\\.)*")\]')


@dataclass(frozen=True, order=True)
class Position:
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


START = Position(1, 1)


@dataclass
class ParsedSpec:
    """A spec document read from text: its values, the position of every field, and what went wrong.

    `positions` maps a path of keys and list indexes, such as
    ("inputs", 0, "path"), to where that field starts. `problems` contains
    (position, path, message) for duplicate keys and ambiguous scalars.
    `plain_texts` stores the text of plain scalars that became null, booleans
    or numbers, to suggest quoting when the validator wanted a string there.
    """

    source: str
    data: Any
    positions: dict[tuple, Position] = field(default_factory=dict)
    problems: list[tuple[Position, tuple, str]] = field(default_factory=list)
    plain_texts: dict[tuple, str] = field(default_factory=dict)

    def position_of(self, path: tuple) -> Position:
        """Return where `path` starts, or where its nearest present parent does."""
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), START)


# -- reading ------------------------------------------------------------------


def read_spec_bytes(location: str, stdin: TextIO) -> tuple[bytes, str]:
    """Read a spec file, or stdin for "-", and return its bytes and the name used in messages."""
    if location == "-":
        return _read_stdin(stdin), STDIN_NAME
    path = Path(location)
    if path.is_dir():
        raise UsageError(f"job spec {location} is a directory, not a file", hint="give the path of a .yaml or .json file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except FileNotFoundError as exc:
        raise UsageError(f"job spec {location} not found", hint=f"create one with: loom jobs init {location}") from exc
    except OSError as exc:
        raise UsageError(f"cannot read job spec {location}: {exc.strerror or exc}") from exc
    _check_size(raw, location)
    return raw, location


def _read_stdin(stdin: TextIO) -> bytes:
    buffer = getattr(stdin, "buffer", None)
    try:
        if buffer is not None:
            raw = buffer.read(MAX_SPEC_BYTES + 1)
        else:
            raw = stdin.read(MAX_SPEC_BYTES + 1).encode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the job spec from stdin: {exc.strerror or exc}") from exc
    _check_size(raw, STDIN_NAME)
    return raw


def _check_size(raw: bytes, name: str) -> None:
    if len(raw) > MAX_SPEC_BYTES:
        raise UsageError(
            f"job spec {name} is larger than {MAX_SPEC_BYTES // 1024} KiB",
            hint="a job spec describes the job; pass large data as inputs (ipfs://, https://, s3://, ar://)",
        )


def decode_spec(raw: bytes, name: str) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"job spec {name} is not UTF-8 text (invalid byte at offset {exc.start})") from exc
    if not text.strip():
        raise UsageError(f"job spec {name} is empty", hint="write an example with: loom jobs init")
    return text


# -- parsing ------------------------------------------------------------------


def parse_spec(text: str, name: str) -> ParsedSpec:
    """Parse spec text as JSON (a .json file, or text that starts with "{" and parses as JSON) or YAML."""
    stripped = text.lstrip()
    if name.lower().endswith(".json"):
        return _parse_json(text, name)
    if stripped.startswith("{"):
        try:
            return _parse_json(text, name)
        except UsageError:
            pass  # Not JSON after all: YAML flow style also starts with "{".
    return _parse_yaml(text, name)


def _parse_yaml(text: str, name: str) -> ParsedSpec:
    import yaml

    loader = None
    try:
        loader = _spec_loader_class()(text)
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(name, "YAML", exc) from exc
    except yaml.reader.ReaderError as exc:
        position = _position_at(text, exc.position)
        raise UsageError(
            f"{name}:{position}: invalid YAML: character U+{exc.character:04X} is not allowed; remove it or write it as an escape in double quotes"
        ) from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{name}: invalid YAML: {exc}") from exc
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise UsageError(f"job spec {name} contains no document", hint="write an example with: loom jobs init")

    parsed = ParsedSpec(name, None)
    _check_top_level(root, name)
    parsed.data = _YamlConverter(parsed).convert(root, ())
    return parsed


def _parse_json(text: str, name: str) -> ParsedSpec:
    duplicates: list[str] = []

    def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                duplicates.append(key)
            result[key] = value
        return result

    def reject_constant(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON number")

    def parse_int(digits: str) -> int:
        # int() would refuse it too, with advice meant for Python programmers.
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise ValueError(f"a number has more than {MAX_INT_DIGITS} digits, which no spec field takes")
        return int(digits)

    # json's C parser recurses once per level, and eth-account raises Python's
    # recursion limit far enough for deep input to overflow the C stack, so
    # the depth is checked before parsing.
    if _json_depth_exceeds(text, MAX_DEPTH):
        raise UsageError(f"{name}: invalid job spec: nested more than {MAX_DEPTH} levels deep")
    try:
        data = json.loads(
            text, parse_float=Decimal, parse_int=parse_int, parse_constant=reject_constant, object_pairs_hook=pairs_to_dict
        )
    except json.JSONDecodeError as exc:
        raise UsageError(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except ValueError as exc:
        raise UsageError(f"{name}: invalid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"{name}:1:1: the job spec must be an object of fields (name, image, ...), got {_kind(data)}")

    parsed = ParsedSpec(name, data)
    _record_json_positions(parsed, text)
    if duplicates and not any("duplicate key" in problem[2] for problem in parsed.problems):
        # The position pass could not run; report the keys without positions.
        for key in duplicates:
            parsed.problems.append((START, (), f"duplicate key {key!r}"))
    return parsed


def _record_json_positions(parsed: ParsedSpec, text: str) -> None:
    """Find every field's position by composing the JSON text as YAML, which it nearly always is."""
    import yaml

    loader = None
    try:
        loader = _spec_loader_class()(text)
        root = loader.get_single_node()
    except yaml.YAMLError:
        # NOTE: valid JSON that PyYAML cannot compose (a tab before a value, for
        # one) keeps only the document position, so its problems point at 1:1.
        return
    finally:
        if loader is not None:
            loader.dispose()
    if root is not None:
        _YamlConverter(parsed, positions_only=True).convert(root, ())


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Tell whether arrays and objects in JSON text nest deeper than `limit`; brackets inside strings do not count."""
    depth = 0
    for token in _JSON_STRING_OR_BRACKET.finditer(text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif bracket in ("]", "}"):
            depth -= 1
    return False


def _check_top_level(root: Any, name: str) -> None:
    import yaml

    if not isinstance(root, yaml.MappingNode):
        position = _mark_position(root.start_mark)
        got = "a list" if isinstance(root, yaml.SequenceNode) else f"the text {root.value[:40]!r}"
        raise UsageError(f"{name}:{position}: the job spec must be a mapping of fields (name, image, ...), got {got}")


@cache
def _spec_loader_class() -> type:
    """Build (once) a PyYAML SafeLoader that rejects anchors, aliases, tags and deep nesting."""
    import yaml
    from yaml.composer import ComposerError
    from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

    class SpecLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, AliasEvent):
                raise ComposerError(None, None, f"aliases (*{event.anchor}) are not allowed; repeat the value instead", event.start_mark)
            if event.anchor is not None:
                raise ComposerError(None, None, f"anchors (&{event.anchor}) are not allowed; repeat the value instead", event.start_mark)
            tag = getattr(event, "tag", None)
            is_explicit_string = isinstance(event, ScalarEvent) and tag in ("!", _STR_TAG)
            if tag is not None and not is_explicit_string:
                shown = tag.replace("tag:yaml.org,2002:", "!!")
                raise ComposerError(None, None, f"tags such as {shown} are not allowed; remove the tag", event.start_mark)
            if isinstance(event, CollectionStartEvent):
                self.depth += 1
                if self.depth > MAX_DEPTH:
                    raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            node = super().compose_node(parent, index)
            if isinstance(event, CollectionStartEvent):
                self.depth -= 1
            if is_explicit_string and not node.style:
                # A plain scalar tagged !!str is text, like a quoted one.
                node.style = "'"
            return node

    return SpecLoader


class _YamlConverter:
    """Turn composed YAML nodes into JSON-like values, recording positions and problems."""

    def __init__(self, parsed: ParsedSpec, *, positions_only: bool = False) -> None:
        self.parsed = parsed
        self.positions_only = positions_only

    def convert(self, node: Any, path: tuple) -> Any:
        import yaml

        self.parsed.positions.setdefault(path, _mark_position(node.start_mark))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, index)) for index, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: Any, path: tuple) -> dict:
        import yaml

        result: dict[str, Any] = {}
        first_seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            key_position = _mark_position(key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_position, path, "a key must be text, not a list or mapping")
                continue
            key = key_node.value
            if key in first_seen:
                self._problem(key_position, (*path, key), f"duplicate key {key!r} (first at line {first_seen[key].line}); keep one")
                continue
            first_seen[key] = key_position
            # A field's position is its key's, where the eye looks for it.
            self.parsed.positions[(*path, key)] = key_position
            result[key] = self.convert(value_node, (*path, key))
        return result

    def _scalar(self, node: Any, path: tuple) -> Any:
        text = node.value
        if node.style or self.positions_only:
            return text
        value, problem = _resolve_plain(text, node.tag)
        if problem is not None:
            self._problem(_mark_position(node.start_mark), path, problem)
            return text
        if not isinstance(value, str):
            self.parsed.plain_texts[path] = text
        return value

    def _problem(self, position: Position, path: tuple, message: str) -> None:
        self.parsed.problems.append((position, path, message))


def _resolve_plain(text: str, tag: str) -> tuple[Any, str | None]:
    """Read a plain (unquoted) scalar; return (value, None) or (text, problem) when it is ambiguous."""
    quote_hint = f"quote it ('{text}') if you meant text"
    if text in _BOOLEANS:
        return _BOOLEANS[text], None
    if text.lower() in _YAML11_BOOL_WORDS:
        return text, f"{text} is a boolean in YAML 1.1 but text in YAML 1.2; {quote_hint}, or true or false if you meant a boolean"
    if text in _NULLS:
        return None, None

    if tag == "tag:yaml.org,2002:int":
        return _resolve_int(text, quote_hint)
    if tag == "tag:yaml.org,2002:float":
        return _resolve_float(text, quote_hint)
    if tag == _STR_TAG and (_YAML12_INT.match(text) or _YAML12_FLOAT.match(text)):
        return text, f"{text} is text in YAML 1.1 but a number in YAML 1.2; {quote_hint}, or write a plain decimal number"
    # Dates, times and everything else stay the text written.
    return text, None


def _resolve_int(text: str, quote_hint: str) -> tuple[Any, str | None]:
    # int() refuses decimal text over MAX_INT_DIGITS digits, and json.dumps refuses to write such an int.
    too_long = f"{text[:20]}... is a number of more than {MAX_INT_DIGITS} digits, which no spec field takes"
    if len(text.lstrip("+-")) > MAX_INT_DIGITS:
        return text, too_long
    if "_" in text:
        return text, f"YAML 1.1 reads {text} as the number {text.replace('_', '')}; {quote_hint}, or write it without '_'"
    if ":" in text:
        return text, f"YAML 1.1 reads {text} as a base-60 number ({_sexagesimal(text)}); {quote_hint}"
    if _DECIMAL_INT.match(text):
        return int(text), None
    if _HEX_INT.match(text):
        value = int(text, 16)
        if value.bit_length() > _MAX_INT_BITS:
            return text, too_long
        return value, None
    digits = text.lstrip("+-")
    if digits.startswith("0b"):
        return text, f"YAML 1.1 reads {text} as the binary number {int(text.replace('0b', ''), 2)}; {quote_hint}, or write a decimal number"
    if digits.startswith("0x"):
        return text, f"{text} is not a hexadecimal number in YAML 1.2; {quote_hint}, or write a decimal number"
    return text, f"YAML 1.1 reads {text} as the octal number {int(text, 8)}; {quote_hint}, or write {int(text, 8)} or {int(text, 10)}"


def _resolve_float(text: str, quote_hint: str) -> tuple[Any, str | None]:
    if "_" in text:
        return text, f"YAML 1.1 reads {text} as the number {text.replace('_', '')}; {quote_hint}, or write it without '_'"
    if ":" in text:
        return text, f"YAML 1.1 reads {text} as a base-60 number; {quote_hint}"
    if text.lstrip("+-").lower() in (".inf", ".nan"):
        return text, f"{text} is not a finite number; {quote_hint}"
    try:
        return Decimal(text), None
    except InvalidOperation:
        return text, f"{text} is not a number that loom can read exactly; {quote_hint}"


def _sexagesimal(text: str) -> str:
    sign = -1 if text.startswith("-") else 1
    total = 0
    for part in text.lstrip("+-").split(":"):
        total = total * 60 + int(part)
    return str(sign * total)


def _mark_position(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def _position_at(text: str, index: int) -> Position:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Position(line, column)


def _syntax_error(name: str, language: str, exc: Any) -> UsageError:
    mark = exc.problem_mark or exc.context_mark
    where = f"{name}:{_mark_position(mark)}" if mark is not None else name
    if exc.context == "expected a single document in the stream":
        return UsageError(f"{where}: the file contains more than one YAML document; keep only the job spec")
    problem = exc.problem or "invalid syntax"
    context = f" ({exc.context})" if exc.context else ""
    return UsageError(f"{where}: invalid {language}: {problem}{context}")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


# -- validation -----------------------------------------------------------------


def parse_path(path: str) -> tuple:
    """Split a validator path such as 'inputs[0].path' or 'labels["a b"]' into ("inputs", 0, "path")."""
    parts: list[Any] = []
    index = 0
    while index < len(path):
        match = _PATH_TOKEN.match(path, index)
        if match is None:
            break
        name, number, quoted = match.groups()
        if name is not None:
            parts.append(name)
        elif number is not None:
            parts.append(int(number))
        else:
            parts.append(json.loads(quoted))
        index = match.end()
    return tuple(parts)


def check_spec(parsed: ParsedSpec) -> dict:
    """Validate a parsed spec; return the normalised spec or raise SpecValidationError listing every problem."""
    from loom_cli.spec.model import validate_spec

    problems = list(parsed.problems)
    for path, code_point in _lone_surrogates(parsed.data, ()):
        message = f"contains the lone surrogate U+{code_point:04X}, which is not valid Unicode text; remove it"
        problems.append((parsed.position_of(path), path, message))
    flagged = {path for _, path, _ in problems}
    normalized, spec_problems = validate_spec(parsed.data)
    for problem in spec_problems:
        path = parse_path(problem.path)
        message = problem.message
        # A value already reported as ambiguous YAML would only be reported again,
        # but an unknown field is news.
        if path in flagged and "is not a known field" not in message:
            continue
        plain_text = parsed.plain_texts.get(path)
        if plain_text and ("must be a string" in message or "got null" in message):
            message += f" (it was read from the unquoted {plain_text!r}; quote it to keep the text)"
        problems.append((parsed.position_of(path), path, message))

    if not problems:
        assert normalized is not None
        return normalized
    problems.sort(key=lambda problem: problem[0])
    lines = [_problem_line(parsed.source, position, path, message) for position, path, message in problems]
    count = "1 problem" if len(lines) == 1 else f"{len(lines)} problems"
    raise SpecValidationError(
        f"invalid job spec {parsed.source}: {count}",
        lines,
        hint="see every field and rule with: loom jobs schema",
    )


def _lone_surrogates(value: Any, path: tuple) -> Iterator[tuple[tuple, int]]:
    """Yield (path, code point) for strings, keys included, that hold a lone surrogate such as JSON's "\\ud800"."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found:
            yield path, ord(found.group())
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _lone_surrogates(key, (*path, key))
            yield from _lone_surrogates(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _lone_surrogates(item, (*path, index))


def _problem_line(source: str, position: Position, path: tuple, message: str) -> str:
    field_path = format_path(path)
    where = f"{source}:{position}"
    return f"{where}: {field_path}: {message}" if field_path else f"{where}: {message}"


def format_path(path: tuple) -> str:
    """Write ("inputs", 0, "path") as 'inputs[0].path', the form validation messages use."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


def load_spec(location: str, *, stdin: TextIO) -> dict:
    """Read, parse and validate the spec at `location` ("-" for stdin); return it normalised.

    Raise UsageError for a file that cannot be read or parsed, and
    SpecValidationError listing every problem with its position.
    """
    raw, name = read_spec_bytes(location, stdin)
    text = decode_spec(raw, name)
    return check_spec(parse_spec(text, name))
