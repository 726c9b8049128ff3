"""The root help replayed from its cache (loom_cli/helpcache.py).

The replayed page must be byte for byte what Typer prints, for the same exit
code, and anything that could change the page must lead to a new render.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from loom_cli import helpcache
from loom_cli.commands.completion import COMPLETE_VAR
from loom_cli.helpcache import HelpCache, cache_dir, invocation_key
from tests.bench.imports import NOT_ON_CACHED_HELP, snapshot_imports
from tests.helpers import loom_env, run_loom


def cache_files(config_dir: Path) -> list[Path]:
    folder = config_dir / "cache"
    return sorted(folder.glob("help-*.txt")) if folder.exists() else []


@pytest.mark.parametrize(("args", "code"), [(("--help",), 0), (("-h",), 0), ((), 2)], ids=["--help", "-h", "bare"])
def test_replay_matches_render_and_exit_code(isolated_env: Path, args: tuple[str, ...], code: int):
    rendered = run_loom(*args)
    assert rendered.returncode == code
    assert "Usage: loom" in rendered.stdout
    assert len(cache_files(isolated_env)) == 1

    replayed = run_loom(*args)

    assert replayed.returncode == code
    assert replayed.stdout == rendered.stdout
    assert replayed.stderr == rendered.stderr == ""


def test_short_and_long_help_share_an_entry(isolated_env: Path):
    long_form = run_loom("--help")
    short_form = run_loom("-h")

    assert short_form.stdout == long_form.stdout
    assert len(cache_files(isolated_env)) == 1


def test_replay_imports_neither_typer_nor_rich():
    first = snapshot_imports("--help")
    assert first.returncode == 0, first.stderr
    assert "typer" in first.modules

    second = snapshot_imports("--help")

    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert second.loaded(NOT_ON_CACHED_HELP) == []


def test_other_width_renders_anew(isolated_env: Path):
    narrow = run_loom("--help", env={"COLUMNS": "60"})
    wide = run_loom("--help", env={"COLUMNS": "100"})
    narrow_again = run_loom("--help", env={"COLUMNS": "60"})

    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60
    assert max(len(line) for line in wide.stdout.splitlines()) > 60
    assert narrow_again.stdout == narrow.stdout
    assert len(cache_files(isolated_env)) == 2


def test_colour_settings_are_part_of_the_key(isolated_env: Path):
    plain = run_loom("--help")
    forced = run_loom("--help", env={"NO_COLOR": "", "TERM": "xterm-256color", "FORCE_COLOR": "1"})

    assert "\x1b[" not in plain.stdout
    assert "\x1b[" in forced.stdout
    assert run_loom("--help").stdout == plain.stdout
    assert len(cache_files(isolated_env)) == 2


def test_damaged_entry_is_replaced(isolated_env: Path):
    expected = run_loom("--help").stdout
    (entry,) = cache_files(isolated_env)
    content = entry.read_text(encoding="utf-8")
    for damaged in (content[: len(content) // 2], "", "not a cache entry", content.replace("loom=", "loom=9", 1), b"\xff\xfe".decode("latin-1")):
        entry.write_text(damaged, encoding="utf-8")
        result = run_loom("--help")
        assert result.returncode == 0
        assert result.stdout == expected
        assert result.stderr == ""
        assert entry.read_text(encoding="utf-8") == content


def test_entry_with_wrong_length_is_rendered_again(isolated_env: Path):
    expected = run_loom("--help").stdout
    (entry,) = cache_files(isolated_env)
    header, _, text = entry.read_text(encoding="utf-8").partition("\n\n")
    # Same key, a text of another length: the stored length no longer matches.
    entry.write_text(f"{header}\n\n{text}extra", encoding="utf-8")

    assert run_loom("--help").stdout == expected


def test_cache_files_are_private(isolated_env: Path):
    run_loom("--help")
    folder = isolated_env / "cache"
    (entry,) = cache_files(isolated_env)

    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600


def test_unwritable_cache_still_prints_help(isolated_env: Path):
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "cache").write_text("a file where the folder should be", encoding="utf-8")

    for _ in range(2):
        result = run_loom("--help")
        assert result.returncode == 0
        assert "Usage: loom" in result.stdout
        assert result.stderr == ""


def test_key_excludes_secrets(isolated_env: Path):
    secrets = {
        "RICH_API_TOKEN": "sk-live-not-a-real-token-0123456789",
        "TYPER_CLOUD_SECRET": "hunter2-but-longer",
        "LOOM_PRIVATE_KEY": "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        "LOOM_PASSPHRASE": "correct horse battery staple",
        "LOOM_TOKEN": "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
        "GITHUB_TOKEN": "ghp_notarealtokenbutlongenough",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }
    run_loom("--help", env=secrets)
    (entry,) = cache_files(isolated_env)
    content = entry.read_text(encoding="utf-8")

    for name, value in secrets.items():
        assert value not in content
        assert name not in content


def test_completion_request_skips_cache():
    run_loom("--help")
    run_loom()

    completion = run_loom(env={COMPLETE_VAR: "complete_bash", "COMP_WORDS": "loom jo", "COMP_CWORD": "1"})

    assert completion.returncode == 0
    assert "jobs" in completion.stdout
    assert "Usage" not in completion.stdout


def test_replay_to_closed_pipe_exits_quietly():
    run_loom("--help")
    # `loom --help | head -c 1`, with a reader that has already gone.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "loom_cli", "--help"], env=loom_env(), stdin=subprocess.DEVNULL, stdout=writer, stderr=subprocess.PIPE, timeout=60
        )
    finally:
        os.close(writer)
    assert result.returncode == 0
    assert result.stderr == b""


def test_special_file_entry_is_ignored(isolated_env: Path):
    expected = run_loom("--help").stdout
    (entry,) = cache_files(isolated_env)

    entry.unlink()
    os.mkfifo(entry)
    from_fifo = run_loom("--help", timeout=30)
    entry.unlink()
    entry.symlink_to("/dev/zero")
    from_link = run_loom("--help", timeout=30)

    assert from_fifo.stdout == expected
    assert from_link.stdout == expected


def test_edit_of_same_length_is_rendered_again(isolated_env: Path):
    expected = run_loom("--help").stdout
    (entry,) = cache_files(isolated_env)
    entry.write_text(entry.read_text(encoding="utf-8").replace("Usage: loom", "Usage: LOOM"), encoding="utf-8")

    assert run_loom("--help").stdout == expected


def test_terminal_change_during_render_stores_nothing(isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    cache = HelpCache.for_invocation(["--help"], os.environ)
    assert cache is not None
    # The terminal is resized while the page renders.
    monkeypatch.setattr(helpcache, "_terminal_state", lambda: ["fd1:tty=1:size=150x40"])

    with pytest.raises(SystemExit), cache.recording():
        print("Usage: loom [OPTIONS] COMMAND [ARGS]...")
        raise SystemExit(0)

    assert "Usage: loom" in capsys.readouterr().out
    assert cache_files(isolated_env) == []


def test_replay_marks_entry_as_used(isolated_env: Path):
    run_loom("--help")
    (entry,) = cache_files(isolated_env)
    os.utime(entry, (1_000_000, 1_000_000))

    run_loom("--help")

    assert entry.stat().st_mtime > 1_000_000


def test_relative_cache_folder_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LOOM_CONFIG_DIR")
    workdir = tmp_path / "work"
    workdir.mkdir()

    result = subprocess.run(
        [sys.executable, "-m", "loom_cli", "--help"],
        env=loom_env({"XDG_CACHE_HOME": "relative-cache", "HOME": str(tmp_path / "home")}),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert list(workdir.iterdir()) == []


def test_other_invocations_are_not_cached(isolated_env: Path):
    for args in (("jobs", "--help"), ("--help", "jobs"), ("--version",), ("--json",)):
        run_loom(*args)
    assert cache_files(isolated_env) == []


def test_old_entries_are_pruned(isolated_env: Path):
    folder = isolated_env / "cache"
    folder.mkdir(parents=True)
    for index in range(40):
        old = folder / f"help-{index:08x}.txt"
        old.write_text("stale", encoding="utf-8")
        os.utime(old, (1_000_000 + index, 1_000_000 + index))

    run_loom("--help")

    remaining = cache_files(isolated_env)
    assert len(remaining) == 16
    assert folder / "help-00000000.txt" not in remaining


def test_cache_dir_matches_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import platformdirs

    monkeypatch.delenv("LOOM_CONFIG_DIR")
    for xdg in (None, str(tmp_path / "xdg-cache"), "  "):
        if xdg is None:
            monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert cache_dir(os.environ) == platformdirs.user_cache_dir("loom", appauthor=False)


def test_key_tracks_sources_and_libraries(monkeypatch: pytest.MonkeyPatch):
    key = invocation_key(("--help",), {})
    app_py = os.path.join(os.path.dirname(helpcache.__file__), "app.py")
    assert app_py in key
    assert os.path.join("typer", "rich_utils.py") in key
    assert os.path.join("rich", "console.py") in key
    assert "typer=" in key
    assert "rich=" in key

    monkeypatch.setattr(helpcache, "_file_stamp", lambda path: f"{path}:edited")
    assert invocation_key(("--help",), {}) != key


def test_entry_only_for_root_help_arguments():
    assert HelpCache.for_invocation(["--help"], os.environ) is not None
    assert HelpCache.for_invocation([], os.environ) is not None
    for args in (["jobs"], ["--help", "--help"], ["-hv"], ["--version"]):
        assert HelpCache.for_invocation(args, os.environ) is None
    assert HelpCache.for_invocation(["--help"], {**os.environ, COMPLETE_VAR: "complete_zsh"}) is None


def test_no_entry_on_windows(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys, "platform", "win32")
    assert HelpCache.for_invocation(["--help"], os.environ) is None
    assert COMPLETE_VAR == helpcache.COMPLETE_VAR
