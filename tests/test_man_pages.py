"""Man pages: generated from the command tree, committed in man/, and rendered by man without warnings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import typer.main

from loom_cli.app import app
from loom_cli.docs.generate import REGENERATE_COMMAND, generated_files, stale_files
from loom_cli.docs.manpages import render_man_pages, rst_to_roff
from loom_cli.docs.rst import Document, parse_help
from loom_cli.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_PAGES = sorted((ROOT / "man").glob("*.1"))


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return render_man_pages({})


def render_with_man(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": ""}
    return subprocess.run(["man", "--warnings", "-l", str(path)], env=env, capture_output=True, text=True, timeout=60)


def require_man(in_ci: bool) -> None:
    if shutil.which("man") is None:
        if in_ci:
            pytest.fail("man is not installed; .ci/run installs man-db and groff-base with apt-get")
        pytest.skip("man is not installed")


def test_committed_files_are_current():
    stale = stale_files(ROOT)
    assert stale == [], f"out of date: {', '.join(stale)}; regenerate with: {REGENERATE_COMMAND}"


def test_one_page_per_top_level_command(pages: dict[str, str]):
    root = typer.main.get_command(app)
    commands = {f"loom-{name}.1" for name, command in root.commands.items() if not command.hidden}
    assert set(pages) == {"loom.1", *commands}


def test_root_page_has_every_section(pages: dict[str, str]):
    page = pages["loom.1"]
    for section in ("SYNOPSIS", "DESCRIPTION", "GLOBAL OPTIONS", "COMMANDS", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"):
        assert f'.SH "{section}"' in page or f".SH {section}\n" in page, section


def test_root_page_lists_every_exit_code(pages: dict[str, str]):
    exit_status = pages["loom.1"].split(".SH EXIT STATUS")[1].split(".SH ")[0]
    for code in ExitCode:
        assert f".B \\fB{int(code)}\\fP\n" in exit_status, code.name


def test_root_page_names_files_and_variables(pages: dict[str, str]):
    page = pages["loom.1"]
    for name in ("LOOM_PROFILE", "LOOM_API_URL", "LOOM_OUTPUT", "LOOM_TOKEN", "LOOM_PRIVATE_KEY", "LOOM_PASSPHRASE", "LOOM_CONFIG_DIR", "NO_COLOR"):
        assert name in page, name
    files = page.split(".SH FILES")[1].split(".SH ")[0]
    assert "config.toml" in files
    assert "LOOM_CONFIG_DIR" in files


def test_group_page_documents_each_subcommand(pages: dict[str, str]):
    root = typer.main.get_command(app)
    for name, group in root.commands.items():
        for sub_name, sub in getattr(group, "commands", {}).items():
            if not sub.hidden:
                assert f'.SS "loom {name} {sub_name}"' in pages[f"loom-{name}.1"] or f".SS loom {name} {sub_name}\n" in pages[f"loom-{name}.1"]


def test_leaf_page_has_examples_section(pages: dict[str, str]):
    page = pages["loom-completion.1"]
    examples = page.split(".SH EXAMPLES")[1]
    assert "loom completion bash >" in examples


def test_generation_is_deterministic(pages: dict[str, str]):
    assert render_man_pages({}) == pages
    assert '.TH "loom" "1" "" "loom ' in pages["loom.1"]


def test_source_date_epoch_sets_date():
    page = render_man_pages({"SOURCE_DATE_EPOCH": "1700000000"})["loom.1"]
    assert '.TH "loom" "1" "2023-11-14" ' in page


def test_committed_pages_skip_source_date_epoch(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert "2023-11-14" not in generated_files()["man/loom.1"]


def test_help_text_cannot_inject_roff():
    doc = Document()
    doc.title("loom-test", "a page", section=1, manual="loom manual", version="loom 0", date=None)
    doc.section("DESCRIPTION")
    doc.help_blocks(parse_help(".SH INJECTED\n\n'br\n\n- not a list *not bold* `x` back\\slash"))
    roff = rst_to_roff(doc.render())
    body = roff.split(".SH DESCRIPTION")[1]
    assert "\n.SH INJECTED" not in body
    assert "\n'br" not in body
    assert "INJECTED" in body
    assert r"back\eslash" in body
    assert "*not bold*" in body


def test_parse_help_separates_examples():
    blocks = parse_help(
        """Create a job.

        Longer text
        over two lines.

        Examples:
          loom jobs create job.yaml
          loom jobs create - < job.json
        """
    )
    assert [block.literal for block in blocks] == [False, False, False, True]
    assert blocks[1].lines == ("Longer text", "over two lines.")
    assert blocks[2].lines == ("Examples:",)
    assert blocks[3].lines == ("loom jobs create job.yaml", "loom jobs create - < job.json")


@pytest.mark.parametrize("path", COMMITTED_PAGES, ids=lambda path: path.name)
def test_committed_page_renders_without_warnings(path: Path, in_ci: bool):
    require_man(in_ci)
    result = render_with_man(path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"man --warnings -l {path.relative_to(ROOT)}:\n{result.stderr}"
    assert path.stem.split("-")[-1] in result.stdout


def test_fresh_pages_render_without_warnings(tmp_path: Path, pages: dict[str, str], in_ci: bool):
    # Covers pages of commands added since the last regeneration.
    require_man(in_ci)
    for name, text in pages.items():
        path = tmp_path / name
        path.write_text(text)
        result = render_with_man(path)
        assert result.stderr == "", f"{name}:\n{result.stderr}"


def test_root_page_renders_global_options(tmp_path: Path, pages: dict[str, str], in_ci: bool):
    require_man(in_ci)
    path = tmp_path / "loom.1"
    path.write_text(pages["loom.1"])
    text = " ".join(render_with_man(path).stdout.split())
    assert "--profile" in text
    assert "env var: LOOM_PROFILE" in text
    assert "EXIT STATUS" in text
