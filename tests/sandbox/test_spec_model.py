"""The job spec rules: every valid form, every broken rule with its field path, and the JSON Schema."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import jsonschema
import pytest

from loom_cli.spec.model import (
    SpecProblem,
    canonical_amount,
    parse_duration,
    spec_json_schema,
    validate_spec,
)

DIGEST = "sha256:" + "a1" * 32


def minimal_spec(**overrides) -> dict:
    spec = {
        "name": "render frames",
        "image": "ubuntu:22.04",
        "resources": {"cpu": 2, "memory": "4Gi"},
        "reward": {"amount": "12.5"},
    }
    spec.update(overrides)
    return spec


def full_spec() -> dict:
    return {
        "name": "Blender render, scene 4",
        "description": "Renders frames 1-250.\n\tUses the GPU.",
        "image": f"registry.example.com:5000/studio/blender:4.1@{DIGEST}",
        "command": ["blender", "-b", "/in/scene.blend", "-a"],
        "env": {"FRAMES": "1-250", "_DEBUG": "0", "A1": ""},
        "resources": {"cpu": Decimal("3.5"), "memory": "16Gi", "disk": 10_000_000_000, "gpu": {"count": 1, "model": "nvidia-a100"}},
        "inputs": [{"uri": "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "path": "/in/scene.blend"}],
        "outputs": [{"path": "/out"}],
        "reward": {"amount": "12.50", "currency": "USDC"},
        "timeout": "2h",
        "labels": {"team": "studio", "priority": "high"},
    }


def problems_of(spec: object) -> list[SpecProblem]:
    normalized, problems = validate_spec(spec)
    assert normalized is None
    assert problems
    return problems


def paths_of(spec: object) -> list[str]:
    return [problem.path for problem in problems_of(spec)]


def only_problem(spec: object) -> SpecProblem:
    problems = problems_of(spec)
    assert len(problems) == 1, problems
    return problems[0]


def with_field(path: str, value: object) -> dict:
    """Return a minimal spec with the dotted `path` set to `value`."""
    spec = minimal_spec()
    *parents, last = path.split(".")
    target = spec
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    return spec


# --- valid specs --------------------------------------------------------------------------------


def test_minimal_spec_gets_defaults():
    normalized, problems = validate_spec(minimal_spec())
    assert problems == []
    assert normalized == {
        "name": "render frames",
        "image": "ubuntu:22.04",
        "resources": {"cpu": 2, "memory": "4Gi"},
        "reward": {"amount": "12.5", "currency": "LOOM"},
        "timeout": "1h",
    }


def test_full_spec_is_echoed_with_canonical_amount():
    spec = full_spec()
    original = copy.deepcopy(spec)
    normalized, problems = validate_spec(spec)
    assert problems == []
    expected = copy.deepcopy(original)
    expected["reward"]["amount"] = "12.5"
    assert normalized == expected
    assert spec == original, "validate_spec must not change its input"


def test_normalized_spec_does_not_share_containers_with_input():
    spec = full_spec()
    normalized, _ = validate_spec(spec)
    assert normalized is not None
    normalized["command"].append("extra")
    normalized["env"]["NEW"] = "1"
    assert "extra" not in spec["command"]
    assert "NEW" not in spec["env"]


def test_key_order_of_input_is_kept():
    spec = {"reward": {"amount": 1}, "resources": {"memory": 1024, "cpu": 1}, "image": "alpine", "name": "n"}
    normalized, _ = validate_spec(spec)
    assert normalized is not None
    assert list(normalized) == ["reward", "resources", "image", "name", "timeout"]
    assert list(normalized["resources"]) == ["memory", "cpu"]


# --- top level ----------------------------------------------------------------------------------


@pytest.mark.parametrize("document", [None, [], "name: x", 3, True])
def test_document_must_be_object(document):
    problem = only_problem(document)
    assert problem.path == ""
    assert "must be an object" in problem.message


def test_empty_document_lists_every_required_field():
    assert paths_of({}) == ["name", "image", "resources", "reward"]
    assert all(problem.message == "is required" for problem in problems_of({}))


def test_problems_follow_document_order():
    spec = {
        "timeout": "0s",
        "name": "",
        "resources": {"memory": "lots", "cpu": -1},
        "image": "UPPER",
        "reward": {"amount": "x"},
    }
    assert paths_of(spec) == ["timeout", "name", "resources.memory", "resources.cpu", "image", "reward.amount"]


def test_missing_required_nested_field_listed_after_its_siblings():
    spec = minimal_spec(resources={"disk": "bad"}, inputs=[{"path": "/x"}])
    assert paths_of(spec) == ["resources.disk", "resources.cpu", "resources.memory", "inputs[0].uri"]


@pytest.mark.parametrize(
    ("path", "spec"),
    [
        ("colour", minimal_spec(colour="red")),
        ("resources.ram", minimal_spec(resources={"cpu": 1, "memory": "1G", "ram": "1G"})),
        ("resources.gpu.vendor", minimal_spec(resources={"cpu": 1, "memory": "1G", "gpu": {"count": 1, "model": "a", "vendor": "x"}})),
        ("inputs[0].sha256", minimal_spec(inputs=[{"uri": "https://example.com/a", "path": "/a", "sha256": "x"}])),
        ("outputs[1].mode", minimal_spec(outputs=[{"path": "/a"}, {"path": "/b", "mode": "rw"}])),
        ("reward.token", minimal_spec(reward={"amount": "1", "token": "LOOM"})),
    ],
)
def test_unknown_field_rejected_at_every_level(path, spec):
    problem = only_problem(spec)
    assert problem.path == path
    assert "not a known field" in problem.message


def test_unknown_field_with_odd_name_gets_quoted_path():
    problem = only_problem(minimal_spec(**{"my field": 1}))
    assert problem.path == '["my field"]'


def test_non_string_key_is_unknown_field():
    spec = minimal_spec()
    spec[1] = "x"
    assert only_problem(spec).path == "[1]"


@pytest.mark.parametrize(
    "path",
    ["description", "command", "env", "inputs", "outputs", "timeout", "labels", "resources.disk", "resources.gpu", "reward.currency"],
)
def test_null_optional_field_is_problem(path):
    problem = only_problem(with_field(path, None))
    assert problem.path == path
    assert "must not be null" in problem.message


@pytest.mark.parametrize("path", ["name", "image", "resources", "reward", "resources.cpu", "reward.amount"])
def test_null_required_field_is_problem(path):
    problem = only_problem(with_field(path, None))
    assert problem.path == path
    assert "must not be null" in problem.message


def test_problem_str_names_path():
    assert str(SpecProblem("inputs[0].path", "must be absolute")) == "inputs[0].path: must be absolute"
    assert str(SpecProblem("", "the job spec must be an object, got a list")) == "the job spec must be an object, got a list"


# --- name and description -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "x" * 100, "Rendu d'été 🎬", "tab-free name", "名前" * 50])
def test_name_valid(name):
    assert validate_spec(minimal_spec(name=name))[1] == []


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "1-100 characters, got 0"),
        ("x" * 101, "1-100 characters, got 101"),
        ("🎬" * 101, "got 101"),
        ("a\nb", "U+000A"),
        ("a\tb", "U+0009"),
        ("a\x1b[31mred", "U+001B"),
        ("a\x7f", "U+007F"),
        ("a\x9bb", "U+009B"),
        ("invoice\u202efdp.exe", "U+202E"),
        ("a\u202ab", "U+202A"),
        ("a\u2066b", "U+2066"),
        ("a\u2069b", "U+2069"),
        (5, "must be a string, got a number"),
        (True, "must be a string, got a boolean"),
        (["a"], "must be a string, got a list"),
    ],
)
def test_name_invalid(name, fragment):
    problem = only_problem(minimal_spec(name=name))
    assert problem.path == "name"
    assert fragment in problem.message


def test_name_allows_other_format_characters():
    # Only the listed bidi controls are banned; a zero-width joiner in an emoji sequence is fine.
    assert validate_spec(minimal_spec(name="family 👨\u200d👩\u200d👧"))[1] == []


@pytest.mark.parametrize("text", ["", "line one\nline two", "col\tcol", "x" * 2000, "rtl \u202e is allowed here"])
def test_description_valid(text):
    assert validate_spec(minimal_spec(description=text))[1] == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("x" * 2001, "at most 2000 characters, got 2001"), ("a\rb", "U+000D"), ("a\x00", "U+0000"), ("\x1b]0;t\x07", "U+001B"), (3, "must be a string")],
)
def test_description_invalid(text, fragment):
    problem = only_problem(minimal_spec(description=text))
    assert problem.path == "description"
    assert fragment in problem.message


# --- image --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "ubuntu",
        "ubuntu:22.04",
        "library/ubuntu:latest",
        "pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime",
        "ghcr.io/acme/render",
        "ghcr.io/acme/team/render:V2_rc.1",
        "registry.example.com:5000/team/app:v1",
        "localhost/app",
        "localhost:5000/app:dev",
        "myregistry:5000/app",
        "Registry.Example.COM/app",
        f"ubuntu@{DIGEST}",
        f"ubuntu:22.04@{DIGEST}",
        f"registry.example.com:5000/team/app:v1@{DIGEST}",
        "my-app",
        "my__app",
        "my.app",
        "a" * 255,
    ],
)
def test_image_valid(image):
    assert validate_spec(minimal_spec(image=image))[1] == []


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        ("", "must not be empty"),
        ("Ubuntu", "repository must be lowercase"),
        ("MyOrg/app", "repository must be lowercase"),
        ("ghcr.io/Acme/app:v1", "repository must be lowercase"),
        ("ubuntu 22.04", "whitespace"),
        ("ubuntu\t", "whitespace"),
        ("ubuntu\n", "whitespace"),
        ("a" * 256, "at most 255 characters, got 256"),
        ("ubuntu@sha256:" + "A1" * 32, "digest must be"),
        ("ubuntu@sha256:abc", "digest must be"),
        ("ubuntu@md5:" + "a" * 32, "digest must be"),
        ("ubuntu:", "image reference"),
        ("ubuntu:-tag", "image reference"),
        (":tag", "image reference"),
        ("/ubuntu", "image reference"),
        ("ubuntu/", "image reference"),
        ("registry.example.com:port/app", "image reference"),
        ("registry.example.com/", "image reference"),
        ("app-", "image reference"),
        ("a//b", "image reference"),
        ("ubuntu:" + "t" * 129, "image reference"),
        (["ubuntu"], "must be a string"),
    ],
)
def test_image_invalid(image, fragment):
    problem = only_problem(minimal_spec(image=image))
    assert problem.path == "image"
    assert fragment in problem.message


# --- command, env, labels -----------------------------------------------------------------------


def test_command_valid_forms():
    assert validate_spec(minimal_spec(command=[]))[1] == []
    assert validate_spec(minimal_spec(command=["sh", "-c", "echo 'hi' && exit 0"]))[1] == []


@pytest.mark.parametrize(
    ("command", "path"),
    [("echo hi", "command"), (["echo", 1], "command[1]"), (["echo", None], "command[1]"), (["a", True, "b", 2.5], "command[1]")],
)
def test_command_invalid(command, path):
    assert paths_of(minimal_spec(command=command))[0] == path


def test_command_lists_every_bad_item():
    assert paths_of(minimal_spec(command=["a", 1, "b", False])) == ["command[1]", "command[3]"]


@pytest.mark.parametrize("key", ["A", "_", "PATH", "MY_VAR_2", "_X9", "__"])
def test_env_key_valid(key):
    assert validate_spec(minimal_spec(env={key: "v"}))[1] == []


@pytest.mark.parametrize("key", ["a", "my_var", "1ABC", "A-B", "A B", "", "É", "A.B"])
def test_env_key_invalid(key):
    problem = only_problem(minimal_spec(env={key: "v"}))
    assert "not a valid variable name" in problem.message
    assert problem.path.startswith("env")


@pytest.mark.parametrize("value", [1, True, None, ["a"], {"a": "b"}, Decimal("1.5")])
def test_env_value_must_be_string(value):
    problem = only_problem(minimal_spec(env={"KEY": value}))
    assert problem.path == "env.KEY"
    assert "must be a string" in problem.message


def test_env_must_be_map():
    problem = only_problem(minimal_spec(env=["A=1"]))
    assert problem.path == "env"


def test_env_non_string_key():
    problem = only_problem(minimal_spec(env={1: "x"}))
    assert "key must be a string" in problem.message


def test_labels_accept_any_string_keys():
    assert validate_spec(minimal_spec(labels={"app.kubernetes.io/name": "x", "": "", "ünïcode": "ok"}))[1] == []


def test_labels_values_must_be_strings():
    problem = only_problem(minimal_spec(labels={"priority": 1}))
    assert problem.path == "labels.priority"


def test_labels_path_quotes_odd_keys():
    problem = only_problem(minimal_spec(labels={"a b": 1}))
    assert problem.path == 'labels["a b"]'


# --- resources ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cpu", [1, 64, 0.5, Decimal("0.25"), Decimal("1E+1"), Decimal("0.000001")])
def test_cpu_valid(cpu):
    normalized, problems = validate_spec(minimal_spec(resources={"cpu": cpu, "memory": "1G"}))
    assert problems == []
    assert normalized["resources"]["cpu"] == cpu


@pytest.mark.parametrize(
    ("cpu", "fragment"),
    [
        (0, "greater than 0"),
        (-1, "greater than 0"),
        (Decimal("0.0"), "greater than 0"),
        (Decimal("-0.5"), "greater than 0"),
        (float("nan"), "greater than 0"),
        (float("inf"), "greater than 0"),
        (Decimal("Infinity"), "greater than 0"),
        (True, "got a boolean"),
        (False, "got a boolean"),
        ("2", "got a string"),
        ([2], "got a list"),
    ],
)
def test_cpu_invalid(cpu, fragment):
    problem = only_problem(minimal_spec(resources={"cpu": cpu, "memory": "1G"}))
    assert problem.path == "resources.cpu"
    assert fragment in problem.message


@pytest.mark.parametrize(
    ("size", "normalized_size"),
    [
        ("1", "1"),
        ("512Mi", "512Mi"),
        ("1.5G", "1.5G"),
        ("2T", "2T"),
        ("100K", "100K"),
        ("3Ki", "3Ki"),
        ("1.25Ti", "1.25Ti"),
        (1, 1),
        (1073741824, 1073741824),
        (Decimal("1024.0"), 1024),
        (2048.0, 2048),
    ],
)
def test_size_valid(size, normalized_size):
    normalized, problems = validate_spec(minimal_spec(resources={"cpu": 1, "memory": size, "disk": size}))
    assert problems == []
    assert normalized["resources"]["memory"] == normalized_size
    assert normalized["resources"]["disk"] == normalized_size


@pytest.mark.parametrize(
    "size",
    ["", "0", "0.5G", "01G", "1g", "1 G", "1GB", "1Gib", "G", "1.G", ".5G", "-1G", "1e9", 0, -5, 1.5, Decimal("1.5"), True, False, [1]],
)
def test_size_invalid(size):
    assert paths_of(minimal_spec(resources={"cpu": 1, "memory": size})) == ["resources.memory"]
    assert paths_of(minimal_spec(resources={"cpu": 1, "memory": "1G", "disk": size})) == ["resources.disk"]


def test_resources_require_cpu_and_memory():
    assert paths_of(minimal_spec(resources={})) == ["resources.cpu", "resources.memory"]
    assert paths_of(minimal_spec(resources="2 cpus")) == ["resources"]


def test_gpu_valid():
    normalized, problems = validate_spec(minimal_spec(resources={"cpu": 1, "memory": "1G", "gpu": {"count": Decimal("2.0"), "model": "h100"}}))
    assert problems == []
    assert normalized["resources"]["gpu"] == {"count": 2, "model": "h100"}
    assert type(normalized["resources"]["gpu"]["count"]) is int


@pytest.mark.parametrize(
    ("gpu", "paths"),
    [
        ({}, ["resources.gpu.count", "resources.gpu.model"]),
        ({"count": 1}, ["resources.gpu.model"]),
        ({"model": "a100"}, ["resources.gpu.count"]),
        ({"count": 0, "model": "a100"}, ["resources.gpu.count"]),
        ({"count": 1.5, "model": "a100"}, ["resources.gpu.count"]),
        ({"count": True, "model": "a100"}, ["resources.gpu.count"]),
        ({"count": "1", "model": "a100"}, ["resources.gpu.count"]),
        ({"count": 1, "model": ""}, ["resources.gpu.model"]),
        ({"count": 1, "model": 100}, ["resources.gpu.model"]),
        (1, ["resources.gpu"]),
    ],
)
def test_gpu_invalid(gpu, paths):
    assert paths_of(minimal_spec(resources={"cpu": 1, "memory": "1G", "gpu": gpu})) == paths


# --- inputs and outputs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "https://example.com/data.tar?x=1#f", "s3://bucket/key/part", "ar://abcDEF_123-x"],
)
def test_input_uri_valid(uri):
    assert validate_spec(minimal_spec(inputs=[{"uri": uri, "path": "/data"}]))[1] == []


@pytest.mark.parametrize(
    "uri",
    ["http://example.com/a", "ftp://host/file", "file:///etc/passwd", "HTTPS://example.com", "https://", "https:///path", "ipfs:Qm", "s3://bucket/a b", "", "bucket/key", 1],
)
def test_input_uri_invalid(uri):
    assert paths_of(minimal_spec(inputs=[{"uri": uri, "path": "/data"}])) == ["inputs[0].uri"]


@pytest.mark.parametrize("path", ["data", "./data", "~/data", "", "C:\\data"])
def test_paths_must_be_absolute(path):
    assert paths_of(minimal_spec(inputs=[{"uri": "s3://b/k", "path": path}])) == ["inputs[0].path"]
    assert paths_of(minimal_spec(outputs=[{"path": "/ok"}, {"path": path}])) == ["outputs[1].path"]


def test_inputs_and_outputs_shapes():
    assert paths_of(minimal_spec(inputs={"uri": "s3://b/k", "path": "/a"})) == ["inputs"]
    assert paths_of(minimal_spec(inputs=["s3://b/k"])) == ["inputs[0]"]
    assert paths_of(minimal_spec(outputs=[{}])) == ["outputs[0].path"]
    assert paths_of(minimal_spec(inputs=[{"uri": "s3://b/k", "path": None}])) == ["inputs[0].path"]
    assert validate_spec(minimal_spec(inputs=[], outputs=[]))[1] == []


# --- reward -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "canonical"),
    [
        ("12.5", "12.5"),
        ("12.50", "12.5"),
        ("012.500", "12.5"),
        ("10", "10"),
        ("10.000", "10"),
        ("0.5", "0.5"),
        ("0.000000000000000001", "0.000000000000000001"),
        ("1.123456789012345678000000", "1.123456789012345678"),
        ("123456789012345678901234567890.123456789012345678", "123456789012345678901234567890.123456789012345678"),
        (12, "12"),
        (Decimal("12.50"), "12.5"),
        (Decimal("1E+2"), "100"),
        (Decimal("1.5E-3"), "0.0015"),
        (0.1, "0.1"),
        (2.5, "2.5"),
    ],
)
def test_amount_canonical(amount, canonical):
    normalized, problems = validate_spec(minimal_spec(reward={"amount": amount}))
    assert problems == []
    assert normalized["reward"]["amount"] == canonical


@pytest.mark.parametrize(
    ("amount", "fragment"),
    [
        ("0", "greater than 0"),
        ("0.000", "greater than 0"),
        (0, "greater than 0"),
        (Decimal("-1"), "greater than 0"),
        (-0.5, "greater than 0"),
        ("-1", "must be a decimal"),
        ("+1", "must be a decimal"),
        ("1e3", "must be a decimal"),
        ("1.", "must be a decimal"),
        (".5", "must be a decimal"),
        ("1,5", "must be a decimal"),
        (" 1", "must be a decimal"),
        ("", "must be a decimal"),
        ("0.0000000000000000001", "at most 18 decimal places, got 19"),
        (Decimal("1.0000000000000000001"), "at most 18 decimal places, got 19"),
        (Decimal("1E-19"), "at most 18 decimal places"),
        (Decimal("1E+999999999"), "at most 78 digits"),
        ("1" * 79, "at most 78 digits"),
        (Decimal("NaN"), "finite"),
        (float("inf"), "finite"),
        (True, "got a boolean"),
        ([1], "got a list"),
    ],
)
def test_amount_invalid(amount, fragment):
    problem = only_problem(minimal_spec(reward={"amount": amount}))
    assert problem.path == "reward.amount"
    assert fragment in problem.message


def test_amount_keeps_exact_value_beyond_decimal_context():
    # 60 significant digits: more than Decimal's default 28-digit context, which must not round.
    text = "123456789012345678901234567890123456789012." + "123456789012345678"
    assert canonical_amount(text) == text
    assert canonical_amount(Decimal(text + "000")) == text


@pytest.mark.parametrize("currency", ["LOOM", "USDC", "ETH", "A1", "ABCDEFGHIJ"])
def test_currency_valid(currency):
    normalized, problems = validate_spec(minimal_spec(reward={"amount": "1", "currency": currency}))
    assert problems == []
    assert normalized["reward"]["currency"] == currency


@pytest.mark.parametrize("currency", ["loom", "L", "1LOOM", "ABCDEFGHIJK", "LO OM", "", 5])
def test_currency_invalid(currency):
    assert paths_of(minimal_spec(reward={"amount": "1", "currency": currency})) == ["reward.currency"]


def test_reward_shape():
    assert paths_of(minimal_spec(reward="12.5 LOOM")) == ["reward"]
    assert paths_of(minimal_spec(reward={})) == ["reward.amount"]
    assert paths_of(minimal_spec(reward={"currency": "LOOM"})) == ["reward.amount"]


# --- timeout ------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["1s", "59s", "90s", "30m", "2h", "168h", "10080m", "604800s", "7d", "1d"])
def test_timeout_valid(timeout):
    normalized, problems = validate_spec(minimal_spec(timeout=timeout))
    assert problems == []
    assert normalized["timeout"] == timeout


@pytest.mark.parametrize(
    ("timeout", "fragment"),
    [
        ("0s", "duration"),
        ("604801s", "between 1s and 7d"),
        ("10081m", "between 1s and 7d"),
        ("169h", "between 1s and 7d"),
        ("8d", "between 1s and 7d"),
        ("9" * 5000 + "s", "between 1s and 7d"),
        ("1w", "duration"),
        ("1H", "duration"),
        ("01h", "duration"),
        ("1.5h", "duration"),
        ("1h30m", "duration"),
        ("60", "duration"),
        ("", "duration"),
        (3600, "must be a string"),
        (True, "must be a string"),
    ],
)
def test_timeout_invalid(timeout, fragment):
    problem = only_problem(minimal_spec(timeout=timeout))
    assert problem.path == "timeout"
    assert fragment in problem.message


def test_parse_duration():
    assert parse_duration("1s") == 1
    assert parse_duration("15m") == 900
    assert parse_duration("2h") == 7200
    assert parse_duration("7d") == 604800
    with pytest.raises(ValueError):
        parse_duration("2 h")


# --- YAML-shaped input --------------------------------------------------------------------------


def test_yaml_style_values_are_reported_not_coerced():
    # What a YAML loader gives for `cpu: yes`, `memory: 512`, `timeout: 3600`, `env: {DEBUG: true}`.
    spec = minimal_spec(resources={"cpu": True, "memory": 512}, timeout=3600, env={"DEBUG": True}, labels={"tier": 1})
    assert paths_of(spec) == ["resources.cpu", "timeout", "env.DEBUG", "labels.tier"]


def test_yaml_float_amount_and_cpu_accepted():
    normalized, problems = validate_spec(minimal_spec(resources={"cpu": 0.5, "memory": "1G"}, reward={"amount": 12.5}))
    assert problems == []
    assert normalized["reward"]["amount"] == "12.5"


def test_every_problem_of_a_bad_spec_listed():
    spec = {
        "name": "bad\u202e",
        "description": 7,
        "image": "Bad Image",
        "command": "run",
        "env": {"lower": "x"},
        "resources": {"cpu": "many", "memory": "1 GB", "gpu": {"count": 0}},
        "inputs": [{"uri": "ftp://x", "path": "rel"}],
        "outputs": [{"path": "rel"}],
        "reward": {"amount": "free", "currency": "$"},
        "timeout": "forever",
        "labels": [],
        "extra": True,
    }
    assert paths_of(spec) == [
        "name",
        "description",
        "image",
        "command",
        "env.lower",
        "resources.cpu",
        "resources.memory",
        "resources.gpu.count",
        "resources.gpu.model",
        "inputs[0].uri",
        "inputs[0].path",
        "outputs[0].path",
        "reward.amount",
        "reward.currency",
        "timeout",
        "labels",
        "extra",
    ]


# --- JSON Schema --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_validator():
    schema = spec_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def as_json(spec: dict) -> object:
    """Round-trip through JSON the way the server reads bodies (exact decimals)."""
    return json.loads(json.dumps(spec, default=str), parse_float=Decimal)


VALID_FOR_SCHEMA = [
    minimal_spec(),
    minimal_spec(image=f"localhost:5000/app@{DIGEST}", timeout="7d", reward={"amount": 3, "currency": "ETH"}),
    minimal_spec(resources={"cpu": 0.5, "memory": 1024, "disk": "2Ti", "gpu": {"count": 2, "model": "a100"}}),
    minimal_spec(env={"A_1": "x"}, labels={"any key": "v"}, command=["a"], inputs=[{"uri": "ar://tx", "path": "/a"}], outputs=[{"path": "/o"}]),
    minimal_spec(name="x" * 100, description="line\nline\ttab"),
    minimal_spec(reward={"amount": "1.000000000000000001000"}),
]

INVALID_FOR_SCHEMA = [
    minimal_spec(colour="red"),
    minimal_spec(name=""),
    minimal_spec(name="x" * 101),
    minimal_spec(name="a\u202eb"),
    minimal_spec(name="a\x1bb"),
    minimal_spec(description="a\rb"),
    minimal_spec(image="Ubuntu"),
    minimal_spec(image="ubuntu@sha256:abc"),
    minimal_spec(image="ubuntu 22.04"),
    minimal_spec(env={"lower": "x"}),
    minimal_spec(env={"A": 1}),
    minimal_spec(resources={"cpu": True, "memory": "1G"}),
    minimal_spec(resources={"cpu": 0, "memory": "1G"}),
    minimal_spec(resources={"cpu": 1, "memory": "1GB"}),
    minimal_spec(resources={"cpu": 1, "memory": 0}),
    minimal_spec(resources={"cpu": 1}),
    minimal_spec(resources={"cpu": 1, "memory": "1G", "gpu": {"count": 1}}),
    minimal_spec(inputs=[{"uri": "http://x/a", "path": "/a"}]),
    minimal_spec(inputs=[{"uri": "s3://b/k", "path": "a"}]),
    minimal_spec(reward={"amount": "0"}),
    minimal_spec(reward={"amount": "0.0000000000000000001"}),
    minimal_spec(reward={"amount": -1}),
    minimal_spec(reward={"amount": "1", "currency": "loom"}),
    minimal_spec(timeout="1w"),
    minimal_spec(timeout=None),
    minimal_spec(labels={"a": None}),
]


@pytest.mark.parametrize("spec", VALID_FOR_SCHEMA)
def test_schema_accepts_valid_specs(schema_validator, spec):
    assert validate_spec(as_json(spec))[1] == []
    errors = list(schema_validator.iter_errors(as_json(spec)))
    assert errors == []


@pytest.mark.parametrize("spec", INVALID_FOR_SCHEMA)
def test_schema_rejects_invalid_specs(schema_validator, spec):
    assert validate_spec(as_json(spec))[0] is None
    assert not schema_validator.is_valid(as_json(spec))


def test_schema_is_json_serialisable():
    schema = spec_json_schema()
    assert json.loads(json.dumps(schema)) == schema
    assert schema["additionalProperties"] is False
    assert schema["properties"]["timeout"]["default"] == "1h"
