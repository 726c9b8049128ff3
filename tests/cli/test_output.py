"""The renderer: exact output for a terminal and for a pipe, in every format."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import yaml

from loom_cli.output import Column, Renderer, humanize_age, to_jsonable

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()

JOBS = [
    {
        "id": "job_1",
        "name": "render [bold]frames[/bold]",
        "status": "Open",
        "reward": {"amount": "12.5", "currency": "LOOM"},
        "worker": None,
        "created_at": "2024-05-01T11:57:00.000000Z",
    },
    {
        "id": "job_22",
        "name": "evil \x1b]8;;http://x\x07link\u202e\x00",
        "status": "InProgress",
        "reward": {"amount": "3", "currency": "LOOM"},
        "worker": "0xEf",
        "created_at": "2024-04-29T12:00:00.000000Z",
    },
]

COLUMNS = [
    Column("ID", "id"),
    Column("NAME", "name"),
    Column("STATUS", "status"),
    Column("REWARD", lambda job: f"{job['reward']['amount']} {job['reward']['currency']}"),
    Column("WORKER", "worker"),
    Column("CREATED", "created_at"),
]


def make_renderer(fmt: str = "table", *, quiet: bool = False, terminal: bool = False, color: bool = False):
    stdout = io.StringIO()
    renderer = Renderer(
        fmt=fmt,
        quiet=quiet,
        stdout=stdout,
        stderr=io.StringIO(),
        color=color,
        terminal=terminal,
        width=100,
        now=lambda: NOW,
    )
    return renderer, stdout


def test_piped_table_is_plain_aligned_text():
    renderer, stdout = make_renderer()
    renderer.records(iter(JOBS), columns=COLUMNS)
    assert stdout.getvalue() == (
        "ID      NAME                                     STATUS      REWARD     WORKER  CREATED\n"
        "job_1   render [bold]frames[/bold]               Open        12.5 LOOM  -       2024-05-01T11:57:00.000000Z\n"
        "job_22  evil \\x1b]8;;http://x\\x07link\\u202e\\x00  InProgress  3 LOOM     0xEf    2024-04-29T12:00:00.000000Z\n"
    )


def test_piped_table_never_wraps_or_truncates():
    long_name = "x" * 500
    renderer, stdout = make_renderer()
    renderer.records([{"id": "job_1", "name": long_name}], columns=[Column("ID", "id"), Column("NAME", "name")])
    lines = stdout.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[1] == f"job_1  {long_name}"


def test_piped_table_aligns_wide_characters():
    renderer, stdout = make_renderer()
    rows = [{"id": "job_1", "name": "渲染", "status": "Open"}, {"id": "job_2", "name": "abcd", "status": "Open"}]
    renderer.records(rows, columns=[Column("ID", "id"), Column("NAME", "name"), Column("STATUS", "status")])
    assert stdout.getvalue() == (
        "ID     NAME  STATUS\n"
        "job_1  渲染  Open\n"
        "job_2  abcd  Open\n"
    )


def test_piped_table_escapes_tabs_and_newlines():
    renderer, stdout = make_renderer()
    renderer.records([{"id": "job_1", "name": "a\tb\nc"}], columns=[Column("ID", "id"), Column("NAME", "name")])
    assert stdout.getvalue() == "ID     NAME\njob_1  a\\tb\\nc\n"


def test_piped_table_with_no_rows_prints_headers():
    renderer, stdout = make_renderer()
    renderer.records(iter([]), columns=COLUMNS)
    assert stdout.getvalue() == "ID  NAME  STATUS  REWARD  WORKER  CREATED\n"


def test_terminal_table_without_colour():
    renderer, stdout = make_renderer(terminal=True)
    renderer.records(iter(JOBS), columns=COLUMNS)
    assert stdout.getvalue() == (
        "ID      NAME                                     STATUS      REWARD     WORKER  CREATED\n"
        "job_1   render [bold]frames[/bold]               Open        12.5 LOOM  -       3m ago \n"
        "job_22  evil \\x1b]8;;http://x\\x07link\\u202e\\x00  InProgress  3 LOOM     0xEf    2d ago \n"
    )


def test_terminal_table_with_colour_styles_only_headers():
    renderer, stdout = make_renderer(terminal=True, color=True)
    renderer.records(JOBS[:1], columns=[Column("ID", "id"), Column("NAME", "name")])
    text = stdout.getvalue()
    assert text.startswith("\x1b[1mID")
    assert "job_1  render [bold]frames[/bold]\n" in text
    # The only escape sequences are rich's own bold on and off.
    assert text.count("\x1b[") == text.count("\x1b[1m") + text.count("\x1b[0m")


def test_terminal_table_folds_instead_of_truncating():
    renderer, stdout = make_renderer(terminal=True)
    long_name = "y" * 250
    renderer.records([{"id": "job_1", "name": long_name}], columns=[Column("ID", "id"), Column("NAME", "name")])
    assert stdout.getvalue().count("y") == 250
    assert "…" not in stdout.getvalue()


ADDRESS = "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"


def test_terminal_table_shortens_addresses_and_keeps_ids_whole():
    stdout = io.StringIO()
    renderer = Renderer(fmt="table", quiet=False, stdout=stdout, stderr=io.StringIO(), color=False, terminal=True, width=60, now=lambda: NOW)
    job = {"id": "job_95H1dcNwL62HLaSj", "name": "a long job name that has to wrap", "worker": ADDRESS}

    renderer.records([job], columns=[Column("ID", "id"), Column("NAME", "name"), Column("WORKER", "worker", address=True)])

    text = stdout.getvalue()
    assert "job_95H1dcNwL62HLaSj" in text
    assert "0x1a64…14F1" in text
    assert ADDRESS not in text


def test_narrow_terminal_leaves_out_droppable_columns_in_order():
    columns = [
        Column("ID", "id"),
        Column("NAME", "name"),
        Column("CREATOR", "creator", address=True, drop_order=1),
        Column("WORKER", "worker", address=True, drop_order=2),
    ]
    job = {"id": "job_95H1dcNwL62HLaSj", "name": "render frames", "creator": ADDRESS, "worker": ADDRESS}
    headers = {}
    for width in (80, 50, 40):
        stdout = io.StringIO()
        renderer = Renderer(fmt="table", quiet=False, stdout=stdout, stderr=io.StringIO(), color=False, terminal=True, width=width, now=lambda: NOW)
        renderer.records([job], columns=columns)
        headers[width] = stdout.getvalue().splitlines()[0].split()

    assert headers[80] == ["ID", "NAME", "CREATOR", "WORKER"]
    assert headers[50] == ["ID", "NAME", "WORKER"]
    assert headers[40] == ["ID", "NAME"]


def test_piped_table_keeps_droppable_columns():
    renderer, stdout = make_renderer()
    renderer.records([{"id": "job_1", "worker": ADDRESS}], columns=[Column("ID", "id"), Column("WORKER", "worker", drop_order=1)])
    assert stdout.getvalue().splitlines()[0].split() == ["ID", "WORKER"]


def test_piped_table_keeps_addresses_whole():
    renderer, stdout = make_renderer()
    renderer.records([{"id": "job_1", "worker": ADDRESS}], columns=[Column("ID", "id"), Column("WORKER", "worker", address=True)])
    assert ADDRESS in stdout.getvalue()


def test_record_key_value_view_piped():
    renderer, stdout = make_renderer()
    renderer.record(JOBS[1])
    assert stdout.getvalue() == (
        "id:               job_22\n"
        "name:             evil \\x1b]8;;http://x\\x07link\\u202e\\x00\n"
        "status:           InProgress\n"
        "reward.amount:    3\n"
        "reward.currency:  LOOM\n"
        "worker:           0xEf\n"
        "created_at:       2024-04-29T12:00:00.000000Z\n"
    )


def test_record_key_value_view_on_terminal_shows_age():
    renderer, stdout = make_renderer(terminal=True)
    renderer.record(JOBS[0], fields=[Column("ID", "id"), Column("CREATED", "created_at")])
    assert stdout.getvalue() == (
        "ID:      job_1                               \n"
        "CREATED: 2024-05-01T11:57:00.000000Z (3m ago)\n"
    )


def test_record_key_value_view_escapes_keys():
    renderer, stdout = make_renderer()
    renderer.record({"labels": {"a\x1b[31m": "v"}})
    assert stdout.getvalue() == "labels.a\\x1b[31m:  v\n"


def test_record_json_is_indented():
    renderer, stdout = make_renderer("json")
    renderer.record(JOBS[1])
    assert stdout.getvalue() == json.dumps(JOBS[1], indent=2) + "\n"
    assert "\\u202e" in stdout.getvalue()
    assert "\x1b" not in stdout.getvalue()


def test_record_jsonl_is_one_compact_line():
    renderer, stdout = make_renderer("jsonl")
    renderer.record(JOBS[0])
    assert stdout.getvalue() == json.dumps(JOBS[0], separators=(",", ":")) + "\n"


def test_record_yaml_round_trips():
    renderer, stdout = make_renderer("yaml")
    renderer.record(JOBS[1])
    assert yaml.safe_load(stdout.getvalue()) == JOBS[1]
    assert stdout.getvalue().isascii()


def test_record_quiet_prints_the_id_key():
    renderer, stdout = make_renderer("json", quiet=True)
    renderer.record(JOBS[1], id_key="status")
    assert stdout.getvalue() == "InProgress\n"


def test_record_quiet_without_id_key_prints_nothing():
    renderer, stdout = make_renderer(quiet=True)
    renderer.record(JOBS[1], id_key=None)
    assert stdout.getvalue() == ""


def test_records_json_matches_json_dumps():
    renderer, stdout = make_renderer("json")
    renderer.records(iter(JOBS), columns=COLUMNS)
    assert stdout.getvalue() == json.dumps(JOBS, indent=2) + "\n"


def test_records_json_empty_list():
    renderer, stdout = make_renderer("json")
    renderer.records(iter([]), columns=COLUMNS)
    assert stdout.getvalue() == "[]\n"


def test_records_yaml_is_one_list():
    renderer, stdout = make_renderer("yaml")
    renderer.records(iter(JOBS), columns=COLUMNS)
    assert yaml.safe_load(stdout.getvalue()) == JOBS


def test_records_yaml_empty_list():
    renderer, stdout = make_renderer("yaml")
    renderer.records(iter([]), columns=COLUMNS)
    assert stdout.getvalue() == "[]\n"


def test_records_jsonl_one_line_per_item():
    renderer, stdout = make_renderer("jsonl")
    renderer.records(iter(JOBS), columns=COLUMNS)
    lines = stdout.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == JOBS


def test_records_quiet_prints_ids():
    renderer, stdout = make_renderer(quiet=True)
    renderer.records(iter(JOBS), columns=COLUMNS)
    assert stdout.getvalue() == "job_1\njob_22\n"


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml"])
def test_records_stream_before_next_item(fmt):
    renderer, stdout = make_renderer(fmt)
    seen_before_second: list[str] = []

    def pages():
        yield JOBS[0]
        seen_before_second.append(stdout.getvalue())
        yield JOBS[1]

    renderer.records(pages(), columns=COLUMNS)
    assert "job_1" in seen_before_second[0]
    assert "job_22" not in seen_before_second[0]


def test_records_quiet_streams():
    renderer, stdout = make_renderer(quiet=True)
    seen: list[str] = []

    def items():
        yield JOBS[0]
        seen.append(stdout.getvalue())
        yield JOBS[1]

    renderer.records(items(), columns=COLUMNS)
    assert seen == ["job_1\n"]


def test_text_writes_raw_line_in_any_format():
    renderer, stdout = make_renderer("json")
    renderer.text("eyJhbGciOi")
    assert stdout.getvalue() == "eyJhbGciOi\n"


def test_decimals_are_written_as_numbers():
    spec = {"cpu": Decimal("0.5"), "count": Decimal("2"), "precise": Decimal("0.1000000000000000000001")}
    renderer, stdout = make_renderer("json")
    renderer.record(spec)
    assert json.loads(stdout.getvalue(), parse_float=Decimal) == spec
    assert '"precise": 0.1000000000000000000001' in stdout.getvalue()
    renderer, stdout = make_renderer("jsonl")
    renderer.records([spec], columns=[])
    assert stdout.getvalue() == '{"cpu":0.5,"count":2,"precise":0.1000000000000000000001}\n'
    # YAML has no exact decimal type that PyYAML writes, so such a number stays a quoted string there.
    renderer, stdout = make_renderer("yaml")
    renderer.record(spec)
    assert stdout.getvalue() == "cpu: 0.5\ncount: 2\nprecise: '0.1000000000000000000001'\n"


def test_to_jsonable_keeps_non_finite_as_text():
    assert to_jsonable(Decimal("Infinity")) == "Infinity"


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError):
        Renderer(fmt="xml", quiet=False, stdout=io.StringIO(), stderr=io.StringIO(), color=False)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "just now"), (42, "42s ago"), (180, "3m ago"), (7200, "2h ago"), (3 * 86400, "3d ago"), (-120, "in 2m")],
)
def test_humanize_age(seconds, expected):
    moment = datetime.fromtimestamp(NOW - seconds, tz=timezone.utc)
    assert humanize_age(moment, NOW) == expected


def test_humanize_age_shows_date_after_a_month():
    moment = datetime(2024, 1, 31, tzinfo=timezone.utc)
    assert humanize_age(moment, NOW) == "2024-01-31"


def test_closed_pipe_ends_with_exit_zero():
    import os

    import typer

    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = os.fdopen(write_end, "w")
    renderer = Renderer(fmt="jsonl", quiet=False, stdout=stdout, stderr=io.StringIO(), color=False)
    requested: list[int] = []

    def items():
        for index in range(3):
            requested.append(index)
            yield JOBS[0]

    with pytest.raises(typer.Exit) as caught:
        renderer.records(items(), columns=COLUMNS)
    assert caught.value.exit_code == 0
    # The first failed write stops the listing: no further page is requested.
    assert requested == [0]
    # stdout now points at /dev/null, so the final flush at exit cannot fail.
    stdout.write("more\n")
    stdout.flush()
    stdout.close()


def test_lone_surrogates_are_escaped_in_tables():
    import tempfile

    with tempfile.TemporaryFile("w+", encoding="utf-8") as stdout:
        renderer = Renderer(fmt="table", quiet=False, stdout=stdout, stderr=io.StringIO(), color=False, terminal=False)
        renderer.records([{"id": "job_1", "name": "a\ud800b"}], columns=[Column("ID", "id"), Column("NAME", "name")])
        renderer.record({"name": "a\udfff"})
        stdout.seek(0)
        assert stdout.read() == "ID     NAME\njob_1  a\\ud800b\nname:  a\\udfff\n"


def test_yaml_keeps_long_and_multiline_strings_readable():
    from loom_cli.output import dump_yaml

    record = {"description": "first line\nsecond line\n", "name": "x" * 300, "odd": "trailing \nspace"}

    text = dump_yaml(record)

    assert "description: |\n  first line\n  second line\n" in text
    assert f"name: {'x' * 300}\n" in text
    assert yaml.safe_load(text) == record


def test_record_view_keeps_newlines_indented():
    renderer, stdout = make_renderer("table")
    fields = [Column("ID", "id"), Column("Description", "description")]

    renderer.record({"id": "job_1", "description": "first line\nsecond \x1b[31mline\n"}, fields=fields)

    assert stdout.getvalue() == (
        "ID:           job_1\n"
        "Description:  first line\n"
        "              second \\x1b[31mline\n"
    )
