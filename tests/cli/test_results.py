"""`loom results report` input checks and the exact JSON writer, without a server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from loom_cli.commands.results import (
    MAX_OUTPUT_BYTES,
    build_result_body,
    dump_exact_json,
    parse_output_json,
    save_output_file,
)
from loom_cli.context import AppContext, GlobalOptions
from loom_cli.errors import UsageError


def make_app(stdin_text: str = "") -> AppContext:
    return AppContext(GlobalOptions(), stdin=io.StringIO(stdin_text), stdout=io.StringIO(), stderr=io.StringIO())


def body(app: AppContext | None = None, **flags: object) -> dict:
    arguments: dict = {
        "output_file": None,
        "output_json": None,
        "failed": False,
        "message": None,
        "uri": None,
        "sha256": None,
        "local_file": None,
    }
    arguments.update(flags)
    return build_result_body(app or make_app(), **arguments)


def test_body_defaults_to_completed():
    result = body(output_json='{"score": 1}')
    assert result == {"outcome": "Completed", "output": {"score": 1}, "result_uri": None, "sha256": None, "message": None}


def test_body_failed_without_output_sends_null():
    result = body(failed=True, message="out of memory")
    assert result["outcome"] == "Failed"
    assert result["output"] is None
    assert result["message"] == "out of memory"


def test_body_needs_output_unless_failed():
    with pytest.raises(UsageError) as caught:
        body()
    assert "--output-json" in caught.value.message


def test_body_rejects_both_output_flags(tmp_path: Path):
    with pytest.raises(UsageError) as caught:
        body(output_json="1", output_file=str(tmp_path / "x.json"))
    assert "--output-file and --output-json" in caught.value.message


def test_decimals_stay_exact():
    value = parse_output_json('{"loss": 0.10000000000000000000001, "big": 1e400, "n": 12, "f": 1.10}', source="--output-json")
    assert value["loss"] == Decimal("0.10000000000000000000001")
    assert dump_exact_json(value) == '{"loss":0.10000000000000000000001,"big":1E+400,"n":12,"f":1.10}'


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ('{"a": 1,}', "line 1, column 9"),
        ("{\n  \"a\": tru\n}", "line 2, column 8"),
        ("", "line 1, column 1"),
    ],
)
def test_invalid_json_names_flag_and_position(text: str, position: str):
    with pytest.raises(UsageError) as caught:
        parse_output_json(text, source="--output-json")
    assert caught.value.message.startswith("invalid JSON in --output-json: ")
    assert position in caught.value.message


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"x": -Infinity}'])
def test_non_finite_numbers_rejected(text: str):
    with pytest.raises(UsageError) as caught:
        parse_output_json(text, source="--output-json")
    assert "invalid JSON in --output-json" in caught.value.message


def test_output_file_read_from_stdin():
    result = body(make_app('[1, 2.50, "x"]'), output_file="-")
    assert result["output"] == [1, Decimal("2.50"), "x"]


def test_output_file_error_names_path(tmp_path: Path):
    missing = tmp_path / "missing.json"
    with pytest.raises(UsageError) as caught:
        body(output_file=str(missing))
    assert str(missing) in caught.value.message


def test_output_file_invalid_json_names_file(tmp_path: Path):
    path = tmp_path / "out.json"
    path.write_text('{"a": [1, 2}', encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        body(output_file=str(path))
    assert f"--output-file {path}" in caught.value.message
    assert "line 1, column 12" in caught.value.message


def test_output_over_one_mib_rejected():
    # Whitespace does not count: the limit applies to the compact form.
    just_fits = json.dumps("x" * (MAX_OUTPUT_BYTES - 2))
    assert body(output_json=" " + just_fits + " ")["output"] == "x" * (MAX_OUTPUT_BYTES - 2)
    with pytest.raises(UsageError) as caught:
        body(output_json=json.dumps("x" * (MAX_OUTPUT_BYTES - 1)))
    assert "1,048,577 bytes" in caught.value.message


def test_output_size_counts_utf8_bytes():
    # "é" is one character but two bytes of UTF-8.
    with pytest.raises(UsageError):
        body(output_json=json.dumps("é" * (MAX_OUTPUT_BYTES // 2), ensure_ascii=True))


def test_sha256_lowercased():
    digest = "AB" * 32
    result = body(output_json="null", uri="s3://bucket/key", sha256=digest)
    assert result["sha256"] == "ab" * 32
    assert result["result_uri"] == "s3://bucket/key"


@pytest.mark.parametrize("digest", ["ab" * 31, "ab" * 33, "zz" * 32, ""])
def test_sha256_must_be_64_hex(digest: str):
    with pytest.raises(UsageError) as caught:
        body(output_json="null", uri="s3://bucket/key", sha256=digest)
    assert "--sha256" in caught.value.message


def test_file_checksum_computed(tmp_path: Path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    result = body(output_json="null", uri="ipfs://bafybeigdyrzt", local_file=path)
    assert result["sha256"] == hashlib.sha256(data).hexdigest()


def test_checksum_needs_uri(tmp_path: Path):
    with pytest.raises(UsageError) as caught:
        body(output_json="null", sha256="ab" * 32)
    assert caught.value.message == "--sha256 needs --uri"


def test_sha256_and_file_conflict(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with pytest.raises(UsageError) as caught:
        body(output_json="null", uri="s3://b/k", sha256="ab" * 32, local_file=path)
    assert "cannot be used together" in caught.value.message


@pytest.mark.parametrize("uri", ["https://example.org/r.bin", "s3://bucket/key", "ipfs://bafy", "ar://tx-id", "gs://b/o"])
def test_absolute_uris_accepted(uri: str):
    assert body(output_json="null", uri=uri)["result_uri"] == uri


@pytest.mark.parametrize("uri", ["model.bin", "/data/model.bin", "s3:", "s3://bucket/a key", "s3://b/\x1b[2J", "1s3://b"])
def test_non_uris_rejected(uri: str):
    with pytest.raises(UsageError) as caught:
        body(output_json="null", uri=uri)
    assert caught.value.message.startswith(f"invalid --uri {uri!r}")


def test_output_nesting_limit():
    assert body(output_json="[" * 64 + "]" * 64)["output"] is not None
    with pytest.raises(UsageError) as caught:
        body(output_json="[" * 65 + "]" * 65)
    assert "65 levels" in caught.value.message


def test_exact_json_indented_matches_json_module():
    value = {"a": [1, {"b": None, "c": True}], "d": {}, "e": [], "ü": "ß"}
    assert dump_exact_json(value, indent=2) == json.dumps(value, indent=2, ensure_ascii=False)
    assert dump_exact_json(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_save_output_file_is_atomic_and_readable(tmp_path: Path):
    path = tmp_path / "out.json"
    path.write_text("old", encoding="utf-8")
    save_output_file(path, '{"x": 1}\n')
    assert path.read_text(encoding="utf-8") == '{"x": 1}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_save_output_file_missing_folder(tmp_path: Path):
    with pytest.raises(UsageError) as caught:
        save_output_file(tmp_path / "no" / "out.json", "1\n")
    assert "cannot write --output-file" in caught.value.message
