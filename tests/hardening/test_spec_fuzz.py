"""Property tests of the job-spec loader: any input gives a valid spec or a validation error, never a crash.

Hypothesis feeds the loader arbitrary text, YAML-like text built from the tokens where
YAML surprises live (1.1 booleans, octal and sexagesimal numbers, tags, anchors,
aliases, flow collections, several documents), JSON text whole and cut short, and
structured documents near a real spec, written as YAML and as JSON. The loader may raise
only UsageError or SpecValidationError; a spec it accepts must be writable as JSON and
stay valid when validated again.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from loom_cli.errors import SpecValidationError, UsageError
from loom_cli.output import dump_json
from loom_cli.spec.loader import check_spec, decode_spec, parse_spec
from loom_cli.spec.model import validate_spec
from loom_cli.text import escape_control

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def load(text: str, name: str) -> dict | None:
    """Run the loader on `text` as the file `name`; return the spec, or None after an expected error."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", errors="surrogatepass")
    try:
        spec = check_spec(parse_spec(decode_spec(raw, name), name))
    except SpecValidationError as exc:
        assert exc.problems, "a validation error lists at least one problem"
        assert all(problem.startswith(f"{name}:") for problem in exc.problems), exc.problems
        escape_control(exc.render(), keep_newlines=True)
        event("invalid spec")
        return None
    except UsageError as exc:
        assert exc.message
        escape_control(exc.render(), keep_newlines=True)
        event("unreadable spec")
        return None
    check_accepted(spec)
    event("valid spec")
    return spec


def check_accepted(spec: Any) -> None:
    assert isinstance(spec, dict)
    again, problems = validate_spec(spec)
    assert problems == [], problems
    assert again == spec
    json.loads(dump_json(spec))


# -- text strategies ------------------------------------------------------------------------

YAML_TOKENS = [
    "name", "image", "resources", "cpu", "memory", "reward", "amount", "currency", "timeout", "env", "labels",
    "inputs", "outputs", "uri", "path", "command", "gpu", "count", "model", "description",
    ": ", ":", "\n", "\n  ", "\n    ", "- ", "-", "[", "]", "{", "}", ",", "'", '"', "#", "? ", "|", ">", "\t",
    "yes", "No", "on", "OFF", "y", "~", "null", "true", "False", ".inf", "-.NaN", "0x1F", "0o17", "0755", "0b101",
    "1_000", "1:30", "190:20:30", "1e5", "1.5e+3", "12.50", "-0", "+1", "2024-01-01", "2001-12-14t21:59:43.10-05:00",
    "!!str", "!!int", "!!python/object:os.system", "!custom", "&anchor", "*anchor", "<<", "---", "...", "%YAML 1.2",
    "ubuntu:22.04", "4Gi", "1h", "7d", "ipfs://cid", "/data", "LOOM", "\u202e", "\x00", "\ud7ff", "\U0001f600",
    "9" * 5000, "0x" + "f" * 4000,
]


def yaml_like_text() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=8), max_size=60).map("".join)


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=30)


@st.composite
def json_text(draw: st.DrawFn) -> str:
    text = json.dumps(draw(json_values()), ensure_ascii=draw(st.booleans()))
    if draw(st.booleans()):
        # Cut short, or with a few characters put in somewhere.
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.text(max_size=5)) + text[cut + draw(st.integers(min_value=0, max_value=3)) :]
    return text


@given(text=st.text(max_size=400))
@FUZZ
def test_any_text_as_yaml(text):
    load(text, "job.yaml")


@given(text=st.text(max_size=400))
@FUZZ
def test_any_text_as_json(text):
    load(text, "job.json")


@given(text=yaml_like_text())
@FUZZ
def test_yaml_like_text(text):
    load(text, "job.yaml")


VALID_YAML = """\
name: render frames
image: python:3.12-slim
command: [python, /inputs/score.py]
env:
  MODE: fast
resources:
  cpu: 0.5
  memory: 512Mi
inputs:
  - uri: ipfs://bafybeigdyrzt
    path: /inputs/data
reward:
  amount: "12.50"
timeout: 30m
"""


@st.composite
def spliced_yaml(draw: st.DrawFn) -> str:
    """A valid spec's YAML with a few tokens put in at random places."""
    text = VALID_YAML
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        removed = draw(st.integers(min_value=0, max_value=4))
        text = text[:at] + draw(st.sampled_from(YAML_TOKENS) | st.text(max_size=4)) + text[at + removed :]
    return text


@given(text=spliced_yaml())
@FUZZ
def test_spliced_yaml(text):
    load(text, "job.yaml")


@given(text=json_text())
@FUZZ
def test_json_text(text):
    load(text, "job.json")
    # Without a .json name, text that starts with "{" is tried as JSON, then as YAML.
    load(text, "<stdin>")


# -- structured documents near a real spec ----------------------------------------------------------

WILD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.sampled_from(["", "0", "-1", "1e3", "12.50", "1.5Gi", "512Mi", "1Ki", "0.5", "1h", "7d", "8d", "0s", "LOOM", "loom", "ipfs://x", "https://", "/abs", "rel"]),
    st.text(max_size=30),
    st.lists(st.text(max_size=10), max_size=3),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
)

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)
AMOUNTS = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10**9), places=6)
GOOD_SPECS = st.fixed_dictionaries(
    {
        "name": st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=100),
        "image": st.sampled_from(["ubuntu", "ubuntu:22.04", "python:3.12-slim", "registry.example.com:5000/team/app:v1", "localhost/a/b@sha256:" + "0" * 64]),
        "resources": st.fixed_dictionaries(
            {
                "cpu": st.integers(min_value=1, max_value=256) | st.decimals(min_value=Decimal("0.01"), max_value=64, places=2),
                "memory": st.sampled_from(["512Mi", "4Gi", "1.5G", "100", "1Ti"]) | st.integers(min_value=1, max_value=10**15),
            },
            optional={
                "disk": st.sampled_from(["10Gi", "1T"]),
                "gpu": st.fixed_dictionaries({"count": st.integers(min_value=1, max_value=8), "model": TEXT}),
            },
        ),
        "reward": st.fixed_dictionaries({"amount": AMOUNTS.map(str) | AMOUNTS}, optional={"currency": st.sampled_from(["LOOM", "USDC", "A1"])}),
    },
    optional={
        "description": TEXT,
        "command": st.lists(TEXT, max_size=4),
        "env": st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), TEXT, max_size=3),
        "inputs": st.lists(st.fixed_dictionaries({"uri": st.sampled_from(["ipfs://bafy", "https://example.com/x", "s3://b/k", "ar://tx"]), "path": st.just("/inputs/a")}), max_size=2),
        "outputs": st.lists(st.fixed_dictionaries({"path": st.just("/outputs")}), max_size=2),
        "timeout": st.sampled_from(["1s", "90s", "30m", "1h", "7d", "168h"]),
        "labels": st.dictionaries(TEXT, TEXT, max_size=3),
    },
)


@st.composite
def spec_documents(draw: st.DrawFn) -> dict:
    """A valid spec with up to three fields, nested ones too, removed, replaced by wild values or added."""
    document = draw(GOOD_SPECS)
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        container = document
        nested = [key for key in ("resources", "reward") if isinstance(document.get(key), dict)]
        if nested and draw(st.booleans()):
            container = document[draw(st.sampled_from(nested))]
        keys = sorted(container)
        action = draw(st.sampled_from(["remove", "replace", "add"]))
        if action == "add" or not keys:
            container[draw(st.text(max_size=10))] = draw(WILD)
        elif action == "remove":
            del container[draw(st.sampled_from(keys))]
        else:
            container[draw(st.sampled_from(keys))] = draw(WILD)
    return document


def to_plain(value: Any) -> Any:
    """Turn Decimals into floats or strings so that YAML and JSON writers accept the document."""
    if isinstance(value, Decimal):
        return float(value) if value == Decimal(repr(float(value))) else str(value)
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    return value


@given(document=spec_documents())
@FUZZ
def test_structured_documents(document):
    outcome, problems = validate_spec(document)
    assert (outcome is None) == bool(problems)
    if outcome is not None:
        check_accepted(outcome)

    plain = to_plain(document)
    load(yaml.safe_dump(plain, allow_unicode=True), "job.yaml")
    load(json.dumps(plain), "job.json")
