"""The job spec's rules, shared by `loom jobs validate/create` and the sandbox's `POST /jobs`.

`validate_spec` takes JSON-like values (what `json.loads(..., parse_float=Decimal)` or a YAML
loader returns) and reports every broken rule with the path of the field at fault, so a user
fixes a spec in one pass. `spec_json_schema` states the same rules as a JSON Schema for editors
and for the sandbox's OpenAPI document; the few rules a schema cannot express (the timeout's
range) are checked only by `validate_spec`.

Pure Python on purpose: the CLI imports this module on its fast path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_TIMEOUT = "1h"
DEFAULT_CURRENCY = "LOOM"

NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 2000
IMAGE_MAX_LENGTH = 255
AMOUNT_MAX_PLACES = 18
# A 256-bit unsigned integer, the largest on-chain token amount, has 78 digits. The bound also
# keeps a number such as 1e999999999 from expanding into a billion-digit string.
AMOUNT_MAX_INTEGER_DIGITS = 78
TIMEOUT_MIN_SECONDS = 1
TIMEOUT_MAX_SECONDS = 7 * 24 * 3600
INPUT_URI_SCHEMES = ("ipfs", "https", "s3", "ar")

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Regular expressions below are written so that both Python's `re` and ECMA-262 (the dialect of
# JSON Schema `pattern`) read them the same way.
_BIDI_CLASS = "\\u202a-\\u202e\\u2066-\\u2069"
_NAME_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f" + _BIDI_CLASS + "]*$"
_DESCRIPTION_PATTERN = "^[^\\u0000-\\u0008\\u000b-\\u001f\\u007f-\\u009f]*$"

# An image reference: [registry/]repository[:tag][@sha256:<digest>]. The first slash-separated
# part is a registry only when it contains "." or ":" or is "localhost", which is how Docker
# tells `registry.example.com/app` from `library/app`.
_HOST_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_PORT = ":[0-9]{1,5}"
_REGISTRY = (
    f"(?:localhost(?:{_PORT})?"
    f"|{_HOST_LABEL}(?:\\.{_HOST_LABEL})+(?:{_PORT})?"
    f"|{_HOST_LABEL}{_PORT})"
)
_REPO_COMPONENT = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = f"{_REPO_COMPONENT}(?:/{_REPO_COMPONENT})*"
_TAG = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = "sha256:[0-9a-f]{64}"
_IMAGE_PATTERN = f"^(?:{_REGISTRY}/)?{_REPOSITORY}(?::{_TAG})?(?:@{_DIGEST})?$"

_ENV_KEY_PATTERN = "^[A-Z_][A-Z0-9_]*$"
_SIZE_PATTERN = "^[1-9][0-9]*(\\.[0-9]+)?(K|M|G|T|Ki|Mi|Gi|Ti)?$"
_AMOUNT_TEXT_PATTERN = "^[0-9]+(\\.[0-9]+)?$"
_CURRENCY_PATTERN = "^[A-Z][A-Z0-9]{1,9}$"
_DURATION_PATTERN = "^[1-9][0-9]*(s|m|h|d)$"
_URI_PATTERN = "^(" + "|".join(INPUT_URI_SCHEMES) + ")://[^\\s/?#][^\\s]*$"

_IMAGE_RE = re.compile(_IMAGE_PATTERN)
_ENV_KEY_RE = re.compile(_ENV_KEY_PATTERN)
_SIZE_RE = re.compile(_SIZE_PATTERN)
_AMOUNT_TEXT_RE = re.compile(_AMOUNT_TEXT_PATTERN)
_CURRENCY_RE = re.compile(_CURRENCY_PATTERN)
_DURATION_RE = re.compile(_DURATION_PATTERN)
_URI_RE = re.compile(_URI_PATTERN)
_IDENTIFIER_RE = re.compile("^[A-Za-z_][A-Za-z0-9_]*$")
_BIDI_CODEPOINTS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))


@dataclass(frozen=True)
class SpecProblem:
    """One broken rule: the field's path ("inputs[0].path", "" for the whole document) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def validate_spec(data: object) -> tuple[dict | None, list[SpecProblem]]:
    """Validate a job spec given as JSON-like values and normalise it.

    Numbers may be int, decimal.Decimal or float; booleans are never numbers. Return
    `(normalized_spec, [])` when the spec is valid, with `timeout` and `reward.currency`
    defaulted and `reward.amount` as a canonical decimal string ("12.50" becomes "12.5"), or
    `(None, problems)` listing every problem in document order. A missing required field is
    listed right after the other fields of the object that lacks it.
    """
    checker = _Checker()
    normalized = checker.object(data, "", _SPEC_FIELDS, required=("name", "image", "resources", "reward"))
    if checker.problems:
        return None, checker.problems
    assert normalized is not None
    normalized.setdefault("timeout", DEFAULT_TIMEOUT)
    return normalized, []


def parse_duration(text: str) -> int:
    """Return the seconds in a duration such as "90s", "15m", "2h" or "7d"; raise ValueError otherwise."""
    if not isinstance(text, str) or len(text) > 12 or not _DURATION_RE.match(text):
        raise ValueError(f"invalid duration {text!r}")
    return int(text[:-1]) * _DURATION_UNITS[text[-1]]


def canonical_amount(value: object) -> str:
    """Return `value` (a decimal string or number) as a canonical decimal string; raise ValueError otherwise.

    Leading zeros and trailing fractional zeros are dropped and no exponent is used, so
    "012.50", 12.5 and Decimal("1.25E+1") all give "12.5". The exact value is kept: no rounding.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, str):
        if not _AMOUNT_TEXT_RE.match(value):
            raise ValueError(f"invalid amount {value!r}")
        number = Decimal(value)
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("an amount must be finite")
        # repr() gives the shortest text that reads back as this float, which is what a
        # YAML or JSON author typed in nearly every case.
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("an amount must be finite")
        number = value
    else:
        raise ValueError(f"invalid amount {value!r}")

    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) + exponent > AMOUNT_MAX_INTEGER_DIGITS:
        raise ValueError(f"an amount may have at most {AMOUNT_MAX_INTEGER_DIGITS} digits before the decimal point")
    # format(..., "f") writes the exact value without an exponent; it never rounds.
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    text = text.lstrip("0") or "0"
    if text.startswith("."):
        text = "0" + text
    if sign and text != "0":
        text = "-" + text
    return text


# --------------------------------------------------------------------------------------------
# Field rules. Each check function receives (checker, value, path) and returns the normalised
# value, or None after recording at least one problem.


def _show(value: object, limit: int = 60) -> str:
    """Render a value for a message: repr() escapes control and bidi characters."""
    if isinstance(value, Decimal):
        text = str(value)
    elif isinstance(value, bool) or value is None:
        # Spelled as the user wrote them in YAML or JSON, not as Python's True and None.
        text = json.dumps(value)
    else:
        text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _join(path: str, key: object) -> str:
    if isinstance(key, int) and not isinstance(key, bool):
        return f"{path}[{key}]"
    text = str(key)
    if _IDENTIFIER_RE.match(text):
        return f"{path}.{text}" if path else text
    return f"{path}[{json.dumps(text, ensure_ascii=False)}]"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _is_finite(value: int | float | Decimal) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def _integral(value: object) -> int | None:
    """Return `value` as an int when it is a whole number (2, 2.0, Decimal("2.0")); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Decimal) and value.is_finite():
        sign, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        # Bounded so that Decimal("1E+999999") cannot become a gigantic int.
        if len(digits) + exponent <= 40 and value == value.to_integral_value():
            return int(value)
    return None


class _Checker:
    def __init__(self) -> None:
        self.problems: list[SpecProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(SpecProblem(path, message))

    def object(
        self,
        value: object,
        path: str,
        fields: dict[str, Callable[[_Checker, Any, str], Any]],
        *,
        required: tuple[str, ...] = (),
    ) -> dict | None:
        if not isinstance(value, dict):
            where = "the job spec must" if not path else "must"
            self.problem(path, f"{where} be an object, got {_type_name(value)}")
            return None
        before = len(self.problems)
        result: dict[str, Any] = {}
        for key, item in value.items():
            field_path = _join(path, key)
            check = fields.get(key) if isinstance(key, str) else None
            if check is None:
                known = ", ".join(fields)
                self.problem(field_path, f"is not a known field{_did_you_mean(key, fields)} (known fields: {known})")
                continue
            if item is None:
                fix = "give it a value" if key in required else "leave the field out instead"
                self.problem(field_path, f"must not be null; {fix}")
                continue
            result[key] = check(self, item, field_path)
        for key in required:
            if key not in value:
                self.problem(_join(path, key), "is required")
        return result if len(self.problems) == before else None

    def string(self, value: object, path: str) -> str | None:
        if not isinstance(value, str):
            self.problem(path, f"must be a string, got {_type_name(value)}")
            return None
        return value

    def string_map(self, value: object, path: str, key_rule: Callable[[str], str | None] | None = None) -> dict | None:
        if not isinstance(value, dict):
            self.problem(path, f"must be an object of strings, got {_type_name(value)}")
            return None
        before = len(self.problems)
        result = {}
        for key, item in value.items():
            item_path = _join(path, key)
            if not isinstance(key, str):
                self.problem(item_path, f"key must be a string, got {_type_name(key)} {_show(key)}")
                continue
            if key_rule is not None:
                message = key_rule(key)
                if message:
                    self.problem(item_path, message)
            if not isinstance(item, str):
                self.problem(item_path, f"must be a string, got {_type_name(item)}")
                continue
            result[key] = item
        return result if len(self.problems) == before else None

    def items(self, value: object, path: str, check: Callable[[_Checker, Any, str], Any]) -> list | None:
        if not isinstance(value, list):
            self.problem(path, f"must be a list, got {_type_name(value)}")
            return None
        before = len(self.problems)
        result = [check(self, item, _join(path, index)) for index, item in enumerate(value)]
        return result if len(self.problems) == before else None


def _check_name(checker: _Checker, value: object, path: str) -> str | None:
    text = checker.string(value, path)
    if text is None:
        return None
    if not 1 <= len(text) <= NAME_MAX_LENGTH:
        checker.problem(path, f"must be 1-{NAME_MAX_LENGTH} characters, got {len(text)}")
        return None
    bad = next((ch for ch in text if _is_control(ch) or ord(ch) in _BIDI_CODEPOINTS), None)
    if bad is not None:
        checker.problem(path, f"must not contain control or bidi characters, got U+{ord(bad):04X} in {_show(text)}")
        return None
    return text


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F


def _check_description(checker: _Checker, value: object, path: str) -> str | None:
    text = checker.string(value, path)
    if text is None:
        return None
    if len(text) > DESCRIPTION_MAX_LENGTH:
        checker.problem(path, f"must be at most {DESCRIPTION_MAX_LENGTH} characters, got {len(text)}")
        return None
    bad = next((ch for ch in text if _is_control(ch) and ch not in "\n\t"), None)
    if bad is not None:
        checker.problem(path, f"must not contain control characters other than newline and tab, got U+{ord(bad):04X}")
        return None
    return text


def _check_image(checker: _Checker, value: object, path: str) -> str | None:
    text = checker.string(value, path)
    if text is None:
        return None
    if not text:
        checker.problem(path, "must not be empty; give an image such as 'ubuntu:22.04'")
        return None
    if len(text) > IMAGE_MAX_LENGTH:
        checker.problem(path, f"must be at most {IMAGE_MAX_LENGTH} characters, got {len(text)}")
        return None
    if any(ch.isspace() or _is_control(ch) for ch in text):
        checker.problem(path, f"must not contain whitespace or control characters, got {_show(text)}")
        return None
    if _IMAGE_RE.match(text):
        return text

    name, _, digest = text.partition("@")
    if digest and not re.fullmatch(_DIGEST, digest):
        checker.problem(path, f"digest must be 'sha256:' followed by 64 lowercase hex digits, got {_show(digest)}")
    elif _IMAGE_RE.match(_lowercase_repository(name)):
        checker.problem(path, f"repository must be lowercase, got {_show(text)}")
    else:
        checker.problem(
            path,
            f"must be an image reference such as 'ubuntu:22.04' or 'registry.example.com:5000/team/app:v1', got {_show(text)}",
        )
    return None


def _lowercase_repository(name: str) -> str:
    """Lowercase the repository part of `name`, leaving a registry and a tag as they are."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, remainder = first + "/", rest
    else:
        registry, remainder = "", name
    components = remainder.split("/")
    last, colon, tag = components[-1].partition(":")
    components[-1] = last.lower() + colon + tag
    lowered = [part.lower() for part in components[:-1]] + [components[-1]]
    return registry + "/".join(lowered)


def _check_command(checker: _Checker, value: object, path: str) -> list | None:
    return checker.items(value, path, lambda c, item, p: c.string(item, p))


def _env_key_rule(key: str) -> str | None:
    if _ENV_KEY_RE.match(key):
        return None
    return f"is not a valid variable name; use capitals, digits and '_' (like MY_VAR), not starting with a digit, got {_show(key)}"


def _check_env(checker: _Checker, value: object, path: str) -> dict | None:
    return checker.string_map(value, path, _env_key_rule)


def _check_labels(checker: _Checker, value: object, path: str) -> dict | None:
    return checker.string_map(value, path)


def _check_cpu(checker: _Checker, value: object, path: str) -> object:
    if not _is_number(value):
        checker.problem(path, f"must be a number of CPUs such as 2 or 0.5, got {_type_name(value)} {_show(value)}")
        return None
    if not _is_finite(value) or not value > 0:  # type: ignore[operator]
        checker.problem(path, f"must be a number greater than 0, got {_show(value)}")
        return None
    return value


def _check_size(checker: _Checker, value: object, path: str) -> object:
    if isinstance(value, str):
        if len(value) <= 64 and _SIZE_RE.match(value):
            return value
        checker.problem(path, f"must be a size such as '512Mi', '2G' or a number of bytes, got {_show(value)}")
        return None
    whole = _integral(value)
    if whole is None:
        checker.problem(path, f"must be a size string such as '512Mi' or a whole number of bytes, got {_type_name(value)} {_show(value)}")
        return None
    if whole < 1:
        checker.problem(path, f"must be at least 1 byte, got {whole}")
        return None
    return whole


def _check_gpu_count(checker: _Checker, value: object, path: str) -> int | None:
    whole = _integral(value)
    if whole is None or whole < 1:
        checker.problem(path, f"must be a whole number of at least 1, got {_type_name(value)} {_show(value)}")
        return None
    return whole


def _check_gpu(checker: _Checker, value: object, path: str) -> dict | None:
    fields = {"count": _check_gpu_count, "model": _check_gpu_model}
    return checker.object(value, path, fields, required=("count", "model"))


def _check_gpu_model(checker: _Checker, value: object, path: str) -> str | None:
    text = checker.string(value, path)
    if text is not None and not text:
        checker.problem(path, "must not be empty; name the GPU model, such as 'nvidia-a100'")
        return None
    return text


def _check_resources(checker: _Checker, value: object, path: str) -> dict | None:
    fields = {"cpu": _check_cpu, "memory": _check_size, "disk": _check_size, "gpu": _check_gpu}
    return checker.object(value, path, fields, required=("cpu", "memory"))


def _check_absolute_path(checker: _Checker, value: object, path: str) -> str | None:
    text = checker.string(value, path)
    if text is None:
        return None
    if not text.startswith("/"):
        checker.problem(path, f"must be an absolute path starting with '/', got {_show(text)}")
        return None
    return text


def _check_uri(checker: _Checker, value: object, path: str) -> str | None:
    text = checker.string(value, path)
    if text is None:
        return None
    if not _URI_RE.match(text):
        schemes = ", ".join(f"{scheme}://" for scheme in INPUT_URI_SCHEMES)
        checker.problem(path, f"must be a URI starting with {schemes}, got {_show(text)}")
        return None
    return text


def _check_input(checker: _Checker, value: object, path: str) -> dict | None:
    fields = {"uri": _check_uri, "path": _check_absolute_path}
    return checker.object(value, path, fields, required=("uri", "path"))


def _check_inputs(checker: _Checker, value: object, path: str) -> list | None:
    return checker.items(value, path, _check_input)


def _check_output(checker: _Checker, value: object, path: str) -> dict | None:
    return checker.object(value, path, {"path": _check_absolute_path}, required=("path",))


def _check_outputs(checker: _Checker, value: object, path: str) -> list | None:
    return checker.items(value, path, _check_output)


def _check_amount(checker: _Checker, value: object, path: str) -> str | None:
    if isinstance(value, str) and not _AMOUNT_TEXT_RE.match(value):
        checker.problem(path, f"must be a decimal such as '12.5' (digits, optionally a '.' and more digits), got {_show(value)}")
        return None
    if not isinstance(value, str) and not _is_number(value):
        checker.problem(path, f"must be a decimal string such as '12.5' or a number, got {_type_name(value)} {_show(value)}")
        return None
    try:
        text = canonical_amount(value)
    except (ValueError, InvalidOperation) as exc:
        checker.problem(path, f"{exc}, got {_show(value)}")
        return None
    if text.startswith("-") or text == "0":
        checker.problem(path, f"must be greater than 0, got {_show(value)}")
        return None
    places = len(text.partition(".")[2])
    if places > AMOUNT_MAX_PLACES:
        checker.problem(path, f"must have at most {AMOUNT_MAX_PLACES} decimal places, got {places}")
        return None
    return text


def _check_currency(checker: _Checker, value: object, path: str) -> str | None:
    text = checker.string(value, path)
    if text is not None and not _CURRENCY_RE.match(text):
        checker.problem(path, f"must be 2-10 capital letters or digits starting with a letter, such as 'LOOM', got {_show(text)}")
        return None
    return text


def _check_reward(checker: _Checker, value: object, path: str) -> dict | None:
    fields = {"amount": _check_amount, "currency": _check_currency}
    result = checker.object(value, path, fields, required=("amount",))
    if result is not None:
        result.setdefault("currency", DEFAULT_CURRENCY)
    return result


def _check_timeout(checker: _Checker, value: object, path: str) -> str | None:
    text = checker.string(value, path)
    if text is None:
        return None
    if not _DURATION_RE.match(text):
        checker.problem(path, f"must be a duration such as '90s', '30m', '2h' or '1d', got {_show(text)}")
        return None
    # Twelve digits are far beyond 7d in any unit; the guard keeps int() off huge strings.
    if len(text) > 12 or not TIMEOUT_MIN_SECONDS <= parse_duration(text) <= TIMEOUT_MAX_SECONDS:
        checker.problem(path, f"must be between 1s and 7d, got {_show(text)}")
        return None
    return text


_SPEC_FIELDS: dict[str, Callable[[_Checker, Any, str], Any]] = {
    "name": _check_name,
    "description": _check_description,
    "image": _check_image,
    "command": _check_command,
    "env": _check_env,
    "resources": _check_resources,
    "inputs": _check_inputs,
    "outputs": _check_outputs,
    "reward": _check_reward,
    "timeout": _check_timeout,
    "labels": _check_labels,
}


# --------------------------------------------------------------------------------------------
# JSON Schema


def spec_json_schema() -> dict:
    """Return the job spec as a JSON Schema (draft 2020-12) that rejects unknown fields.

    The schema cannot express the timeout's 1s-7d range, and it checks the reward amount's
    text form only; `validate_spec` checks both.
    """
    size = {
        "description": "A size such as '512Mi' or '2G', or a whole number of bytes.",
        "oneOf": [
            {"type": "string", "pattern": _SIZE_PATTERN, "maxLength": 64},
            {"type": "integer", "minimum": 1},
        ],
    }
    absolute_path = {"type": "string", "pattern": "^/", "description": "An absolute path inside the container."}
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    # At most 18 decimal places once trailing zeros are dropped, and not zero.
    amount_text = f"^(?![0.]*$)[0-9]+(\\.[0-9]{{1,{AMOUNT_MAX_PLACES}}}0*)?$"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://the-loom.io/schemas/job-spec.json",
        "title": "Loom job spec",
        "description": "A job for The Loom marketplace: what to run, with which resources, for which reward.",
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "image", "resources", "reward"],
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": NAME_MAX_LENGTH,
                "pattern": _NAME_PATTERN,
                "description": "Short name shown in listings; no control or bidi characters.",
            },
            "description": {
                "type": "string",
                "maxLength": DESCRIPTION_MAX_LENGTH,
                "pattern": _DESCRIPTION_PATTERN,
                "description": "Longer text; newlines and tabs allowed, no other control characters.",
            },
            "image": {
                "type": "string",
                "minLength": 1,
                "maxLength": IMAGE_MAX_LENGTH,
                "pattern": _IMAGE_PATTERN,
                "description": "Container image: [registry/]repository[:tag][@sha256:<64 hex>], repository lowercase.",
                "examples": ["ubuntu:22.04", "ghcr.io/acme/render:2.1@sha256:" + "0" * 64],
            },
            "command": {"type": "array", "items": {"type": "string"}, "description": "Command and arguments."},
            "env": {
                **string_map,
                "propertyNames": {"pattern": _ENV_KEY_PATTERN},
                "description": "Environment variables for the container.",
            },
            "resources": {
                "type": "object",
                "additionalProperties": False,
                "required": ["cpu", "memory"],
                "properties": {
                    "cpu": {"type": "number", "exclusiveMinimum": 0, "description": "CPUs, such as 2 or 0.5."},
                    "memory": size,
                    "disk": size,
                    "gpu": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["count", "model"],
                        "properties": {
                            "count": {"type": "integer", "minimum": 1},
                            "model": {"type": "string", "minLength": 1},
                        },
                    },
                },
            },
            "inputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["uri", "path"],
                    "properties": {
                        "uri": {"type": "string", "pattern": _URI_PATTERN, "description": "ipfs://, https://, s3:// or ar:// URI."},
                        "path": absolute_path,
                    },
                },
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["path"],
                    "properties": {"path": absolute_path},
                },
            },
            "reward": {
                "type": "object",
                "additionalProperties": False,
                "required": ["amount"],
                "properties": {
                    "amount": {
                        "description": "Amount greater than 0 with at most 18 decimal places, as a string ('12.5') or a number.",
                        "oneOf": [
                            {"type": "string", "pattern": amount_text},
                            {"type": "number", "exclusiveMinimum": 0},
                        ],
                    },
                    "currency": {"type": "string", "pattern": _CURRENCY_PATTERN, "default": DEFAULT_CURRENCY},
                },
            },
            "timeout": {
                "type": "string",
                "pattern": _DURATION_PATTERN,
                "default": DEFAULT_TIMEOUT,
                "description": "Maximum run time, from 1s to 7d, such as '90s', '30m', '2h' or '1d'.",
            },
            "labels": {**string_map, "description": "Free-form key/value labels."},
        },
    }


def _did_you_mean(key: object, names: Iterable[str]) -> str:
    """Return "; did you mean 'X'?" for the known name closest to a misspelt `key`, or ""."""
    if not isinstance(key, str):
        return ""
    import difflib

    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""
