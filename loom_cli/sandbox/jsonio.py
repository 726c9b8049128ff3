"""JSON in and out of the sandbox: bounded, exact-decimal parsing and a serialiser that keeps decimals exact.

The standard `json` module reads non-integer numbers as binary floats and cannot write a
`Decimal`, so bodies are parsed with `parse_float=Decimal` and written by `dumps` below.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from json.encoder import encode_basestring  # type: ignore[attr-defined]

from loom_cli.sandbox.errors import bad_request

MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_BODY_DEPTH = 256

# The closing quote is optional, so an unterminated string runs to the end of the body, as a JSON
# parser reads it. A required quote made the scan quadratic on a body of many unterminated strings.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_OPENING = frozenset(b"[{")


def exceeds_depth(raw: bytes, limit: int) -> bool:
    """Tell whether the arrays and objects in raw JSON nest deeper than `limit`, without parsing it.

    Strings are blanked first so that brackets inside them do not count.
    """
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", raw))
    depth = 0
    for byte in brackets:
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def parse_body(raw: bytes) -> object:
    """Parse a request body as JSON with exact decimals; raise a 400 ApiError when it is not JSON."""
    if exceeds_depth(raw, MAX_BODY_DEPTH):
        raise bad_request(f"The request body nests arrays and objects more than {MAX_BODY_DEPTH} levels deep.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_request(f"The request body is not valid UTF-8 (byte {exc.start}).") from exc
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise bad_request(f"The request body is not valid JSON: {detail}.") from exc
    if _has_lone_surrogate(value):
        raise bad_request("The request body contains a string with an unpaired UTF-16 surrogate escape.")
    return value


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(key) or _has_lone_surrogate(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(item) for item in value)
    return False


def nesting_depth(value: object) -> int:
    """Return how many arrays and objects are nested in `value`: 0 for a scalar, 1 for `[1]`."""
    if isinstance(value, dict):
        return 1 + max((nesting_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((nesting_depth(item) for item in value), default=0)
    return 0


def dumps(value: object, *, sort_keys: bool = False) -> str:
    """Serialise JSON-like values compactly (no whitespace), writing Decimals exactly.

    With `sort_keys` the result is the canonical form used to compare idempotent requests.
    """
    parts: list[str] = []
    _encode(value, sort_keys, parts)
    return "".join(parts)


def _encode(value: object, sort_keys: bool, parts: list[str]) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, str):
        parts.append(encode_basestring(value))
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        # str() of a finite Decimal is always valid JSON number syntax, exponent included.
        parts.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value} as JSON")
        parts.append(float.__repr__(value))
    elif isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        parts.append("{")
        for index, (key, item) in enumerate(items):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {type(key).__name__}")
            if index:
                parts.append(",")
            parts.append(encode_basestring(key))
            parts.append(":")
            _encode(item, sort_keys, parts)
        parts.append("}")
    elif isinstance(value, (list, tuple)):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode(item, sort_keys, parts)
        parts.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")
