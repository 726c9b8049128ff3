"""The job spec loader: positions, YAML 1.1 surprises, limits, JSON and stdin."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from loom_cli.errors import SpecValidationError, UsageError
from loom_cli.spec.loader import MAX_DEPTH, MAX_SPEC_BYTES, format_path, load_spec, parse_path

VALID = """\
name: render frames
image: python:3.12-slim
resources:
  cpu: 0.5
  memory: 512Mi
reward:
  amount: "12.50"
"""


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def problems_of(path: str) -> list[str]:
    with pytest.raises(SpecValidationError) as caught:
        load_spec(path, stdin=io.StringIO())
    return caught.value.problems


def usage_error(path: str, stdin: io.StringIO | None = None) -> str:
    with pytest.raises(UsageError) as caught:
        load_spec(path, stdin=stdin or io.StringIO())
    assert not isinstance(caught.value, SpecValidationError)
    return caught.value.message


def spec_with(tmp_path: Path, extra: str) -> str:
    return write(tmp_path, VALID + extra)


def test_valid_spec_is_normalised(tmp_path):
    spec = load_spec(write(tmp_path, VALID), stdin=io.StringIO())
    assert spec == {
        "name": "render frames",
        "image": "python:3.12-slim",
        "resources": {"cpu": Decimal("0.5"), "memory": "512Mi"},
        "reward": {"amount": "12.5", "currency": "LOOM"},
        "timeout": "1h",
    }


def test_every_problem_has_file_line_column(tmp_path):
    path = write(
        tmp_path,
        """\
name: ""
image: Ubuntu
resources:
  cpu: 0
reward:
  amount: "1.5"
  colour: red
""",
    )
    assert problems_of(path) == [
        f"{path}:1:1: name: must be 1-100 characters, got 0",
        f"{path}:2:1: image: repository must be lowercase, got 'Ubuntu'",
        f"{path}:3:1: resources.memory: is required",
        f"{path}:4:3: resources.cpu: must be a number greater than 0, got 0",
        f"{path}:7:3: reward.colour: is not a known field (known fields: amount, currency)",
    ]


def test_missing_top_level_field_points_at_document_start(tmp_path):
    path = write(tmp_path, "\n\nname: x\nimage: ubuntu\nresources: {cpu: 1, memory: 1Gi}\n")
    assert problems_of(path) == [f"{path}:3:1: reward: is required"]


def test_list_item_positions(tmp_path):
    path = spec_with(tmp_path, "inputs:\n  - uri: ipfs://abc\n    path: /in\n  - uri: ftp://x\n    path: relative\n")
    assert problems_of(path) == [
        f"{path}:11:5: inputs[1].uri: must be a URI starting with ipfs://, https://, s3://, ar://, got 'ftp://x'",
        f"{path}:12:5: inputs[1].path: must be an absolute path starting with '/', got 'relative'",
    ]


def test_error_message_names_count_and_hint(tmp_path):
    path = write(tmp_path, "name: x\n")
    with pytest.raises(SpecValidationError) as caught:
        load_spec(path, stdin=io.StringIO())
    assert caught.value.message == f"invalid job spec {path}: 3 problems"
    assert caught.value.hint == "see every field and rule with: loom jobs schema"
    assert caught.value.exit_code == 2


def test_duplicate_keys_are_problems(tmp_path):
    path = spec_with(tmp_path, "labels:\n  team: a\n  team: b\nname: again\n")
    assert problems_of(path) == [
        f"{path}:10:3: labels.team: duplicate key 'team' (first at line 9); keep one",
        f"{path}:11:1: name: duplicate key 'name' (first at line 1); keep one",
    ]


@pytest.mark.parametrize("word", ["yes", "No", "NO", "on", "OFF", "y", "n", "Y", "tRuE", "yEs"])
def test_yaml11_booleans_are_problems(tmp_path, word):
    path = spec_with(tmp_path, f"labels:\n  flag: {word}\n")
    [problem] = problems_of(path)
    assert problem == (
        f"{path}:9:9: labels.flag: {word} is a boolean in YAML 1.1 but text in YAML 1.2; "
        f"quote it ('{word}') if you meant text, or true or false if you meant a boolean"
    )


def test_currency_no_is_not_read_as_false(tmp_path):
    path = write(tmp_path, VALID.replace('amount: "12.50"', 'amount: "12.50"\n  currency: NO'))
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:8:13: reward.currency: NO is a boolean in YAML 1.1")


def test_quoted_yaml11_words_are_text(tmp_path):
    path = write(tmp_path, VALID.replace('amount: "12.50"', 'amount: "12.50"\n  currency: "NO"') + "labels:\n  flag: 'yes'\n")
    spec = load_spec(path, stdin=io.StringIO())
    assert spec["reward"]["currency"] == "NO"
    assert spec["labels"] == {"flag": "yes"}


def test_canonical_booleans_stay_booleans(tmp_path):
    path = spec_with(tmp_path, "labels:\n  flag: true\n")
    [problem] = problems_of(path)
    assert problem == (
        f"{path}:9:3: labels.flag: must be a string, got a boolean "
        "(it was read from the unquoted 'true'; quote it to keep the text)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:30", "YAML 1.1 reads 1:30 as a base-60 number (90); quote it ('1:30') if you meant text"),
        ("0755", "YAML 1.1 reads 0755 as the octal number 493; quote it ('0755') if you meant text, or write 493 or 755"),
        ("0b101", "YAML 1.1 reads 0b101 as the binary number 5; quote it ('0b101') if you meant text, or write a decimal number"),
        ("1_000", "YAML 1.1 reads 1_000 as the number 1000; quote it ('1_000') if you meant text, or write it without '_'"),
        ("1e5", "1e5 is text in YAML 1.1 but a number in YAML 1.2; quote it ('1e5') if you meant text, or write a plain decimal number"),
        ("09", "09 is text in YAML 1.1 but a number in YAML 1.2; quote it ('09') if you meant text, or write a plain decimal number"),
        ("0o17", "0o17 is text in YAML 1.1 but a number in YAML 1.2; quote it ('0o17') if you meant text, or write a plain decimal number"),
        (".inf", ".inf is not a finite number; quote it ('.inf') if you meant text"),
        ("-.inf", "-.inf is not a finite number; quote it ('-.inf') if you meant text"),
        (".nan", ".nan is not a finite number; quote it ('.nan') if you meant text"),
        ("1:30.5", "YAML 1.1 reads 1:30.5 as a base-60 number; quote it ('1:30.5') if you meant text"),
        ("1_0.5", "YAML 1.1 reads 1_0.5 as the number 10.5; quote it ('1_0.5') if you meant text, or write it without '_'"),
    ],
)
def test_yaml11_numbers_are_problems(tmp_path, text, expected):
    path = spec_with(tmp_path, f"labels:\n  value: {text}\n")
    assert problems_of(path) == [f"{path}:9:10: labels.value: {expected}"]


def test_sexagesimal_timeout_is_a_problem(tmp_path):
    path = spec_with(tmp_path, "timeout: 1:30\n")
    assert problems_of(path) == [
        f"{path}:8:10: timeout: YAML 1.1 reads 1:30 as a base-60 number (90); quote it ('1:30') if you meant text"
    ]


def test_dates_keep_their_text(tmp_path):
    path = spec_with(tmp_path, "labels:\n  month: 2024-03-01\n  at: 2024-03-01T10:00:00Z\n")
    spec = load_spec(path, stdin=io.StringIO())
    assert spec["labels"] == {"month": "2024-03-01", "at": "2024-03-01T10:00:00Z"}


def test_version_number_suggests_quoting(tmp_path):
    path = spec_with(tmp_path, "labels:\n  python: 3.10\n")
    assert problems_of(path) == [
        f"{path}:9:3: labels.python: must be a string, got a number "
        "(it was read from the unquoted '3.10'; quote it to keep the text)"
    ]


@pytest.mark.parametrize("text", ["~", "null", "NULL", ""])
def test_nulls_are_rejected_by_the_validator(tmp_path, text):
    path = spec_with(tmp_path, f"description: {text}\n")
    assert problems_of(path) == [f"{path}:8:1: description: must not be null; leave the field out instead"]


def test_tilde_in_a_string_map_suggests_quoting(tmp_path):
    path = spec_with(tmp_path, "env:\n  HOME_DIR: ~\n")
    assert problems_of(path) == [
        f"{path}:9:3: env.HOME_DIR: must be a string, got null "
        "(it was read from the unquoted '~'; quote it to keep the text)"
    ]


def test_numbers_are_exact(tmp_path):
    path = write(tmp_path, VALID.replace('"12.50"', "0.100000000000000001").replace("cpu: 0.5", "cpu: 2"))
    spec = load_spec(path, stdin=io.StringIO())
    assert spec["reward"]["amount"] == "0.100000000000000001"
    assert spec["resources"]["cpu"] == 2
    assert isinstance(spec["resources"]["cpu"], int)


def test_plain_hex_is_an_integer(tmp_path):
    path = write(tmp_path, VALID.replace("cpu: 0.5", "cpu: 0x2"))
    assert load_spec(path, stdin=io.StringIO())["resources"]["cpu"] == 2


def test_explicit_str_tag_keeps_text(tmp_path):
    path = spec_with(tmp_path, "labels:\n  build: !!str 0755\n")
    assert load_spec(path, stdin=io.StringIO())["labels"] == {"build": "0755"}


def test_keys_are_their_text(tmp_path):
    path = spec_with(tmp_path, "labels:\n  on: push\n  1: one\n")
    assert load_spec(path, stdin=io.StringIO())["labels"] == {"on": "push", "1": "one"}


def test_non_scalar_key_is_a_problem(tmp_path):
    path = spec_with(tmp_path, "labels:\n  ? [a, b]\n  : c\n")
    assert problems_of(path) == [f"{path}:9:5: labels: a key must be text, not a list or mapping"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: &n x\nimage: *n\n", "1:7: invalid YAML: anchors (&n) are not allowed; repeat the value instead"),
        ("name: x\nimage: *n\n", "2:8: invalid YAML: aliases (*n) are not allowed; repeat the value instead"),
        ("name: !!python/object:os.system x\n", "1:7: invalid YAML: tags such as !!python/object:os.system are not allowed; remove the tag"),
        ("name: !!python/name:os.system\n", "1:7: invalid YAML: tags such as !!python/name:os.system are not allowed; remove the tag"),
        ("name: !custom x\n", "1:7: invalid YAML: tags such as !custom are not allowed; remove the tag"),
        ("labels: !!map {a: b}\n", "1:9: invalid YAML: tags such as !!map are not allowed; remove the tag"),
        ("name: a\n---\nname: b\n", "2:1: the file contains more than one YAML document; keep only the job spec"),
        ("name: a\n  image: b: c\n", "2:8: invalid YAML: mapping values are not allowed here"),
        ("name: [a\n", "2:1: invalid YAML: expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)"),
        ("- a\n- b\n", "1:1: the job spec must be a mapping of fields (name, image, ...), got a list"),
        ("hello\n", "1:1: the job spec must be a mapping of fields (name, image, ...), got the text 'hello'"),
        ("name: a\x00b\n", "1:8: invalid YAML: character U+0000 is not allowed; remove it or write it as an escape in double quotes"),
    ],
)
def test_yaml_errors_are_one_line(tmp_path, text, expected):
    path = write(tmp_path, text)
    assert usage_error(path) == f"{path}:{expected}"


def test_nesting_limit(tmp_path):
    deep = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    path = write(tmp_path, deep)
    assert usage_error(path) == f"{path}:1:{MAX_DEPTH + 3}: invalid YAML: nested more than {MAX_DEPTH} levels deep"


def test_very_deep_nesting_has_no_recursion_error(tmp_path):
    path = write(tmp_path, "a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert "nested more than" in usage_error(path)


def test_size_limit(tmp_path):
    path = write(tmp_path, VALID + "description: " + "x" * MAX_SPEC_BYTES + "\n")
    assert usage_error(path) == f"job spec {path} is larger than 1024 KiB"


def test_size_limit_on_stdin():
    message = usage_error("-", io.StringIO("name: " + "x" * MAX_SPEC_BYTES))
    assert message == "job spec <stdin> is larger than 1024 KiB"


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(UsageError) as caught:
        load_spec(path, stdin=io.StringIO())
    assert caught.value.message == f"job spec {path} not found"
    assert caught.value.hint == f"create one with: loom jobs init {path}"


def test_directory(tmp_path):
    assert usage_error(str(tmp_path)) == f"job spec {tmp_path} is a directory, not a file"


def test_unreadable_file(tmp_path):
    path = write(tmp_path, VALID)
    Path(path).chmod(0)
    try:
        with open(path, "rb"):
            pytest.skip("running as a user who can read any file")
    except PermissionError:
        pass
    assert usage_error(path) == f"cannot read job spec {path}: Permission denied"


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, text)
    assert usage_error(path) == f"job spec {path} is empty"


def test_comment_only_file(tmp_path):
    path = write(tmp_path, "# nothing yet\n")
    assert usage_error(path) == f"job spec {path} contains no document"


def test_not_utf8(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_bytes(b"name: \xff\n")
    assert usage_error(str(path)) == f"job spec {path} is not UTF-8 text (invalid byte at offset 6)"


def test_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert load_spec(str(path), stdin=io.StringIO())["name"] == "render frames"


def test_stdin_text():
    spec = load_spec("-", stdin=io.StringIO(VALID))
    assert spec["name"] == "render frames"


def test_stdin_bytes_buffer():
    stdin = io.TextIOWrapper(io.BytesIO(VALID.encode()), encoding="utf-8")
    assert load_spec("-", stdin=stdin)["name"] == "render frames"


def test_stdin_problems_name_stdin():
    with pytest.raises(SpecValidationError) as caught:
        load_spec("-", stdin=io.StringIO("name: x\n"))
    assert caught.value.problems[0] == "<stdin>:1:1: image: is required"


def test_json_file(tmp_path):
    data = {
        "name": "x",
        "image": "ubuntu",
        "resources": {"cpu": 0.25, "memory": "1Gi"},
        "reward": {"amount": 1.10},
    }
    spec = load_spec(write(tmp_path, json.dumps(data), "job.json"), stdin=io.StringIO())
    assert spec["resources"]["cpu"] == Decimal("0.25")
    assert spec["reward"]["amount"] == "1.1"


def test_json_problem_positions(tmp_path):
    text = '{\n  "name": "x",\n  "image": "ubuntu",\n  "resources": {"cpu": -1, "memory": "1Gi"},\n  "reward": {"amount": "1"},\n  "name": "y"\n}\n'
    path = write(tmp_path, text, "job.json")
    assert problems_of(path) == [
        f"{path}:4:17: resources.cpu: must be a number greater than 0, got -1",
        f"{path}:6:3: name: duplicate key 'name' (first at line 2); keep one",
    ]


def test_json_numbers_keep_json_meaning(tmp_path):
    text = '{"name": "x", "image": "ubuntu", "resources": {"cpu": 1e0, "memory": 1e3}, "reward": {"amount": "1"}}'
    spec = load_spec(write(tmp_path, text, "job.json"), stdin=io.StringIO())
    assert spec["resources"] == {"cpu": Decimal("1"), "memory": 1000}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"name": "x",\n "image": }', "2:11: invalid JSON: Expecting value"),
        ('{"cpu": NaN}', "invalid JSON: NaN is not a JSON number"),
        ("[1, 2]", "1:1: the job spec must be an object of fields (name, image, ...), got a list"),
    ],
)
def test_json_errors_are_one_line(tmp_path, text, expected):
    path = write(tmp_path, text, "job.json")
    assert usage_error(path) == f"{path}:{expected}" if expected[0].isdigit() else f"{path}: {expected}"


def test_json_nesting_limit(tmp_path):
    path = write(tmp_path, "[" * 100_000 + "]" * 100_000, "job.json")
    assert usage_error(path) == f"{path}: invalid job spec: nested more than {MAX_DEPTH} levels deep"


def test_json_on_stdin_is_detected():
    text = '{"name": "x", "image": "ubuntu", "resources": {"cpu": 1, "memory": "1Gi"}, "reward": {"amount": "1"}}'
    assert load_spec("-", stdin=io.StringIO(text))["image"] == "ubuntu"


def test_yaml_flow_mapping_on_stdin():
    text = "{name: x, image: ubuntu, resources: {cpu: 1, memory: 1Gi}, reward: {amount: '1'}}"
    assert load_spec("-", stdin=io.StringIO(text))["image"] == "ubuntu"


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("", ()),
        ("name", ("name",)),
        ("inputs[0].path", ("inputs", 0, "path")),
        ('labels["a b"]', ("labels", "a b")),
        ('env["1X"].x', ("env", "1X", "x")),
    ],
)
def test_parse_and_format_path(path, parts):
    assert parse_path(path) == parts
    assert format_path(parts) == path


def test_odd_label_key_positions(tmp_path):
    path = spec_with(tmp_path, "env:\n  bad key: x\n")
    assert problems_of(path) == [
        f'{path}:9:3: env["bad key"]: is not a valid variable name; use capitals, digits and \'_\' '
        "(like MY_VAR), not starting with a digit, got 'bad key'"
    ]


def test_shipped_examples_validate():
    from loom_cli.commands.jobs.create import example_spec

    root = Path(__file__).resolve().parents[2]
    examples = sorted((root / "examples").glob("*.*"))
    assert len(examples) >= 2
    for example in examples:
        assert load_spec(str(example), stdin=io.StringIO())["name"]
    assert load_spec("-", stdin=io.StringIO(example_spec()))["reward"] == {"amount": "12.5", "currency": "LOOM"}


def test_json_nesting_limit_with_high_recursion_limit(tmp_path):
    # eth-account raises the recursion limit this high in processes that sign.
    import sys

    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        path = write(tmp_path, '{"a":' * 60_000 + "1" + "}" * 60_000, "job.json")
        message = usage_error(path)
    finally:
        sys.setrecursionlimit(previous)
    assert message == f"{path}: invalid job spec: nested more than {MAX_DEPTH} levels deep"


def test_json_brackets_inside_strings_do_not_count(tmp_path):
    text = json.dumps({"name": "[" * 100, "image": "ubuntu", "resources": {"cpu": 1, "memory": "1Gi"}, "reward": {"amount": "1"}})
    assert load_spec(write(tmp_path, text, "job.json"), stdin=io.StringIO())["name"] == "[" * 100


def test_lone_surrogate_in_json_is_a_problem(tmp_path):
    text = '{"name": "a\\ud800", "image": "ubuntu", "resources": {"cpu": 1, "memory": "1Gi"}, "reward": {"amount": "1"}, "labels": {"k\\udfff": "v"}}'
    path = write(tmp_path, text, "job.json")
    assert problems_of(path) == [
        f"{path}:1:2: name: contains the lone surrogate U+D800, which is not valid Unicode text; remove it",
        f'{path}:1:120: labels["k\udfff"]: contains the lone surrogate U+DFFF, which is not valid Unicode text; remove it',
    ]


def test_lone_surrogate_in_yaml_is_a_problem(tmp_path):
    path = write(tmp_path, VALID.replace("render frames", '"a\\ud800"'))
    assert problems_of(path) == [
        f"{path}:1:1: name: contains the lone surrogate U+D800, which is not valid Unicode text; remove it"
    ]
