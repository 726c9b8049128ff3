"""`loom results`: the assigned worker reports a job's outcome; its creator or worker reads it back.

`report` checks everything it can before sending: the output must be JSON
(numbers kept as exact decimals, never rounded through binary floats) of at
most 1 MiB once written compactly, a `--uri` needs an allowed scheme, and a
checksum must be 64 hex digits or is computed from a local file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loom_cli.commands.jobs.claim import IdempotencyKeyOption, resolve_idempotency_key, with_hint
from loom_cli.context import AppContext
from loom_cli.errors import ConflictError, NotFoundError, UsageError
from loom_cli.options import JsonOption, OutputOption, QuietOption, output_value

if TYPE_CHECKING:
    from loom_cli.output import Column

# The API's limit on `output` written as compact UTF-8 JSON.
MAX_OUTPUT_BYTES = 1_048_576

# A file given to --output-file is read whole; past this it cannot shrink to
# MAX_OUTPUT_BYTES by dropping whitespace alone in any realistic document.
MAX_OUTPUT_FILE_BYTES = 64 * MAX_OUTPUT_BYTES

# The API limits `output` to this many levels of nested arrays and objects.
MAX_OUTPUT_DEPTH = 64

# On a terminal, the key/value view cuts a longer output, with a pointer to the
# full one. A pipe always gets the whole output, so scripts never lose data.
OUTPUT_PREVIEW_CHARS = 400

# Hints for the refusals a report meets most, by the API's error code.
_REPORT_HINTS = {
    "forbidden": "only the worker who claimed the job can report; check the wallet with: loom whoami",
    "job_not_in_progress": "the job is not InProgress (not claimed yet, or already ended); see: loom jobs status {job_id}",
}

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
# An RFC 3986 scheme, a colon, and at least one more character; no spaces or control characters.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s\x00-\x1f\x7f]+$")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")

results_app = typer.Typer(
    name="results",
    help="Report a job's result as its worker, or read it back as its creator or worker.",
    no_args_is_help=True,
)

REPORT_EXAMPLES = """\
Examples:

  loom results report job_8fK2x --output-json '{"accuracy": 0.9731}'
  loom results report job_8fK2x --output-file result.json -m "3 epochs"
  ./train.sh | loom results report job_8fK2x --output-file -
  loom results report job_8fK2x --failed --message "out of memory"
  loom results report job_8fK2x --output-json null \\
      --uri s3://bucket/model.bin --file model.bin   # computes the SHA-256
"""

GET_EXAMPLES = """\
Examples:

  loom results get job_8fK2x                         # key/value view
  loom results get job_8fK2x -o json | jq .output
  loom results get job_8fK2x --output-file out.json  # also save the output
  loom results get job_8fK2x --output-file -         # only the output JSON
"""


def register(root: typer.Typer) -> None:
    results_app.command("report", epilog=REPORT_EXAMPLES)(report)
    results_app.command("get", epilog=GET_EXAMPLES)(get)
    root.add_typer(results_app, name="results")


def report(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the job you claimed.", show_default=False)],
    output_file: Annotated[
        str | None,
        typer.Option("--output-file", metavar="FILE", help="Read the output JSON from FILE; - reads stdin.", show_default=False),
    ] = None,
    output_json: Annotated[
        str | None,
        typer.Option("--output-json", metavar="JSON", help="The output JSON itself, such as '{\"score\": 0.97}' or null.", show_default=False),
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Report the outcome Failed instead of Completed.")] = False,
    message: Annotated[
        str | None, typer.Option("--message", "-m", metavar="TEXT", help="A short note for the creator.", show_default=False)
    ] = None,
    uri: Annotated[
        str | None,
        typer.Option("--uri", metavar="URI", help="URI where larger results are stored, such as s3://bucket/key.", show_default=False),
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option("--sha256", metavar="HEX", help="SHA-256 of the data at --uri, as 64 hex digits.", show_default=False),
    ] = None,
    local_file: Annotated[
        Path | None,
        typer.Option("--file", metavar="LOCAL", help="Local copy of the data at --uri; loom computes its SHA-256.", show_default=False),
    ] = None,
    idempotency_key: IdempotencyKeyOption = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Report the result of a job you claimed; the job takes the outcome as its status.

    Give the output with exactly one of --output-json or --output-file (with
    --failed both may be left out, which sends a null output). The output
    may be any JSON value up to 1 MiB written compactly; put larger data
    somewhere else and pass --uri with --sha256 or --file.
    """
    from loom_cli import api

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    api.validate_job_id(job_id)
    key = resolve_idempotency_key(idempotency_key)
    body = build_result_body(
        app,
        output_file=output_file,
        output_json=output_json,
        failed=failed,
        message=message,
        uri=uri,
        sha256=sha256,
        local_file=local_file,
    )

    with app.api(auth=True) as client:
        try:
            result = api.report_result(client, job_id, body, key)
        except ConflictError as exc:
            hint = _REPORT_HINTS.get(exc.api_code or "")
            raise with_hint(exc, hint and hint.format(job_id=job_id)) from exc

    app.renderer.record(result, fields=result_fields(preview=app.renderer.terminal), id_key="job_id")


def get(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="Id of the job.", show_default=False)],
    output_file: Annotated[
        str | None,
        typer.Option(
            "--output-file",
            metavar="FILE",
            help="Also save the output JSON to FILE (replaced atomically); - prints only the output JSON.",
            show_default=False,
        ),
    ] = None,
    output: OutputOption = None,
    json_: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Show the result of a job; only its creator and its worker may read it.

    Exit code 4 means no such job, or no result reported yet.
    """
    from loom_cli import api

    app = AppContext.of(ctx)
    app.apply_output_options(output_value(output), json_, quiet)
    api.validate_job_id(job_id)

    with app.api(auth=True) as client:
        try:
            result = api.get_result(client, job_id)
        except NotFoundError as exc:
            hint = f"a result exists once the worker reports it; see the job with: loom jobs status {job_id}"
            raise with_hint(exc, hint) from exc

    text = dump_exact_json(result.get("output"), indent=2) + "\n"
    if output_file == "-":
        # The output is marketplace data: like -o json, write non-ASCII characters (bidi
        # overrides, C1 controls) as escapes, which leaves the JSON value the same.
        app.stdout.write(_escape_non_ascii(text))
        app.stdout.flush()
        return
    if output_file is not None:
        save_output_file(Path(output_file), text)
        app.info(f"Saved the output of {job_id} to {output_file}.")
    app.renderer.record(result, fields=result_fields(preview=app.renderer.terminal), id_key="job_id")


def build_result_body(
    app: AppContext,
    *,
    output_file: str | None,
    output_json: str | None,
    failed: bool,
    message: str | None,
    uri: str | None,
    sha256: str | None,
    local_file: Path | None,
) -> dict[str, Any]:
    """Check the `report` flags and return the request body; every problem is a UsageError (exit 2)."""
    if output_file is not None and output_json is not None:
        raise UsageError("--output-file and --output-json cannot be used together", hint="give the output one way")
    if output_file is None and output_json is None and not failed:
        raise UsageError(
            "missing output: give --output-json JSON or --output-file FILE",
            hint="use --output-json null for a job without output",
        )

    if output_json is not None:
        value = parse_output_json(output_json, source="--output-json")
    elif output_file is not None:
        value = parse_output_json(read_output_file(app, output_file), source=f"--output-file {output_file}")
    else:
        value = None
    check_output_size(value)

    digest = None
    if sha256 is not None or local_file is not None:
        if uri is None:
            flag = "--sha256" if sha256 is not None else "--file"
            raise UsageError(f"{flag} needs --uri", hint=f"give the URI the checksum is for: --uri URI {flag} ...")
        if sha256 is not None and local_file is not None:
            raise UsageError("--sha256 and --file cannot be used together", hint="give the checksum, or the file to compute it from")
        digest = validate_sha256(sha256) if sha256 is not None else sha256_of_file(local_file)
    if uri is not None:
        validate_result_uri(uri)

    return {
        "outcome": "Failed" if failed else "Completed",
        "output": value,
        "result_uri": uri,
        "sha256": digest,
        "message": message,
    }


def parse_output_json(text: str, *, source: str) -> Any:
    """Parse `text` as one JSON value, keeping non-integer numbers as exact Decimals.

    NaN and Infinity are not JSON and are rejected like any other error,
    which names `source` and the position.
    """
    import json
    from decimal import Decimal

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(text, parse_float=Decimal, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"invalid JSON in {source}: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="the output must be one JSON value, such as {\"score\": 0.97}, [1, 2] or null",
        ) from exc
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"invalid JSON in {source}: {exc}", hint="write numbers as plain decimals") from exc


def read_output_file(app: AppContext, name: str) -> str:
    """Read the --output-file text: stdin for "-", else the file as UTF-8."""
    if name == "-":
        text = app.stdin.read(MAX_OUTPUT_FILE_BYTES + 1)
        if len(text) > MAX_OUTPUT_FILE_BYTES:
            raise _too_large("stdin")
        return text

    path = Path(name)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_OUTPUT_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read --output-file {name}: {exc.strerror}", hint="check the path and its permissions") from exc
    if len(raw) > MAX_OUTPUT_FILE_BYTES:
        raise _too_large(name)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read --output-file {name}: not UTF-8 text (byte {exc.start})", hint="save the output as UTF-8 JSON") from exc


def check_output_size(value: Any) -> None:
    """Raise UsageError when the API would refuse `output` for its size (413) or nesting (422)."""
    depth = nesting_depth(value)
    if depth > MAX_OUTPUT_DEPTH:
        raise UsageError(
            f"output nests arrays and objects {depth} levels deep, the limit is {MAX_OUTPUT_DEPTH}",
            hint="flatten the output, or store it elsewhere and report it with --uri",
        )
    size = len(dump_exact_json(value).encode("utf-8"))
    if size > MAX_OUTPUT_BYTES:
        raise UsageError(
            f"output is too large: {size:,} bytes as compact JSON, the limit is {MAX_OUTPUT_BYTES:,}",
            hint="store large results elsewhere and report them with --uri URI --file LOCAL",
        )


def nesting_depth(value: Any) -> int:
    """Levels of nested arrays and objects: 0 for a scalar, 1 for [1], 2 for {"a": [1]}."""
    depth = 0
    level = [value]
    while level:
        containers = [item for item in level if isinstance(item, (dict, list))]
        if not containers:
            break
        depth += 1
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]
    return depth


def _too_large(source: str) -> UsageError:
    return UsageError(
        f"output in {source} is too large to report (over {MAX_OUTPUT_FILE_BYTES // MAX_OUTPUT_BYTES} MiB)",
        hint="store large results elsewhere and report them with --uri URI --file LOCAL",
    )


def validate_sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise UsageError(f"invalid --sha256 {value!r}: expected 64 hex digits", hint="compute it with: sha256sum FILE, or pass --file FILE")
    return value.lower()


def sha256_of_file(path: Path) -> str:
    """Hash a local file in chunks, so files of any size fit in memory."""
    import hashlib

    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise UsageError(f"cannot read --file {path}: {exc.strerror}", hint="check the path and its permissions") from exc


def validate_result_uri(uri: str) -> None:
    """Accept any absolute URI, as the API does; reject a bare path, the usual slip."""
    if not _URI.match(uri):
        raise UsageError(
            f"invalid --uri {uri!r}: expected an absolute URI such as s3://bucket/key or ipfs://CID",
            hint="a local file goes in --file, next to the --uri where it is stored",
        )


def dump_exact_json(value: Any, *, indent: int | None = None) -> str:
    """Write `value` as JSON, with each Decimal as its exact digits and non-ASCII text as is.

    Without `indent` this is the compact form the API measures `output` in.
    """
    import json
    from decimal import Decimal

    from loom_cli.sandbox.jsonio import dumps

    if indent is None:
        return dumps(value)

    def encode(item: Any, depth: int) -> str:
        if isinstance(item, dict) and item:
            entries = [f"{json.dumps(str(key), ensure_ascii=False)}: {encode(val, depth + 1)}" for key, val in item.items()]
            return "{" + join(entries, depth) + "}"
        if isinstance(item, (list, tuple)) and item:
            return "[" + join([encode(val, depth + 1) for val in item], depth) + "]"
        if isinstance(item, Decimal):
            return str(item)
        return dumps(item)

    def join(entries: list[str], depth: int) -> str:
        inner = "\n" + " " * (indent * (depth + 1))
        return inner + ("," + inner).join(entries) + "\n" + " " * (indent * depth)

    return encode(value, 0)


def _escape_non_ascii(json_text: str) -> str:
    """Write each non-ASCII character of JSON text as a \\u escape (a surrogate pair above U+FFFF)."""
    import json

    return _NON_ASCII.sub(lambda match: json.dumps(match.group())[1:-1], json_text)


def result_fields(*, preview: bool = True) -> list[Column]:
    """Return the key/value fields of a result; with `preview` an output longer than OUTPUT_PREVIEW_CHARS is cut."""
    from loom_cli.output import Column

    return [
        Column("Job", "job_id"),
        Column("Outcome", "outcome"),
        Column("Reported by", "reported_by"),
        Column("Reported at", "reported_at"),
        Column("Message", "message"),
        Column("URI", "result_uri"),
        Column("SHA-256", "sha256"),
        Column("Output", _output_preview if preview else _output_text),
    ]


def _output_text(result: dict) -> str:
    return dump_exact_json(result.get("output"))


def _output_preview(result: dict) -> str:
    text = dump_exact_json(result.get("output"))
    if len(text) <= OUTPUT_PREVIEW_CHARS:
        return text
    return f"{text[:OUTPUT_PREVIEW_CHARS]}… ({len(text.encode('utf-8')):,} bytes; see it all with -o json or --output-file)"


def save_output_file(path: Path, text: str) -> None:
    """Replace `path` atomically with `text` (mode 0644: a result is not a secret)."""
    import os
    import tempfile

    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write --output-file {path}: {exc.strerror}", hint="check that the folder exists and is writable") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except OSError as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise UsageError(f"cannot write --output-file {path}: {exc.strerror}", hint="check that the folder is writable") from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
